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
# # MarginDistillation: teaching a small face network where the class centres are
#
# A face-recognition network is trained as a classifier over thousands of people and
# used as an embedder: the last layer's weights (one *class centre* per person) are
# thrown away, and two faces are compared by the cosine between their embeddings. The
# big networks that score best (an ArcFace ResNet-100 spends 24 GFLOPs per face) are far
# too slow for a door phone; the small ones (MobileFaceNet, 0.44 GFLOPs) lose accuracy.
# *Knowledge distillation* trains the small network (the student) with help from the
# big one (the teacher). Chapter 3 of the thesis {cite}`svitov2023` proposes a way of
# doing it that fits the geometry of margin losses, MarginDistillation, and compares it
# with the other distillation methods for face recognition.
#
# This chapter trains a teacher, then the same student under every method of the
# thesis's Tables 5 to 7, on the same batches with the same seeds, and reads the
# differences against the seed-to-seed noise.

# %% tags=["colab", "remove-cell"]
# The runner writes the Colab install cell here (faceopt.runner.COLAB_CELL, _config.yml's repository).

# %% tags=["parameters", "hide-input"]
scale = "smoke"      # "smoke" (about a minute, golden test) or "full" (the book's page; reads the cached runs)
data = "synthetic"   # procedural faces; the thesis's MS1MV2 run is a script around faceopt.train (see the end)
device = "auto"      # "cuda" trains the missing runs on a GPU; the cached full runs were made on one
seed = 0

# %% tags=["hide-input"]
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from faceopt import provenance, results
from faceopt.config import check_choice, check_scale, resolve_device, seed_everything
from faceopt.data.synthetic_faces import SyntheticFaces, sample_grid
from faceopt.recognition import experiments as ex
from faceopt.recognition import runs, tables
from faceopt.recognition.figures import PLANAR_TITLES, margin_histograms, planar_circles, seed_points
from faceopt.recognition.hypersphere import class_spread, planar_run
from faceopt.recognition.tables import LABEL, METRICS
from faceopt.resources import resource_path

check_scale(scale)
check_choice("data", data, ("synthetic",))
device = resolve_device(device)
seed_everything(seed)
preset = ex.PRESETS[scale]
if seed:
    preset = ex.with_overrides(preset, [f"seeds={[seed + s for s in preset.seeds]}",
                                        f"headline_seeds={[seed + s for s in preset.headline_seeds]}"])
CHAPTER = "04_margin_distillation"
DATA = (f"synthetic faces: {preset.identities} training identities x {preset.images_per_identity} images "
        f"at {preset.size} px; LFW-, AgeDB- and MegaFace-like protocols on unseen identities")
provenance.declare_data(DATA)
pd.set_option("display.precision", 2)
sns.set_theme(style="whitegrid", context="notebook")
print(f"scale={scale}: teacher {preset.teacher} {dict(preset.teacher_options)}, student {preset.student}, "
      f"{len(ex.METHODS)} student methods x {len(preset.seeds)} seed(s)")

# %% [markdown]
# ## The data: faces that do not exist
#
# No face-identity dataset can be downloaded here, so identities are drawn
# (`faceopt.data.synthetic_faces`): each identity is a fixed set of traits (head and
# feature geometry, skin, eye and hair colour, hair style, beard, skin texture), and every
# image of it adds *nuisance* on top: pose, expression, light, glasses or a mask, blur,
# noise, JPEG or video-codec compression, infrared. Evaluation identities come from a
# separate range, so no test face was seen in training. The experiments run at 32x32
# pixels, which keeps a full comparison (one teacher, 30 students) inside minutes on a
# GPU; the pipeline is the same at 112x112 (`--set size=112`).
#
# Each row below is one identity; the lower block shows what the networks see.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
big = SyntheticFaces(4, 6, size=112, seed=preset.data_seed, difficulty=preset.difficulty)
small = SyntheticFaces(4, 6, size=preset.size, seed=preset.data_seed, difficulty=preset.difficulty)
for ax, faces, title in ((axes[0], big, "112 px"), (axes[1], small, f"{preset.size} px (training size)")):
    ax.imshow(sample_grid(faces)[..., ::-1])
    ax.set_title(title)
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## Margins on the hypersphere
#
# A margin head keeps one unit vector $W_j$ per class and scores an embedding $x$ by the
# cosines $\cos\theta_j = W_j^\top x / (\lVert W_j\rVert\,\lVert x\rVert)$. ArcFace
# {cite}`deng2019arcface` adds an angular margin $m$ to the angle of the true class $y$
# before the softmax:
#
# $$L = -\log \frac{e^{s\cos(\theta_y + m)}}{e^{s\cos(\theta_y + m)} + \sum_{j\ne y} e^{s\cos\theta_j}},$$
#
# so an embedding must sit at least $m$ radians closer to its own centre than the
# decision boundary requires. The embeddings of one person gather in a tight cone around
# their centre, and the centres spread out.
#
# MarginDistillation changes two things for the student:
#
# 1. **copy and freeze the centres**: $W_S = W_T$, not trained. The student has to place
#    its embeddings where the teacher put the classes, which transfers the teacher's
#    arrangement of the whole sphere without constraining each embedding directly;
# 2. **a margin per image** from the teacher's confidence. With
#    $a_i = \cos(W_{T,y_i}, x_{T,i})$ the teacher's cosine to the true centre and
#    $a_{\max}$ its maximum over the mini-batch,
#
# $$m_i = \frac{m_{\max} - m_{\min}}{a_{\max}}\, a_i + m_{\min}, \qquad m_{\min} = 0.2,\ m_{\max} = 0.5 .$$
#
# Images the teacher places close to their centre get the full ArcFace margin; images
# the teacher itself finds hard get a smaller one, so the student does not spend its
# small capacity forcing them in. The thesis calls $a_i$ an angle, but its formula is the
# cosine, which is what gives the stated order (closer to the centre, larger margin).
#
# With 2-dimensional embeddings the sphere is a circle and all of this can be drawn
# from a real run: a small conv net trained with ArcFace on six identities (the teacher),
# and a four-times narrower one trained twice on the same batches, with ArcFace alone and
# with MarginDistillation. Points are embeddings (their angle on the circle, coloured by
# identity), lines are the class centres.

# %% tags=["machine-dependent"]
planar = planar_run(seed=seed)
fig = planar_circles(planar)
acc = {k: float(((planar.embeddings[k] @ planar.centres[k].T).argmax(1) == planar.labels).mean())
       for k in PLANAR_TITLES}
print("training accuracy by nearest centre:", {k: round(v, 3) for k, v in acc.items()})
print("mean angle to the class's mean direction (degrees):",
      {k: round(class_spread(planar.embeddings[k], planar.labels), 1) for k in PLANAR_TITLES})
print(f"student centres equal the teacher's under MarginDistillation: "
      f"{np.allclose(planar.centres['margin_distillation'], planar.centres['teacher'])}")

# %% [markdown]
# The first two panels are the same network on the same batches, without and with the
# margin. Without it, classes may share an arc as long as each image is a little closer to
# its own centre (see the accuracy printed above); with it, every identity gets an arc of
# its own with clear gaps around it, which is what makes the embedding useful for people
# never seen in training. The ArcFace student finds its own arrangement of the classes; the distilled student
# is held to the teacher's, so the two networks produce comparable embeddings. In 512
# dimensions the same mechanism carries how the teacher placed thousands of identities
# relative to each other.
#
# ## The methods compared
#
# Teacher: an ArcFace iResNet-50 at half width (the thesis: ResNet-100). Student:
# MobileFaceNet with ReLU and a 512-d embedding, the thesis's student. Every student
# method trains from the same initial weights for a given seed, on the same
# identity-balanced batches (groups of 4 images of one person), with SGD (momentum 0.9,
# weight decay $5\cdot10^{-4}$), $s = 64$, the same step schedule and warm-up:
#
# | row | loss |
# |---|---|
# | ArcFace | the student alone, $m = 0.5$ |
# | triplet distillation, L2 / cos {cite}`feng2020triplet` | ArcFace + a triplet loss whose margin grows with the teacher's gap $d_T(a,n) - d_T(a,p)$, scaled into $[0.2, 0.5]$ (batch-hard triplets) |
# | margin-based KD, $T = 4$ {cite}`nekhaev2020marginkd` | ArcFace + $T^2\,\mathrm{KL}$ between the teacher's and student's softened margin logits |
# | angular distillation {cite}`duong2019shrinkteanet` | ArcFace + $\mathrm{mean}(1 - \cos(x_S, x_T))$ |
# | MarginDistillation | copied frozen centres + per-image margins $m_i$ |
#
# Two differences from the thesis's setup, both deliberate: the triplet rows add their
# term to ArcFace so every row trains from scratch on the same budget (Feng et al.
# fine-tune an ArcFace student instead), and margin-based KD uses the teacher's logits as
# published, whereas the author's MXNet code computes them and never uses them.
#
# ## Training (the cached heavy step)
#
# The comparison is 1 teacher and 10 student methods (Table 5 and the ablation of
# Table 7; its first row *is* MarginDistillation) times the seeds: three for every
# method, five for the pair the chapter's headline rests on (the ArcFace student and
# MarginDistillation). At full scale that is 35 trainings, 0.4 M teacher and 4.5 M student
# images: about four hours on two CPU cores (estimated from the training speeds at the end
# of the chapter). So the heavy step is cached (`faceopt.recognition.runs`): one small
# JSON per finished run under `runs/margin_distillation/` of the packaged resources
# (`src/faceopt/resources/` in a checkout, so an installed faceopt has them too).
#
# A cache is only as good as the code that made it. The run folder is named by a hash of
# the preset *and* of the code that trains and evaluates (`experiments.RUN_CODE`: the
# distillers, the training loop, the models, the synthetic faces, the metrics; comments
# and docstrings do not count), and every record names the machine, the torch version
# and the git revision that made it. Change that code and the full page stops with a
# message naming what is cached and the command below, instead of silently reading
# numbers from older code. The committed runs were made with it on one NVIDIA H100,
# 15 trainings at a time (349 s); without a GPU, `--device cpu` does the same in hours.
#
# ```
# faceopt distill --preset full --run-dir src/faceopt/resources/runs/margin_distillation --jobs 15
# ```
#
# *What changed.* The first version of this page read runs whose folder was keyed by the
# preset alone. A re-run of that preset on an H100 gave an ArcFace student with 16.6%
# TAR at FAR = 1e-2 where the cache held 93.7%: the baseline every method is compared with
# looked unstable, and nothing tied the cache to the code. All 35 runs were therefore
# made afresh by the current code, with five seeds for the headline pair, and every
# seed is shown below as a point. Two complete runs of the same code on the same kind of
# GPU (before and after a refactoring of the training loop that left CPU results
# bit-identical) moved the means by up to 0.65 points on LFW-like accuracy, because GPU
# training is not bit-reproducible: that is the seed noise the comparisons below allow for.

# %% tags=["nbval-ignore-output"]
if scale == "full":
    run_dir = resource_path("runs", "margin_distillation", must_exist=False)
else:  # smoke: always trained afresh, on the CPU, in a scratch folder
    run_dir = tempfile.mkdtemp(prefix="faceopt-md-")
t0 = time.perf_counter()
folder = runs.run_comparison(preset, run_dir, device=device, train_missing=scale != "full", log=lambda msg: None)
teacher, students = runs.load_runs(folder)
made_by = f"{teacher['machine']}, torch {teacher['torch']}, git {teacher['git_rev']}"
if scale == "full":
    provenance.declare_cached_step(f"the {1 + len(students)} trainings of {folder.name}", made_by)
print(f"{len(students)} student runs + teacher from {folder.name} in {time.perf_counter() - t0:.0f} s; "
      f"trained on: {made_by}")

# %%
values = {k: runs.collect(students, k) for k in METRICS}
print(f"teacher: {teacher['train']['steps']} steps; students: {students[0]['train']['steps']} steps; "
      f"evaluation: {teacher['eval_sizes']}")


# %% [markdown]
# ### What margins the teacher hands out
#
# The teacher's cosines to its own class centres, over the training images in the
# training batches, and the margins $m_i$ they give:

# %% tags=["machine-dependent"]
hist = teacher["margins"]
fig = margin_histograms(hist)
print(f"mean a_i {hist['a_mean']:.3f}; mean m_i {hist['m_mean']:.3f}; share of m_i below 0.3: {hist['m_below_0.3']:.1%}")

# %% [markdown]
# A teacher that fits its training set well puts almost every training image close to
# its centre, so most margins sit near $m_{\max}$ and only the images the teacher finds
# hard get less. The adaptive margin is therefore a small correction on top of the
# copied centres; the ablation below measures how much each part is worth.
#
# ## Table 5: verification
#
# 10-fold accuracy (the insightface protocol: the threshold is chosen on nine folds and
# applied to the tenth) on 6,000 LFW-like pairs and 6,000 AgeDB-like pairs, whose genuine
# pairs take the largest age gaps and stronger nuisance. Mean ± standard deviation over
# the student seeds; the thesis's numbers (real LFW and AgeDB-30, 112 px) beside.
#
# Compare rankings, not levels. Our faces are synthetic and 32 pixels wide, our networks
# narrower and trained for minutes, so our accuracies sit at other levels than the
# thesis's; what can reproduce is the order of the methods and the size of their gaps
# relative to the seed-to-seed noise.

# %% tags=["machine-dependent"]
THESIS = {cid: c.thesis for cid, c in results.load_claims().items() if cid.startswith(("T5", "T6", "T7"))}
table5 = tables.verification_table(teacher, values, THESIS["T5-verification"])
table5

# %% [markdown]
# ## Table 6: identification with distractors
#
# Rank-1 identification: each probe identity has one image in the gallery, its other
# images are probes, and the gallery is padded with distractors, single images of other
# people (MegaFace pads with a million; the full scale here uses 10,000 at 32 px).

# %% tags=["machine-dependent"]
table6 = tables.identification_table(teacher, values, THESIS["T6-identification"])
table6

# %% [markdown]
# ## Table 7: what each part of MarginDistillation is worth
#
# The thesis's ablation switches off the three parts one at a time: copying the
# centres, the per-image margin $m_i$ instead of the fixed $m = 0.5$, and freezing the
# copied centres. It reports LFW; AgeDB-like and MegaFace-like are added here because
# LFW-like accuracy is close to saturation.

# %% tags=["machine-dependent"]
table7 = tables.ablation_table(values, THESIS["T7-ablation"])
table7

# %% [markdown]
# Every seed is a point below (the bar is the mean ± one standard deviation); the
# dashed line is the teacher. The headline pair, the ArcFace student and
# MarginDistillation, has five seeds, the other methods three.

# %%
order = [LABEL[m] for m in (*ex.TABLE5_METHODS, *ex.METHODS[len(ex.TABLE5_METHODS):])]
fig = seed_points(tables.seed_frame(students), {METRICS[k]: teacher["metrics"][k] for k in METRICS}, order)

# %% [markdown]
# ## Is the difference bigger than the noise?
#
# Each comparison below is MarginDistillation minus another method, over the seeds, with
# the standard error of that difference; "beyond the noise" means more than two standard
# errors. Each claim is split into such comparisons, its *parts* (for Table 5:
# MarginDistillation above the ArcFace student and above every other method, on each
# metric), and the library's one rule (`faceopt.results.decide`, stated on the scorecard)
# gives the status: a part counts only beyond the noise, and a claim holds only as far as
# its weakest part. The thesis's sizes (its accuracies on real LFW, AgeDB and MegaFace)
# cannot be compared with numbers on synthetic faces, so no part has a size here.

# %% tags=["machine-dependent"]
tables.comparison_table(values)

# %% tags=["machine-dependent"]
tables.claim_parts(values).table()

# %% tags=["machine-dependent", "hide-input"]
n = {"headline": len(preset.seeds) + len(preset.headline_seeds), "others": len(preset.seeds)}
tables.record_claims(teacher, values, chapter=CHAPTER, scale=scale, data=DATA, seeds=n)

# %% [markdown]
# ## Reading the results
#
# On these data the teacher is far ahead of the ArcFace student, most of all on the
# harder protocols (AgeDB-like, and rank-1 among 10,000 distractors), which is the gap
# distillation is meant to close. How much of it each method closes is the point of the
# chapter; the numbers of the book's run (three seeds, five for the headline pair, one
# H100) are on the scorecard and in the tables above:
#
# * **Copying and freezing the teacher's centres does most of the work**, as the thesis's
#   conclusion 2 says: the rows with copied frozen centres (MarginDistillation and
#   copy + freeze) recover most of the teacher's AgeDB-like and MegaFace-like accuracy
#   (MarginDistillation 80.5% and 57.1% against the ArcFace student's 70.3% and 34.2%
#   and the teacher's 83.8% and 65.9%), far more than the per-sample losses (angular,
#   triplet) do.
# * **Copied centres that keep training lose part of that on AgeDB-like** (copy + $m_i$
#   3.0 points, copy 2.7 points, both beyond the noise), but not on MegaFace-like rank-1,
#   where the four rows with copied centres are within the noise of each other.
# * **The adaptive margin alone ($m_i$ without the centres) does nothing measurable**
#   against the ArcFace student, and on top of frozen copied centres it is within the
#   noise on every metric: our teacher puts nearly every training image close to its
#   centre, so nearly every $m_i$ is close to 0.5.
# * **LFW-like accuracy is saturated** near 98% for every distilled student, and there
#   MarginDistillation's lead over the ArcFace student (+1.4 points) and over margin-based
#   KD (+0.25) is within the noise, which is what leaves Table 5 not reproduced; on
#   LFW-like no row of the ablation differs from MarginDistillation beyond the noise except
#   $m_i$ alone, which is what leaves Table 7 not reproduced. On the two harder protocols
#   MarginDistillation is ahead of every Table 5 method beyond the noise (by 2.7 to 10.1
#   points on AgeDB-like, 7.4 to 23.2 on rank-1).
# * **Table 6 fails on its second half only**: MarginDistillation is first on rank-1,
#   beyond the noise against every method, but the thesis also has both triplet rows
#   below the ArcFace student, and here both are above it, beyond the noise (by 6.0 and
#   4.9 points). Our triplet rows keep the ArcFace term and train from scratch, which is
#   the likely reason.
# * **The ArcFace student is the noisiest row.** Four of its five seeds give LFW-like TAR
#   at FAR = 1e-2 between 90.4% and 93.5%; one gives 86.3% (and 93.8% accuracy against
#   97.3-97.6%). Nothing like the 16.6% once seen in a re-run of the earlier cache, but it
#   is why the baseline has five seeds, and why its comparisons on LFW-like are within
#   the noise.
#
# The statuses are recorded by the rule above, from the seeds, not by eye.
#
# ## Training speed on this machine
#
# Training images per second of the teacher and the student with an ArcFace head, batch
# 64, on the CPU (a benchmark: it depends on the machine and on what else runs).

# %% tags=["nbval-ignore-output"]
speed = {name: ex.training_throughput(model, size=size, options=opts, steps=2 if scale == "smoke" else 5,
                                      classes=preset.identities)
         for name, model, opts, size in (
             (f"teacher {preset.teacher} {dict(preset.teacher_options)} @ {preset.size} px", preset.teacher,
              preset.teacher_options, preset.size),
             (f"student {preset.student} @ {preset.size} px", preset.student, preset.student_options, preset.size),
             (f"student {preset.student} @ 112 px", preset.student, preset.student_options, 112))}
for k, v in speed.items():
    print(f"{k:<55} {v:7.0f} images/s")

# %% [markdown]
# ## At thesis scale
#
# The same losses train a real student on MS1MV2 (insightface's `train.rec`/`train.idx`,
# read without MXNet by `faceopt.data.recordio`) with the loop in `faceopt.train`: SGD,
# the thesis's step schedule, checkpoints that resume, mixed precision on GPUs and
# `DistributedDataParallel` under `torchrun`. Precompute the teacher's embeddings once
# (`experiments.teacher_embeddings`), build the student with
# `make_distiller("margin_distillation", student_head, teacher_head)` inside a
# `FaceRecognizer`, and launch one process per GPU:
#
# ```
# torchrun --standalone --nproc_per_node=8 train_ms1mv2.py
# ```
#
# (the `faceopt.train` module's docstring has the whole script and the multi-machine
# command). Verification on the real LFW, AgeDB-30 and CFP-FP `.bin` files uses
# `faceopt.data.verification_bin` and `faceopt.recognition.evaluate.verify`.
