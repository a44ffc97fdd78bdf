"""A real two-dimensional run for the hypersphere pictures of thesis Figures 3.1 and 3.2.

With 2-D embeddings the hypersphere is a circle and every vector is an angle, so the effect
of the margin and of the copied class centres can be drawn exactly. A small conv net is
trained with ArcFace on a few synthetic identities (the teacher); a narrower one (the
student) is trained twice on the same batches: with plain ArcFace, and with
MarginDistillation (the teacher's centres copied and frozen, per-sample margins from the
teacher). :func:`angles` turns embeddings and centres into angles for a polar plot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from faceopt.config import seed_everything
from faceopt.data.synthetic_faces import SyntheticFaces
from faceopt.recognition.distillers import MarginDistillation, make_distiller
from faceopt.recognition.heads import FaceRecognizer, MarginHead
from faceopt.recognition.losses import CombinedMarginLoss

__all__ = ["TinyEmbedder", "PlanarRun", "planar_run", "angles", "class_spread"]


class TinyEmbedder(nn.Module):
    """Three strided conv blocks, global average pooling and a linear layer to ``dim``."""

    def __init__(self, width: int = 16, dim: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


@dataclass
class PlanarRun:
    """Unit embeddings ``[N, 2]`` of the training images and centres ``[C, 2]`` of each model."""

    labels: np.ndarray
    embeddings: dict[str, np.ndarray]
    centres: dict[str, np.ndarray]
    margins: np.ndarray          # MarginDistillation's m_i of every image (teacher-based)
    teacher_cos: np.ndarray      # a_i = cos(teacher embedding, teacher centre)


def _fit(model: FaceRecognizer, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int, seed: int,
         t_emb: torch.Tensor | None = None) -> None:
    """The 2-D figure's few hundred steps (one-cycle schedule, in-memory batches, milliseconds):
    a drawing aid, not an experiment, so it does not go through :func:`faceopt.train.train`."""
    g = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps, pct_start=0.2)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        loss = model(x[idx], y[idx], None if t_emb is None else t_emb[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()


def planar_run(identities: int = 6, images: int = 24, size: int = 32, steps: int = 300, batch: int = 64,
               s: float = 16.0, m: float = 0.5, seed: int = 0) -> PlanarRun:
    """Train the 2-D teacher, an ArcFace student and a MarginDistillation student (CPU, seeded).

    Also trains the teacher's net without a margin (``m = 0``, key ``"no_margin"``) on the
    same batches, to show what the margin does to the classes.

    ``s`` is lower than the thesis's 64 because a 2-D embedding of a few classes saturates
    the softmax at 64; the margin ``m`` and ``m_min = 0.2, m_max = 0.5`` are the thesis's.
    Runs on one thread: the nets are so small that a second thread only adds waiting.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _planar_run(identities, images, size, steps, batch, s, m, seed)
    finally:
        torch.set_num_threads(threads)


def _planar_run(identities: int, images: int, size: int, steps: int, batch: int, s: float, m: float,
                seed: int) -> PlanarRun:
    faces = SyntheticFaces(identities, images, size=size, seed=seed, difficulty=0.3)
    x, y = faces.batch(np.arange(len(faces)))
    seed_everything(seed, threads=None)
    teacher = FaceRecognizer(TinyEmbedder(16), t_head := MarginHead(2, identities),
                             CombinedMarginLoss(s, 1.0, m, 0.0))
    _fit(teacher, x, y, steps, batch, seed)
    with torch.no_grad():
        t_emb = teacher.backbone(x)
    out_emb = {"teacher": teacher.embed(x).detach().numpy()}
    out_c = {"teacher": nn.functional.normalize(t_head.weight.detach(), dim=1).numpy()}
    seed_everything(seed, threads=None)  # the same net and batches without the margin (normalised softmax)
    plain = FaceRecognizer(TinyEmbedder(16), p_head := MarginHead(2, identities), CombinedMarginLoss(s, 1.0, 0.0, 0.0))
    _fit(plain, x, y, steps, batch, seed)
    out_emb["no_margin"] = plain.embed(x).detach().numpy()
    out_c["no_margin"] = nn.functional.normalize(p_head.weight.detach(), dim=1).numpy()
    md: MarginDistillation | None = None
    for name in ("arcface", "margin_distillation"):
        seed_everything(seed + 1, threads=None)
        head = MarginHead(2, identities)
        t_copy = MarginHead(2, identities)
        t_copy.load_state_dict(t_head.state_dict())
        loss = make_distiller(name, head, t_copy, s=s, m=m)
        if name == "margin_distillation":
            assert isinstance(loss, MarginDistillation)
            md = loss
        student = FaceRecognizer(TinyEmbedder(4), head, loss)
        _fit(student, x, y, steps, batch, seed + 1, t_emb)
        out_emb[name] = student.embed(x).detach().numpy()
        out_c[name] = nn.functional.normalize(head.weight.detach(), dim=1).numpy()
    assert md is not None
    with torch.no_grad():
        a = torch.nn.functional.cosine_similarity(t_emb, t_head.weight[y], dim=1)
        margins = md.margins(y, t_emb)
    return PlanarRun(y.numpy(), out_emb, out_c, margins.numpy(), a.numpy())


def angles(vectors: np.ndarray) -> np.ndarray:
    """Angle in radians of each 2-D vector (rows)."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 2:
        raise ValueError(f"expected [N, 2] vectors, got shape {v.shape}")
    return np.arctan2(v[:, 1], v[:, 0])


def class_spread(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Mean angle in degrees between each unit embedding and its class's mean direction."""
    e = np.asarray(embeddings, dtype=np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    out = []
    for k in np.unique(labels):
        v = e[labels == k]
        c = v.mean(0)
        c /= np.linalg.norm(c)
        out.append(np.degrees(np.arccos(np.clip(v @ c, -1.0, 1.0))))
    return float(np.concatenate(out).mean())
