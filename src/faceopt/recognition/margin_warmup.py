"""ArcFace with a margin warm-up: the mobile MobileFaceNet recipe's loss.

The seed article on MobileFaceNet deployment trains with ArcFace at a smaller scale
(``s = 32`` instead of 64) and lets the additive angular margin grow during training,
``m = 0.1`` at the start and ``0.5`` later, against the convergence trouble of a large margin
from the first step with small batches. Here the margin grows linearly::

    m(t) = m_start + (m_end - m_start) * min(1, t / warmup_steps)

where ``t`` counts the training steps already taken. The count is a buffer of the module, so
it is saved in a checkpoint with the model and a resumed run continues the schedule where it
stopped. Cosines are taken to float32 before the margin (under bf16 autocast the class-centre
product is bf16, and ``acos`` near 1 needs the precision; insightface does the same).
"""
from __future__ import annotations

import torch
from torch import nn

from faceopt.recognition.losses import CombinedMarginLoss

__all__ = ["MarginWarmupLoss"]


class MarginWarmupLoss(nn.Module):
    """ArcFace (``s``, additive angular margin) whose margin warms up from ``m_start`` to ``m_end``.

    ``forward(cosines, labels)`` is the mean cross-entropy of the margin logits at the margin of
    the current step; in training mode each call is one step and advances the schedule.
    ``warmup_steps = 0`` uses ``m_end`` from the first step (plain ArcFace).
    """

    steps_seen: torch.Tensor

    def __init__(self, s: float = 32.0, m_start: float = 0.1, m_end: float = 0.5, warmup_steps: int = 1000) -> None:
        super().__init__()
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if not 0.0 <= m_start <= m_end < 3.1416:
            raise ValueError(f"margins must satisfy 0 <= m_start <= m_end < pi, got {m_start}, {m_end}")
        self.arcface = CombinedMarginLoss(s, 1.0, m_end, 0.0)
        self.m_start, self.m_end, self.warmup_steps = float(m_start), float(m_end), int(warmup_steps)
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))

    def margin_at(self, step: int | torch.Tensor) -> torch.Tensor:
        """The margin after ``step`` steps (a 0-d float32 tensor)."""
        t = torch.as_tensor(step, dtype=torch.float32)
        if self.warmup_steps == 0:
            return torch.full_like(t, self.m_end)
        frac = (t / self.warmup_steps).clamp(max=1.0)
        return self.m_start + (self.m_end - self.m_start) * frac

    def forward(self, cosines: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        m = self.margin_at(self.steps_seen).to(cosines.device)
        if self.training:
            self.steps_seen += 1
        margins = m.expand(cosines.shape[0])
        return self.arcface(cosines.float(), labels, margins)
