"""MarginDistillation (Svitov 2023): per-sample ArcFace margins from the teacher."""
from __future__ import annotations

import torch

__all__ = ["margin_distillation_margins"]


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
        raise ValueError(f"batch max of cos_teacher must be > 0, got {a_max.item():.6g}")
    return (m_max - m_min) / a_max * a + m_min
