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

# %% tags=["colab", "remove-cell"]
# The runner writes the Colab install cell here (faceopt.runner.COLAB_CELL, _config.yml's repository).

# %% tags=["parameters", "hide-input"]
scale = "smoke"  # "smoke" (a minute, golden test) or "full" (the book's page)
data = "doorbell"  # the synthetic door-phone scene with real LFW faces
device = "auto"  # the detector runs on the CPU, the target of the thesis
seed = 0

# %% tags=["hide-input"]
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from faceopt import provenance
from faceopt.assets import require
from faceopt.config import check_choice, check_scale, resolve_device, seed_everything
from faceopt.data.doorbell import DoorbellConfig, doorbell_scene
from faceopt.data.pedestrian import pedestrian_scene
from faceopt.data.person_boxes import default_annotation_path, load_annotations
from faceopt.detection import experiments as ex
from faceopt.detection.amphibian import AmphibianDetector
from faceopt.detection.blazeface import BlazeFace
from faceopt.detection.claims import record_claims
from faceopt.detection.figures import gate_versus_pixel, grid_heatmaps, motion_strip, time_and_speedup
from faceopt.detection.metrics import mean_average_precision
from faceopt.detection.person_training import load_person_detector
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
tuning_scene = list(doorbell_scene(faces, DoorbellConfig(frames=preset.frames, visits=preset.visits,
                                                         seed=seed + ex.TUNING_SEED_OFFSET)))
tune_frames, tune_gt = [f for f, _ in tuning_scene], [g for _, g in tuning_scene]
detector = BlazeFaceSplit(BlazeFace.from_tflite(require("blazeface_short_range")))
DATA = (f"door-phone scene: {len(frames)} frames {config.width}x{config.height}, {config.visits} visits of real "
        "LFW faces (scikit-image), a static face poster, additive noise sd 3; BlazeFace (MediaPipe) ported to PyTorch")
pd.set_option("display.precision", 3)
sns.set_theme(style="whitegrid", context="notebook")
print(f"scale={scale}: {len(frames)} test frames ({sum(len(g) > 0 for g in gt)} with a visitor) and "
      f"{len(tune_frames)} tuning frames ({sum(len(g) > 0 for g in tune_gt)}); "
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
# $t(m) = t_\text{prep} + t_{1..m} + t_\text{gate}(m) + (1-s)\,(t_{m+1..} + t_\text{decode})$
# with $s$ the share of early exits and $t_\text{gate}(m)$ the measured cost of the
# cosine map and its maximum at layer $m$. The headline comparison below is measured
# directly.
#
# **Tuning and test frames.** Every setting on this page, $(m, \lambda)$ and the pixel
# baseline's threshold, is chosen on *tuning* frames and scored on other, *test* frames:
# for the door phone a second scene from the same generator (other visitors, other
# noise), for the pedestrian video the frames right after the scored ones. A setting
# picked on the frames it is scored on would be scored too kindly. Earlier revisions of
# this page did exactly that; `faceopt.detection.experiments.study_scene` is the protocol
# now, for both scenes.

# %%
door = ex.study_scene(detector, (tune_frames, tune_gt), (frames, gt), layers=preset.layers,
                      thresholds=preset.thresholds, alpha=preset.alpha, time_frames=preset.time_frames,
                      time_repeats=preset.time_repeats, seed=seed)
grid, times, cache = door.grid, door.times, door.test_cache
map_alone = mean_average_precision(list(zip(cache.boxes, cache.scores)), gt)
print(f"detector alone: mAP@0.5 = {door.map_alone_tuning:.3f} on the tuning frames, {map_alone:.3f} on the test frames")

# %% tags=["nbval-ignore-output"]
grid_heatmaps(grid, "door phone, tuning frames")
plt.show()

# %% [markdown]
# The thesis picks two settings from its grid: the best mAP, and the best mAP per unit
# of time. We choose in the same spirit: among the settings within 2% of the best mAP on
# the tuning frames, the one with the lowest modelled time per frame. The time model
# includes what the gate itself costs, which is not small: computing the cosine map of
# an early, large feature map can take longer than the stages before it. A choice by
# counted multiply-accumulates alone, as an earlier revision made, ignores that and
# picks the earliest split. Because the model uses times measured on this machine, the
# chosen setting can differ from one processor to another, as it would for a deployment.

# %% tags=["machine-dependent"]
best, chosen = door.best, door.chosen
chosen_layer, chosen_threshold = door.chosen_setting
print(f"best mAP {best['mAP']:.3f} at m={int(best['layer'])}, lambda={best['threshold']:.2f}; "
      f"chosen: m={chosen_layer}, lambda={chosen_threshold:.2f} (mAP {chosen['mAP']:.3f}, "
      f"{chosen['static share']:.0%} early exits, {chosen['ms per frame']:.2f} ms per frame modelled, "
      f"detector alone {1e3 * times.detector_alone:.2f} ms)")

# %% [markdown]
# The choice among the near-best settings is not innocent. The settings within 2% of the
# best tuning mAP are the set the choice is made from; here they are by layer, with what
# they gain over the detector alone on the test frames: the timing decides which of them
# the page goes on with.

# %%
gain = door.candidates.assign(gain=door.candidates["test mAP"] - map_alone)
gain.groupby("layer")["gain"].agg(["count", "min", "median", "max"]).rename(
    columns=lambda c: f"test gain, {c}" if c != "count" else "settings")

# %% tags=["nbval-ignore-output"]
grid["mAP per ms"] = grid["mAP"] / grid["ms per frame"]
best_ratio = grid.loc[grid["mAP per ms"].idxmax()]
print(f"best mAP per modelled ms: m={int(best_ratio['layer'])}, lambda={best_ratio['threshold']:.2f}")

# %% [markdown]
# ## What the gate sees
#
# At the chosen setting, the motion map of a few test frames, with the boxes the filter
# keeps (green) and drops (red):

# %% tags=["machine-dependent"]
shots = ex.gate_snapshots(AmphibianDetector(detector, chosen_layer, chosen_threshold, preset.alpha), frames,
                          cache.boxes, show)
fig = motion_strip([frames[t] for t in show], [shots[t].diff for t in show], [shots[t].kept for t in show],
                   [shots[t].dropped for t in show], [gt[t] for t in show],
                   [f"frame {t}: {'static, stopped' if shots[t].static else 'motion'}" for t in show])
plt.show()

# %% [markdown]
# ## Against the pixel-space baseline
#
# The thesis's baseline applies the same background model to the frame itself, with an
# L2 distance and thresholds from 0 to 2,500 on 0..255 frames. The thesis does not say
# whether its distance is squared; we use the squared L2 distance of the BGR vectors of
# each pixel, for which that threshold range is meaningful. (Figure 2.5 of the thesis.)
#
# A fair comparison gives both gates the same search. The feature-map gate tries
# every $(m, \lambda)$ of the grid; the pixel gate gets as many thresholds, evenly
# spaced from 0 to where its mAP has clearly fallen (the end doubles from 2,500 until
# the mAP there is 2% below the best seen). Both searches run on the tuning frames; the
# two best settings are then scored on the test frames.

# %% tags=["machine-dependent"]
pixel, pixel_best = door.pixel, door.pixel_best
ours = grid[grid.layer == chosen_layer]
gate_versus_pixel(door, "AmphibianDetector", "Pixel-space baseline")
plt.show()
print(f"searched: {len(grid)} gate settings and {len(pixel)} pixel thresholds (0 to {pixel['threshold'].max():,.0f}); "
      f"best on the tuning frames: gate {best['mAP']:.3f} (m={int(best['layer'])}, lambda={best['threshold']:.2f}), "
      f"pixel {pixel_best['mAP']:.3f} (threshold {pixel_best['threshold']:,.0f})")
v = door.versus_pixel
print(f"on the test frames: gate {v['map_amphibian']:.3f}, pixel {v['map_pixel_l2']:.3f}, "
      f"difference {v['map_amphibian'] - v['map_pixel_l2']:+.3f} (bootstrap standard error {v['gain_stderr']:.3f})")

# %% [markdown]
# ## Time
#
# Figure 2.6 of the thesis plots the mean frame time against the threshold: the higher
# the threshold, the more frames stop early. Here is the same curve from the measured
# stage times, and the speed-up as a function of the share of static frames, which is
# what the saving really depends on.

# %% tags=["nbval-ignore-output"]
fig = time_and_speedup(ours, times, chosen_layer, layers=(1, chosen_layer, max(preset.layers)))
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
# test frames, alternately, in one process.

# %% tags=["nbval-ignore-output"]
run = door.run
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
# through `faceopt.data.cdnet` in the same way.

# %%
person = load_person_detector(resource_path("runs", "person_detector", "ssdlite_mobilenetv2_vtest.pt"))
person_card = json.loads(resource_path("runs", "person_detector", "ssdlite_mobilenetv2_vtest.json").read_text())
provenance.declare_cached_step("the person detector's training (vtest.avi frames 0-397)", person_card["machine"],
                               person_card["made"])
ped_detector = SSDMobileNetV2Split(person, score_threshold=0.2)
annotations, _ = load_annotations(default_annotation_path())
ped_tune_index, ped_index = preset.pedestrian_split()
ped_clean, _ = pedestrian_scene(require("vtest.avi"), annotations, ped_index[:preset.time_frames], augment=False)
ped_frames, ped_gt = pedestrian_scene(require("vtest.avi"), annotations, ped_index, seed=seed)
ped_tune = pedestrian_scene(require("vtest.avi"), annotations, ped_tune_index, seed=seed + ex.TUNING_SEED_OFFSET)
ped = ex.study_scene(ped_detector, ped_tune, (ped_frames, ped_gt), layers=preset.pedestrian_layers,
                     thresholds=preset.thresholds, alpha=preset.alpha, time_frames=preset.time_frames,
                     time_repeats=preset.time_repeats, seed=seed)
ped_alone = mean_average_precision(list(zip(ped.test_cache.boxes, ped.test_cache.scores)), ped_gt)
clean_cache = ex.cache_scene(ped_detector, ped_clean, preset.pedestrian_layers[:1])
clean_map = mean_average_precision(list(zip(clean_cache.boxes, clean_cache.scores)),
                                   [annotations.get(i, np.zeros((0, 4), np.float32)) for i in ped_index[:preset.time_frames]])
print(f"test: frames {ped_index[0]}-{ped_index[-1]}, {sum(len(g) for g in ped_gt)} person boxes; tuning: frames "
      f"{ped_tune_index[0]}-{ped_tune_index[-1]}; detector alone mAP@0.5 on the test frames: {ped_alone:.3f} with "
      f"the protocol ({clean_map:.3f} on the first {len(ped_clean)} clean frames)")

# %% [markdown]
# Two test frames as the detector sees them: the thesis's multiplicative noise, the
# pasted static mannequin, the pseudo-label boxes (white) and the boxes of the detector
# alone (green). Boxes on the mannequin and on noise blotches are what the gate's box
# filter is there to remove.

# %%
shown = [0, len(ped_frames) // 2]
fig = motion_strip([ped_frames[t] for t in shown], [None] * len(shown), [ped.test_cache.boxes[t] for t in shown],
                   [np.zeros((0, 4))] * len(shown), [ped_gt[t] for t in shown],
                   [f"vtest.avi frame {ped_index[t]}" for t in shown], panel_width=5.0)
plt.show()

# %% tags=["nbval-ignore-output"]
grid_heatmaps(ped.grid, "pedestrian video, tuning frames")
plt.show()

# %% tags=["machine-dependent"]
ped_best, ped_chosen = ped.best, ped.chosen
ped_layer, ped_threshold = ped.chosen_setting
ped_pixel = ped.pixel
print(f"best mAP {ped_best['mAP']:.3f} at m={int(ped_best['layer'])}, lambda={ped_best['threshold']:.2f}; "
      f"chosen m={ped_layer}, lambda={ped_threshold:.2f} (mAP {ped_chosen['mAP']:.3f}, "
      f"{ped_chosen['static share']:.0%} early exits, {ped_chosen['ms per frame']:.1f} ms per frame modelled, detector "
      f"alone {1e3 * ped.times.detector_alone:.1f} ms); pixel baseline best mAP {ped.pixel_best['mAP']:.3f} at "
      f"threshold {ped.pixel_best['threshold']:,.0f} ({len(ped_pixel)} thresholds from 0 to {ped_pixel['threshold'].max():,.0f})")

# %%
ped.candidates.assign(**{"test mAP - detector alone": ped.candidates["test mAP"] - ped_alone}).set_index(
    ["layer", "threshold"]).sort_index()

# %% tags=["machine-dependent"]
gate_versus_pixel(ped, "feature-map gate (Fig. 2.5)", "pixel-space gate", time_panel=True)
plt.show()

# %% [markdown]
# The thesis measured this protocol on CDNet2014's pedestrian video with an SSD +
# MobileNetV2 trained on COCO: mAP 0.326 for the detector alone and 0.548 with
# AmphibianDetector at $m=11$, $\lambda=0.4$ (Table 3), 0.405 for the pixel baseline at its
# best threshold, 500 (Figure 2.5), and 0.135 → 0.112 s per frame (Figure 2.6). Ours,
# on vtest.avi with our own detector:

# %% tags=["nbval-ignore-output"]
ped_run = ped.run
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
# page decided from the sign of each difference alone, with no noise estimate, and chose
# their settings on the frames they scored; a gain of a few boxes now counts only if it
# is larger than what resampling the frames produces, on frames no setting was chosen on.

# %% tags=["nbval-ignore-output", "hide-input"]
DATA = DATA + (f"; pedestrian video: vtest.avi frames {ped_index[0]}-{ped_tune_index[-1]} (pseudo-labels), static mannequin, "
               "noise N(0.8, 0.2); SSDlite-MobileNetV2 trained by us on frames 0-397")
provenance.declare_data(DATA)
print(f"door phone: mAP {run['map_detector']:.3f} -> {run['map_amphibian']:.3f}, time saved {run['saving']:.0%}\n"
      f"pedestrian: mAP {ped_run['map_detector']:.3f} -> {ped_run['map_amphibian']:.3f}, time saved {ped_run['saving']:.0%}")
record_claims(door, ped, chapter=CHAPTER, scale=scale, data=DATA)

# %% [markdown]
# ## Reading the results
#
# *What changed.* Earlier revisions of this page chose $(m, \lambda)$ on the frames they
# scored, gave the pixel baseline 8 thresholds against hundreds of gate settings and
# stopped its thresholds at 2,500, and chose $m$ by counted multiply-accumulates, which
# ignore the gate's own cost. Each of these favoured AmphibianDetector. Now every
# setting is chosen on tuning frames and scored on test frames, both gates get the same
# number of settings, the pixel thresholds run on until the baseline's mAP falls, and
# the choice uses modelled times that include the measured gate. The book's run (full
# scale, printed above) reads as follows.
#
# On the door-phone scene the time claim holds in direction and the accuracy claim holds
# for some of the near-best settings only. On the tuning frames the gate removes the
# poster's false positive and lifts mAP above the detector's (0.792 against 0.777). On
# the test frames the settings within 2% of that best split (the table after the
# choice): the lower thresholds carry a small gain over, the higher ones drop visitors
# who stand still and lose accuracy. Which row the page goes on with is decided by the
# modelled time, that is, by the machine. Clean runs of this page on the same kind of CPU
# have picked $m=4$, $\lambda=0.10$ and $m=1$, $\lambda=0.05$, and both measured +0.015,
# just beyond twice its standard error, so Table 3 counts as reproduced. A trial run on
# a busy CPU, before the 10% time band was added, picked $m=7$, $\lambda=0.25$ and
# measured −0.005. Read the door-phone half of Table 3 as fragile. The empty stretches
# between visits stop early, but the time saved per frame has varied widely between the
# book's runs, from about nothing to 18% (thesis: 17%; this run's number is printed
# above): at a few milliseconds a frame, the gate's own cost and the timer's noise are
# as large as what early exit saves.
#
# The pixel-space baseline is as good as the feature-map gate on both scenes once it is
# searched as widely: on the door phone the two best settings return the same boxes on
# the test frames, and on the pedestrian video the pixel gate's best threshold lies near
# 5,000, twice the largest threshold the thesis tried, where its mAP matches the gate's.
# The thesis's Figure 2.5, whose pixel curve stops at 2,500, does not survive a fair
# search here.
#
# The pedestrian video is the thesis's own test. The multiplicative noise costs our
# detector most of its accuracy (compare its mAP on the clean frames printed above): it
# was trained on clean frames, as a COCO detector is. On the noisy frames the box filter
# helps, as in the thesis's Table 3: boxes on the static mannequin and on noise blotches
# do not change the feature map and are dropped, so AmphibianDetector's mAP on the test
# frames is above the detector's own, beyond the noise. The time claim fails here, for a
# reason the thesis's scene did not have: people walk through every frame of vtest.avi, so
# almost no frame is static and almost nothing stops early, while the gate's cosine map
# costs extra on every frame. The cost-aware choice sees this (every gated setting is
# modelled slower than the detector alone) but can only pick the least bad one, and the
# mean frame time goes up. Two caveats: the pedestrian ground truth is pseudo-labels, and
# the full page uses 150 test and 150 tuning frames of the detector's held-out half.
