"""Thesis Chapter 3 experiments: teacher, students under every distiller, Tables 5 to 7.

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

:func:`run_comparison` runs the whole table for a :class:`DistillPreset` and writes one
JSON per run (``teacher.json``, ``students/<method>-seed<k>.json``); the chapter reads
them with :func:`load_runs`. ``faceopt distill`` (or ``python -m faceopt.recognition.experiments``)
does the same from a shell, e.g. several processes sharing one GPU::

    faceopt distill --preset full --run-dir runs/md --teacher-only
    faceopt distill --preset full --run-dir runs/md --methods arcface --seeds 0 &
    faceopt distill --preset full --run-dir runs/md --methods margin_distillation --seeds 0 &
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from faceopt.config import resolve_device, seed_everything
from faceopt.data.pairs import PairSet, agedb_like_pairs, lfw_like_pairs, megaface_like
from faceopt.data.synthetic_faces import SyntheticFaces
from faceopt.models import get_model
from faceopt.recognition.distill import margin_distillation_margins, teacher_target_cosines
from faceopt.recognition.distillers import make_distiller
from faceopt.recognition.evaluate import embed, pair_scores
from faceopt.recognition.heads import FaceRecognizer, MarginHead
from faceopt.recognition.losses import CombinedMarginLoss
from faceopt.recognition.metrics import rank1_identification, tar_at_far, verification_accuracy
from faceopt.results import Part
from faceopt.train import TrainConfig, train

__all__ = [
    "TABLE5_METHODS", "TABLE7_METHODS", "METHODS", "DistillPreset", "PRESETS", "TrainingSet",
    "render_training_set", "build_teacher", "build_student", "train_teacher", "teacher_embeddings",
    "train_student", "EvalSets", "build_eval_sets", "evaluate_backbone", "run_comparison",
    "load_runs", "collect", "comparison_part", "winner_parts", "with_overrides", "run_folder", "margin_histogram", "training_throughput", "main",
]

#: Table 5 rows (students); the teacher is trained separately.
TABLE5_METHODS = ("arcface", "triplet_l2", "triplet_cos", "margin_kd_t4", "angular", "margin_distillation")
#: Table 7 ablation rows; ``copy_mi_freeze`` is MarginDistillation itself and is not trained twice.
TABLE7_METHODS = ("copy_mi_freeze", "copy_mi", "copy", "mi", "copy_freeze")
METHODS = TABLE5_METHODS + tuple(m for m in TABLE7_METHODS if m != "copy_mi_freeze")
_ALIAS = {"copy_mi_freeze": "margin_distillation"}
FORMAT = "faceopt.margin_distillation/1"


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
        return d

    def key(self) -> str:
        """Short hash of every field except ``name`` and ``seeds`` (more seeds extend a run)."""
        d = self.to_dict()
        d.pop("name"), d.pop("seeds")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

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
        teacher=_NETS["teacher"], teacher_options=_NETS["teacher_options"], student=_NETS["student"],
        student_options={}, teacher_steps=3000, student_steps=1000, batch_groups=32, seeds=(0, 1, 2),
        lr=0.05, warmup=0.2, megaface_distractors=10_000),
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
        if teacher is not None and (len(teacher) != len(images) or teacher_flip.shape != teacher.shape):
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
        return self.images[sl], self.labels[sl], self.teacher[sl], self.teacher_flip[sl]


def render_training_set(preset: DistillPreset, cache_dir: str | os.PathLike | None = None,
                        workers: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images ``[N, 3, S, S]`` uint8 RGB and labels ``[N]`` (cached as ``.pt`` if asked)."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"train-{preset.key()}.pt"
        if path.exists():
            d = torch.load(path, weights_only=True)
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
        _atomic_save({"images": images, "labels": lab}, path)
    return images, lab


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


def train_student(method: str, preset: DistillPreset, data: TrainingSet, teacher_head: MarginHead, *,
                  seed: int = 0, device: str = "cpu", checkpoint_dir: str | os.PathLike | None = None
                  ) -> tuple[nn.Module, dict[str, Any]]:
    """A student trained with distiller ``method`` (Table 5 or 7 name); returns backbone and stats.

    Every method starts from the same initial weights for a given seed. The triplet methods
    add their term to the ArcFace loss (``arcface_weight=1``) so that every row trains from
    scratch for the same budget (Feng et al. fine-tune an ArcFace student instead).
    """
    name = _ALIAS.get(method, method)
    seed_everything(seed, threads=None)
    backbone, head = build_student(preset)
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
    stats["centres_equal_teacher"] = bool(torch.equal(head.weight.detach(), teacher_head.weight.detach()))
    return backbone, stats


# ----------------------------------------------------------------------------- evaluation

@dataclass
class EvalSets:
    """Rendered evaluation protocols (images as float tensors in [-1, 1])."""

    lfw: PairSet
    lfw_images: torch.Tensor
    agedb: PairSet
    agedb_images: torch.Tensor
    probe: torch.Tensor
    probe_labels: np.ndarray
    gallery: torch.Tensor
    gallery_labels: np.ndarray
    sizes: dict[str, int] = field(default_factory=dict)


def build_eval_sets(preset: DistillPreset) -> EvalSets:
    """LFW-like and AgeDB-like pairs and a MegaFace-like probe/gallery at the preset's size."""
    common = {"size": preset.size, "seed": preset.data_seed}
    lfw = lfw_like_pairs({**common, "difficulty": preset.eval_difficulty}, folds=preset.lfw_folds,
                         pairs_per_fold=preset.lfw_pairs_per_fold, seed=preset.data_seed)
    agedb = agedb_like_pairs(common, folds=preset.lfw_folds, pairs_per_fold=preset.agedb_pairs_per_fold,
                             seed=preset.data_seed)
    probe, gallery = megaface_like(preset.megaface_probe_identities, preset.megaface_probe_images,
                                   preset.megaface_distractors, seed=preset.data_seed, size=preset.size,
                                   difficulty=preset.eval_difficulty)
    lfw_x, _ = lfw.faces.batch(np.arange(len(lfw.faces)))
    age_x, _ = agedb.faces.batch(np.arange(len(agedb.faces)))
    px, py = probe.tensors()
    gx, gy = gallery.tensors()
    return EvalSets(lfw, lfw_x, agedb, age_x, px, py.numpy(), gx, gy.numpy(),
                    {"lfw_pairs": len(lfw), "agedb_pairs": len(agedb), "probes": len(px),
                     "gallery": len(gx), "distractors": int((gy < 0).sum())})


def evaluate_backbone(backbone: nn.Module, sets: EvalSets, *, device: str = "cpu") -> dict[str, float]:
    """Verification accuracy (%, 10-fold mean and std) on both pair sets and rank-1 (%)."""
    backbone.eval().to(device)

    def emb(x: torch.Tensor) -> np.ndarray:
        return embed(lambda b: backbone(b.to(device)).float().cpu(), x, batch_size=512)

    out: dict[str, float] = {}
    for key, pairs, x in (("lfw", sets.lfw, sets.lfw_images), ("agedb", sets.agedb, sets.agedb_images)):
        scores = pair_scores(emb(x), pairs.pairs)
        mean, std = verification_accuracy(scores, pairs.issame, folds=int(pairs.fold.max()) + 1)
        out[key], out[f"{key}_std"] = 100 * mean, 100 * std
        out[f"{key}_tar@far=1e-2"] = 100 * tar_at_far(scores[pairs.issame], scores[~pairs.issame], 1e-2)
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
    a, m = torch.cat(a_all).numpy(), torch.cat(m_all).numpy()
    a_counts, a_edges = np.histogram(a, bins=bins, range=(-1.0, 1.0))
    # a_i < 0 gives m_i < m_min: the margin range follows the data below m_min
    m_counts, m_edges = np.histogram(m, bins=bins, range=(min(float(m.min()), m_min), m_max))
    return {"a_counts": a_counts.tolist(), "a_edges": a_edges.tolist(), "m_counts": m_counts.tolist(),
            "m_edges": m_edges.tolist(), "a_mean": float(a.mean()), "m_mean": float(m.mean()),
            "m_below_0.3": float((m < 0.3).mean())}


# ----------------------------------------------------------------------------- driver

def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable result file ({exc}); delete it to recompute") from exc
    if d.get("format") != FORMAT:
        raise ValueError(f"{path}: format {d.get('format')!r}, expected {FORMAT!r}; delete it to recompute")
    return d


def run_folder(preset: DistillPreset, run_dir: str | os.PathLike) -> Path:
    """``run_dir/<preset name>-<hash>``: results of different settings never mix."""
    return Path(run_dir) / f"{preset.name}-{preset.key()}"


def _machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{os.cpu_count()} CPU cores, torch {torch.__version__}"


def run_comparison(preset: DistillPreset, run_dir: str | os.PathLike, *, methods: Iterable[str] = METHODS,
                   seeds: Iterable[int] | None = None, device: str = "auto", teacher_only: bool = False,
                   log: Any = print) -> Path:
    """Train and evaluate what is missing in ``run_folder(preset, run_dir)``; return that folder.

    Finished runs (their JSON exists) are skipped; an interrupted one resumes from its
    checkpoint under ``ckpt/``. The teacher is trained once (seed ``preset.data_seed``) and
    saved as ``teacher.pt`` (weights only, not meant for the repository).
    """
    dev = resolve_device(device)
    methods = [_ALIAS.get(m, m) for m in methods]
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    seeds = list(preset.seeds if seeds is None else seeds)
    folder = run_folder(preset, run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "config.json"
    if not cfg.exists():
        _atomic_json({"format": FORMAT, "preset": preset.to_dict()}, cfg)
    todo = [(m, s) for m in methods for s in seeds if not (folder / "students" / f"{m}-seed{s}.json").exists()]
    t_json, t_pt = folder / "teacher.json", folder / "teacher.pt"
    if t_json.exists() and (not todo or (teacher_only and t_pt.exists())):
        return folder
    t0 = time.perf_counter()
    images, labels = render_training_set(preset)
    log(f"rendered {len(images)} training images ({preset.identities} identities) in {time.perf_counter() - t0:.1f} s")
    data = TrainingSet(images, labels, preset.group)
    sets = None
    backbone, head = build_teacher(preset)
    if t_pt.exists():
        try:
            state = torch.load(t_pt, weights_only=True)
            backbone.load_state_dict(state["backbone"]), head.load_state_dict(state["head"])
        except (RuntimeError, KeyError, OSError, EOFError) as exc:
            raise ValueError(f"{t_pt}: not a teacher of this preset ({exc}); delete it to retrain") from exc
        backbone.eval()
        stats = None
    else:
        log(f"training the teacher ({preset.teacher}, {preset.teacher_steps} steps) on {dev}")
        backbone, head, stats = train_teacher(preset, data, seed=preset.data_seed, device=dev,
                                              checkpoint_dir=folder / "ckpt" / "teacher")
        _atomic_save({"backbone": backbone.state_dict(), "head": head.state_dict(), "train": stats}, t_pt)
    t_emb, t_flip = teacher_embeddings(backbone, images, device=dev)  # for the margins and the students
    if not t_json.exists() or stats is not None:
        stats = stats or state.get("train", {})
        sets = build_eval_sets(preset)
        metrics = evaluate_backbone(backbone, sets, device=dev)
        hist = margin_histogram(head, t_emb, labels, batch_size=preset.batch_size, m_min=preset.m_min,
                                m_max=preset.m_max)
        _atomic_json({"format": FORMAT, "method": "teacher", "model": preset.teacher, "seed": preset.data_seed,
                      "metrics": metrics, "train": stats, "margins": hist, "eval_sizes": sets.sizes,
                      "machine": _machine(dev)}, t_json)
        log(f"teacher: {_summary(metrics)}")
    if teacher_only or not todo:
        return folder
    sdata = TrainingSet(images, labels, preset.group, t_emb, t_flip)
    sets = sets or build_eval_sets(preset)
    for method, seed in todo:
        out = folder / "students" / f"{method}-seed{seed}.json"
        if out.exists():  # another process finished it meanwhile
            continue
        log(f"training {method} (seed {seed}, {preset.student_steps} steps) on {dev}")
        student, stats = train_student(method, preset, sdata, head, seed=seed, device=dev,
                                       checkpoint_dir=folder / "ckpt" / f"{method}-seed{seed}")
        metrics = evaluate_backbone(student, sets, device=dev)
        _atomic_json({"format": FORMAT, "method": method, "model": preset.student, "seed": seed,
                      "metrics": metrics, "train": stats, "machine": _machine(dev)}, out)
        log(f"{method} seed {seed}: {_summary(metrics)}")
    return folder


def _summary(m: Mapping[str, float]) -> str:
    return f"LFW-like {m['lfw']:.2f}%, AgeDB-like {m['agedb']:.2f}%, MegaFace-like rank-1 {m['megaface_rank1']:.2f}%"


def load_runs(folder: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The teacher's record and every student record (one per method and seed) of a run folder."""
    folder = Path(folder)
    if not (folder / "teacher.json").exists():
        raise FileNotFoundError(f"{folder}/teacher.json is missing: run run_comparison first")
    teacher = _read_json(folder / "teacher.json")
    students = [_read_json(p) for p in sorted((folder / "students").glob("*.json"))]
    return teacher, students


def collect(students: Iterable[Mapping[str, Any]], metric: str) -> dict[str, list[float]]:
    """``method -> [value of metric for each seed]`` (seed order) from student records."""
    out: dict[str, list[tuple[int, float]]] = {}
    for rec in students:
        out.setdefault(rec["method"], []).append((int(rec["seed"]), float(rec["metrics"][metric])))
    return {m: [v for _, v in sorted(vals)] for m, vals in out.items()}


def comparison_part(values: Mapping[str, Sequence[float]], better: str, worse: str, label: str = "") -> Part:
    """The part "``better`` is above ``worse``" of a claim, from their values over seeds."""
    from faceopt.stats import compare

    return Part.compared(f"{label}{better} > {worse}", compare(values[better], values[worse]))


def winner_parts(values: Mapping[str, Sequence[float]], target: str = "margin_distillation",
                 rivals: Sequence[str] = TABLE5_METHODS, label: str = "") -> list[Part]:
    """The parts of "``target`` beats every rival": one comparison over seeds per rival present."""
    return [comparison_part(values, target, r, label) for r in rivals if r != target and r in values]


def training_throughput(model_name: str, *, size: int, batch_size: int = 64, steps: int = 5,
                        options: Mapping[str, Any] | None = None, classes: int = 1000) -> float:
    """Training images/s of ``model_name`` + ArcFace head on this CPU (a benchmark, not a test)."""
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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="faceopt distill",
                                description="Train and evaluate the teacher and the students of thesis Tables 5-7.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    p.add_argument("--run-dir", required=True, help="folder for results, checkpoints and the teacher")
    p.add_argument("--methods", nargs="*", default=list(METHODS), help=f"subset of: {' '.join(METHODS)}")
    p.add_argument("--seeds", nargs="*", type=int, default=None, help="student seeds (default: the preset's)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--teacher-only", action="store_true", help="train and evaluate the teacher, then stop")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON",
                   help="override preset fields, e.g. --set identities=1000 difficulty=0.7 'teacher_options={\"width\": 1}'")
    a = p.parse_args(argv)
    try:
        preset = with_overrides(PRESETS[a.preset], a.set)
        folder = run_comparison(preset, a.run_dir, methods=a.methods, seeds=a.seeds, device=a.device,
                                teacher_only=a.teacher_only)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
