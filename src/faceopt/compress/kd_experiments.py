"""Knowledge-distillation experiments of the survey chapter (thesis section 1.3) on the real digits.

What is compared, and how fairly:

* Data: scikit-learn's 1,797 real 8x8 digits, the chapter's fixed stratified train/test split
  (:func:`faceopt.data.digits.load_digits_split`, seed 0). A validation split is carved from the
  training split (stratified, fixed); every temperature, mixing weight, noise level and hint weight
  is chosen on it, by the mean validation accuracy over seeds, and never on the test split. The
  test split is only reported.
* Teacher: :class:`WideShallowTeacher`, trained once per seed on the whole training pool (the
  training split minus the validation split) and then frozen; its logits and hint features are
  computed once.
* Students: :class:`ThinDeepStudent` (six 3x3 convolutions, no batch norm, about 1/4 of the
  teacher's parameters: FitNets' thin and deep student). For Hinton-style KD, logit regression,
  the ensemble and the noisy teacher the students see only a stratified ``transfer_fraction`` of
  the training pool (Hinton's transfer set, drawn per seed), which leaves the hard labels scarce
  enough for the teacher's soft targets to matter; the FitNets comparison (Table 1 of the thesis
  compares the student with its teacher) trains the students on the teacher's whole pool.
* Budgets: within a comparison every method has the same epochs, optimiser steps, batch size,
  optimiser (SGD with momentum, weight decay) and cosine learning-rate schedule; FitNets' hint
  stage counts in its budget. Reported accuracies are of the last epoch, never the best one.
* Optimiser: learning rate 0.01 and gradient-norm clipping at 5 for every network. Without the
  clipping, KD runs at T >= 2 diverged at rates 0.05 and 0.02, and logit regression (whose first
  gradients are about 15 times those of cross-entropy, against the teacher's unbounded logits)
  and a KD run still diverged at 0.01; with it, of the rates 0.01 and 0.03 the hard-label
  student's validation accuracy preferred 0.01. These were stability checks on validation
  accuracy, made once, not a search for the claims' outcome.
* Determinism: each model is initialised after ``torch.manual_seed`` and every permutation, subset
  and noise draw comes from a seeded ``torch.Generator``; the thread count is the caller's.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from faceopt.compress.distill import (
    EnsembleTeacher,
    HintRegressor,
    hint_loss,
    kd_loss,
    logit_regression_loss,
    noisy_teacher_logits,
    softened_probabilities,
)
from faceopt.compress.training import evaluate
from faceopt.data.digits import Split, load_digits_split
from faceopt.models.profile import count_parameters
from faceopt.results import Part
from faceopt.stats import compare

CLASSES = 10


# ----------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class KDPreset:
    """Sizes and hyper-parameter grids of every distillation experiment at one scale.

    ``alphas`` weight the KD term: loss ``(1 - alpha) * CE(hard labels) + alpha * kd_loss(T)``.
    ``hint_epochs`` of FitNets' hint stage are part of ``student_epochs``. ``hint_weights`` weigh
    the hint loss when hints and KD are trained jointly. ``noise_sigmas`` are the noisy teacher's
    ``sigma``; ``noise_fraction`` the probability that a sample's logits are perturbed.
    ``ensemble_seeds`` is how many of ``seeds`` (the first ones) also get the ensemble rows.
    """

    seeds: tuple[int, ...]
    teacher_epochs: int
    student_epochs: int
    hint_epochs: int
    lr: float
    batch_size: int
    momentum: float
    weight_decay: float
    clip_norm: float
    val_fraction: float
    transfer_fraction: float
    fitnet_fraction: float
    temperatures: tuple[float, ...]
    alphas: tuple[float, ...]
    hint_weights: tuple[float, ...]
    ensemble_size: int
    ensemble_seeds: int
    noise_sigmas: tuple[float, ...]
    noise_fraction: float
    figure_temperatures: tuple[float, ...]
    figure_image: int = 0

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("a preset needs at least one seed")
        if not 1 <= self.hint_epochs < self.student_epochs:
            raise ValueError(f"hint_epochs ({self.hint_epochs}) must be in [1, student_epochs={self.student_epochs})")
        for name in ("transfer_fraction", "fitnet_fraction"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not self.temperatures or min(self.temperatures) <= 0 or not self.alphas:
            raise ValueError("need at least one temperature (> 0) and one alpha")
        if any(not 0.0 < a <= 1.0 for a in self.alphas):
            raise ValueError(f"alphas must be in (0, 1] (0 is the hard-label student), got {self.alphas}")
        if self.ensemble_size < 2 or not 0 <= self.ensemble_seeds <= len(self.seeds):
            raise ValueError("ensemble_size must be >= 2 and ensemble_seeds within the number of seeds")


KD_PRESETS: dict[str, KDPreset] = {
    "smoke": KDPreset(
        seeds=(0, 1), teacher_epochs=8, student_epochs=8, hint_epochs=2, lr=0.01, batch_size=32, momentum=0.9,
        weight_decay=5e-4, clip_norm=5.0, val_fraction=0.2, transfer_fraction=0.25, fitnet_fraction=1.0,
        temperatures=(1.0, 4.0, 16.0), alphas=(0.9,), hint_weights=(1.0,), ensemble_size=3, ensemble_seeds=1,
        noise_sigmas=(0.2,), noise_fraction=0.5, figure_temperatures=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
    ),
    "full": KDPreset(
        seeds=tuple(range(6)), teacher_epochs=20, student_epochs=40, hint_epochs=10, lr=0.01, batch_size=32,
        momentum=0.9, weight_decay=5e-4, clip_norm=5.0, val_fraction=0.2, transfer_fraction=0.25, fitnet_fraction=1.0,
        temperatures=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0), alphas=(0.5, 0.9), hint_weights=(0.1, 1.0), ensemble_size=3,
        ensemble_seeds=6, noise_sigmas=(0.1, 0.3), noise_fraction=0.5,
        figure_temperatures=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
    ),
}


# ----------------------------------------------------------------------------- models
def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.ReLU()]


def he_init(model: nn.Module) -> nn.Module:
    """He (Kaiming-normal, fan-in, ReLU) weights and zero biases for every convolution and linear layer.

    Without batch norm, PyTorch's default initialisation shrinks the signal through the six
    layers of the thin student, which then idles for many epochs before it learns (we saw it
    stay near chance on the transfer set); He initialisation keeps its variance, so that the
    comparisons measure what the teacher transfers rather than which loss escapes a plateau first.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


class WideShallowTeacher(nn.Module):
    """Two wide 3x3 convolutions (64 and 128 channels) and a linear classifier on 8x8 inputs.

    ``hint`` is the output of the first block (``[B, 64, 4, 4]``), FitNets' hint layer.
    """

    def __init__(self, widths: tuple[int, int] = (64, 128), classes: int = CLASSES) -> None:
        super().__init__()
        self.hint_channels = widths[0]
        self.hint = nn.Sequential(*_conv(1, widths[0]), nn.MaxPool2d(2))
        self.top = nn.Sequential(*_conv(widths[0], widths[1]), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(widths[1] * 4, classes))
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(self.hint(x))


class ThinDeepStudent(nn.Module):
    """Six thin 3x3 convolutions (16-16 | 16 | 24-24 | 24 channels) and a linear classifier, no batch norm.

    ``guided`` ends at the third convolution (``[B, 16, 4, 4]``), FitNets' guided layer, at the
    same spatial size as the teacher's hint.
    """

    def __init__(self, widths: tuple[int, int] = (16, 24), classes: int = CLASSES) -> None:
        super().__init__()
        a, b = widths
        self.guided_channels = a
        self.guided = nn.Sequential(*_conv(1, a), *_conv(a, a), nn.MaxPool2d(2), *_conv(a, a))
        self.top = nn.Sequential(*_conv(a, b), *_conv(b, b), nn.MaxPool2d(2), *_conv(b, b), nn.Flatten(),
                                 nn.Linear(b * 4, classes))
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(self.guided(x))


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class KDData:
    """The teacher's training pool, the validation split carved from the training split, and the test split."""

    pool: Split
    val: Split
    test: Split


def load_kd_data(val_fraction: float = 0.2) -> KDData:
    """The chapter's digits split with a stratified validation split carved from its training part (fixed)."""
    train, test = load_digits_split(seed=0)
    val_idx = stratified_subset(train.y, val_fraction, torch.Generator().manual_seed(0))
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[val_idx] = False
    return KDData(Split(train.x[keep], train.y[keep]), Split(train.x[val_idx], train.y[val_idx]), test)


def stratified_subset(labels: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Sorted indices of a random ``fraction`` of each class (at least one image per class)."""
    chosen = []
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).flatten()
        k = max(1, round(fraction * len(idx)))
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[:k]])
    return torch.sort(torch.cat(chosen)).values


def _subset(split: Split, fraction: float, seed: int) -> tuple[Split, torch.Tensor]:
    if fraction >= 1.0:
        return split, torch.arange(len(split))
    idx = stratified_subset(split.y, fraction, torch.Generator().manual_seed(10_000 + seed))
    return Split(split.x[idx], split.y[idx]), idx


# ----------------------------------------------------------------------------- results
@dataclass
class Curve:
    """Per-epoch mean training loss and validation and test accuracy (for learning-curve figures)."""

    loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


@dataclass
class Run:
    """One trained student: its experiment, method, seed, settings, last-epoch accuracies and budget."""

    experiment: str
    method: str
    seed: int
    val_accuracy: float
    test_accuracy: float
    epochs: int
    steps: int
    train_images: int
    settings: dict[str, float] = field(default_factory=dict)
    curve: Curve = field(default_factory=Curve)


@dataclass
class TeacherRun:
    """A teacher (or the ensemble of teachers, ``kind="ensemble"``) and its accuracies."""

    seed: int
    kind: str
    val_accuracy: float
    test_accuracy: float


@dataclass
class KDResult:
    """Everything :func:`run_all` measured, as plain numbers."""

    preset: KDPreset
    runs: list[Run]
    teachers: list[TeacherRun]
    chosen: dict[str, float]
    """Settings chosen on the validation split: ``T`` and ``alpha`` (KD), ``sigma`` (noisy teacher),
    ``hint_weight`` (hints + KD)."""
    params: dict[str, int]
    """Trainable parameters of the ``teacher``, the ``student`` and the ``regressor``."""
    softened: dict[float, list[float]]
    """The first teacher's softened distribution of one test image, per temperature (Figure 1.6)."""
    figure_label: int = -1


# ----------------------------------------------------------------------------- training loop
def train_model(model: nn.Module, params: Sequence[nn.Parameter], n: int, loss_of: Callable[[torch.Tensor], torch.Tensor],
                *, epochs: int, preset: KDPreset, seed: int, data: KDData,
                classifier: nn.Module | None = None) -> tuple[Curve, int]:
    """SGD with momentum and a cosine learning rate over ``epochs`` of ``n`` shuffled samples.

    ``loss_of(indices)`` is the loss of one mini-batch of sample indices (it closes over the
    inputs and targets). The ``classifier`` (default ``model``) is scored on the validation and
    test splits after every epoch. Returns the curve and the number of optimiser steps.
    """
    classifier = classifier if classifier is not None else model
    params = list(params)
    opt = torch.optim.SGD(params, lr=preset.lr, momentum=preset.momentum, weight_decay=preset.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    per_epoch = math.ceil(n / preset.batch_size)
    total = epochs * per_epoch
    curve = Curve()
    step = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        running, count = 0.0, 0
        for i in range(0, n, preset.batch_size):
            for group in opt.param_groups:
                group["lr"] = preset.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            idx = order[i:i + preset.batch_size]
            loss = loss_of(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, preset.clip_norm)
            opt.step()
            step += 1
            running += loss.item() * len(idx)
            count += len(idx)
        curve.loss.append(running / count)
        curve.val_accuracy.append(evaluate(classifier, data.val))
        curve.test_accuracy.append(evaluate(classifier, data.test))
    return curve, step


def _run(experiment: str, method: str, seed: int, curve: Curve, steps: int, epochs: int, n: int,
         **settings: float) -> Run:
    return Run(experiment, method, seed, curve.val_accuracy[-1], curve.test_accuracy[-1], epochs, steps, n,
               dict(settings), curve)


def train_teacher(data: KDData, seed: int, preset: KDPreset) -> tuple[WideShallowTeacher, TeacherRun]:
    """A :class:`WideShallowTeacher` trained on hard labels of the whole pool from ``seed``; frozen after."""
    torch.manual_seed(seed)
    teacher = WideShallowTeacher()
    x, y = data.pool.x, data.pool.y
    curve, _ = train_model(teacher, list(teacher.parameters()), len(y),
                           lambda idx: F.cross_entropy(teacher(x[idx]), y[idx]),
                           epochs=preset.teacher_epochs, preset=preset, seed=seed, data=data)
    teacher.eval()
    return teacher, TeacherRun(seed, "teacher", curve.val_accuracy[-1], curve.test_accuracy[-1])


def _mixed(alpha: float, T: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(1 - alpha) CE(student, labels) + alpha kd_loss(student, teacher, T)``."""
    def loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = alpha * kd_loss(student, teacher, T)
        return out + (1.0 - alpha) * F.cross_entropy(student, labels) if alpha < 1.0 else out
    return loss


def train_student(data: KDData, train: Split, seed: int, preset: KDPreset,
                  loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                  targets: torch.Tensor | None = None,
                  noise: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None) -> tuple[Curve, int]:
    """A fresh :class:`ThinDeepStudent` from ``seed`` trained for ``student_epochs`` on ``train``.

    ``loss(student_logits, teacher_logits, labels)`` with ``targets`` the teacher logits of
    ``train`` (precomputed); no ``loss`` means cross-entropy on the hard labels. ``noise`` perturbs
    each batch's teacher logits (the noisy teacher) with its own seeded generator.
    """
    torch.manual_seed(seed)
    student = ThinDeepStudent()
    gen = torch.Generator().manual_seed(20_000 + seed)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        out = student(train.x[idx])
        if loss is None or targets is None:
            return F.cross_entropy(out, train.y[idx])
        t = targets[idx] if noise is None else noise(targets[idx], gen)
        return loss(out, t, train.y[idx])

    return train_model(student, list(student.parameters()), len(train), loss_of, epochs=preset.student_epochs,
                       preset=preset, seed=seed, data=data)


@torch.no_grad()
def teacher_logits(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The frozen teacher's logits of ``x`` (eval mode)."""
    teacher.eval()
    return teacher(x)


# ----------------------------------------------------------------------------- experiments
def softened_distributions(teacher: nn.Module, image: torch.Tensor, temperatures: Iterable[float]) -> dict[float, list[float]]:
    """The teacher's softened distribution of one image ``[1, 8, 8]`` at each temperature (Figure 1.6)."""
    z = teacher_logits(teacher, image.unsqueeze(0))
    return {float(T): softened_probabilities(z, T)[0].tolist() for T in temperatures}


def temperature_sweep(data: KDData, teacher: nn.Module, seed: int, preset: KDPreset) -> list[Run]:
    """The hard-label student and a KD student at every (T, alpha) of the grid, on the transfer set."""
    transfer, idx = _subset(data.pool, preset.transfer_fraction, seed)
    z = teacher_logits(teacher, transfer.x)
    e, n = preset.student_epochs, len(transfer)
    curve, steps = train_student(data, transfer, seed, preset)
    runs = [_run("temperature", "hard labels", seed, curve, steps, e, n, T=float("nan"), alpha=0.0)]
    for T in preset.temperatures:
        for alpha in preset.alphas:
            curve, steps = train_student(data, transfer, seed, preset, _mixed(alpha, T), z)
            runs.append(_run("temperature", "KD", seed, curve, steps, e, n, T=T, alpha=alpha))
    return runs


def logit_experiment(data: KDData, teacher: nn.Module, seed: int, preset: KDPreset) -> list[Run]:
    """Ba & Caruana's logit regression (no hard labels) and the noisy teacher (Sau & Balasubramanian:
    the same regression on logits ``z (1 + xi)``) at each ``sigma``, on the transfer set."""
    transfer, _ = _subset(data.pool, preset.transfer_fraction, seed)
    z = teacher_logits(teacher, transfer.x)
    e, n = preset.student_epochs, len(transfer)

    def regression(student: torch.Tensor, teacher_z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return logit_regression_loss(student, teacher_z)

    curve, steps = train_student(data, transfer, seed, preset, regression, z)
    runs = [_run("logits", "logit regression", seed, curve, steps, e, n, sigma=0.0)]
    for sigma in preset.noise_sigmas:
        def noise(t: torch.Tensor, gen: torch.Generator, s: float = sigma) -> torch.Tensor:
            return noisy_teacher_logits(t, s, gen, fraction=preset.noise_fraction)
        curve, steps = train_student(data, transfer, seed, preset, regression, z, noise)
        runs.append(_run("logits", "noisy teacher", seed, curve, steps, e, n, sigma=sigma))
    return runs


def ensemble_experiment(data: KDData, teacher: nn.Module, seed: int, preset: KDPreset, *, T: float,
                        alpha: float) -> tuple[list[Run], list[TeacherRun]]:
    """KD on the transfer set from an ensemble of ``ensemble_size`` teachers (``teacher`` and others
    of new seeds), averaging their softened distributions at the chosen ``T`` (not re-tuned)."""
    members = [teacher]
    rows = []
    for k in range(1, preset.ensemble_size):
        extra, row = train_teacher(data, 1_000 + seed * preset.ensemble_size + k, preset)
        members.append(extra)
        rows.append(TeacherRun(seed, "extra teacher", row.val_accuracy, row.test_accuracy))
    ensemble = EnsembleTeacher(members)
    accuracy = {name: evaluate(_Tempered(ensemble, 1.0), split) for name, split in (("val", data.val), ("test", data.test))}
    rows.append(TeacherRun(seed, "ensemble", accuracy["val"], accuracy["test"]))
    transfer, _ = _subset(data.pool, preset.transfer_fraction, seed)
    z = ensemble.logits(transfer.x, T)
    curve, steps = train_student(data, transfer, seed, preset, _mixed(alpha, T), z)
    return [_run("ensemble", "ensemble KD", seed, curve, steps, preset.student_epochs, len(transfer), T=T,
                 alpha=alpha, teachers=float(preset.ensemble_size))], rows


class _Tempered(nn.Module):
    """An ensemble's logits at a fixed temperature, as a classifier :func:`evaluate` can score."""

    def __init__(self, ensemble: EnsembleTeacher, T: float) -> None:
        super().__init__()
        self.ensemble, self.T = ensemble, T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ensemble.logits(x, self.T)


def fitnet_experiment(data: KDData, teacher: WideShallowTeacher, seed: int, preset: KDPreset, *, T: float,
                      alpha: float, hint_weights: Sequence[float]) -> list[Run]:
    """FitNets on the teacher's training pool (``fitnet_fraction`` of it), every method with the same budget:
    (a) plain hard labels, (b) KD, (c) hints for ``hint_epochs`` (stage 1: the student up to its guided
    layer and the regressor) then KD of the whole student, (d) hints + KD jointly at each hint weight.
    """
    train, _ = _subset(data.pool, preset.fitnet_fraction, seed)
    z = teacher_logits(teacher, train.x)
    with torch.no_grad():
        hints = teacher.hint(train.x)
    e, n = preset.student_epochs, len(train)
    kd = _mixed(alpha, T)
    runs = []
    curve, steps = train_student(data, train, seed, preset)
    runs.append(_run("fitnet", "plain", seed, curve, steps, e, n))
    curve, steps = train_student(data, train, seed, preset, kd, z)
    runs.append(_run("fitnet", "KD", seed, curve, steps, e, n, T=T, alpha=alpha))

    torch.manual_seed(seed)
    student = ThinDeepStudent()
    regressor = HintRegressor(student.guided_channels, hints.shape[1])
    size = (hints.shape[-2], hints.shape[-1])

    def stage1(idx: torch.Tensor) -> torch.Tensor:
        return hint_loss(regressor(student.guided(train.x[idx]), size), hints[idx])

    stage1_model = nn.ModuleDict({"student": student, "regressor": regressor})
    c1, s1 = train_model(stage1_model, [*student.guided.parameters(), *regressor.parameters()], n, stage1,
                         epochs=preset.hint_epochs, preset=preset, seed=seed, data=data, classifier=student)

    def stage2(idx: torch.Tensor) -> torch.Tensor:
        return kd(student(train.x[idx]), z[idx], train.y[idx])

    c2, s2 = train_model(student, list(student.parameters()), n, stage2, epochs=e - preset.hint_epochs,
                         preset=preset, seed=seed + 1, data=data)
    curve = Curve(c1.loss + c2.loss, c1.val_accuracy + c2.val_accuracy, c1.test_accuracy + c2.test_accuracy)
    runs.append(_run("fitnet", "hints then KD (FitNets)", seed, curve, s1 + s2, e, n, T=T, alpha=alpha,
                     hint_epochs=float(preset.hint_epochs)))

    for weight in hint_weights:
        torch.manual_seed(seed)
        joint = ThinDeepStudent()
        reg = HintRegressor(joint.guided_channels, hints.shape[1])

        def both(idx: torch.Tensor, w: float = weight, s: ThinDeepStudent = joint, r: HintRegressor = reg) -> torch.Tensor:
            guided = s.guided(train.x[idx])
            return kd(s.top(guided), z[idx], train.y[idx]) + w * hint_loss(r(guided, size), hints[idx])

        curve, steps = train_model(nn.ModuleDict({"student": joint, "regressor": reg}),
                                   [*joint.parameters(), *reg.parameters()], n, both, epochs=e, preset=preset,
                                   seed=seed, data=data, classifier=joint)
        runs.append(_run("fitnet", "hints + KD", seed, curve, steps, e, n, T=T, alpha=alpha, hint_weight=weight))
    return runs


# ----------------------------------------------------------------------------- selection on validation
def choose(runs: Iterable[Run], experiment: str, method: str, keys: Sequence[str]) -> dict[str, float]:
    """The settings (``keys`` of ``Run.settings``) of ``experiment``/``method`` with the best mean validation
    accuracy over seeds; ties go to the first setting met (the grid's order)."""
    groups: dict[tuple[float, ...], list[float]] = {}
    for r in runs:
        if r.experiment == experiment and r.method == method:
            groups.setdefault(tuple(r.settings[k] for k in keys), []).append(r.val_accuracy)
    if not groups:
        raise ValueError(f"no runs of {experiment}/{method} to choose from")
    best = max(groups, key=lambda k: statistics.fmean(groups[k]))
    return dict(zip(keys, best))


def _select(runs: Iterable[Run], experiment: str, method: str, **settings: float) -> list[Run]:
    return [r for r in runs if r.experiment == experiment and r.method == method
            and all(r.settings.get(k) == v for k, v in settings.items())]


def mean_test(result: KDResult, experiment: str, method: str, **settings: float) -> float:
    """Mean last-epoch test accuracy over seeds of one method of one experiment (and settings, e.g. ``T=4``)."""
    runs = _select(result.runs, experiment, method, **settings)
    if not runs:
        raise ValueError(f"no runs of {experiment}/{method} with {settings}")
    return statistics.fmean(r.test_accuracy for r in runs)


def mean_teacher(result: KDResult) -> float:
    """Mean test accuracy of the teachers (one per seed; not the extra or ensemble teachers)."""
    return statistics.fmean(t.test_accuracy for t in result.teachers if t.kind == "teacher")


# ----------------------------------------------------------------------------- everything
def run_all(preset: KDPreset, *, progress: bool = False) -> KDResult:
    """Every experiment of the section at ``preset``'s scale; one :class:`KDResult`.

    Order: teachers and the temperature sweep for every seed; (T, alpha) chosen on validation;
    then logit regression and the noisy teacher, FitNets and the ensemble with that (T, alpha).
    """
    from faceopt.progress import progress as bar

    def wrap(items: list[int], desc: str) -> Iterable[int]:
        return bar(items, desc=desc) if progress else items

    data = load_kd_data(preset.val_fraction)
    teachers: dict[int, WideShallowTeacher] = {}
    teacher_rows: list[TeacherRun] = []
    runs: list[Run] = []
    for seed in wrap(list(preset.seeds), "teachers and temperatures"):
        teacher, row = train_teacher(data, seed, preset)
        teachers[seed] = teacher
        teacher_rows.append(row)
        runs += temperature_sweep(data, teacher, seed, preset)
    chosen = choose(runs, "temperature", "KD", ("T", "alpha"))
    T, alpha = chosen["T"], chosen["alpha"]
    for seed in wrap(list(preset.seeds), "logits, FitNets, ensembles"):
        runs += logit_experiment(data, teachers[seed], seed, preset)
        runs += fitnet_experiment(data, teachers[seed], seed, preset, T=T, alpha=alpha,
                                  hint_weights=preset.hint_weights)
        if seed in preset.seeds[:preset.ensemble_seeds]:
            ens_runs, ens_rows = ensemble_experiment(data, teachers[seed], seed, preset, T=T, alpha=alpha)
            runs += ens_runs
            teacher_rows += ens_rows
    chosen = {**chosen, **choose(runs, "logits", "noisy teacher", ("sigma",)),
              **choose(runs, "fitnet", "hints + KD", ("hint_weight",))}
    first = teachers[preset.seeds[0]]
    student = ThinDeepStudent()
    params = {"teacher": count_parameters(first), "student": count_parameters(student),
              "regressor": count_parameters(HintRegressor(student.guided_channels, first.hint_channels))}
    image = data.test.x[preset.figure_image]
    return KDResult(preset, runs, teacher_rows, chosen, params,
                    softened_distributions(first, image, preset.figure_temperatures),
                    int(data.test.y[preset.figure_image]))


# ----------------------------------------------------------------------------- claims and tables
def _accuracies(runs: Iterable[Run]) -> list[float]:
    return [r.test_accuracy for r in sorted(runs, key=lambda r: r.seed)]


def claim_parts(result: KDResult) -> dict[str, list[Part]]:
    """The parts of claims ``S1-kd-temperature`` and ``T1-fitnet`` from per-seed test accuracies.

    S1: the KD student at the validation-chosen (T, alpha) against the hard-label student. T1: the
    FitNets student (hints, then KD) against the plain student, and against its teacher (positive:
    the student beats the teacher, as in the thesis's Table 1).
    """
    T, alpha = result.chosen["T"], result.chosen["alpha"]
    kd = _accuracies(_select(result.runs, "temperature", "KD", T=T, alpha=alpha))
    hard = _accuracies(_select(result.runs, "temperature", "hard labels"))
    fitnet = _accuracies(_select(result.runs, "fitnet", "hints then KD (FitNets)"))
    plain = _accuracies(_select(result.runs, "fitnet", "plain"))
    teacher = [t.test_accuracy for t in sorted(result.teachers, key=lambda t: t.seed) if t.kind == "teacher"]
    return {
        "S1-kd-temperature": [Part.compared(f"KD (T={T:g}, alpha={alpha:g}) above hard labels", compare(kd, hard))],
        "T1-fitnet": [Part.compared("hint-trained student above plain student", compare(fitnet, plain)),
                      Part.compared("FitNet student above its teacher", compare(fitnet, teacher))],
    }


def runs_frame(result: KDResult) -> pd.DataFrame:
    """One row per trained student (settings as columns), without the curves."""
    return pd.DataFrame([{"experiment": r.experiment, "method": r.method, "seed": r.seed, **r.settings,
                          "val": r.val_accuracy, "test": r.test_accuracy, "epochs": r.epochs, "steps": r.steps,
                          "train images": r.train_images} for r in result.runs])


def _pm(values: Sequence[float]) -> str:
    values = [float(v) for v in values]
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "-"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


#: (val, test) accuracy of each seed of one row of a table.
_Pairs = list[tuple[float, float]]


def _pairs(runs: Iterable[Run]) -> _Pairs:
    return [(r.val_accuracy, r.test_accuracy) for r in sorted(runs, key=lambda r: r.seed)]


def _teacher_pairs(result: KDResult, kind: str) -> _Pairs:
    return [(t.val_accuracy, t.test_accuracy) for t in sorted(result.teachers, key=lambda t: t.seed) if t.kind == kind]


def _summary(groups: dict[str, _Pairs], extra: dict[str, dict[str, object]] | None = None) -> pd.DataFrame:
    rows = []
    for name, pairs in groups.items():
        if pairs:
            rows.append({"method": name, **(extra or {}).get(name, {}), "val accuracy": _pm([v for v, _ in pairs]),
                         "test accuracy": _pm([t for _, t in pairs]), "seeds": len(pairs)})
    return pd.DataFrame(rows)


def tables(result: KDResult) -> dict[str, pd.DataFrame]:
    """The chapter's tables (mean ± standard deviation over seeds of last-epoch accuracy).

    ``temperature``: the hard-label student and every (T, alpha) of the sweep, the chosen row marked;
    ``methods``: teacher, hard labels, KD at the chosen (T, alpha), logit regression, noisy teacher,
    ensemble; ``fitnet``: Table 1's analogue with parameter counts; ``softened``: Figure 1.6's data;
    ``comparisons``: differences of mean test accuracy with their standard errors
    (:func:`faceopt.stats.compare`); ``claims``: the parts of :func:`claim_parts`.
    """
    from faceopt.results import parts_table

    runs, ch = result.runs, result.chosen
    sweep: dict[str, _Pairs] = {"hard labels": _pairs(_select(runs, "temperature", "hard labels"))}
    marks: dict[str, dict[str, object]] = {"hard labels": {"T": "-", "alpha": 0.0, "chosen": ""}}
    for T in result.preset.temperatures:
        for alpha in result.preset.alphas:
            name = f"KD T={T:g} alpha={alpha:g}"
            sweep[name] = _pairs(_select(runs, "temperature", "KD", T=T, alpha=alpha))
            marks[name] = {"T": T, "alpha": alpha,
                           "chosen": "chosen on validation" if (T, alpha) == (ch["T"], ch["alpha"]) else ""}

    kd_name = f"student, KD (T={ch['T']:g}, alpha={ch['alpha']:g})"
    noisy_name = f"student, noisy teacher (sigma={ch['sigma']:g})"
    methods = {
        "teacher (whole pool)": _teacher_pairs(result, "teacher"),
        "student, hard labels": sweep["hard labels"],
        kd_name: _pairs(_select(runs, "temperature", "KD", T=ch["T"], alpha=ch["alpha"])),
        "student, logit regression": _pairs(_select(runs, "logits", "logit regression")),
        noisy_name: _pairs(_select(runs, "logits", "noisy teacher", sigma=ch["sigma"])),
        f"ensemble of {result.preset.ensemble_size} teachers": _teacher_pairs(result, "ensemble"),
        "student, ensemble KD": _pairs(_select(runs, "ensemble", "ensemble KD")),
    }
    joint_name = f"student, hints + KD (weight {ch['hint_weight']:g})"
    fit = {
        "teacher": _teacher_pairs(result, "teacher"),
        "student, plain": _pairs(_select(runs, "fitnet", "plain")),
        "student, KD": _pairs(_select(runs, "fitnet", "KD")),
        "student, hints then KD (FitNets)": _pairs(_select(runs, "fitnet", "hints then KD (FitNets)")),
        joint_name: _pairs(_select(runs, "fitnet", "hints + KD", hint_weight=ch["hint_weight"])),
    }
    p = result.params
    fit_extra: dict[str, dict[str, object]] = {
        name: {"params (M)": round((p["teacher"] if name == "teacher" else p["student"]) / 1e6, 4),
               "ratio to teacher": round(1.0 if name == "teacher" else p["student"] / p["teacher"], 3)}
        for name in fit} if p else {}

    ens_seeds = {r.seed for r in _select(runs, "ensemble", "ensemble KD")}
    single = _pairs(r for r in _select(runs, "temperature", "KD", T=ch["T"], alpha=ch["alpha"]) if r.seed in ens_seeds)
    to_compare = [
        ("KD above hard labels (claim S1)", methods[kd_name], methods["student, hard labels"]),
        ("logit regression above hard labels", methods["student, logit regression"], methods["student, hard labels"]),
        ("noisy teacher above logit regression", methods[noisy_name], methods["student, logit regression"]),
        ("ensemble KD above single-teacher KD (same seeds)", methods["student, ensemble KD"], single),
        ("FitNets above plain (claim T1)", fit["student, hints then KD (FitNets)"], fit["student, plain"]),
        ("FitNets above KD (what the hints add)", fit["student, hints then KD (FitNets)"], fit["student, KD"]),
        ("hints + KD above plain", fit[joint_name], fit["student, plain"]),
        ("FitNets student above its teacher (claim T1)", fit["student, hints then KD (FitNets)"], fit["teacher"]),
    ]
    comparisons = []
    for label, a, b in to_compare:
        if a and b:
            c = compare([t for _, t in a], [t for _, t in b])
            comparisons.append({"comparison": label, "difference": c.diff, "stderr": c.stderr,
                                "|difference| > 2 stderr": c.significant and min(c.n_a, c.n_b) > 1, "text": c.text()})

    softened = pd.DataFrame({f"T={T:g}": probs for T, probs in result.softened.items()})
    softened.index.name = f"class (image of a {result.figure_label})"
    return {
        "temperature": _summary(sweep, marks),
        "methods": _summary(methods),
        "fitnet": _summary(fit, fit_extra),
        "softened": softened,
        "comparisons": pd.DataFrame(comparisons),
        "claims": pd.DataFrame([{"claim": cid, **row} for cid, parts in claim_parts(result).items()
                                for row in parts_table(parts)]),
    }
