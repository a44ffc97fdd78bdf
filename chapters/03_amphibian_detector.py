# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # AmphibianDetector: stop early on frames where nothing moves
#
# A frog sitting still hardly sees a motionless fly; its eye reports what moves. A
# door-phone camera has the opposite problem: it stares at the same wall for hours and
# runs its face detector on every frame anyway, and a face printed on a poster on that
# wall triggers the detector again and again. Chapter 2 of the thesis
# {cite}`svitov2023` borrows the frog's trick. The detector's own early layers already
# describe the scene; if their description has not changed since the background was
# learnt, the frame is skipped before the expensive layers run, and on frames that do
# change, a box is kept only where the description changed. The thesis calls the method
# **AmphibianDetector**.
#
# This page runs it on a door-phone scene with exact ground truth. The pedestrian
# video of the thesis's protocol (CDNet2014, or OpenCV's `vtest.avi` here) follows in
# the next revision of this chapter.

# %% tags=["colab"]
# Colab only: install faceopt beside Colab's own torch. Does nothing elsewhere.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "faceopt @ git+https://github.com/faceopt/faceopt"], check=True)

# %% tags=["parameters"]
scale = "smoke"  # "smoke" (a minute, golden test) or "full" (the book's page)
data = "doorbell"  # the synthetic door-phone scene with real LFW faces
device = "auto"  # the detector runs on the CPU, the target of the thesis
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from faceopt import results
from faceopt.assets import asset_path
from faceopt.config import check_choice, check_scale, resolve_device, seed_everything
from faceopt.data.doorbell import DoorbellConfig, doorbell_scene
from faceopt.detection import experiments as ex
from faceopt.detection.amphibian import AmphibianDetector
from faceopt.detection.blazeface import BlazeFace
from faceopt.detection.figures import motion_strip
from faceopt.detection.metrics import mean_average_precision
from faceopt.detection.split import BlazeFaceSplit

check_scale(scale)
check_choice("data", data, ("doorbell",))
resolve_device(device)
seed_everything(seed)
preset = ex.PRESETS[scale]
CHAPTER = "03_amphibian_detector"
faces = np.load(asset_path("lfw_subset"))[:100]  # scikit-image's 100 real LFW face crops (25x25, grey)
config = DoorbellConfig(frames=preset.frames, visits=preset.visits, seed=seed)
scene = list(doorbell_scene(faces, config))
frames, gt = [f for f, _ in scene], [g for _, g in scene]
detector = BlazeFaceSplit(BlazeFace.from_tflite())
DATA = (f"door-phone scene: {len(frames)} frames {config.width}x{config.height}, {config.visits} visits of real "
        "LFW faces (scikit-image), a static face poster, additive noise sd 3; BlazeFace (MediaPipe) ported to PyTorch")
pd.set_option("display.precision", 3)
sns.set_theme(style="whitegrid", context="notebook")
print(f"scale={scale}: {len(frames)} frames, {sum(len(g) > 0 for g in gt)} with a visitor; "
      f"{len(preset.layers)} layers x {len(preset.thresholds)} thresholds in the grid")

# %% [markdown]
# ## The method
#
# Let $M_i$ be the feature map of frame $F_i$ after layer $m$ of the detector's
# backbone, a $C\times H_m\times W_m$ tensor. The background model $M_{bg}$ starts as
# the map of a reference frame without motion. Each cell is compared by cosine:
#
# $$\mathrm{Diff}_i[x,y] = 1 - \frac{M_{bg}[x,y]\cdot M_i[x,y]}{\|M_{bg}[x,y]\|\,\|M_i[x,y]\|}.$$
#
# If $\max \mathrm{Diff}_i < \lambda$ the frame is static: processing stops after layer
# $m$, no boxes are returned, and the background follows slow changes of light,
#
# $$M_{bg} \leftarrow \alpha M_{bg} + (1-\alpha) M_i .$$
#
# Otherwise the rest of the detector runs, and a predicted box is kept only if the mean
# of $\mathrm{Diff}_i$ over the box, mapped onto the $H_m\times W_m$ grid, is at least
# $\lambda$ (a separate box threshold is allowed; by default it equals $\lambda$).
# The saving is real: our `run_until` computes only the first $m$ stages, and the
# remaining stages and the heads run only for frames with motion.
#
# **Where the author's public code differs from the text.** The code
# (david-svitov/AmphibianDetector) clips the cosine at 0, uses one threshold for the
# gate and the box filter, sets $\alpha$ to 0.9 in some scripts and 1.0 in others,
# splits at $m=6$ in the class and $m=11$ in the CDNet scripts, and multiplies frames by
# noise with standard deviation 0.3 where the thesis says 0.2. We follow the text:
# no clipping (`clip_cosine=False`, available as an option), $\alpha = 0.9$, a box
# threshold equal to $\lambda$ unless set, noise 0.2 for the pedestrian protocol.
#
# **The detector.** No SSD+MobileNetV2 weights can be obtained here, so we use a real
# pretrained single-shot detector of the same family that ships in a registry package:
# MediaPipe's BlazeFace (short range), ported to PyTorch from its `.tflite` file and
# checked against the TFLite runtime to within $10^{-3}$ in the tests. Its backbone has
# 17 stages (a stem and 16 BlazeBlocks), so $m$ runs from 1 to 17 here, not 1 to 11.

# %% [markdown]
# ## The scene
#
# A fixed camera looks at a wall with a door. Real faces (scikit-image's LFW crops,
# upscaled) walk in from the right, stop, and leave to the left; between visits the
# scene is empty. A face poster hangs on the wall in every frame. Ground truth is the
# region where each visitor's face was pasted; the poster is not a face to find, so a
# detection on it is a false positive.

# %%
busy = np.flatnonzero([len(g) > 0 for g in gt])
first_visit = busy[: np.argmax(np.diff(np.r_[busy, busy[-1] + 2]) > 1) + 1]  # the first run of visitor frames
show = [0, int(first_visit[len(first_visit) // 5]), int(first_visit[len(first_visit) // 2]),
        int(min(first_visit[-1] + 3, len(frames) - 1))]
det_boxes = [detector.decode(detector.run_from(detector.run_until(detector.prepare(frames[t])[0], 17), 17),
                             detector.prepare(frames[t])[1])[0] for t in show]
fig = motion_strip([frames[t] for t in show], [None] * len(show), det_boxes, [np.zeros((0, 4))] * len(show),
                   [gt[t] for t in show], [f"frame {t}: detector alone" for t in show])
plt.show()

# %% [markdown]
# The detector finds the visitors, and it also finds the poster, in every frame. That is
# the false positive the static-box filter should remove.
#
# ## One pass over the scene, many settings
#
# Neither the detector's boxes nor the feature maps depend on $\lambda$, so we run the
# detector once per frame, keep its boxes and the maps at every layer, and replay the
# gate for each $(m, \lambda)$. The tests check that the replay returns exactly what the
# live `AmphibianDetector` returns. Times per stage are measured on real frames; the
# grid's time axis is modelled from them as
# $t(m) = t_\text{prep} + t_{1..m} + t_\text{gate} + (1-s)\,(t_{m+1..} + t_\text{decode})$ with
# $s$ the share of early exits. The headline comparison below is measured directly.

# %%
cache = ex.cache_scene(detector, frames, preset.layers)
times = ex.measure_stage_times(detector, frames[:preset.time_frames], preset.layers, repeats=preset.time_repeats)
grid = pd.DataFrame(ex.gate_grid(cache, gt, preset.layers, preset.thresholds, preset.alpha, times))
map_alone = mean_average_precision(list(zip(cache.boxes, cache.scores)), gt)
print(f"detector alone: mAP@0.5 = {map_alone:.3f}")

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
sns.heatmap(grid.pivot(index="layer", columns="threshold", values="mAP"), ax=axes[0], cmap="viridis",
            cbar_kws={"label": "mAP@0.5"})
sns.heatmap(grid.pivot(index="layer", columns="threshold", values="ms per frame"), ax=axes[1], cmap="rocket_r",
            cbar_kws={"label": "modelled ms per frame"})
axes[0].set_title("mAP over layer m and threshold (cf. thesis Fig. 2.4)")
axes[1].set_title("mean frame time over m and threshold")
plt.tight_layout()
plt.show()

# %% [markdown]
# The thesis picks two settings from its grid: the best mAP, and the best mAP per unit
# of time. Time varies from run to run, so for the rest of the page we choose with a
# cost that does not: the expected multiply-accumulates per frame, counted per stage,
# $\sum_{k\le m} c_k + (1-s)\,(\sum_{k>m} c_k + c_\text{heads})$. Among the settings
# within 2% of the best mAP we take the one with the lowest expected cost.

# %%
per_stage, head_macs = ex.stage_macs(detector, frames[0])
grid["expected MMACs"] = [ex.expected_macs(per_stage, head_macs, int(r.layer), r["static share"]) / 1e6
                          for _, r in grid.iterrows()]
best = grid.sort_values(["mAP", "layer", "threshold"], ascending=[False, True, True]).iloc[0]
good = grid[grid["mAP"] >= 0.98 * best["mAP"]]
chosen = good.sort_values(["expected MMACs", "layer", "threshold"]).iloc[0]
chosen_layer, chosen_threshold = int(chosen["layer"]), float(chosen["threshold"])
full_mmacs = (sum(per_stage) + head_macs) / 1e6
print(f"detector alone: {full_mmacs:.1f} MMACs per frame; best mAP {best['mAP']:.3f} at m={int(best['layer'])}, "
      f"lambda={best['threshold']:.2f}; chosen: m={chosen_layer}, lambda={chosen_threshold:.2f} "
      f"(mAP {chosen['mAP']:.3f}, {chosen['static share']:.0%} early exits, "
      f"{chosen['expected MMACs']:.1f} MMACs per frame expected)")

# %% tags=["nbval-ignore-output"]
grid["mAP per ms"] = grid["mAP"] / grid["ms per frame"]
best_ratio = grid.loc[grid["mAP per ms"].idxmax()]
print(f"best mAP per modelled ms: m={int(best_ratio['layer'])}, lambda={best_ratio['threshold']:.2f}")

# %% [markdown]
# ## What the gate sees
#
# At the chosen setting, the motion map of a few frames, with the boxes the filter keeps
# (green) and drops (red):

# %%
amph = AmphibianDetector(detector, chosen_layer, chosen_threshold, preset.alpha)
amph.reset(frames[0])
diffs, kept, dropped = {}, {}, {}
for t, frame in enumerate(frames):
    boxes, _ = amph.process(frame)
    if t in show:
        diffs[t] = amph.last_diff.numpy()
        kept[t] = boxes
        all_boxes = cache.boxes[t] if not amph.stats.static[-1] else np.zeros((0, 4))
        dropped[t] = np.array([b for b in all_boxes if not any(np.allclose(b, k) for k in boxes)]).reshape(-1, 4)
fig = motion_strip([frames[t] for t in show], [diffs[t] for t in show], [kept[t] for t in show],
                   [dropped[t] for t in show], [gt[t] for t in show],
                   [f"frame {t}: {'static, stopped' if amph.stats.static[t] else 'motion'}" for t in show])
plt.show()

# %% [markdown]
# ## Against the pixel-space baseline
#
# The thesis's baseline applies the same background model to the frame itself, with an
# L2 distance and thresholds from 0 to 2,500 on 0..255 frames. The thesis does not say
# whether its distance is squared; we use the squared L2 distance of the BGR vectors of
# each pixel, for which that threshold range is meaningful. (Figure 2.5 of the thesis.)

# %%
pixel = pd.DataFrame(ex.pixel_sweep(cache, gt, preset.pixel_thresholds, preset.alpha))
ours = grid[grid.layer == chosen_layer]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(ours["threshold"], ours["mAP"], "o-", label=f"AmphibianDetector, m={chosen_layer}")
axes[0].axhline(map_alone, color="grey", ls="--", label="detector alone")
axes[0].set(xlabel="threshold lambda", ylabel="mAP@0.5", title="AmphibianDetector")
axes[1].plot(pixel["threshold"], pixel["mAP"], "s-", color="C1", label="pixel L2 baseline")
axes[1].axhline(map_alone, color="grey", ls="--", label="detector alone")
axes[1].set(xlabel="threshold (squared L2)", title="Pixel-space baseline")
for ax in axes:
    ax.legend()
plt.show()
pixel

# %% [markdown]
# ## Time
#
# Figure 2.6 of the thesis plots the mean frame time against the threshold: the higher
# the threshold, the more frames stop early. Here is the same curve from the measured
# stage times, and the speed-up as a function of the share of static frames, which is
# what the saving really depends on.

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(ours["threshold"], ours["ms per frame"], "o-", label=f"AmphibianDetector, m={chosen_layer}")
axes[0].axhline(1e3 * times.detector_alone, color="grey", ls="--", label="detector alone")
axes[0].set(xlabel="threshold lambda", ylabel="ms per frame", title="Mean frame time (modelled from stages)")
axes[0].legend()
shares = np.linspace(0, 1, 11)
for m in (1, chosen_layer, max(preset.layers)):
    axes[1].plot(shares, [times.detector_alone / times.frame_time(m, s) for s in shares], label=f"m={m}")
axes[1].set(xlabel="share of static frames", ylabel="speed-up over the detector alone", title="Where the gain comes from")
axes[1].legend()
plt.show()
gate_cost = times.gate[chosen_layer] / (times.prepare + times.until[chosen_layer])
print(f"the gate's own cost (cosine map and max) adds {gate_cost:.1%} to the first {chosen_layer} stages; "
      f"stopping after stage {chosen_layer} costs "
      f"{(times.prepare + times.until[chosen_layer] + times.gate[chosen_layer]) / times.detector_alone:.0%} "
      "of the full detector")

# %% [markdown]
# ## Detector alone against AmphibianDetector, measured in one run
#
# The analogue of the thesis's Table 3 and of its time comparison: both run on the same
# frames, alternately, in one process.

# %% tags=["nbval-ignore-output"]
run = ex.measured_run(detector, frames, gt, layer=chosen_layer, threshold=chosen_threshold, alpha=preset.alpha)
table3 = pd.DataFrame({"mAP@0.5": [run["map_detector"], run["map_amphibian"]],
                       "ms per frame": [1e3 * run["s_per_frame_detector"], 1e3 * run["s_per_frame_amphibian"]]},
                      index=["BlazeFace alone", f"AmphibianDetector (m={chosen_layer}, lambda={chosen_threshold:.2f})"])
table3

# %% tags=["nbval-ignore-output"]
thesis = {c: results.load_claims()[c].thesis for c in ("T3-map", "F25-baseline", "C6-time", "F24-grid")}
results.record("T3-map", chapter=CHAPTER, scale=scale, data=DATA,
               measured={"doorbell": {"map_detector": run["map_detector"], "map_amphibian": run["map_amphibian"],
                                      "m": chosen_layer, "lambda": chosen_threshold}},
               status="reproduced" if run["map_amphibian"] > run["map_detector"] else "not-reproduced",
               note="door-phone scene only so far; the pedestrian scene is still to come")
best_pixel = float(pixel["mAP"].max())
results.record("F25-baseline", chapter=CHAPTER, scale=scale, data=DATA,
               measured={"doorbell": {"map_amphibian_best": float(grid["mAP"].max()), "map_pixel_l2_best": best_pixel,
                                      "pixel_threshold": float(pixel.loc[pixel["mAP"].idxmax(), "threshold"])}},
               status="reproduced" if float(grid["mAP"].max()) > best_pixel else "not-reproduced",
               note="best of each method's grid; pixel distance read as squared L2")
results.record("F24-grid", chapter=CHAPTER, scale=scale, data=DATA,
               measured={"doorbell": {"best_map": float(best["mAP"]), "best_m": int(best["layer"]),
                                      "best_lambda": float(best["threshold"]),
                                      "best_ratio_m": int(best_ratio["layer"]),
                                      "best_ratio_lambda": float(best_ratio["threshold"])}},
               status="direction-reproduced",
               note="heatmaps produced; BlazeFace has 17 stages, so the arg-max cannot be compared with the "
                    "thesis's m=5 / m=11 of MobileNetV2-SSD; time axis modelled from measured stage times")
saving = 1 - run["s_per_frame_amphibian"] / run["s_per_frame_detector"]
results.record("C6-time", chapter=CHAPTER, scale=scale, data=DATA,
               measured={"doorbell": {"s_per_frame_detector": run["s_per_frame_detector"],
                                      "s_per_frame_amphibian": run["s_per_frame_amphibian"],
                                      "static_share": run["static_share"], "saving": saving}},
               status="reproduced" if saving >= 0.17 else ("direction-reproduced" if saving > 0 else "not-reproduced"),
               note=f"measured in one run; {saving:.0%} less time per frame (thesis: 17%), "
                    f"{run['static_share']:.0%} of frames stopped early")
print(f"mAP {run['map_detector']:.3f} -> {run['map_amphibian']:.3f}; time saved {saving:.0%}")

# %% [markdown]
# ## Reading the results
#
# On the door-phone scene the gate does what the thesis says on both counts, modestly.
# The detector alone pays for the poster in every frame with a false positive; the box
# filter removes it, because the poster never changes the feature map, and mAP rises a
# little (the poster's score is lower than most visitors', so the false positive costs
# less precision than it might). The empty stretches between visits stop early, so the
# mean time per frame falls, by an amount set by how much of the clip is empty and how
# early the split is: the right-hand plot of the time section is the honest summary of
# the time claim.
#
# The comparison with the pixel-space baseline is where this scene falls short of the
# thesis. With sensor noise of a few grey levels the frame itself is a reliable motion
# signal, so the pixel gate matches the feature-map gate, and the best settings sit at
# the earliest layers. The thesis's argument for feature maps is robustness to heavy
# noise: under its multiplicative noise (mean 0.8, sd 0.2 per pixel) the pixel gate
# never finds a static frame while the deeper stages do, but on this scene BlazeFace
# then finds no faces at all, so the comparison waits for the pedestrian video and a
# person detector, the next revision of this chapter.
