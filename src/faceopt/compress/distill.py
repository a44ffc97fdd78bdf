"""Generic knowledge-distillation losses of the thesis's survey (Chapter 1, section 1.3).

Every loss takes the student's output first and the teacher's second, treats the teacher as
fixed (its side is detached), and averages over the batch, so that a loss's scale does not
depend on the batch size. Conventions that the papers leave open are stated where they are
fixed:

* :func:`kd_loss` (Hinton et al. 2015): ``T**2 * KL(softmax(z_t/T) || softmax(z_s/T))``, summed
  over classes and averaged over rows; the ``T**2`` keeps the gradient's size about the same
  across temperatures, because the gradient of the KL term alone shrinks as ``1/T**2``.
* :func:`logit_regression_loss` (Ba & Caruana 2014): ``1/(2N) sum_i ||g(x_i) - z_i||**2``.
* :class:`HintRegressor` and :func:`hint_loss` (Romero et al. 2015, FitNets): a 1x1 convolution
  (optionally followed by batch norm) maps the student's guided layer to the teacher's hint
  layer; the loss is half the mean squared difference over every element.
* :func:`rkd_distance_loss` and :func:`rkd_angle_loss` (Park et al. 2019, relational KD).
* :class:`EnsembleTeacher` and :func:`ensemble_kd_loss`: several teachers' softened
  distributions averaged (Hinton et al.'s ensemble of specialists' generalist part).
* :func:`noisy_teacher_logits` (Sau & Balasubramanian 2016): logits ``z (1 + xi)``, ``xi ~ N(0, sigma**2)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "EnsembleTeacher",
    "HintRegressor",
    "ensemble_kd_loss",
    "ensemble_probabilities",
    "hint_loss",
    "kd_loss",
    "logit_regression_loss",
    "noisy_teacher_logits",
    "rkd_angle_loss",
    "rkd_distance_loss",
    "softened_probabilities",
]


def _check_temperature(T: float) -> None:
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"the temperature T must be a finite number > 0, got {T!r}")


def _check_logit_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.dim() != 2 or teacher_logits.dim() != 2:
        raise ValueError("logits must be 2-D [batch, classes], got shapes "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {tuple(student_logits.shape)} "
                         f"vs {tuple(teacher_logits.shape)}")
    if student_logits.shape[0] == 0 or student_logits.shape[1] < 2:
        raise ValueError(f"need at least one row and two classes, got shape {tuple(student_logits.shape)}")


def softened_probabilities(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Hinton's softened distribution ``q_i = exp(z_i / T) / sum_k exp(z_k / T)`` over the last dimension.

    ``T = 1`` is the ordinary softmax; a larger ``T`` spreads the mass over the wrong classes
    (the "dark knowledge"); ``T -> infinity`` gives the uniform distribution.
    """
    _check_temperature(T)
    return torch.softmax(logits / T, dim=-1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """``T**2 * KL(softmax(teacher/T) || softmax(student/T))``: sum over classes, mean over the batch.

    The teacher side is detached. The gradient with respect to the student's logits is
    ``T * (q_s - q_t) / N`` for a batch of ``N`` rows, ``q`` being the softened distributions,
    i.e. the ``(q_s - q_t) / T`` of the plain KL scaled by ``T**2`` (and ``1/N`` for the mean).
    """
    _check_temperature(T)
    _check_logit_pair(student_logits, teacher_logits)
    log_q_s = torch.log_softmax(student_logits / T, dim=1)
    log_q_t = torch.log_softmax(teacher_logits.detach() / T, dim=1)
    kl = (log_q_t.exp() * (log_q_t - log_q_s)).sum(dim=1).mean()
    return T * T * kl


def logit_regression_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Ba & Caruana's logit matching ``1/(2N) sum_i ||g(x_i) - z_i||**2`` (teacher logits ``z`` detached)."""
    _check_logit_pair(student_logits, teacher_logits)
    return 0.5 * (student_logits - teacher_logits.detach()).pow(2).sum(dim=1).mean()


class HintRegressor(nn.Module):
    """FitNets' regressor ``r``: maps the student's guided layer ``[B, Cs, Hs, Ws]`` to the teacher's
    hint layer ``[B, Ct, Ht, Wt]``.

    Our choice: a 1x1 convolution (no spatial mixing, ``Cs * Ct`` weights, as small as a regressor
    can be), with batch norm after it when ``batch_norm=True`` (the conv + BN of later feature
    distillation work). Where the spatial sizes differ, the regressed map is brought to the
    teacher's size by adaptive average pooling when it is larger and by bilinear interpolation
    when it is smaller (Romero et al. instead sized a convolution kernel to shrink the map).
    """

    def __init__(self, student_channels: int, teacher_channels: int, *, batch_norm: bool = False) -> None:
        super().__init__()
        if student_channels < 1 or teacher_channels < 1:
            raise ValueError(f"channel counts must be >= 1, got {student_channels} and {teacher_channels}")
        self.conv = nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=not batch_norm)
        self.norm: nn.Module = nn.BatchNorm2d(teacher_channels) if batch_norm else nn.Identity()

    def forward(self, guided: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Regress ``guided``; ``size`` (the teacher map's ``(H, W)``) resizes the result to it."""
        if guided.dim() != 4 or guided.shape[1] != self.conv.in_channels:
            raise ValueError(f"expected a [B, {self.conv.in_channels}, H, W] feature map, got {tuple(guided.shape)}")
        out = self.norm(self.conv(guided))
        if size is None or tuple(out.shape[-2:]) == tuple(size):
            return out
        if out.shape[-2] >= size[0] and out.shape[-1] >= size[1]:
            return F.adaptive_avg_pool2d(out, size)
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)


def hint_loss(regressed: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """FitNets' hint loss ``1/2 ||u_h - r(v_g)||**2``, normalised as half the mean over every element.

    That is the paper's per-image half squared distance divided by the number of elements of the
    hint (``C * H * W``), averaged over the batch; the teacher's feature is detached.
    """
    if regressed.shape != teacher_feature.shape:
        raise ValueError(f"regressed and teacher features differ in shape: {tuple(regressed.shape)} vs "
                         f"{tuple(teacher_feature.shape)} (resize with HintRegressor(..., size=))")
    if regressed.numel() == 0:
        raise ValueError("hint_loss needs non-empty features")
    return 0.5 * (regressed - teacher_feature.detach()).pow(2).mean()


def _check_embeddings(student: torch.Tensor, teacher: torch.Tensor, minimum: int) -> None:
    if student.dim() != 2 or teacher.dim() != 2:
        raise ValueError(f"embeddings must be 2-D [batch, dim], got {tuple(student.shape)} and {tuple(teacher.shape)}")
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(f"student and teacher batches differ: {student.shape[0]} vs {teacher.shape[0]}")
    if student.shape[0] < minimum:
        raise ValueError(f"relational losses need at least {minimum} embeddings, got {student.shape[0]}")


def _normalised_distances(e: torch.Tensor) -> torch.Tensor:
    """Pairwise distances ``||e_i - e_j||`` of the ``i < j`` pairs, divided by their mean."""
    i, j = torch.triu_indices(len(e), len(e), offset=1, device=e.device)
    d = (e[i] - e[j]).pow(2).sum(dim=1).clamp_min(1e-12).sqrt()
    return d / d.mean().clamp_min(1e-12)


def rkd_distance_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor, *, delta: float = 1.0) -> torch.Tensor:
    """Park et al.'s distance-wise relational loss.

    ``psi_D(t_i, t_j) = ||t_i - t_j|| / mu`` with ``mu`` the mean distance over the batch's pairs;
    the loss is the Huber (smooth-L1, threshold ``delta``) difference of the student's and the
    teacher's ``psi_D``, averaged over the ``N(N-1)/2`` unordered pairs (Park et al.'s code also
    averages in the zero diagonal). The embedding widths may differ; the loss is invariant to a
    global scaling of either side.
    """
    _check_embeddings(student_emb, teacher_emb, 2)
    with torch.no_grad():
        target = _normalised_distances(teacher_emb)
    return F.smooth_l1_loss(_normalised_distances(student_emb), target, beta=delta)


def _angles(e: torch.Tensor) -> torch.Tensor:
    """``cos`` of the angle at vertex ``j`` of every triple of distinct ``(i, j, k)``: ``<e_ij, e_kj>``,
    ``e_ij = (e_i - e_j) / ||e_i - e_j||``."""
    n = len(e)
    diff = e.unsqueeze(0) - e.unsqueeze(1)  # diff[j, i] = e_i - e_j
    unit = diff / diff.norm(dim=2, keepdim=True).clamp_min(1e-12)
    cos = torch.bmm(unit, unit.transpose(1, 2))  # cos[j, i, k]
    idx = torch.arange(n, device=e.device)
    j, i, k = torch.meshgrid(idx, idx, idx, indexing="ij")
    distinct = (i != j) & (k != j) & (i != k)
    return cos[distinct]


def rkd_angle_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor, *, delta: float = 1.0) -> torch.Tensor:
    """Park et al.'s angle-wise relational loss: Huber difference of ``cos`` of the angles of every triple.

    Triples of three distinct points are used (ordered, ``N(N-1)(N-2)`` of them; Park et al.'s
    code also includes degenerate triples, whose cosine is 0 on both sides). Invariant to
    scaling, translation and rotation of either side's embeddings.
    """
    _check_embeddings(student_emb, teacher_emb, 3)
    with torch.no_grad():
        target = _angles(teacher_emb)
    return F.smooth_l1_loss(_angles(student_emb), target, beta=delta)


def ensemble_probabilities(teacher_logits: Sequence[torch.Tensor], T: float) -> torch.Tensor:
    """Mean of the teachers' softened distributions at temperature ``T``."""
    if len(teacher_logits) == 0:
        raise ValueError("an ensemble needs at least one teacher")
    shapes = {tuple(z.shape) for z in teacher_logits}
    if len(shapes) != 1:
        raise ValueError(f"teachers' logits differ in shape: {sorted(shapes)}")
    return torch.stack([softened_probabilities(z.detach(), T) for z in teacher_logits]).mean(dim=0)


def ensemble_kd_loss(student_logits: torch.Tensor, teacher_logits: Sequence[torch.Tensor], T: float) -> torch.Tensor:
    """``T**2 * KL(mean_m softmax(z_m/T) || softmax(z_s/T))``, mean over the batch: KD from an ensemble's
    averaged softened distribution (equal to :func:`kd_loss` with the logits of
    :meth:`EnsembleTeacher.combine`)."""
    p = ensemble_probabilities(teacher_logits, T)
    _check_logit_pair(student_logits, p)
    log_q_s = torch.log_softmax(student_logits / T, dim=1)
    return T * T * (torch.xlogy(p, p) - p * log_q_s).sum(dim=1).mean()


class EnsembleTeacher(nn.Module):
    """Several teachers as one: their softened distributions averaged (``mode="probabilities"``) or
    their logits averaged (``mode="logits"``).

    :meth:`logits` returns logits that :func:`kd_loss` can take at the same ``T``: for
    ``"probabilities"``, ``T * log(mean_m softmax(z_m / T))``, whose softened distribution at ``T``
    is exactly the mean distribution (these logits depend on ``T``); for ``"logits"``, the mean
    logit, whatever ``T``. :meth:`pick` gives one teacher at random (teacher switching: a
    different teacher per batch, from a seeded generator).
    """

    MODES = ("probabilities", "logits")

    def __init__(self, models: Sequence[nn.Module], mode: str = "probabilities") -> None:
        super().__init__()
        if len(models) == 0:
            raise ValueError("an ensemble needs at least one teacher")
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.models = nn.ModuleList(models)
        self.mode = mode

    @staticmethod
    def combine(teacher_logits: Sequence[torch.Tensor], T: float, mode: str = "probabilities") -> torch.Tensor:
        """The ensemble's logits from each teacher's logits (see the class's docstring)."""
        if mode == "logits":
            if len(teacher_logits) == 0:
                raise ValueError("an ensemble needs at least one teacher")
            return torch.stack([z.detach() for z in teacher_logits]).mean(dim=0)
        if mode != "probabilities":
            raise ValueError(f"mode must be one of {EnsembleTeacher.MODES}, got {mode!r}")
        p = ensemble_probabilities(teacher_logits, T)
        return T * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))

    @torch.no_grad()
    def logits(self, x: torch.Tensor, T: float) -> torch.Tensor:
        """The ensemble's logits for ``x`` at temperature ``T`` (teachers in eval mode)."""
        _check_temperature(T)
        outs = []
        for m in self.models:
            was_training = m.training
            m.eval()
            outs.append(m(x))
            m.train(was_training)
        return self.combine(outs, T, self.mode)

    def forward(self, x: torch.Tensor, T: float = 1.0) -> torch.Tensor:
        return self.logits(x, T)

    def pick(self, generator: torch.Generator | None = None) -> nn.Module:
        """One member drawn uniformly at random (teacher switching)."""
        index = int(torch.randint(len(self.models), (1,), generator=generator).item())
        return self.models[index]


def noisy_teacher_logits(teacher_logits: torch.Tensor, sigma: float, generator: torch.Generator | None = None, *,
                         fraction: float = 1.0) -> torch.Tensor:
    """Sau & Balasubramanian's noisy teacher: ``z * (1 + xi)`` with ``xi ~ N(0, sigma**2)`` per logit.

    Each row (sample) is perturbed with probability ``fraction`` (default: always), drawn from
    ``generator`` like the noise, so a seeded generator gives the same perturbation. The result is
    detached. ``sigma = 0`` or ``fraction = 0`` return the logits unchanged.
    """
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be finite and >= 0, got {sigma!r}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    z = teacher_logits.detach()
    noise = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device) * sigma
    if fraction < 1.0:
        rows = torch.rand(z.shape[:1], generator=generator, device=z.device) < fraction
        noise = noise * rows.to(z.dtype).view(-1, *([1] * (z.dim() - 1)))
    return z * (1.0 + noise)
