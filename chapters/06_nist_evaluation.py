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
# # Evaluating the system: error rates at fixed false matches, and the door phone
#
# A face-recognition system makes two kinds of mistake. It can **accept an impostor**
# (a false match) or **turn away the right person** (a false non-match). A single accuracy
# number hides the trade between them. The thesis therefore evaluates its system the way
# the U.S. National Institute of Standards and Technology (NIST) does in its Face
# Recognition Vendor Test (FRVT) {cite}`svitov2023`: fix the rate of false matches that the
# application can live with, set the threshold that gives it, and report the rate of
# false non-matches at that threshold. A border gate tolerates one false match in a
# million comparisons; a door phone at home tolerates far more.
#
# This page builds the evaluation of the thesis's fourth chapter and runs it on models
# trained here:
#
# * **Table 8**: FNMR at fixed FMR in three NIST categories (visa photos, border kiosk
#   captures, photos "in the wild"), with DET curves;
# * **Table 10**: accuracy and time beside large vendors (their systems are not
#   available; we time ours beside dlib's pretrained ResNet);
# * **Table 11**: MegaFace-style identification of the teacher, the student, the student
#   distilled with MarginDistillation (page 04) and its 8-bit form;
# * **Tables 13 and 14**: door-phone video, the true-accept rate (TAR) at a false-accept
#   rate (FAR) of 10%, under weak and strong video compression and at night in infrared;
# * **Tables 16 to 18**: is a teacher half the size good enough?
#
# The faces are synthetic (no face-identity dataset can be downloaded here), the
# conditions are set with the generator's knobs, and the video is real H.264 from
# libx264. The page says which number is ours and which is the thesis's.

# %% tags=["colab", "remove-cell"]
# The runner writes the Colab install cell here (faceopt.runner.COLAB_CELL, _config.yml's repository).

# %% tags=["parameters", "hide-input"]
scale = "smoke"      # "smoke" (a minute, golden test) or "full" (the book's page; reads the cached runs)
data = "synthetic"   # or a path to a real verification set: a folder of identities, an insightface .bin, a pair list
device = "auto"      # "cuda" trains missing full-scale runs on a GPU; all timing is on the CPU
seed = 0

# %% tags=["hide-input"]
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display
from sklearn.metrics import det_curve as sklearn_det_curve

from faceopt import provenance
from faceopt.assets import require
from faceopt.config import check_scale, resolve_device, seed_everything
from faceopt.recognition import nist_claims, nist_runs, nist_tables
from faceopt.recognition.figures import example_grid, protocol_examples
from faceopt.recognition.metrics import fnmr_at_fmr, tar_at_far
from faceopt.recognition.nist import det_points, plot_det_summaries
from faceopt.recognition.nist_experiments import STUDENT, TEACHERS
from faceopt.recognition.nist_timing import TIMING_REPEATS, model_times
from faceopt.resources import resource_path
from faceopt.system.real_photos import load_photos

check_scale(scale)
if data != "synthetic" and not Path(data).exists():
    raise FileNotFoundError(f"data={data!r}: not 'synthetic' and no such file or folder; pass a folder of identities, "
                            "an insightface .bin or a pair list (.txt)")
device = resolve_device(device)
seed_everything(seed)
preset = nist_runs.PRESETS[scale]
CHAPTER = "06_nist_evaluation"
DATA = (f"synthetic faces: {preset.identities} training identities x {preset.images_per_identity} images at "
        f"{preset.size} px; NIST-like conditions of {preset.condition_identities} unseen identities x "
        f"{preset.condition_images} images; door-phone visits encoded with libx264 ({preset.residents} residents, "
        f"{preset.negative_visitors} negative visitors, {preset.distractors} distractors)")
provenance.declare_data(DATA if data == "synthetic" else f"{DATA}; real verification set {data}")
for asset in ("face_recognition_models", "dlib_face_recognition_resnet", "obama.jpg"):
    require(asset)
pd.set_option("display.precision", 3)
sns.set_theme(style="whitegrid", context="notebook")
workdir = Path(tempfile.mkdtemp(prefix="faceopt-nist-"))
print(f"scale={scale}: teachers {', '.join(TEACHERS.values())} (width {preset.teacher_width}), student {STUDENT}, "
      f"{len(preset.seeds)} seed(s), {preset.size} px")

# %% [markdown]
# ## Two error rates and the threshold between them
#
# Compare every pair of face images. Pairs of the same person give **genuine** scores
# $u_1, \dots, u_N$, pairs of different people **impostor** scores $v_1, \dots, v_M$; a
# pair is accepted when its cosine similarity reaches the threshold $T$. NIST's two rates
# are counts of mistakes:
#
# $$
# \mathrm{FMR}(T) = \frac{1}{M} \sum_{j=1}^{M} H(v_j - T), \qquad
# \mathrm{FNMR}(T) = 1 - \frac{1}{N} \sum_{i=1}^{N} H(u_i - T),
# $$
#
# with $H$ the step function ($H(0) = 1$: a score equal to the threshold is accepted).
# To report "FNMR at FMR $10^{-6}$", choose the smallest $T$ whose FMR does not exceed
# $10^{-6}$ and read the FNMR there. That needs at least a million impostor pairs: with
# fewer, the observed FMR can only be 0 or at least $1/M$, and our functions refuse a
# target they cannot resolve instead of quietly reporting FNMR at FMR = 0. Sweeping $T$
# draws the **DET curve** (detection error trade-off), FNMR against FMR on log axes.
#
# scikit-learn computes the same curve (`sklearn.metrics.det_curve`, with the genuine
# pairs as the positive class). On a million synthetic scores, ours and scikit-learn's
# agree at every threshold scikit-learn reports:

# %%
rng = np.random.default_rng(seed)
genuine_demo, impostor_demo = rng.normal(0.6, 0.15, 10_000), rng.normal(0.1, 0.1, 1_000_000)
fmr_ours, fnmr_ours, thresholds = det_points(genuine_demo, impostor_demo)
labels = np.r_[np.ones(genuine_demo.size), np.zeros(impostor_demo.size)]
fpr_sk, fnr_sk, thr_sk = sklearn_det_curve(labels, np.r_[genuine_demo, impostor_demo])
finite = np.isfinite(thr_sk)
at = np.searchsorted(thresholds, thr_sk[finite])
print(f"{finite.sum()} thresholds compared; largest difference: FMR {np.abs(fmr_ours[at] - fpr_sk[finite]).max():.1e}, "
      f"FNMR {np.abs(fnmr_ours[at] - fnr_sk[finite]).max():.1e}")
print(f"FNMR at FMR 1e-6: {fnmr_at_fmr(genuine_demo, impostor_demo, 1e-6):.4f}; "
      f"TAR at FAR 10%: {tar_at_far(genuine_demo, impostor_demo, 0.10):.4f}")

# %% [markdown]
# ## The conditions: visa, border, wild, and the door phone
#
# NIST's categories differ in how the faces were captured. We render each as a setting
# of the face generator's nuisance knobs and a capture resolution
# (`faceopt.data.conditions`): **visa-like** faces are frontal, evenly lit and captured at
# 112 pixels; **border-like** kiosk captures have mild pose, glare, blur and 56 pixels;
# **wild-like** photos have every nuisance at full strength (pose, occlusion, blur, noise,
# compression, sometimes infrared) and 40 pixels. The identities are new: none of them
# was seen in training.
#
# The door phone is video (`faceopt.data.doorphone_visits`): a visitor walks up to a
# camera in a wall, and the clip is encoded with H.264 by libx264 (through PyAV) at a
# constant rate factor of 23 (weak compression) or 40 (strong compression: visibly
# blocky). At night the camera sees in infrared. As in the thesis, each resident is
# enrolled with one clean "lab" image, and 500 photos of other people fill the gallery.
# A visit is scored by its best frame: for a positive visit, the best score against the
# visitor's own profile; for a negative visit (someone not enrolled), the best score
# against the whole gallery. The threshold is set so that 10% of negative visits would
# open the door, and the TAR is the share of positive visits that reach it.

# %%
example_grid(protocol_examples(112, seed=seed))
plt.show()

# %% [markdown]
# ## The models
#
# The thesis's teacher is an iResNet-100 trained with ArcFace on MS1MV2; its student is
# MobiFace x3 with Swish activations and squeeze-and-excitation (9.11 M parameters),
# trained with ArcFace alone ("student") or with MarginDistillation from the teacher
# ("distilled"), then quantised to 8 bits. Tables 16 to 18 repeat the experiment with an
# iResNet-50 teacher.
#
# We train the same roles on synthetic faces (`faceopt.recognition.nist_experiments`):
# two ArcFace teachers, iResNet-100-like and iResNet-50-like, at reduced width (the same
# depths as the thesis's; width is what the training budget pays for), and the student
# `mobiface_x2_swish_se_gdc`, whose layout gives 9.24 M parameters at 112 pixels, within
# 2% of the thesis's 9.11 M. (The zoo's MobiFace keeps the original paper's flatten and
# fully connected head, 32.7 M parameters, most of them in that head; the thesis's count
# implies a global depthwise head like MobileFaceNet's, which is what the student uses.)
# The distilled student copies the iResNet-100-like teacher's class centres and takes each
# sample's margin from the teacher's angle (page 04). Its INT8 form is onnxruntime's
# static quantisation, calibrated on training images.
#
# At smoke scale every step runs for a few iterations on the CPU and the numbers mean
# nothing. The book's page reads cached runs (one record per training, keyed by the
# settings and the code), made on a GPU with `bash .ci/gpu_nist_runs.sh` (which calls
# `faceopt nist --preset full --device cuda --jobs 6`). The full preset trains on 1,000
# identities with 24 images each at 64 pixels: each teacher for 2,000 steps of 256 images,
# each student for 1,000 steps. On one H200, with six trainings sharing the GPU, the
# teachers and the ArcFace students took 258 s and the distilled students another 155 s
# (the table's seconds are per run, evaluation included). On 2 CPU cores the same
# trainings would take about 10 hours: measured in float32 at 64 pixels, the
# iResNet-100-like teacher learns from 46 images per second, the iResNet-50-like one from
# 87 and the student from 84.

# %% tags=["nbval-ignore-output"]
if scale == "full":
    run_dir = resource_path("runs", "nist", must_exist=False)
else:  # smoke: trained afresh for a few steps on the CPU, in a scratch folder
    run_dir = workdir / "runs"
folder = nist_runs.run_nist(preset, run_dir, device=device, train_missing=scale != "full" or device == "cuda",
                            cache_dir=workdir / "cache", log=lambda msg: None)
runs = nist_runs.load_nist_runs(folder)
first = next(iter(runs.values()))
made_by = f"{first['machine']}, torch {first['torch']}, git {first['git_rev']}"
if scale == "full":
    provenance.declare_cached_step(f"the {len(runs)} trainings of {folder.name}", made_by)
pd.DataFrame([{"run": name, "parameters M": r["params"] / 1e6, "steps": r["train"].get("steps"),
               "seconds": r["seconds"]} for name, r in runs.items()]).set_index("run")

# %% [markdown]
# ## Table 8: FNMR at fixed FMR
#
# The distilled student in the three conditions, at the thesis's false-match rates
# ($10^{-6}$ for visa and border, $10^{-4}$ for wild). Where a condition has too few
# impostor pairs for the target (at smoke scale), the table says which FMR was used. The
# interval is a bootstrap over pairs (95%).

# %% tags=["machine-dependent"]
nist_tables.table8(runs)

# %% [markdown]
# In the thesis, the system fails on border photos (FNMR 0.9996) because they are
# high-resolution captures unlike its training data, while visa and wild photos pass. In
# our stand-in, the border-like condition is instead the low-resolution kiosk, so the
# ordering is a test of resolution and nuisance, not of the thesis's explanation; the
# claim below only checks that the method separates an easy condition from a hard one.
#
# It does: on the visa-like faces the distilled student makes no false non-match in
# 3,000 genuine pairs at FMR $10^{-6}$ (every seed), on the border-like ones it misses a
# quarter. The wild-like condition is far harder for our 64-pixel networks than the
# thesis's wild photos were for its system (FNMR 0.90 against 0.034 at FMR $10^{-4}$):
# 40-pixel captures with every nuisance at full strength are beyond what these small
# trainings learn, and at a false-match rate of $10^{-4}$ almost every genuine pair falls
# below the threshold.
#
# The DET curves of all models on the wild-like condition, and of the distilled student
# in all three conditions (first seed):

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
thesis8 = nist_tables.thesis_values("T8-nist")
plot_det_summaries(nist_tables.det_curves(runs, "wild"), ax=left, title="wild-like, every model",
                   points={"thesis, wild (Table 8)": (thesis8["wild"]["fmr"], thesis8["wild"]["fnmr"])})
distilled_curves = {c: nist_tables.det_curves(runs, c)["distilled (MarginDistillation)"] for c in ("visa", "border", "wild")}
plot_det_summaries(distilled_curves, ax=right, title="distilled student, every condition",
                   points={f"thesis, {c}": (thesis8[c]["fmr"], thesis8[c]["fnmr"]) for c in ("visa", "border", "wild")})
plt.show()

# %% [markdown]
# ## Table 11: identification among distractors
#
# MegaFace's protocol asks whether the first answer of a search among a million
# distractors is the right person (rank-1 identification). Ours is the same protocol at
# the preset's scale: probes of unseen identities searched in a gallery of their mates
# and distractors (`faceopt.data.pairs.megaface_like`). The thesis's column is MegaFace.
#
# The order of the thesis's Table 11 holds: the distilled student (93.8%) is far above
# the student trained with ArcFace alone (86.0%) and close to its teacher (94.1%), and
# its INT8 form loses 0.6 points (93.1%). The thesis loses 0.3. Whether the INT8 loss is
# below one point is what the claim asks, and with three seeds and 320 probes the
# interval of that loss (0.6 ± 0.5 points) still reaches one point, so the rule cannot
# confirm it.

# %% tags=["machine-dependent"]
nist_tables.table11(runs)

# %% [markdown]
# ## Tables 13 and 14: the door phone
#
# TAR at FAR 10% (percent) by day under weak and strong compression (Table 13), and at
# night in infrared against by day, both with weak compression (Table 14).
#
# Each percentage counts 40 positive visits (20 residents, two visits each), so one visit
# is 2.5 points. The thesis's counts are of the same order (Table 12), so its
# differences of one or two visits would not pass our rule either.

# %% tags=["machine-dependent"]
display(nist_tables.table13(runs))
nist_tables.table14(runs)

# %% [markdown]
# Three things stand out. First, distillation helps where the student is weak: the
# ArcFace student opens the door for 72% of residents by day and 18% at night, the
# distilled student for 95% and 84%, level with its teacher. Second, strong compression
# (CRF 40) is a wall for every model here: the teachers and the distilled students reach
# 49-50%, the ArcFace student 41%, because the blocks erase the small faces of our
# 64-pixel frames; the thesis's models lose only a few points. Third, the INT8 form is
# no worse than its float model by day (96.7% against 95.0%) and loses 1.7 points at
# night, a small but consistent difference over the three seeds, as in the thesis (3.5
# points lost at night, 0.5 by day).

# %% [markdown]
# ## Tables 10, 15 to 18: what the time buys
#
# The thesis's teachers differ by half their depth: ResNet50 takes 278.7 ms where
# ResNet100 takes 509.4 ms on its device (1.83 times), and it loses accuracy on every
# door-phone setting. First the accuracy of our two teachers. The smaller one is at
# most one visit behind (2.5 points) in every setting, well within the noise of 40
# visits, so here the larger teacher does not earn its time:

# %% tags=["machine-dependent"]
nist_tables.table16_17(runs)

# %% [markdown]
# Then the time per face of the architectures at the thesis's 112-pixel input, at full
# width, on this CPU with 2 threads (weights do not change the time), measured
# interleaved so that their ratios are fair; dlib's pretrained ResNet embedder, on a real
# photo, is the outside reference where the thesis had two commercial vendors (Table 10:
# 1326 and 739 ms against its own 34 ms for the whole pipeline).

# %% tags=["nbval-ignore-output"]
times = model_times(repeats=TIMING_REPEATS[scale], dlib_photo=load_photos(["obama.jpg"])["obama.jpg"])
times

# %% [markdown]
# ## Real data
#
# With `data` set to a real verification set (a folder of identities, an insightface
# `.bin` such as `lfw.bin`, or a list of image pairs), the page also scores it, with the
# tier-S network of page 05 (trained on synthetic faces, so expect it to be weak on real
# ones): the FNMR at each FMR the set can resolve and its DET curve.

# %% tags=["nbval-ignore-output"]
if data != "synthetic":
    from faceopt.recognition.nist import det_summary
    from faceopt.recognition.nist_eval import torch_embedder
    from faceopt.recognition.real_protocols import fnmr_table, verification_scores
    from faceopt.system import tier_runs
    from faceopt.system.tiers import TIERS

    tier = TIERS["S"]
    tier_folder = tier_runs.run_folder(tier_runs.PRESETS["full"], resource_path("runs", "device_tiers"))
    embed = torch_embedder(tier_runs.load_backbone(tier_folder, tier, tier_runs.PRESETS["full"]))
    real_genuine, real_impostor = verification_scores(data, embed, size=tier.size)
    display(fnmr_table(real_genuine, real_impostor))
    plot_det_summaries({Path(data).name: det_summary(real_genuine, real_impostor)}, title=f"tier S on {Path(data).name}")
    plt.show()
else:
    print("data='synthetic': no real verification set given")

# %% tags=["nbval-ignore-output", "remove-cell"]
statuses = nist_claims.record_claims(runs, times, chapter=CHAPTER, scale=scale, data=DATA,
                                     student_timed="student MobiFace x3 Swish SE",
                                     dlib_timed="dlib ResNet (pretrained, 150 px chip)")
print(statuses)

# %% [markdown]
# ## What this page shows
#
# The claims of this page, with the statuses the library's rule gives them, are on the
# scorecard. On the book's page (the full preset's cached runs):
#
# * **T8-nist, reproduced**: the NIST-style measurement runs at the thesis's false-match
#   rates with a million impostor pairs per condition, and it separates the easy
#   condition (visa-like, FNMR 0) from a hard one (border-like, 0.25). Our wild-like
#   condition is much harder than the thesis's wild photos.
# * **T10-vendors, needs real data**: the vendors' systems and NIST's photos are not
#   available. What we can measure is time: our student takes about 11 ms per face on
#   this CPU, dlib's pretrained ResNet about 63 ms.
# * **T11-quantised-megaface, not reproduced**: distillation lifts rank-1 from 86.0% to
#   93.8% (beyond the noise), but three seeds cannot show that INT8 costs less than one
#   point.
# * **T13-compression, not reproduced**: the distilled student beats the ArcFace student
#   under weak compression (95.0% against 71.7%), but under strong compression every
#   model sits between 41% and 50%, and neither the gap to the student nor the thesis's "distilled
#   above its teacher" is beyond the noise.
# * **T14-night, reproduced**: the distilled student beats the ArcFace student at night
#   (84% against 18%) and by day, and its INT8 form loses more at night than by day.
# * **T16-18-teacher-size, not reproduced**: the time half holds (full-width iResNet-100
#   takes 1.8 times as long as iResNet-50 on this CPU, the thesis 1.83), but our smaller
#   teacher is not measurably worse on the door phone.
#
# At smoke scale the trainings are a few steps long and every number above is noise.
