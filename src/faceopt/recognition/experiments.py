"""Thesis Chapter 3 (page 04) experiments: teacher, students under every distiller, Tables 5 to 7.

The pipeline (one direction, every step cached in a run directory so that a stopped run
resumes and a finished one is read back instead of retrained):

1. :func:`render_training_set` draws the training identities once
   (:class:`~faceopt.data.synthetic_faces.SyntheticFaces`) and keeps them as uint8 RGB
   tensors; the network sees ``(x - 127.5) / 127.5`` as in the thesis, with random
   horizontal flips.
2. :func:`train_teacher`: an ArcFace iResNet (``s = 64, m = 0.5``).
3. :func:`teacher_embeddings`: the teacher's embeddings of every training image and of its
   mirror image, computed once (the author precomputed them too).
4. :func:`train_student`: MobileFaceNet (ReLU, 512-d) with one distiller of
   :mod:`faceopt.recognition.distillers`, the same steps, batches and seed for every method.
5. :func:`evaluate_backbone`: LFW-like and AgeDB-like 10-fold verification and MegaFace-like
   rank-1 identification with distractors.

Batches are identity-balanced: an item of the training set is a *group* of ``group``
images of one identity, and a batch holds ``batch_groups`` groups, so every batch has
positives for the triplet methods and all methods see identical batches.

This module holds what decides the numbers; :mod:`faceopt.recognition.runs` caches them
(one JSON per run, in a folder named by :meth:`DistillPreset.key`, which hashes the preset
*and* the code of :data:`RUN_CODE`, so that changed code never reads old numbers).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from faceopt.config import seed_everything
from faceopt.data.pairs import PairSet, agedb_like_pairs, lfw_like_pairs, megaface_like
from faceopt.data.synthetic_faces import SyntheticFaces
from faceopt.fingerprint import code_fingerprint
from faceopt.io import atomic_torch_save
from faceopt.models import get_model
from faceopt.recognition.distill import margin_distillation_margins, teacher_target_cosines
from faceopt.recognition.distillers import make_distiller
from faceopt.recognition.evaluate import embed, pair_scores
from faceopt.recognition.heads import FaceRecognizer, MarginHead
from faceopt.recognition.losses import CombinedMarginLoss
from faceopt.recognition.metrics import rank1_identification, tar_at_far, verification_accuracy
from faceopt.train import TrainConfig, train

__all__ = [
    "TABLE5_METHODS", "TABLE7_METHODS", "METHODS", "HEADLINE_METHODS", "NO_TEACHER_METHODS", "ALIASES",
    "RUN_CODE", "DistillPreset", "PRESETS", "TrainingSet", "render_training_set", "build_teacher",
    "build_student", "train_teacher", "teacher_embeddings", "train_student", "EvalSets", "build_eval_sets",
    "evaluate_backbone", "margin_histogram", "training_throughput", "with_overrides",
]

#: Table 5 rows (students); the teacher is trained separately.
TABLE5_METHODS = ("arcface", "triplet_l2", "triplet_cos", "margin_kd_t4", "angular", "margin_distillation")
#: Table 7 ablation rows; ``copy_mi_freeze`` is MarginDistillation itself and is not trained twice.
TABLE7_METHODS = ("copy_mi_freeze", "copy_mi", "copy", "mi", "copy_freeze")
METHODS = TABLE5_METHODS + tuple(m for m in TABLE7_METHODS if m != "copy_mi_freeze")
#: Table 7 names that are the same run as a Table 5 name.
ALIASES = {"copy_mi_freeze": "margin_distillation"}
#: The comparison the chapter's headline rests on; :attr:`DistillPreset.headline_seeds` adds seeds to it.
HEADLINE_METHODS = ("arcface", "margin_distillation")
#: Students that never look at the teacher (they train while it trains).
NO_TEACHER_METHODS = ("arcface",)
#: Modules whose code decides a run's numbers: their fingerprint is part of :meth:`DistillPreset.key`.
#: Any change to them (comments and docstrings aside) makes the cached runs stale, so new
#: features belong in new modules (the model registry ``faceopt.models`` is left out for that).
RUN_CODE = (
    "faceopt.recognition.experiments", "faceopt.recognition.distillers", "faceopt.recognition.distill",
    "faceopt.recognition.heads", "faceopt.recognition.losses", "faceopt.recognition.evaluate",
    "faceopt.recognition.metrics", "faceopt.train", "faceopt.config", "faceopt.models.iresnet",
    "faceopt.models.mobilefacenet", "faceopt.data.synthetic_faces", "faceopt.data.pairs",
)


@dataclass(frozen=True)
class DistillPreset:
    """Everything that decides the numbers of one comparison (its hash names the run folder)."""

    name: str
    size: int                      # image side in pixels (the thesis: 112)
    identities: int                # training identities (classes of the margin head)
    images_per_identity: int
    difficulty: float              # nuisance of the training images
    spread: float                  # identity-trait spread (lower: identities more alike)
    teacher: str
    teacher_options: Mapping[str, Any]
    student: str
    student_options: Mapping[str, Any]
    teacher_steps: int
    student_steps: int
    batch_groups: int              # groups per batch; a batch has batch_groups * group images
    group: int = 4
    lr: float = 0.1
    milestones: tuple[float, ...] = (0.6, 0.85)   # fractions of the steps where lr /= 10
    warmup: float = 0.1            # fraction of the steps with a linear lr warm-up
    s: float = 64.0
    m: float = 0.5
    m_min: float = 0.2
    m_max: float = 0.5
    seeds: tuple[int, ...] = (0,)
    headline_seeds: tuple[int, ...] = ()   # more seeds for HEADLINE_METHODS only
    lfw_folds: int = 10
    lfw_pairs_per_fold: int = 600
    agedb_pairs_per_fold: int = 600
    megaface_probe_identities: int = 80
    megaface_probe_images: int = 5
    megaface_distractors: int = 1000
    eval_difficulty: float = 0.5
    data_seed: int = 0

    @property
    def batch_size(self) -> int:
        return self.batch_groups * self.group

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["teacher_options"], d["student_options"] = dict(self.teacher_options), dict(self.student_options)
        d["milestones"], d["seeds"] = list(self.milestones), list(self.seeds)
        d["headline_seeds"] = list(self.headline_seeds)
        return d

    def key(self) -> str:
        """Short hash of every field except the name and the seeds (more seeds extend a run),
        and of the code that trains and evaluates (:data:`RUN_CODE`)."""
        d = self.to_dict()
        for k in ("name", "seeds", "headline_seeds"):
            d.pop(k)
        d["code"] = code_fingerprint(RUN_CODE)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def runs(self) -> list[tuple[str, int]]:
        """Every ``(method, seed)`` of the comparison, the headline comparison first."""
        first = [(m, s) for s in (*self.seeds, *self.headline_seeds) for m in HEADLINE_METHODS]
        return first + [(m, s) for m in METHODS if m not in HEADLINE_METHODS for s in self.seeds]

    def milestone_steps(self, steps: int) -> tuple[int, ...]:
        return tuple(int(round(f * steps)) for f in self.milestones)


_NETS = dict(teacher="iresnet50", teacher_options={"width": 0.5}, student="mobilefacenet_relu512")
PRESETS: dict[str, DistillPreset] = {
    # about a minute on 2 CPU cores: the pipeline runs end to end, the numbers mean little
    "smoke": DistillPreset(
        name="smoke", size=32, identities=40, images_per_identity=8, difficulty=0.5, spread=1.0,
        teacher="iresnet18", teacher_options={"width": 0.25}, student="mobilefacenet_relu512",
        student_options={}, teacher_steps=40, student_steps=12, batch_groups=8, seeds=(0,),
        lfw_folds=2, lfw_pairs_per_fold=60, agedb_pairs_per_fold=60, megaface_probe_identities=20,
        megaface_probe_images=3, megaface_distractors=100),
    # the book's page; fits 90 minutes on 2 CPU cores, minutes on one GPU
    "full": DistillPreset(
        name="full", size=32, identities=500, images_per_identity=24, difficulty=0.5, spread=1.0,
        teacher=_NETS["teacher"], teacher_options=_NETS["teacher_options"], student=_NETS["student"],  # type: ignore[arg-type]
        student_options={}, teacher_steps=3000, student_steps=1000, batch_groups=32, seeds=(0, 1, 2),
        headline_seeds=(3, 4), lr=0.05, warmup=0.2, megaface_distractors=10_000),
}


# ----------------------------------------------------------------------------- data

class TrainingSet(Dataset):
    """Identity groups of uint8 RGB images; item ``k`` is ``group`` images of one identity.

    ``images`` ``[N, 3, S, S]`` uint8 with ``labels`` ``[N]`` sorted by identity, the same
    number of images per identity. ``teacher`` (optional) holds ``[N, D]`` embeddings of the
    images and ``teacher_flip`` of their mirror images; items then carry both.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, group: int,
                 teacher: torch.Tensor | None = None, teacher_flip: torch.Tensor | None = None) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, 3, S, S], got {images.dtype} {tuple(images.shape)}")
        counts = torch.bincount(labels)
        if len(labels) != len(images) or (counts != counts[0]).any() or (labels.diff() < 0).any():
            raise ValueError("labels must be sorted with the same number of images per identity")
        per = int(counts[0])
        if group < 1 or per % group:
            raise ValueError(f"group {group} must divide the {per} images per identity")
        if (teacher is None) != (teacher_flip is None):
            raise ValueError("give both teacher and teacher_flip embeddings, or neither")
        if teacher is not None and (len(teacher) != len(images) or teacher_flip.shape != teacher.shape):  # type: ignore[union-attr]
            raise ValueError("teacher embeddings must have one row per image")
        self.images, self.labels, self.group = images, labels, int(group)
        self.teacher, self.teacher_flip = teacher, teacher_flip
        self.num_classes = len(counts)

    def __len__(self) -> int:
        return len(self.images) // self.group

    def __getitem__(self, k: int) -> tuple[torch.Tensor, ...]:
        sl = slice(k * self.group, (k + 1) * self.group)
        if self.teacher is None:
            return self.images[sl], self.labels[sl]
        return self.images[sl], self.labels[sl], self.teacher[sl], self.teacher_flip[sl]  # type: ignore[index]


def render_training_set(preset: DistillPreset, cache_dir: str | os.PathLike | None = None,
                        workers: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images ``[N, 3, S, S]`` uint8 RGB and labels ``[N]`` (cached as ``.pt`` if asked)."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"train-{preset.key()}.pt"
        if path.exists():
            d = _load_cache(path)
            return d["images"], d["labels"]
    faces = SyntheticFaces(preset.identities, preset.images_per_identity, size=preset.size, seed=preset.data_seed,
                           difficulty=preset.difficulty, spread=preset.spread, workers=workers)
    chunks, labels = [], []
    for start in range(0, len(faces), 2048):
        x, y = faces.batch(np.arange(start, min(start + 2048, len(faces))))
        chunks.append(x.mul(127.5).add_(127.5).round_().clamp_(0, 255).to(torch.uint8))
        labels.append(y)
    images, lab = torch.cat(chunks), torch.cat(labels).long()
    if path is not None:
        atomic_torch_save({"images": images, "labels": lab}, path)
    return images, lab


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        d = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable cache is rebuilt by deleting it
        raise ValueError(f"{path}: unreadable cache ({type(exc).__name__}: {exc}); delete it to rebuild") from exc
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a faceopt cache file; delete it to rebuild")
    return d


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return x.float().sub_(127.5).div_(127.5)


def _flat(batch: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [t.reshape(-1, *t.shape[2:]) for t in batch]


def _loss_fn(net: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """Random mirror per image (global RNG, seeded and checkpointed by ``train``), then the loss."""
    x, y, *t = _flat(batch)
    flip = torch.rand(len(x), device=x.device) < 0.5
    x = _normalise(torch.where(flip[:, None, None, None], x.flip(3), x))
    if t:
        return net(x, y, torch.where(flip[:, None], t[1], t[0]))
    return net(x, y)


# ----------------------------------------------------------------------------- models

def build_teacher(preset: DistillPreset) -> tuple[nn.Module, MarginHead]:
    """Teacher backbone (512-d) and its class-centre head."""
    net = get_model(preset.teacher, input_size=preset.size, **dict(preset.teacher_options))
    return net, MarginHead(512, preset.identities)


def build_student(preset: DistillPreset) -> tuple[nn.Module, MarginHead]:
    """Student backbone (MobileFaceNet, ReLU, 512-d) and its head."""
    net = get_model(preset.student, input_size=(preset.size, preset.size), **dict(preset.student_options))
    return net, MarginHead(512, preset.identities)


def _config(preset: DistillPreset, steps: int, seed: int, device: str, ckpt: Path | None) -> TrainConfig:
    return TrainConfig(max_steps=steps, batch_size=preset.batch_groups, lr=preset.lr,
                       milestones=preset.milestone_steps(steps), seed=seed, device=device,
                       warmup_steps=int(round(preset.warmup * steps)),
                       checkpoint_dir=None if ckpt is None else str(ckpt),
                       checkpoint_every=max(50, steps // 10), log_every=max(1, steps // 50),
                       progress=True)  # fp32 on a GPU too: the margin loss needs fp32 cosines


def train_teacher(preset: DistillPreset, data: TrainingSet, *, seed: int = 0, device: str = "cpu",
                  checkpoint_dir: str | os.PathLike | None = None) -> tuple[nn.Module, MarginHead, dict[str, Any]]:
    """ArcFace teacher; returns backbone, head (eval mode, on the CPU) and training stats."""
    seed_everything(seed, threads=None)
    backbone, head = build_teacher(preset)
    model = FaceRecognizer(backbone, head, CombinedMarginLoss(preset.s, 1.0, preset.m, 0.0))
    res = train(model, data, _config(preset, preset.teacher_steps, seed, device,
                                     None if checkpoint_dir is None else Path(checkpoint_dir)), loss_fn=_loss_fn)
    model.cpu().eval()
    return backbone, head, _train_stats(res)


def _train_stats(res: Any) -> dict[str, Any]:
    return {"steps": res.steps, "final_loss": res.final_loss, "images_per_s": res.images_per_s,
            "wall_time_s": res.wall_time_s, "device": res.device,
            "loss_history": [[int(s), float(v)] for s, v in res.loss_history]}


@torch.no_grad()
def teacher_embeddings(backbone: nn.Module, images: torch.Tensor, *, device: str = "cpu",
                       batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw teacher embeddings of ``images`` (uint8) and of their mirror images, on the CPU."""
    backbone.eval().to(device)
    out, out_flip = [], []
    for start in range(0, len(images), batch_size):
        x = _normalise(images[start:start + batch_size].to(device))
        out.append(backbone(x).float().cpu())
        out_flip.append(backbone(x.flip(3)).float().cpu())
    backbone.cpu()
    return torch.cat(out), torch.cat(out_flip)


def train_student(method: str, preset: DistillPreset, data: TrainingSet, teacher_head: MarginHead | None, *,
                  seed: int = 0, device: str = "cpu", checkpoint_dir: str | os.PathLike | None = None
                  ) -> tuple[nn.Module, dict[str, Any]]:
    """A student trained with distiller ``method`` (Table 5 or 7 name); returns backbone and stats.

    Every method starts from the same initial weights for a given seed and sees the same
    batches (``data`` with or without teacher embeddings: the batches and mirror flips are
    the same). The ArcFace student needs no teacher (``teacher_head=None``). The triplet methods
    add their term to the ArcFace loss (``arcface_weight=1``) so that every row trains from
    scratch for the same budget (Feng et al. fine-tune an ArcFace student instead).
    """
    name = ALIASES.get(method, method)
    if teacher_head is None and name not in NO_TEACHER_METHODS:
        raise ValueError(f"{name} learns from the teacher: give teacher_head (only {NO_TEACHER_METHODS} train without)")
    seed_everything(seed, threads=None)
    backbone, head = build_student(preset)
    t_head = None
    if teacher_head is not None:
        t_head = MarginHead(teacher_head.embedding_size, teacher_head.num_classes)
        t_head.load_state_dict(teacher_head.state_dict())
    kw: dict[str, Any] = {"s": preset.s}
    if name.startswith("triplet"):
        kw.update(arcface_weight=1.0, m=preset.m, m_min=preset.m_min, m_max=preset.m_max)
    elif name in ("arcface", "angular", "margin_kd_t4"):
        kw["m"] = preset.m
    else:
        kw.update(m=preset.m, m_min=preset.m_min, m_max=preset.m_max)
    loss = make_distiller(name, head, t_head, **kw)
    model = FaceRecognizer(backbone, head, loss)
    res = train(model, data, _config(preset, preset.student_steps, seed, device,
                                     None if checkpoint_dir is None else Path(checkpoint_dir)), loss_fn=_loss_fn)
    model.cpu().eval()
    stats = _train_stats(res)
    stats["centres_equal_teacher"] = (teacher_head is not None
                                      and bool(torch.equal(head.weight.detach(), teacher_head.weight.detach())))
    return backbone, stats


# ----------------------------------------------------------------------------- evaluation

@dataclass
class EvalSets:
    """Rendered evaluation protocols: images as float tensors in [-1, 1], pairs as index arrays.

    ``lfw_pairs`` ``[P, 2]`` indexes ``lfw_images``; ``lfw_issame`` and ``lfw_fold`` have
    one entry per pair; the same for AgeDB-like. ``gallery_labels`` of distractors are < 0.
    """

    lfw_images: torch.Tensor
    lfw_pairs: np.ndarray
    lfw_issame: np.ndarray
    lfw_fold: np.ndarray
    agedb_images: torch.Tensor
    agedb_pairs: np.ndarray
    agedb_issame: np.ndarray
    agedb_fold: np.ndarray
    probe: torch.Tensor
    probe_labels: np.ndarray
    gallery: torch.Tensor
    gallery_labels: np.ndarray
    sizes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (``torch.load(weights_only=True)`` reads it back)."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvalSets":
        kw = {}
        for f in dataclasses.fields(cls):
            v = d[f.name]
            kw[f.name] = v.numpy() if f.name.endswith(("_pairs", "_issame", "_fold", "_labels")) else v
        return cls(**kw)


def build_eval_sets(preset: DistillPreset, cache_dir: str | os.PathLike | None = None,
                    workers: int | None = None) -> EvalSets:
    """LFW-like and AgeDB-like pairs and a MegaFace-like probe/gallery at the preset's size
    (cached as ``eval-<key>.pt`` in ``cache_dir`` if given; rendered on ``workers`` threads)."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"eval-{preset.key()}.pt"
        if path.exists():
            try:
                return EvalSets.from_dict(_load_cache(path))
            except KeyError as exc:
                raise ValueError(f"{path}: not an evaluation cache ({exc} missing); delete it to rebuild") from exc
    common = {"size": preset.size, "seed": preset.data_seed, "workers": workers}
    lfw = lfw_like_pairs({**common, "difficulty": preset.eval_difficulty}, folds=preset.lfw_folds,
                         pairs_per_fold=preset.lfw_pairs_per_fold, seed=preset.data_seed)
    agedb = agedb_like_pairs(common, folds=preset.lfw_folds, pairs_per_fold=preset.agedb_pairs_per_fold,
                             seed=preset.data_seed)
    probe, gallery = megaface_like(preset.megaface_probe_identities, preset.megaface_probe_images,
                                   preset.megaface_distractors, seed=preset.data_seed, size=preset.size,
                                   difficulty=preset.eval_difficulty, workers=workers)
    lfw_x, _ = lfw.faces.batch(np.arange(len(lfw.faces)))
    age_x, _ = agedb.faces.batch(np.arange(len(agedb.faces)))
    px, py = probe.tensors()
    gx, gy = gallery.tensors()

    def arrays(ps: PairSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.asarray(ps.pairs, dtype=np.int64).reshape(-1, 2), np.asarray(ps.issame, dtype=bool),
                np.asarray(ps.fold, dtype=np.int64))

    sets = EvalSets(lfw_x, *arrays(lfw), age_x, *arrays(agedb), px, py.numpy(), gx, gy.numpy(),
                    {"lfw_pairs": len(lfw), "agedb_pairs": len(agedb), "probes": len(px),
                     "gallery": len(gx), "distractors": int((gy < 0).sum())})
    if path is not None:
        atomic_torch_save(sets.to_dict(), path)
    return sets


def evaluate_backbone(backbone: nn.Module, sets: EvalSets, *, device: str = "cpu") -> dict[str, float]:
    """Verification accuracy (%, 10-fold mean and std) on both pair sets and rank-1 (%)."""
    backbone.eval().to(device)

    def emb(x: torch.Tensor) -> np.ndarray:
        return embed(lambda b: backbone(b.to(device)).float().cpu(), x, batch_size=512)

    out: dict[str, float] = {}
    for key in ("lfw", "agedb"):
        x, pairs = getattr(sets, f"{key}_images"), getattr(sets, f"{key}_pairs")
        issame, fold = getattr(sets, f"{key}_issame"), getattr(sets, f"{key}_fold")
        scores = pair_scores(emb(x), pairs)
        mean, std = verification_accuracy(scores, issame, folds=int(fold.max()) + 1)
        out[key], out[f"{key}_std"] = 100 * mean, 100 * std
        out[f"{key}_tar@far=1e-2"] = 100 * tar_at_far(scores[issame], scores[~issame], 1e-2)
    out["megaface_rank1"] = 100 * rank1_identification(emb(sets.probe), sets.probe_labels,
                                                       emb(sets.gallery), sets.gallery_labels)
    backbone.cpu()
    return out


def margin_histogram(teacher_head: MarginHead, t_emb: torch.Tensor, labels: torch.Tensor, *,
                     batch_size: int, m_min: float = 0.2, m_max: float = 0.5, bins: int = 40,
                     seed: int = 0) -> dict[str, list[float]]:
    """Histograms of the teacher cosines ``a_i`` and of the margins ``m_i`` over random batches."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    a_all, m_all = [], []
    for start in range(0, len(order) - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        a = teacher_target_cosines(teacher_head.weight, t_emb[idx], labels[idx])
        a_all.append(a)
        m_all.append(margin_distillation_margins(a, m_min, m_max))
    a, m = torch.cat(a_all).numpy(), torch.cat(m_all).numpy()  # type: ignore[assignment]
    a_counts, a_edges = np.histogram(a, bins=bins, range=(-1.0, 1.0))
    # a_i < 0 gives m_i < m_min: the margin range follows the data below m_min
    m_counts, m_edges = np.histogram(m, bins=bins, range=(min(float(m.min()), m_min), m_max))
    return {"a_counts": a_counts.tolist(), "a_edges": a_edges.tolist(), "m_counts": m_counts.tolist(),
            "m_edges": m_edges.tolist(), "a_mean": float(a.mean()), "m_mean": float(m.mean()),
            "m_below_0.3": float((m < 0.3).mean())}


def training_throughput(model_name: str, *, size: int, batch_size: int = 64, steps: int = 5,
                        options: Mapping[str, Any] | None = None, classes: int = 1000) -> float:
    """Training images/s of ``model_name`` + ArcFace head on this CPU (a benchmark, not a test;
    a fixed batch stepped a few times, so not a training and not :func:`faceopt.train.train`)."""
    side: Any = (size, size) if model_name.startswith("mobilefacenet") else size
    net = get_model(model_name, input_size=side, **dict(options or {}))
    model = FaceRecognizer(net, MarginHead(512, classes), CombinedMarginLoss(64.0, 1.0, 0.5, 0.0))
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    x = torch.randn(batch_size, 3, size, size)
    y = torch.randint(0, classes, (batch_size,))
    model.train()
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        opt.zero_grad()
        model(x, y).backward()
        opt.step()
    return batch_size * steps / (time.perf_counter() - t0)


def with_overrides(preset: DistillPreset, items: Iterable[str]) -> DistillPreset:
    """``preset`` with fields replaced from ``FIELD=JSON`` strings (a bare word is a string)."""
    names = {f.name for f in dataclasses.fields(DistillPreset)}
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in names:
            raise ValueError(f"bad override {item!r}: use FIELD=VALUE with FIELD one of {', '.join(sorted(names))}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        changes[key] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(preset, **changes)
