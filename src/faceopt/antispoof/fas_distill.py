"""Face anti-spoofing by feature-map distillation: does a ResNet teacher make a MobileNetV2 student generalise?

Claim FAS-fmd (a note on optimising face anti-spoofing models for mobile): *feature-map distillation from a
large teacher (ResNet) into a lightweight student (MobileNet) keeps detection accuracy and improves
generalisation to unseen spoof attacks.* The note gives no numbers, no architecture details and no protocol;
this module is **our reading** of it, and the check is ``ACER(student with feature-map KD) < ACER(student
alone)`` on a held-out attack type (:func:`~faceopt.antispoof.pad_data.protocol`), with "keeps accuracy" read
as the same comparison on the "seen" protocol.

One *cell* (:func:`run_cell`) is one protocol and one seed. On the protocol's training split it trains

* the **teacher**, torchvision's ``ResNet`` with ``BasicBlock`` in ResNet-18's layout ``[2, 2, 2, 2]``
  (:func:`build_teacher`). ``teacher_width`` scales its channels (64 is ResNet-18 proper, 64-128-256-512);
  the presets use 32 (about 2.8 M parameters, a quarter of ResNet-18's compute) so that the whole grid fits
  in half an hour on two CPU cores. The stem is torchvision's (7x7 stride 2, max pool): its stages then have
  strides 4, 8, 16, 32, exactly MobileNetV2's, so a student stage and a teacher stage of equal stride have
  equal spatial sizes at any input size and no map has to be resized;
* four **students**, torchvision's ``mobilenet_v2(width_mult=student_width, num_classes=2)``
  (:func:`build_student`), one per method of :data:`FAS_METHODS`:

  - ``student``: cross-entropy alone;
  - ``kd``: ``(1 - kd_alpha) * CE + kd_alpha * kd_loss(T=kd_temperature)`` (Hinton KD, reused from
    :func:`faceopt.compress.distill.kd_loss`);
  - ``hints``: ``CE + hint_weight * sum_stages hint_loss(adapter(student map), teacher map)``: feature-map
    distillation. Each stage of ``hint_stages`` (:data:`STAGES`, keyed by stride) gets an adapter,
    :class:`~faceopt.compress.distill.HintRegressor` with batch norm (1x1 convolution + BN, student channels
    -> teacher channels), trained *jointly* with the task loss in one stage. FitNets' two stages (hints first,
    then the task) would spend part of the equal budget on hints alone; the note speaks of distilling feature
    maps into a detector, which we read as the single-stage form of later feature distillation work;
  - ``hints_kd``: both terms, ``(1 - kd_alpha) * CE + kd_alpha * KD + hint_weight * hints``.

Equal budget and equal start: every student of a cell is built under the same seed (identical initial
weights, recorded as ``init_digest``), sees the same batches in the same order with the same horizontal flips
(``batch_digest``) and the same dropout masks, for ``student_epochs`` epochs. The teacher runs in eval mode; its
logits and hinted maps for every training image (both flips) are computed once per cell and shared by the
three distilled students (the same numbers a forward pass per batch would give). The adapters are dropped
after training: the deployed student is the plain MobileNetV2.

Evaluation: scores are softmax attack probabilities. The threshold is the equal-error threshold on the
*validation* split (:func:`~faceopt.antispoof.pad_data.equal_error_threshold`; in a held-out protocol the
validation split holds no held-out attack either), and the test split is scored at it with
:func:`~faceopt.antispoof.metrics.pad_metrics`, :func:`~faceopt.antispoof.metrics.pad_auc` and, where the test
set resolves it, BPCER at APCER 5 % (:func:`~faceopt.antispoof.metrics.bpcer_at_apcer_points`).
"""
from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F
from torchvision.models import mobilenet_v2
from torchvision.models.resnet import BasicBlock, ResNet

from faceopt.antispoof.metrics import bpcer_at_apcer_points, pad_auc, pad_metrics
from faceopt.antispoof.pad_data import PROTOCOLS, PadDataPreset, PadSet, PadSplits, as_tensor, equal_error_threshold, protocol
from faceopt.compress.distill import HintRegressor, hint_loss, kd_loss
from faceopt.data.spoof_attacks import ATTACK_TYPES, BONAFIDE
from faceopt.fingerprint import code_fingerprint

__all__ = ["FAS_CODE", "FAS_METHODS", "FAS_PRESETS", "STAGES", "FasPreset", "FeatureTap", "batch_schedule", "build_adapters",
           "build_student", "build_teacher", "hint_term", "parameter_count", "run_cell", "score", "state_digest",
           "teacher_targets", "train_student", "train_teacher"]

#: Modules whose code decides a cell's numbers (hashed into :meth:`FasPreset.key`).
FAS_CODE: tuple[str, ...] = (
    "faceopt.antispoof.fas_distill", "faceopt.antispoof.pad_data", "faceopt.data.spoof_attacks",
    "faceopt.data.synthetic_faces", "faceopt.antispoof.metrics", "faceopt.compress.distill",
)

#: The student methods, all trained with the same initial weights, batches and epochs.
FAS_METHODS: tuple[str, ...] = ("student", "kd", "hints", "hints_kd")

#: Hint stages by stride: (student module, teacher module). MobileNetV2's ``features.3``, ``.6``, ``.13`` and
#: ``.17`` end its stride-4, -8, -16 and -32 groups of inverted residuals; ResNet's ``layer1``..``layer4`` end its.
STAGES: dict[str, tuple[str, str]] = {
    "stride4": ("features.3", "layer1"),
    "stride8": ("features.6", "layer2"),
    "stride16": ("features.13", "layer3"),
    "stride32": ("features.17", "layer4"),
}


@dataclass(frozen=True)
class FasPreset:
    """Everything that decides a grid of cells: data, model sizes, training budget, loss weights, seeds, protocols."""

    name: str
    data: PadDataPreset = field(default_factory=PadDataPreset)
    teacher_width: int = 32
    """Channels of the ResNet-18 teacher's stem and first stage (64: torchvision's ResNet-18)."""
    student_width: float = 0.5
    """MobileNetV2 width multiplier of the students."""
    teacher_epochs: int = 8
    student_epochs: int = 12
    batch: int = 64
    lr: float = 3e-3
    kd_temperature: float = 4.0
    kd_alpha: float = 0.5
    hint_weight: float = 1.0
    hint_stages: tuple[str, ...] = ("stride8", "stride16")
    seeds: tuple[int, ...] = (0, 1, 2)
    protocols: tuple[str | None, ...] = PROTOCOLS

    def __post_init__(self) -> None:
        for name in ("teacher_width", "teacher_epochs", "student_epochs", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"FasPreset.{name} must be a positive integer, got {value!r}")
        if self.batch < 2:
            raise ValueError(f"FasPreset.batch must be at least 2 (batch norm), got {self.batch}")
        if not self.student_width > 0 or not self.lr > 0 or not self.kd_temperature > 0 or self.hint_weight < 0:
            raise ValueError("student_width, lr and kd_temperature must be > 0 and hint_weight >= 0")
        if not 0.0 <= self.kd_alpha <= 1.0:
            raise ValueError(f"FasPreset.kd_alpha must lie in [0, 1], got {self.kd_alpha}")
        if not self.hint_stages or any(s not in STAGES for s in self.hint_stages) \
                or len(set(self.hint_stages)) != len(self.hint_stages):
            raise ValueError(f"FasPreset.hint_stages must be distinct names of {', '.join(STAGES)}, got {self.hint_stages}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"FasPreset.seeds must be distinct and at least one, got {self.seeds}")
        if not self.protocols or any(p is not None and p not in ATTACK_TYPES for p in self.protocols):
            raise ValueError(f"FasPreset.protocols must be None or attack types of {ATTACK_TYPES}, got {self.protocols}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values."""
        d = asdict(self)
        for k in ("hint_stages", "seeds", "protocols"):
            d[k] = list(d[k])
        return d

    def key(self) -> str:
        """Short hash of every setting except the name, the seeds and the protocols (which pick cells, not
        their numbers), and of :data:`FAS_CODE`'s fingerprint."""
        d = self.to_dict()
        for k in ("name", "seeds", "protocols"):
            d.pop(k)
        d["code"] = code_fingerprint(FAS_CODE)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


FAS_PRESETS: dict[str, FasPreset] = {
    # one cell of every method in a few seconds: every step runs, the numbers mean nothing
    "smoke": FasPreset(name="smoke", data=PadDataPreset(size=32, train_faces=6, val_faces=4, test_faces=5, per_face=1),
                       teacher_width=16, student_width=0.25, teacher_epochs=1, student_epochs=1, batch=16,
                       seeds=(0,), protocols=(None, "print")),
    # 5 protocols x 3 seeds at 64 px. Settings chosen on the validation split of seed 0 (seen protocol), never on
    # test: the teacher reaches validation ACER 0.24 after 8 epochs at 48 px, 0.14 after 20 and 0.10 after 12 at
    # 64 px; the student alone stays at chance after 12 epochs at 64 px (0.45) and reaches 0.14 after 20. One
    # thread of the 2-core machine: a seen cell about 5 minutes, a held-out cell about 4, the grid about an hour
    # (two processes, one per half of the seeds, halve the wait).
    "full": FasPreset(name="full", data=PadDataPreset(size=64, train_faces=120, val_faces=40, test_faces=60, per_face=2),
                      teacher_epochs=12, student_epochs=20),
}


# --------------------------------------------------------------------------- models


def build_teacher(width: int = 64, num_classes: int = 2) -> ResNet:
    """torchvision's ``ResNet(BasicBlock, [2, 2, 2, 2])`` with every channel count scaled by ``width / 64``.

    ``width=64`` is ResNet-18 itself. torchvision's ``ResNet`` fixes the widths 64-128-256-512, so for another
    width the stage builder is asked for scaled planes and the stem and the classifier are rebuilt (initialised
    as torchvision initialises them); the blocks, the stem's layout and the strides stay torchvision's.
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if width == 64:
        return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    return _ScaledResNet(width, num_classes)


class _ScaledResNet(ResNet):
    """ResNet-18's layout with stage widths ``width * (1, 2, 4, 8)`` (see :func:`build_teacher`)."""

    def __init__(self, width: int, num_classes: int) -> None:
        self._width = width
        self._stages_made = 0
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = nn.BatchNorm2d(width)
        self.fc = nn.Linear(8 * width * BasicBlock.expansion, num_classes)

    def _make_layer(self, block: type[BasicBlock], planes: int, blocks: int,
                    stride: int = 1, dilate: bool = False) -> nn.Sequential:
        if self._stages_made == 0:
            self.inplanes = self._width  # the stem's output, rebuilt at this width after ResNet.__init__
        self._stages_made += 1
        return super()._make_layer(block, planes * self._width // 64, blocks, stride, dilate)


def build_student(width_mult: float, num_classes: int = 2) -> nn.Module:
    """torchvision's ``mobilenet_v2(width_mult=width_mult, num_classes=num_classes)``, untrained."""
    return mobilenet_v2(width_mult=width_mult, num_classes=num_classes)


def parameter_count(model: nn.Module) -> int:
    """Number of parameters (batch-norm buffers excluded)."""
    return int(sum(p.numel() for p in model.parameters()))


def state_digest(model: nn.Module) -> str:
    """Short SHA-256 of a model's parameters and buffers, in state-dict order: equal digests, equal weights."""
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class FeatureTap:
    """Forward hooks that keep the outputs of named submodules of ``model`` in :attr:`maps` (last call)."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise ValueError(f"no submodule(s) {missing} in {type(model).__name__}")
        self.maps: dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._keep(n)) for n in names]

    def _keep(self, name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            self.maps[name] = output
        return hook

    def remove(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []


def _map_shapes(model: nn.Module, names: Sequence[str], size: int) -> dict[str, tuple[int, int, int]]:
    tap = FeatureTap(model, names)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
        return {n: (int(tap.maps[n].shape[1]), int(tap.maps[n].shape[2]), int(tap.maps[n].shape[3])) for n in names}
    finally:
        tap.remove()
        model.train(was_training)


def build_adapters(student: nn.Module, teacher: nn.Module, stages: Sequence[str], size: int) -> nn.ModuleDict:
    """One :class:`HintRegressor` (1x1 conv + BN) per stage, from the student map's channels to the teacher's.

    Refuses stages whose student and teacher maps differ in spatial size at input ``size`` (with the strides
    of :data:`STAGES` they never do)."""
    s_shapes = _map_shapes(student, [STAGES[s][0] for s in stages], size)
    t_shapes = _map_shapes(teacher, [STAGES[s][1] for s in stages], size)
    adapters = nn.ModuleDict()
    for s in stages:
        (cs, hs, ws), (ct, ht, wt) = s_shapes[STAGES[s][0]], t_shapes[STAGES[s][1]]
        if (hs, ws) != (ht, wt):
            raise ValueError(f"stage {s}: student map {hs}x{ws} and teacher map {ht}x{wt} differ at input {size}")
        adapters[s] = HintRegressor(cs, ct, batch_norm=True)
    return adapters


def hint_term(adapters: nn.ModuleDict, student_maps: dict[str, torch.Tensor],
              teacher_maps: dict[str, torch.Tensor]) -> torch.Tensor:
    """``sum_stage hint_loss(adapter(student map), teacher map)``; both dicts keyed by stage name."""
    terms = [hint_loss(adapters[s](student_maps[s], size=tuple(teacher_maps[s].shape[-2:])), teacher_maps[s])
             for s in adapters]
    return torch.stack(terms).sum()


# --------------------------------------------------------------------------- training


def _seed(seed: int, tag: str) -> int:
    """A seed for one purpose of one cell seed (so the teacher's and the students' streams differ)."""
    return zlib.crc32(f"{tag}:{seed}".encode())


def batch_schedule(n: int, epochs: int, batch: int, seed: int) -> list[tuple[NDArray[np.int64], NDArray[np.bool_]]]:
    """``(indices, flip)`` of every step: a fresh permutation per epoch cut into ``ceil(n / batch)`` nearly equal
    batches (none smaller than half a batch, so batch norm never sees a single image), and a horizontal flip per
    image with probability one half."""
    if n < 2:
        raise ValueError(f"need at least two training images, got {n}")
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(epochs):
        perm = rng.permutation(n)
        for idx in np.array_split(perm, max(1, -(-n // batch))):
            steps.append((idx.astype(np.int64), rng.random(len(idx)) < 0.5))
    return steps


def _schedule_digest(steps: Sequence[tuple[NDArray[np.int64], NDArray[np.bool_]]]) -> str:
    h = hashlib.sha256()
    for idx, flip in steps:
        h.update(idx.tobytes())
        h.update(flip.tobytes())
    return h.hexdigest()[:16]


def _batch(x: torch.Tensor, idx: NDArray[np.int64], flip: NDArray[np.bool_]) -> torch.Tensor:
    xb = x[torch.from_numpy(idx)]
    f = torch.from_numpy(flip)
    xb[f] = xb[f].flip(-1)
    return xb


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _optimiser(params: Any, lr: float, steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt = torch.optim.Adam(params, lr=lr)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))


def train_teacher(preset: FasPreset, train: PadSet, seed: int) -> tuple[ResNet, dict[str, Any]]:
    """The cell's teacher, trained with cross-entropy for ``teacher_epochs``; returned in eval mode."""
    x, y = as_tensor(train.images), torch.from_numpy(train.labels.astype(np.int64))
    torch.manual_seed(_seed(seed, "teacher-init"))
    model = build_teacher(preset.teacher_width)
    steps = batch_schedule(len(y), preset.teacher_epochs, preset.batch, _seed(seed, "teacher-batches"))
    opt, sched = _optimiser(model.parameters(), preset.lr, len(steps))
    t0 = time.perf_counter()
    model.train()
    losses = []
    for idx, flip in steps:
        loss = F.cross_entropy(model(_batch(x, idx, flip)), y[torch.from_numpy(idx)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach().item())
    seconds = time.perf_counter() - t0
    per_epoch = len(steps) // preset.teacher_epochs
    return model.eval(), {"train_seconds": seconds, "epochs": preset.teacher_epochs, "steps": len(steps),
                          "final_loss": float(np.mean(losses[-per_epoch:]))}


@torch.no_grad()
def teacher_targets(teacher: nn.Module, images: torch.Tensor, stages: Sequence[str], chunk: int = 256
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The eval-mode teacher's logits ``[2, N, classes]`` and hinted maps ``{stage: [2, N, C, H, W]}`` of every
    image, unflipped (index 0) and flipped horizontally (index 1)."""
    teacher.eval()
    tap = FeatureTap(teacher, [STAGES[s][1] for s in stages])
    logits: list[list[torch.Tensor]] = [[], []]
    maps: dict[str, list[list[torch.Tensor]]] = {s: [[], []] for s in stages}
    try:
        for f in (0, 1):
            for start in range(0, len(images), chunk):
                xb = images[start:start + chunk]
                logits[f].append(teacher(xb.flip(-1) if f else xb))
                for s in stages:
                    maps[s][f].append(tap.maps[STAGES[s][1]])
    finally:
        tap.remove()
    return (torch.stack([torch.cat(v) for v in logits]),
            {s: torch.stack([torch.cat(v) for v in maps[s]]) for s in stages})


def train_student(method: str, preset: FasPreset, train: PadSet, seed: int,
                  targets: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None,
                  teacher: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """One student of :data:`FAS_METHODS`, returned in eval mode with its training statistics.

    ``targets`` are :func:`teacher_targets` of ``train``'s images for ``preset.hint_stages`` (needed by every
    method but ``student``); ``teacher`` is only used to size the adapters. The initial weights, the batches,
    the flips and the dropout masks depend on ``seed`` alone, not on the method.
    """
    if method not in FAS_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(FAS_METHODS)}")
    use_kd, use_hints = method in ("kd", "hints_kd"), method in ("hints", "hints_kd")
    if (use_kd or use_hints) and targets is None:
        raise ValueError(f"method {method!r} needs the teacher's targets")
    x, y = as_tensor(train.images), torch.from_numpy(train.labels.astype(np.int64))
    torch.manual_seed(_seed(seed, "student-init"))
    model = build_student(preset.student_width)
    init_digest = state_digest(model)
    adapters = nn.ModuleDict()
    if use_hints:
        if teacher is None:
            raise ValueError(f"method {method!r} needs the teacher to size its adapters")
        torch.manual_seed(_seed(seed, "adapter-init"))
        adapters = build_adapters(model, teacher, preset.hint_stages, preset.data.size)
    steps = batch_schedule(len(y), preset.student_epochs, preset.batch, _seed(seed, "student-batches"))
    opt, sched = _optimiser([*model.parameters(), *adapters.parameters()], preset.lr, len(steps))
    tap = FeatureTap(model, [STAGES[s][0] for s in preset.hint_stages]) if use_hints else None
    torch.manual_seed(_seed(seed, "student-dropout"))
    a = preset.kd_alpha if use_kd else 0.0
    t0 = time.perf_counter()
    model.train()
    adapters.train()
    losses, hints = [], []
    try:
        for idx, flip in steps:
            logits = model(_batch(x, idx, flip))
            loss = (1.0 - a) * F.cross_entropy(logits, y[torch.from_numpy(idx)])
            if use_kd or use_hints:
                assert targets is not None
                i, f = torch.from_numpy(idx), torch.from_numpy(flip.astype(np.int64))
                if use_kd:
                    loss = loss + a * kd_loss(logits, targets[0][f, i], preset.kd_temperature)
                if use_hints:
                    assert tap is not None
                    h = hint_term(adapters, {s: tap.maps[STAGES[s][0]] for s in preset.hint_stages},
                                  {s: targets[1][s][f, i] for s in preset.hint_stages})
                    loss = loss + preset.hint_weight * h
                    hints.append(h.detach().item())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.detach().item())
    finally:
        if tap is not None:
            tap.remove()
    seconds = time.perf_counter() - t0
    per_epoch = len(steps) // preset.student_epochs
    stats: dict[str, Any] = {"train_seconds": seconds, "epochs": preset.student_epochs, "steps": len(steps),
                             "final_loss": float(np.mean(losses[-per_epoch:])), "init_digest": init_digest,
                             "batch_digest": _schedule_digest(steps), "adapter_params": parameter_count(adapters),
                             "final_hint_loss": float(np.mean(hints[-per_epoch:])) if hints else None}
    return model.eval(), stats


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def score(model: nn.Module, images: NDArray[np.uint8], chunk: int = 256) -> NDArray[np.float64]:
    """Attack probabilities (softmax of the eval-mode model, in float64) of uint8 BGR images."""
    model.eval()
    x = as_tensor(images)
    out = [torch.softmax(model(x[s:s + chunk]).double(), dim=1)[:, 1] for s in range(0, len(x), chunk)]
    return torch.cat(out).numpy().astype(np.float64)


def _split_scores(scores: NDArray[np.float64], pad: PadSet) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.str_]]:
    live = pad.types == BONAFIDE
    return scores[live], scores[~live], pad.types[~live]


def _evaluate(model: nn.Module, splits: PadSplits) -> dict[str, Any]:
    """Threshold at validation's equal-error point, then test metrics at it."""
    vb, va, vt = _split_scores(score(model, splits.val.images), splits.val)
    threshold = equal_error_threshold(vb, va, vt)
    val = pad_metrics(vb, va, vt, threshold)
    tb, ta, tt = _split_scores(score(model, splits.test.images), splits.test)
    m = pad_metrics(tb, ta, tt, threshold)
    try:
        bpcer20: float | None = bpcer_at_apcer_points(tb, ta, tt, targets=(0.05,))[0.05]["bpcer"]
    except ValueError:  # too few attacks of a type to resolve APCER 5 %
        bpcer20 = None
    return {"threshold": float(threshold), "val_acer": float(val["acer"]), "apcer": float(m["apcer"]),
            "apcer_per_type": {str(k): float(v) for k, v in m["apcer_per_type"].items()}, "bpcer": float(m["bpcer"]),
            "acer": float(m["acer"]), "worst_type": str(m["worst_type"]), "auc": pad_auc(tb, ta),
            "bpcer_at_apcer5": bpcer20, "test_bonafide": int(m["bonafide"]),
            "test_attacks": {str(k): int(v) for k, v in m["attacks_per_type"].items()}}


def run_cell(preset: FasPreset, splits: PadSplits, held_out: str | None, seed: int, *,
             threads: int | None = 1) -> dict[str, Any]:
    """Train the teacher and the four students on ``protocol(splits, held_out)`` and evaluate each.

    Returns ``{"held_out", "seed", "counts": {split: {type: n}}, "teacher_targets_seconds", "models": {name:
    {...}}}`` with ``name`` in ``("teacher", *FAS_METHODS)``; each model's entry holds ``params``,
    ``train_seconds``, the training statistics, the validation ``threshold`` and ``val_acer``, and the test
    ``apcer`` (worst type), ``apcer_per_type``, ``bpcer``, ``acer``, ``auc`` and ``bpcer_at_apcer5`` (``None``
    when the test set cannot resolve it). Plain JSON values only. ``threads``: torch's CPU threads meanwhile
    (``None`` leaves them).
    """
    cell = protocol(splits, held_out)
    with _threads(threads):
        models: dict[str, dict[str, Any]] = {}
        teacher, stats = train_teacher(preset, cell.train, seed)
        models["teacher"] = {"params": parameter_count(teacher), **stats, **_evaluate(teacher, cell)}
        t0 = time.perf_counter()
        targets = teacher_targets(teacher, as_tensor(cell.train.images), preset.hint_stages)
        target_seconds = time.perf_counter() - t0
        for method in FAS_METHODS:
            student, stats = train_student(method, preset, cell.train, seed, targets, teacher)
            models[method] = {"params": parameter_count(student), **stats, **_evaluate(student, cell)}
    return {"held_out": held_out, "seed": int(seed),
            "counts": {k: getattr(cell, k).counts() for k in ("train", "val", "test")},
            "teacher_targets_seconds": target_seconds, "models": models}
