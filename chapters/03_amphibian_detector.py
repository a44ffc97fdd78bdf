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
# This page runs it on two scenes: a door-phone scene with exact ground truth and a
# face detector, and the thesis's pedestrian protocol on OpenCV's `vtest.avi` with the
# thesis's own detector architecture, SSDlite-MobileNetV2.

# %% tags=["colab"]
# The runner writes the Colab install cell here (faceopt.runner.COLAB_CELL, _config.yml's repository).

# %% tags=["parameters"]
scale = "smoke"  # "smoke" (a minute, golden test) or "full" (the book's page)
data = "doorbell"  # the synthetic door-phone scene with real LFW faces
device = "auto"  # the detector runs on the CPU, the target of the thesis
seed = 0

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from faceopt import provenance, results
from faceopt.assets import require
from faceopt.config import check_choice, check_scale, resolve_device, seed_everything
from faceopt.data.doorbell import DoorbellConfig, doorbell_scene
from faceopt.data.pedestrian import pedestrian_scene
from faceopt.detection import experiments as ex
from faceopt.detection.amphibian import AmphibianDetector
from faceopt.detection.blazeface import BlazeFace
from faceopt.detection.figures import grid_heatmaps, motion_strip
from faceopt.detection.metrics import mean_average_precision
from faceopt.detection.person_training import load_person_detector
from faceopt.detection.pseudo_labels import default_annotation_path, load_annotations
from faceopt.detection.split import BlazeFaceSplit
from faceopt.detection.ssd_mobilenetv2 import SSDMobileNetV2Split
from faceopt.resources import resource_path

check_scale(scale)
check_choice("data", data, ("doorbell",))
resolve_device(device)
seed_everything(seed)
preset = ex.PRESETS[scale]
CHAPTER = "03_amphibian_detector"
faces = np.load(require("lfw_subset"))[:100]  # scikit-image's 100 real LFW face crops (25x25, grey)
config = DoorbellConfig(frames=preset.frames, visits=preset.visits, seed=seed)
scene = list(doorbell_scene(faces, config))
frames, gt = [f for f, _ in scene], [g for _, g in scene]
detector = BlazeFaceSplit(BlazeFace.from_tflite(require("blazeface_short_range")))
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
grid_heatmaps(grid, "door phone")
plt.show()

# %% [markdown]
# The thesis picks two settings from its grid: the best mAP, and the best mAP per unit
# of time. Time varies from run to run, so for the rest of the page we choose with a
# cost that does not: the expected multiply-accumulates per frame, counted per stage,
# $\sum_{k\le m} c_k + (1-s)\,(\sum_{k>m} c_k + c_\text{heads})$. Among the settings
# within 2% of the best mAP we take the one with the lowest expected cost.

# %%
per_stage, head_macs = ex.stage_macs(detector, frames[0])
best, chosen = ex.choose_setting(grid, per_stage, head_macs)
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

# %% [markdown]
# ## The pedestrian video
#
# The thesis's own test is a pedestrian scene from CDNet2014 under heavy multiplicative
# noise, with a static human-like object pasted into every frame. Ours is OpenCV's
# `vtest.avi` (768x576, a fixed camera over a walkway; 795 real frames from Debian's
# `opencv-doc`), with the same protocol: a static mannequin on the grass and every pixel
# multiplied by N(0.8, 0.2), seeded. The detector is the thesis's architecture,
# SSDlite with a MobileNetV2 backbone (width 0.5, 19 backbone blocks), which we trained
# ourselves from random weights on frames 0 to 397 (`faceopt.detection.person_training`,
# 16 CPU minutes; the weights ship with faceopt in `faceopt/resources/runs/person_detector/`).
# Its ground truth is *pseudo-labels*: person boxes we made once from motion blobs checked
# by a pose detector and inspected by eye (data/README.md), not human annotations, also
# shipped with faceopt (`faceopt/resources/annotations/`). Everything below runs on
# the held-out frames from 398 on; a reader with CDNet2014 passes its pedestrian videos
# through `faceopt.detection.cdnet` in the same way.

# %%
person = load_person_detector(resource_path("runs", "person_detector", "ssdlite_mobilenetv2_vtest.pt"))
person_card = json.loads(resource_path("runs", "person_detector", "ssdlite_mobilenetv2_vtest.json").read_text())
provenance.declare_cached_step("the person detector's training (vtest.avi frames 0-397)", person_card["machine"],
                               person_card["made"])
ped_detector = SSDMobileNetV2Split(person, score_threshold=0.2)
annotations, _ = load_annotations(default_annotation_path())
ped_index = list(range(398, 398 + preset.pedestrian_frames))
ped_clean, _ = pedestrian_scene(require("vtest.avi"), annotations, ped_index[:preset.time_frames], augment=False)
ped_frames, ped_gt = pedestrian_scene(require("vtest.avi"), annotations, ped_index, seed=seed)
ped_cache = ex.cache_scene(ped_detector, ped_frames, preset.pedestrian_layers)
ped_times = ex.measure_stage_times(ped_detector, ped_frames[:preset.time_frames], preset.pedestrian_layers,
                                   repeats=preset.time_repeats)
ped_grid = pd.DataFrame(ex.gate_grid(ped_cache, ped_gt, preset.pedestrian_layers, preset.thresholds, preset.alpha,
                                     ped_times))
ped_alone = mean_average_precision(list(zip(ped_cache.boxes, ped_cache.scores)), ped_gt)
clean_cache = ex.cache_scene(ped_detector, ped_clean, preset.pedestrian_layers[:1])
clean_map = mean_average_precision(list(zip(clean_cache.boxes, clean_cache.scores)),
                                   [annotations.get(i, np.zeros((0, 4), np.float32)) for i in ped_index[:preset.time_frames]])
print(f"{len(ped_frames)} frames, {sum(len(g) for g in ped_gt)} person boxes; detector alone mAP@0.5: "
      f"{ped_alone:.3f} with the protocol ({clean_map:.3f} on the first {len(ped_clean)} clean frames)")

# %% tags=["nbval-ignore-output"]
grid_heatmaps(ped_grid, "pedestrian video")
plt.show()

# %%
ped_best, ped_chosen = ex.choose_setting(ped_grid, *ex.stage_macs(ped_detector, ped_frames[0]))
ped_layer, ped_threshold = int(ped_chosen["layer"]), float(ped_chosen["threshold"])
ped_pixel = pd.DataFrame(ex.pixel_sweep(ped_cache, ped_gt, preset.pixel_thresholds, preset.alpha))
print(f"best mAP {ped_best['mAP']:.3f} at m={int(ped_best['layer'])}, lambda={ped_best['threshold']:.2f}; "
      f"chosen m={ped_layer}, lambda={ped_threshold:.2f} (mAP {ped_chosen['mAP']:.3f}, "
      f"{ped_chosen['static share']:.0%} early exits); pixel baseline best mAP {ped_pixel['mAP'].max():.3f}")

# %%
ped_ours = ped_grid[ped_grid.layer == ped_layer]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(ped_ours["threshold"], ped_ours["mAP"], "o-", label=f"AmphibianDetector, m={ped_layer}")
axes[0].plot(ped_pixel["threshold"] / max(preset.pixel_thresholds), ped_pixel["mAP"], "s-", color="C1",
             label="pixel L2 baseline (threshold / 2500)")
axes[0].axhline(ped_alone, color="grey", ls="--", label="detector alone")
axes[0].set(xlabel="threshold", ylabel="mAP@0.5", title="pedestrian video: mAP against threshold (Fig. 2.5)")
axes[1].plot(ped_ours["threshold"], ped_ours["ms per frame"], "o-", label=f"AmphibianDetector, m={ped_layer}")
axes[1].plot(ped_ours["threshold"], ped_ours["static share"] * 100, "^:", color="C2", label="early exits, %")
axes[1].set(xlabel="threshold lambda", title="modelled ms per frame (Fig. 2.6)")
for ax in axes:
    ax.legend()
plt.show()

# %% tags=["nbval-ignore-output"]
ped_run = ex.measured_run(ped_detector, ped_frames, ped_gt, layer=ped_layer, threshold=ped_threshold,
                          alpha=preset.alpha)
pd.DataFrame({"mAP@0.5": [ped_run["map_detector"], ped_run["map_amphibian"]],
              "ms per frame": [1e3 * ped_run["s_per_frame_detector"], 1e3 * ped_run["s_per_frame_amphibian"]]},
             index=["SSDlite-MobileNetV2 alone", f"AmphibianDetector (m={ped_layer}, lambda={ped_threshold:.2f})"])

# %% [markdown]
# ## What goes into the scorecard
#
# Each claim is split into one part per scene, and the library's one rule
# (`faceopt.results.decide`, stated on the scorecard) turns the parts into a status: a
# part counts only when its effect clears twice its standard error, and a claim holds
# only as far as its weakest part. The standard errors come from a bootstrap over frames
# (200 resamples of the scored frames): of the mAP gain for Table 3, of the gap to the
# pixel gate at each method's best threshold for Figure 2.5, and of the share of time
# saved for the time claim, whose size is the thesis's 17%. Earlier revisions of this
# page decided from the sign of each difference alone, with no noise estimate; a gain of
# a few boxes now counts only if it is larger than what resampling the frames produces.
# One weakness remains and is stated on the scorecard: $(m, \lambda)$ is still chosen on
# the frames it is scored on.

# %% tags=["nbval-ignore-output"]
baseline = ex.best_versus_pixel(cache, gt, grid.to_dict("records"), pixel.to_dict("records"), preset.alpha, seed=seed)
ped_baseline = ex.best_versus_pixel(ped_cache, ped_gt, ped_grid.to_dict("records"), ped_pixel.to_dict("records"),
                                    preset.alpha, seed=seed)
saving, ped_saving = run["saving"], ped_run["saving"]
DATA = DATA + (f"; pedestrian video: vtest.avi frames 398-{ped_index[-1]} (pseudo-labels), static mannequin, "
               "noise N(0.8, 0.2); SSDlite-MobileNetV2 trained by us on frames 0-397")
provenance.declare_data(DATA)
scenes = {"door phone": (run, baseline, best, chosen_layer, chosen_threshold),
          "pedestrian": (ped_run, ped_baseline, ped_best, ped_layer, ped_threshold)}
t3_parts = [results.Part(f"{name}: AmphibianDetector raises mAP", r["map_amphibian"] - r["map_detector"],
                         r["map_gain_stderr"]) for name, (r, *_rest) in scenes.items()]
f25_parts = [results.Part(f"{name}: AmphibianDetector beats the pixel L2 gate, each at its best threshold",
                          b["map_amphibian_best"] - b["map_pixel_l2_best"], b["gain_stderr"])
             for name, (_r, b, *_rest) in scenes.items()]
f24_parts = [results.Part.observed(f"{name}: mAP and time measured over the (m, lambda) grid, arg-max reported",
                                   True, size_met=(int(g["layer"]), float(g["threshold"])) == (5, 0.3))
             for name, (_r, _b, g, *_rest) in scenes.items()]
c6_parts = [results.Part(f"{name}: early exit lowers the mean frame time", r["saving"], r["saving_stderr"],
                         size_met=r["saving"] >= 0.17) for name, (r, *_rest) in scenes.items()]
results.record(
    "T3-map", chapter=CHAPTER, scale=scale, data=DATA, parts=t3_parts,
    measured={key: {"map_detector": r["map_detector"], "map_amphibian": r["map_amphibian"],
                    "gain_stderr": r["map_gain_stderr"], "m": m, "lambda": lam}
              for key, (r, _b, _g, m, lam) in zip(("doorbell", "pedestrian"), scenes.values())},
    note="both scenes; standard errors by a bootstrap over frames; (m, lambda) chosen on the scored frames "
         "(a held-out choice is to come); the pedestrian ground truth is pseudo-labels")
results.record(
    "F25-baseline", chapter=CHAPTER, scale=scale, data=DATA, parts=f25_parts,
    measured={"doorbell": baseline, "pedestrian": ped_baseline},
    note="best of each method's sweep; pixel distance read as squared L2; bootstrap over frames")
results.record(
    "F24-grid", chapter=CHAPTER, scale=scale, data=DATA, parts=f24_parts,
    measured={"doorbell": {"best_map": float(best["mAP"]), "best_m": int(best["layer"]),
                           "best_lambda": float(best["threshold"]), "best_ratio_m": int(best_ratio["layer"]),
                           "best_ratio_lambda": float(best_ratio["threshold"])},
              "pedestrian": {"best_map": float(ped_best["mAP"]), "best_m": int(ped_best["layer"]),
                             "best_lambda": float(ped_best["threshold"])}},
    note="heatmaps produced for both scenes (BlazeFace 17 stages, SSDlite-MobileNetV2 19 blocks); "
         "time axis modelled from measured stage times; the thesis's size is its arg-max, m=5, lambda=0.3")
results.record(
    "C6-time", chapter=CHAPTER, scale=scale, data=DATA, parts=c6_parts,
    measured={key: {"s_per_frame_detector": r["s_per_frame_detector"], "s_per_frame_amphibian": r["s_per_frame_amphibian"],
                    "static_share": r["static_share"], "saving": r["saving"], "saving_stderr": r["saving_stderr"]}
              for key, r in (("doorbell", run), ("pedestrian", ped_run))},
    note=f"measured in one run per scene; saved {saving:.0%} (door phone) and {ped_saving:.0%} (pedestrian) "
         f"of the time per frame (thesis: 17%); early exits {run['static_share']:.0%} and "
         f"{ped_run['static_share']:.0%}; bootstrap over frames")
print(f"door phone: mAP {run['map_detector']:.3f} -> {run['map_amphibian']:.3f}, time saved {saving:.0%}; "
      f"pedestrian: mAP {ped_run['map_detector']:.3f} -> {ped_run['map_amphibian']:.3f}, time saved {ped_saving:.0%}")
pd.DataFrame(results.parts_table(t3_parts + f25_parts + f24_parts + c6_parts))


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
# The comparison with the pixel-space baseline is where the door-phone scene falls short
# of the thesis. With sensor noise of a few grey levels the frame itself is a reliable
# motion signal, so the pixel gate matches the feature-map gate, and the best settings
# sit at the earliest layers.
#
# The pedestrian video is the thesis's own test, and it reads differently. The
# multiplicative noise costs our detector most of its accuracy (compare its mAP on the
# clean frames printed above): it was trained on clean frames, as a COCO detector is. On
# the noisy frames the box filter helps, as in the thesis's Table 3: boxes on the static
# mannequin and on noise blotches do not change the feature map and are dropped, so
# AmphibianDetector's mAP is above the detector's own. The feature-map gate also beats
# the pixel-space gate, narrowly, which is the claim of Figure 2.5. The time claim fails
# here, for a reason the thesis's scene did not have: people walk through every frame of
# vtest.avi, so almost no frame is static and almost nothing stops early, while the
# gate's cosine map on an early, large feature map costs extra on every frame. The mean
# frame time goes up, not down. The saving needs empty stretches, as the door-phone scene
# and the thesis's CDNet pedestrian clips have. Two caveats: the pedestrian ground truth
# is pseudo-labels, and the full page evaluates 150 consecutive held-out frames (the
# cached feature maps of all 397 at every block would need about 18 GB).
