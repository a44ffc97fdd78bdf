"""Student training losses compared in thesis Chapter 3 (page 04; Tables 5 and 7).

Every distiller is an ``nn.Module`` with ``loss(student_emb, labels, teacher_emb) -> scalar``
(``forward`` is the same). ``student_emb`` are the student's raw embeddings ``[B, D]``,
``teacher_emb`` the teacher's ``[B, D]`` for the same images (precomputed, or computed on
the fly, e.g. by :class:`~faceopt.recognition.heads.FaceRecognizer`). The teacher side is
always detached: no gradient reaches ``teacher_emb`` or the teacher head, whose parameters
are frozen (``requires_grad=False``) on construction.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from faceopt.recognition.distill import (
    margin_distillation_margins,
    teacher_target_cosines,
    triplet_distillation_margins,
)
from faceopt.recognition.heads import MarginHead
from faceopt.recognition.losses import CombinedMarginLoss

__all__ = [
    "Distiller",
    "ArcFaceStudent",
    "MarginDistillation",
    "TripletDistillation",
    "AngularDistillation",
    "MarginKD",
    "DISTILLER_NAMES",
    "make_distiller",
]


def _frozen(head: MarginHead) -> MarginHead:
    head.requires_grad_(False)
    return head


def _check_pair(student_emb: torch.Tensor, teacher_emb: torch.Tensor | None) -> torch.Tensor:
    if teacher_emb is None:
        raise ValueError("this distiller needs teacher embeddings (teacher_emb is None)")
    if teacher_emb.shape[0] != student_emb.shape[0]:
        raise ValueError(
            f"student and teacher batches differ: {tuple(student_emb.shape)} vs {tuple(teacher_emb.shape)}"
        )
    return teacher_emb.detach()


class Distiller(nn.Module):
    """Base class: ``forward`` = :meth:`loss`; ``needs_teacher`` says if ``teacher_emb`` is used."""

    needs_teacher: bool = True

    def loss(
        self, student_emb: torch.Tensor, labels: torch.Tensor, teacher_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, student_emb: torch.Tensor, labels: torch.Tensor, teacher_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.loss(student_emb, labels, teacher_emb)


class ArcFaceStudent(Distiller):
    """Baseline (Table 5, "ArcFace"): ``CombinedMarginLoss(s, 1, m, 0)``; ignores the teacher."""

    needs_teacher = False

    def __init__(self, student_head: MarginHead, s: float = 64.0, m: float = 0.5) -> None:
        super().__init__()
        self.student_head = student_head
        self.arcface = CombinedMarginLoss(s, 1.0, m, 0.0)

    def loss(
        self, student_emb: torch.Tensor, labels: torch.Tensor, teacher_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.arcface(self.student_head(student_emb), labels)


class MarginDistillation(Distiller):
    """MarginDistillation (thesis section 3.4): teacher centres + per-sample ArcFace margins.

    1. ``copy_centres``: ``W_S = W_T`` at construction (``freeze_centres`` makes ``W_S``
       non-trainable so it stays equal to ``W_T``).
    2. ``adaptive_margin``: ``a_i = cos(W_T[y_i], x_T_i)`` (formula 3.1), then
       ``m_i = (m_max - m_min) / a_max * a_i + m_min`` with ``a_max`` the batch maximum
       (:func:`~faceopt.recognition.distill.margin_distillation_margins`); the loss is
       ``CombinedMarginLoss(s, 1, m_i, 0)``. The thesis text calls ``a_i`` an "angle", but
       formula 3.1 (and the stated ordering, "closer to the centre -> larger m_i") is the
       cosine; the cosine is implemented. With ``adaptive_margin=False`` the fixed ArcFace
       margin ``m`` (0.5) is used and the teacher embeddings are ignored.

    The three switches give the Table 7 ablation rows. The teacher head is frozen.
    """

    def __init__(
        self,
        student_head: MarginHead,
        teacher_head: MarginHead,
        s: float = 64.0,
        m_min: float = 0.2,
        m_max: float = 0.5,
        copy_centres: bool = True,
        adaptive_margin: bool = True,
        freeze_centres: bool = True,
        m: float = 0.5,
    ) -> None:
        super().__init__()
        self.student_head, self.teacher_head = student_head, _frozen(teacher_head)
        self.m_min, self.m_max = float(m_min), float(m_max)
        self.copy_centres, self.adaptive_margin = bool(copy_centres), bool(adaptive_margin)
        self.freeze_centres = bool(freeze_centres)
        self.needs_teacher = self.adaptive_margin
        if copy_centres:
            student_head.copy_centres_from(teacher_head, freeze=freeze_centres)
        else:  # no copy: keep the student's own (random) centres, frozen only if asked
            student_head.weight.requires_grad_(not freeze_centres)
        self.arcface = CombinedMarginLoss(s, 1.0, m, 0.0)

    def margins(self, labels: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
        """Per-sample margins ``m_i`` ``[B]`` from the teacher (no gradient)."""
        a = teacher_target_cosines(self.teacher_head.weight, teacher_emb.detach(), labels)
        return margin_distillation_margins(a, self.m_min, self.m_max)

    def loss(
        self, student_emb: torch.Tensor, labels: torch.Tensor, teacher_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        cos = self.student_head(student_emb)
        if not self.adaptive_margin:
            return self.arcface(cos, labels)
        t = _check_pair(student_emb, teacher_emb)
        return self.arcface(cos, labels, margins=self.margins(labels, t))


def _pairwise(x: torch.Tensor, distance: str) -> torch.Tensor:
    g = F.normalize(x, dim=1)
    g = g @ g.T
    if distance == "l2":  # squared L2 of unit vectors, ||a-b||^2 = 2 - 2cos (no sqrt: smooth at 0)
        return (2.0 - 2.0 * g).clamp_min(0.0)
    return 1.0 - g


class TripletDistillation(Distiller):
    """Triplet distillation (Feng et al. 2019): triplet loss with teacher-derived margins.

    Embeddings of both nets are L2-normalised. ``distance="l2"``: squared Euclidean
    distance ``||a-b||^2`` (as insightface's MXNet triplet loss); ``"cos"``: ``1 - cos``.

    Triplets: batch-hard (Hermans et al. 2017) within the mini-batch on the *student's*
    distances — for each anchor with at least one positive and one negative in the batch,
    the farthest positive and the nearest negative (a stand-in for the semi-hard online
    selection of insightface's triplet training used by Feng et al.). Anchors without a
    positive or a negative are skipped; a batch with none gives a zero loss.

    Margin of triplet (a, p, n): ``d = d_T(a, n) - d_T(a, p)`` on the teacher's embeddings,
    ``m = (m_max - m_min) / d_max * max(d, 0) + m_min`` with ``d_max`` the maximum of the
    clamped ``d`` over the batch's triplets
    (:func:`~faceopt.recognition.distill.triplet_distillation_margins`).

    Loss: ``mean_a max(0, d_S(a, p) - d_S(a, n) + m)``. Triplet-only by default (Feng et
    al. fine-tune an ArcFace-pretrained student with it); ``arcface_weight > 0`` adds
    ``arcface_weight * ArcFace(student_head)``, which then requires ``student_head``.
    """

    def __init__(
        self,
        distance: str = "l2",
        m_min: float = 0.2,
        m_max: float = 0.5,
        student_head: MarginHead | None = None,
        arcface_weight: float = 0.0,
        s: float = 64.0,
        m: float = 0.5,
    ) -> None:
        super().__init__()
        if distance not in ("l2", "cos"):
            raise ValueError(f"distance must be 'l2' or 'cos', got {distance!r}")
        if arcface_weight > 0 and student_head is None:
            raise ValueError("arcface_weight > 0 needs a student_head")
        self.distance, self.m_min, self.m_max = distance, float(m_min), float(m_max)
        self.student_head, self.arcface_weight = student_head, float(arcface_weight)
        self.arcface = CombinedMarginLoss(s, 1.0, m, 0.0)

    def triplets(self, student_emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Batch-hard ``(anchor, positive, negative)`` index tensors."""
        with torch.no_grad():
            d = _pairwise(student_emb.detach(), self.distance)
            y = labels.long()
            same = y[:, None] == y[None, :]
            eye = torch.eye(len(y), dtype=torch.bool, device=d.device)
            pos, neg = same & ~eye, ~same
            valid = pos.any(1) & neg.any(1)
            p = d.masked_fill(~pos, float("-inf")).argmax(1)
            n = d.masked_fill(~neg, float("inf")).argmin(1)
            a = torch.nonzero(valid).flatten()
        return a, p[a], n[a]

    def loss(
        self, student_emb: torch.Tensor, labels: torch.Tensor, teacher_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        t = _check_pair(student_emb, teacher_emb)
        a, p, n = self.triplets(student_emb, labels)
        if a.numel() == 0:
            out = student_emb.sum() * 0.0
        else:
            ds = _pairwise(student_emb, self.distance)
            dt = _pairwise(t, self.distance)
            margin = triplet_distillation_margins(dt[a, n] - dt[a, p], self.m_min, self.m_max)
            out = F.relu(ds[a, p] - ds[a, n] + margin.to(ds.dtype)).mean()
        if self.arcface_weight > 0:
            assert self.student_head is not None
            out = out + self.arcface_weight * self.arcface(self.student_head(student_emb), labels)
        return out


class AngularDistillation(Distiller):
    """Angular distillation: ``ArcFace(x_S) + weight * mean_i(1 - cos(x_S_i, x_T_i))``."""

    def __init__(
        self, student_head: MarginHead, s: float = 64.0, m: float = 0.5, weight: float = 1.0
    ) -> None:
        super().__init__()
        self.student_head, self.weight = student_head, float(weight)
        self.arcface = CombinedMarginLoss(s, 1.0, m, 0.0)

    def angular_term(self, student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
        """``mean(1 - cos(x_S, x_T))`` on L2-normalised embeddings (teacher detached)."""
        t = F.normalize(teacher_emb.detach(), dim=1).to(student_emb.dtype)
        return (1.0 - (F.normalize(student_emb, dim=1) * t).sum(1)).mean()

    def loss(
        self, student_emb: torch.Tensor, labels: torch.Tensor, teacher_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        t = _check_pair(student_emb, teacher_emb)
        ce = self.arcface(self.student_head(student_emb), labels)
        return ce + self.weight * self.angular_term(student_emb, t)


class MarginKD(Distiller):
    """Margin-based KD: Hinton KD on ArcFace *margin* logits, plus the hard ArcFace loss.

    ``z_S``, ``z_T``: ``CombinedMarginLoss(s, 1, m, 0).margin_logits`` of the student head
    on ``x_S`` and of the (frozen) teacher head on ``x_T``. Loss =
    ``ArcFace(z_S, y) + alpha * T^2 * KL(softmax(z_T / T) || softmax(z_S / T))``
    (KL averaged over the batch). ``alpha`` (default 1) weights the KD term; the weighting
    is our choice. Implemented as published: the thesis author's MXNet code computes the
    teacher's logits but never uses them in the loss, so that code effectively trained
    plain ArcFace; this module does use them.
    """

    def __init__(
        self,
        student_head: MarginHead,
        teacher_head: MarginHead,
        s: float = 64.0,
        m: float = 0.5,
        T: float = 4.0,
        alpha: float = 1.0,
    ) -> None:
        super().__init__()
        if T <= 0:
            raise ValueError(f"temperature T must be > 0, got {T}")
        self.student_head, self.teacher_head = student_head, _frozen(teacher_head)
        self.T, self.alpha = float(T), float(alpha)
        self.arcface = CombinedMarginLoss(s, 1.0, m, 0.0)

    def kd_term(
        self, student_emb: torch.Tensor, labels: torch.Tensor, teacher_emb: torch.Tensor
    ) -> torch.Tensor:
        """``T^2 * KL(p_T || p_S)`` with temperature-softened margin logits."""
        zs = self.arcface.margin_logits(self.student_head(student_emb), labels)
        with torch.no_grad():
            zt = self.arcface.margin_logits(self.teacher_head(teacher_emb.detach()), labels).to(zs.dtype)
        kl = F.kl_div(
            F.log_softmax(zs / self.T, dim=1), F.log_softmax(zt / self.T, dim=1),
            reduction="batchmean", log_target=True,
        )
        return self.T**2 * kl

    def loss(
        self, student_emb: torch.Tensor, labels: torch.Tensor, teacher_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        t = _check_pair(student_emb, teacher_emb)
        ce = self.arcface(self.student_head(student_emb), labels)
        return ce + self.alpha * self.kd_term(student_emb, labels, t)


def _md(*, copy_centres: bool, adaptive_margin: bool, freeze_centres: bool) -> Callable[..., Distiller]:
    def build(sh: MarginHead, th: MarginHead | None, **kw: Any) -> Distiller:
        return MarginDistillation(sh, _need(th), copy_centres=copy_centres, adaptive_margin=adaptive_margin,
                                  freeze_centres=freeze_centres, **kw)

    return build


def _need(th: MarginHead | None) -> MarginHead:
    if th is None:
        raise ValueError("this distiller needs the teacher head (teacher_head is None)")
    return th


_FACTORY: dict[str, Callable[..., Distiller]] = {
    # Table 5 rows
    "arcface": lambda sh, th, **kw: ArcFaceStudent(sh, **kw),
    "triplet_l2": lambda sh, th, **kw: TripletDistillation("l2", student_head=sh, **kw),
    "triplet_cos": lambda sh, th, **kw: TripletDistillation("cos", student_head=sh, **kw),
    "margin_kd_t4": lambda sh, th, **kw: MarginKD(sh, _need(th), **{"T": 4.0, **kw}),
    "angular": lambda sh, th, **kw: AngularDistillation(sh, **kw),
    "margin_distillation": _md(copy_centres=True, adaptive_margin=True, freeze_centres=True),
    # Table 7 ablation rows (copy centres, m_i instead of m, freeze centres)
    "copy_mi_freeze": _md(copy_centres=True, adaptive_margin=True, freeze_centres=True),
    "copy_mi": _md(copy_centres=True, adaptive_margin=True, freeze_centres=False),
    "copy": _md(copy_centres=True, adaptive_margin=False, freeze_centres=False),
    "mi": _md(copy_centres=False, adaptive_margin=True, freeze_centres=False),
    "copy_freeze": _md(copy_centres=True, adaptive_margin=False, freeze_centres=True),
}
DISTILLER_NAMES: tuple[str, ...] = tuple(_FACTORY)


def make_distiller(
    name: str, student_head: MarginHead, teacher_head: MarginHead | None = None, **kw: Any
) -> Distiller:
    """Build a Table 5 / Table 7 training loss by name (``kw`` go to the constructor).

    Names: ``arcface, triplet_l2, triplet_cos, margin_kd_t4, angular, margin_distillation``
    and the ablations ``copy_mi_freeze, copy_mi, copy, mi, copy_freeze``. Note that the
    ``MarginDistillation`` variants copy/freeze the student head's centres on construction.
    """
    if name not in _FACTORY:
        raise ValueError(f"unknown distiller {name!r}; choose one of: {', '.join(DISTILLER_NAMES)}")
    return _FACTORY[name](student_head, teacher_head, **kw)
