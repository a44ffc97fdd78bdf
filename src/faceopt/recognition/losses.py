"""Combined angular-margin softmax loss (insightface ``CombinedMarginLoss``)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CombinedMarginLoss"]


class CombinedMarginLoss(nn.Module):
    """Mean cross-entropy over margin logits built from cosines ``cos(theta_j)``.

    Target logit ``s * (cos(m1*theta + m2) - m3)``, others ``s * cos(theta_j)``.
    ``(1, 0.5, 0)`` = ArcFace, ``(1, 0, 0.35)`` = CosFace, ``m1 > 1`` SphereFace-like.

    Guard (arcface_torch): where ``m1*theta + m2 > pi`` the angular term is replaced by
    ``cos(theta) - m2 * sin(pi - m2)`` (for m1 = 1 exactly arcface_torch's
    ``target_logit - sinmm`` when ``target_logit <= cos(pi - m)``), keeping the logit
    monotone in theta. Cosines are clamped to ``[-1+eps, 1-eps]`` before ``acos``.
    """

    def __init__(self, s: float, m1: float, m2: float, m3: float, eps: float = 1e-7) -> None:
        super().__init__()
        self.s, self.m1, self.m2, self.m3, self.eps = float(s), float(m1), float(m2), float(m3), eps

    def margin_logits(
        self, cosines: torch.Tensor, labels: torch.Tensor, margins: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scaled logits ``[B, C]`` with the margin applied to each sample's target class.

        ``margins`` (shape ``[B]``) overrides the scalar ``m2`` per sample.
        """
        if cosines.ndim != 2:
            raise ValueError(f"cosines must be [B, C], got shape {tuple(cosines.shape)}")
        b = cosines.shape[0]
        labels = labels.long()
        if labels.shape != (b,):
            raise ValueError(f"labels must be [B]={b}, got shape {tuple(labels.shape)}")
        if margins is None:
            m2 = torch.full((b,), self.m2, dtype=cosines.dtype, device=cosines.device)
        else:
            m2 = torch.as_tensor(margins, dtype=cosines.dtype, device=cosines.device)
            if m2.shape != (b,):
                raise ValueError(f"margins must be [B]={b}, got shape {tuple(m2.shape)}")
        c = cosines.clamp(-1.0 + self.eps, 1.0 - self.eps)
        rows = torch.arange(b, device=c.device)
        cos_t = c[rows, labels]
        theta = torch.acos(cos_t)
        main = torch.cos(self.m1 * theta + m2)
        fallback = cos_t - m2 * torch.sin(math.pi - m2)
        target = torch.where(self.m1 * theta + m2 <= math.pi, main, fallback) - self.m3
        onehot = F.one_hot(labels, c.shape[1]).to(torch.bool)
        logits = torch.where(onehot, target.unsqueeze(1), c)
        return self.s * logits

    def forward(
        self, cosines: torch.Tensor, labels: torch.Tensor, margins: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean cross-entropy of :meth:`margin_logits`."""
        return F.cross_entropy(self.margin_logits(cosines, labels, margins), labels.long())
