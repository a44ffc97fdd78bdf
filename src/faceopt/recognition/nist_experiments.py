"""Thesis Chapter 4's evaluation (page 06): what is trained, and how.

Two ArcFace teachers of the thesis's shape at reduced width (iResNet-100-like and iResNet-50-like,
the depth ratio of Tables 16-17) and the MobiFace student at the thesis's 9.11M parameters
(``mobiface_x2_swish_se_gdc``, see :mod:`faceopt.models.mobiface`), trained with ArcFace alone and
with MarginDistillation from the iResNet-100-like teacher, all on the same synthetic identities.

Training is :func:`faceopt.train.train` with bf16 autocast and channels-last on a GPU (fp32 on a
CPU): the backbone runs under autocast, the class-centre cosines and the margin loss in float32
(:func:`_loss_fn` leaves autocast for them), as insightface does. The student sees the same
batches and mirror flips under both losses; MarginDistillation reads the teacher's embeddings of
every training image and of its mirror image, computed once.

:mod:`faceopt.recognition.nist_eval` evaluates the trained networks and
:mod:`faceopt.recognition.nist_runs` caches the runs, keyed by :meth:`NistPreset.key` (the preset
and the code of :data:`NIST_CODE`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from faceopt.config import seed_everything
from faceopt.fingerprint import code_fingerprint
from faceopt.models import get_model
from faceopt.recognition.distillers import make_distiller
from faceopt.recognition.experiments import teacher_embeddings  # the same computation as page 04's
from faceopt.recognition.heads import FaceRecognizer, MarginHead
from faceopt.recognition.margin_warmup import MarginWarmupLoss
from faceopt.train import TrainConfig, train

__all__ = ["NIST_CODE", "TEACHERS", "STUDENT", "STUDENT_METHODS", "NistPreset", "build_backbone", "train_teacher",
           "train_student", "teacher_embeddings", "normalise"]

#: Modules whose code decides a run's numbers (hashed into :meth:`NistPreset.key`).
NIST_CODE = (
    "faceopt.recognition.nist_experiments", "faceopt.recognition.nist_eval", "faceopt.recognition.nist",
    "faceopt.recognition.metrics", "faceopt.recognition.distillers", "faceopt.recognition.distill",
    "faceopt.recognition.heads", "faceopt.recognition.losses", "faceopt.recognition.margin_warmup",
    "faceopt.recognition.experiments", "faceopt.train", "faceopt.config", "faceopt.models.iresnet",
    "faceopt.models.mobiface", "faceopt.models.mobilefacenet", "faceopt.data.synthetic_faces",
    "faceopt.data.pairs", "faceopt.data.conditions", "faceopt.data.doorphone_visits", "faceopt.data.doorbell",
    "faceopt.compress.int8", "faceopt.system.onnx_export",
)
#: Teacher name -> (zoo model, depth-preserving options); the width comes from the preset.
TEACHERS: dict[str, str] = {"resnet100": "iresnet100", "resnet50": "iresnet50"}
STUDENT = "mobiface_x2_swish_se_gdc"
#: Student losses: ArcFace alone (the thesis's "student") and MarginDistillation ("distilled").
STUDENT_METHODS = ("arcface", "margin_distillation")


@dataclass(frozen=True)
class NistPreset:
    """Everything that decides page 06's numbers (its hash names the run folder)."""

    name: str
    size: int                       # network input side (64 on a CPU page, 112 with a GPU)
    identities: int                 # training identities
    images_per_identity: int
    teacher_width: float            # width of both teachers (same depth ratio as the thesis)
    teacher_steps: int
    student_steps: int
    batch_groups: int               # groups of ``group`` images of one identity per batch
    group: int = 4
    difficulty: float = 0.5
    spread: float = 1.0
    lr: float = 0.1
    milestones: tuple[float, ...] = (0.6, 0.85)
    warmup: float = 0.1
    s: float = 64.0
    m: float = 0.5
    m_min: float = 0.2
    m_max: float = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    condition_identities: int = 300     # per NIST-like condition
    condition_images: int = 5
    residents: int = 20                 # door phone (thesis: one lab photo each, 500 distractors)
    visits_per_resident: int = 2
    negative_visitors: int = 40
    distractors: int = 500
    megaface_probe_identities: int = 80
    megaface_probe_images: int = 5
    megaface_distractors: int = 2000
    bootstrap: int = 200
    calibration_images: int = 256
    amp: bool = True
    data_seed: int = 0

    @property
    def batch_size(self) -> int:
        return self.batch_groups * self.group

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"], d["seeds"] = list(self.milestones), list(self.seeds)
        return d

    def key(self) -> str:
        """Short hash of every field except the name and the seeds, and of :data:`NIST_CODE`."""
        d = self.to_dict()
        for k in ("name", "seeds"):
            d.pop(k)
        d["code"] = code_fingerprint(NIST_CODE)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def milestone_steps(self, steps: int) -> tuple[int, ...]:
        return tuple(int(round(f * steps)) for f in self.milestones)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8 RGB images -> float32 in [-1, 1] (the insightface convention)."""
    return x.float().sub_(127.5).div_(127.5)


def build_backbone(model: str, preset: NistPreset) -> nn.Module:
    """A teacher (``resnet100``, ``resnet50``) or the student (``student``) for the preset's input size."""
    if model == "student":
        return get_model(STUDENT, input_size=(preset.size, preset.size))
    if model not in TEACHERS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join([*TEACHERS, 'student'])}")
    return get_model(TEACHERS[model], input_size=preset.size, width=preset.teacher_width)


def _loss_fn(net: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mirror each image at random, normalise, channels-last; backbone under the loop's autocast, head and
    loss in float32 (outside autocast)."""
    x, y, *teacher = (t.reshape(-1, *t.shape[2:]) for t in batch)
    flip = torch.rand(len(x), device=x.device) < 0.5
    x = normalise(torch.where(flip[:, None, None, None], x.flip(3), x)).contiguous(memory_format=torch.channels_last)
    emb = net.backbone(x)  # type: ignore[operator]
    with torch.autocast(device_type=x.device.type, enabled=False):
        emb = emb.float()
        if teacher:
            t = torch.where(flip[:, None], teacher[1], teacher[0]).float()
            return net.loss(emb, y, t)  # type: ignore[operator]
        if getattr(net.loss, "student_head", None) is not None:
            return net.loss(emb, y, None)  # type: ignore[operator]
        return net.loss(net.head(emb), y)  # type: ignore[operator]


def _config(preset: NistPreset, steps: int, seed: int, device: str, checkpoint_dir: str | Path | None) -> TrainConfig:
    return TrainConfig(max_steps=steps, batch_size=preset.batch_groups, lr=preset.lr,
                       milestones=preset.milestone_steps(steps), seed=seed, device=device,
                       warmup_steps=int(round(preset.warmup * steps)),
                       checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
                       checkpoint_every=max(50, steps // 5), log_every=max(1, steps // 50), progress=False,
                       amp=preset.amp)


def _stats(res: Any) -> dict[str, Any]:
    return {"steps": res.steps, "final_loss": res.final_loss, "wall_time_s": res.wall_time_s, "device": res.device,
            "loss_history": [[int(s), float(v)] for s, v in res.loss_history]}


def train_teacher(model: str, preset: NistPreset, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0,
                  device: str = "cpu", checkpoint_dir: str | Path | None = None
                  ) -> tuple[nn.Module, MarginHead, dict[str, Any]]:
    """An ArcFace teacher (``s``, ``m`` of the preset) on uint8 images; returns backbone, head (eval, CPU), stats."""
    from faceopt.recognition.experiments import TrainingSet  # the identity-group dataset of page 04

    seed_everything(seed, threads=None)
    backbone = build_backbone(model, preset)
    head = MarginHead(512, int(labels.max()) + 1)
    net = FaceRecognizer(backbone, head, MarginWarmupLoss(preset.s, preset.m, preset.m, warmup_steps=0))
    net = net.to(memory_format=torch.channels_last)
    res = train(net, TrainingSet(images, labels, preset.group),
                _config(preset, preset.teacher_steps, seed, device, checkpoint_dir), loss_fn=_loss_fn)
    net.cpu().eval()
    backbone.to(memory_format=torch.contiguous_format)
    stats = _stats(res)
    stats["images_per_s"] = res.steps * preset.batch_size / res.wall_time_s if res.wall_time_s else 0.0
    return backbone, head, stats


def train_student(method: str, preset: NistPreset, images: torch.Tensor, labels: torch.Tensor, *,
                  teacher_head: MarginHead | None = None, teacher: tuple[torch.Tensor, torch.Tensor] | None = None,
                  seed: int = 0, device: str = "cpu", checkpoint_dir: str | Path | None = None
                  ) -> tuple[nn.Module, dict[str, Any]]:
    """The student trained with ``arcface`` or ``margin_distillation`` (teacher head and the teacher's
    embeddings of the images and their mirrors needed); returns the backbone (eval, CPU) and stats."""
    from faceopt.recognition.experiments import TrainingSet

    if method not in STUDENT_METHODS:
        raise ValueError(f"unknown student method {method!r}; choose from {', '.join(STUDENT_METHODS)}")
    if method == "margin_distillation" and (teacher_head is None or teacher is None):
        raise ValueError("margin_distillation needs the teacher's head and its embeddings of the training images")
    seed_everything(seed, threads=None)
    backbone = build_backbone("student", preset)
    head = MarginHead(512, int(labels.max()) + 1)
    if method == "arcface":
        loss: nn.Module = MarginWarmupLoss(preset.s, preset.m, preset.m, warmup_steps=0)
        data = TrainingSet(images, labels, preset.group)
    else:
        t_head = MarginHead(teacher_head.embedding_size, teacher_head.num_classes)  # type: ignore[union-attr]
        t_head.load_state_dict(teacher_head.state_dict())  # type: ignore[union-attr]
        loss = make_distiller("margin_distillation", head, t_head, s=preset.s, m=preset.m, m_min=preset.m_min,
                              m_max=preset.m_max)
        data = TrainingSet(images, labels, preset.group, teacher[0], teacher[1])  # type: ignore[index]
    net = FaceRecognizer(backbone, head, loss).to(memory_format=torch.channels_last)
    res = train(net, data, _config(preset, preset.student_steps, seed, device, checkpoint_dir), loss_fn=_loss_fn)
    net.cpu().eval()
    backbone.to(memory_format=torch.contiguous_format)
    stats = _stats(res)
    stats["images_per_s"] = res.steps * preset.batch_size / res.wall_time_s if res.wall_time_s else 0.0
    return backbone, stats
