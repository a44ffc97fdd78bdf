"""MarginDistillation (Svitov 2023): per-sample ArcFace margins from the teacher."""
from __future__ import annotations

import torch

__all__ = ["margin_distillation_margins", "teacher_target_cosines", "triplet_distillation_margins"]


def margin_distillation_margins(
    cos_teacher: torch.Tensor, m_min: float = 0.2, m_max: float = 0.5
) -> torch.Tensor:
    """Per-sample margins ``m_i = (m_max - m_min) / a_max * a_i + m_min``.

    ``a_i = cos_teacher[i]`` is the cosine between the teacher embedding of sample i
    and the teacher class centre of its class; ``a_max`` is the batch maximum. The
    best-fitting sample gets ``m_max``; ``a_i = 0`` gets ``m_min``. Raises
    ``ValueError`` for empty/non-1-D input, NaN, or ``a_max <= 0`` (the formula
    would divide by zero or invert the ordering).
    """
    a = torch.as_tensor(cos_teacher)
    if not a.is_floating_point():
        a = a.to(torch.get_default_dtype())
    if a.ndim != 1 or a.numel() == 0:
        raise ValueError(f"cos_teacher must be a non-empty 1-D tensor, got shape {tuple(a.shape)}")
    if torch.isnan(a).any():
        raise ValueError("cos_teacher contains NaN")
    a_max = a.max()
    if a_max.item() <= 0:
        raise ValueError(
            f"batch max of cos_teacher must be > 0, got {a_max.item():.6g}: every teacher embedding of the "
            "batch is more than 90 degrees from its class centre (is the teacher trained, and do its "
            "classes match these labels?)"
        )
    return (m_max - m_min) / a_max * a + m_min


def teacher_target_cosines(
    teacher_centres: torch.Tensor, teacher_emb: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Formula 3.1: ``a_i = W_T[y_i]^T x_T_i / (||W_T[y_i]|| ||x_T_i||)`` (shape ``[B]``).

    The thesis calls ``a_i`` an "angle", but formula 3.1 is the *cosine* of that angle,
    which is what is returned (larger = closer to the class centre = larger ``m_i``).
    ``teacher_centres`` is ``[C, D]`` (row j = centre of class j). No gradient.
    """
    with torch.no_grad():
        w = torch.nn.functional.normalize(teacher_centres[labels.long()], dim=1)
        x = torch.nn.functional.normalize(teacher_emb, dim=1).to(w.dtype)
        return (w * x).sum(dim=1)


def triplet_distillation_margins(
    d_teacher: torch.Tensor, m_min: float = 0.2, m_max: float = 0.5
) -> torch.Tensor:
    """Per-triplet margins ``m = (m_max - m_min) / d_max * max(d, 0) + m_min``.

    ``d = d_T(a, n) - d_T(a, p)`` from the teacher's embeddings; ``d_max`` is the batch
    maximum of the clamped ``d``. Triplets the teacher gets wrong (``d <= 0``) get
    ``m_min``; if no triplet has ``d > 0`` every margin is ``m_min``. No gradient.
    """
    d = torch.as_tensor(d_teacher).detach().clamp_min(0.0)
    if d.numel() == 0:
        return d
    d_max = d.max()
    if d_max.item() <= 0:
        return torch.full_like(d, m_min)
    return (m_max - m_min) / d_max * d + m_min
