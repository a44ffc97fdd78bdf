"""The affine quantisation scheme of thesis section 1.4, written once.

The thesis writes quantisation as ``Q(r) = round(r / S) - Z`` with the scale
``S = (beta - alpha) / (2^b - 1)`` for a clipping range ``[alpha, beta]`` and ``b`` bits.
Dequantisation inverts it: ``r_hat = S * (Q + Z)``.

Sign convention (stated once, used everywhere below): ``QuantParams.zero_point`` is the
thesis ``Z``.  PyTorch (and ONNX) write ``q = round(r / S) + zp``, so ``zp = -Z``; the
property :attr:`QuantParams.torch_zero_point` gives it.  ``Z`` is chosen so that
``alpha`` maps to ``qmin``: ``Z = round(alpha / S) - qmin`` (PyTorch's
``zp = qmin - round(alpha / S)``).  Before that the range is widened to contain 0 and
``Z`` is an integer, so the real value 0 (ReLU outputs, zero padding) is represented
exactly by the integer ``-Z``.

Variants covered by the thesis:

* asymmetric: ``alpha = r_min``, ``beta = r_max``; symmetric: ``-alpha = beta =
  max(|r_min|, |r_max|)`` and ``Z = 0`` (signed integers; with unsigned storage the
  zero point is the middle of the range, ``Z = -2^(b-1)``);
* static ranges calibrated over several batches (:func:`static_range` with min-max,
  percentile or entropy/KL calibration) vs dynamic ranges measured on the current
  tensor at run time (:func:`dynamic_range`);
* per-layer (one ``S, Z`` per tensor) vs per-channel (one per output channel, ``axis``).

Rounding is round-half-to-even and ``r / S`` is computed as ``r * (1 / S)`` in float32,
exactly as PyTorch's kernels do, so results match ``torch.fake_quantize_*`` bit for bit.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

_EPS = float(torch.finfo(torch.float32).eps)

RangeFn = Callable[[torch.Tensor], tuple[float, float]]


@dataclass(frozen=True)
class QuantParams:
    """Scale ``S``, thesis zero point ``Z`` and integer range ``[qmin, qmax]`` of a quantiser.

    ``scale`` and ``zero_point`` are 0-d tensors for per-tensor quantisation and 1-d
    tensors (one entry per channel along ``axis``) for per-channel quantisation;
    ``alpha, beta`` keep the clipping range ``S`` was computed from (widened to contain 0,
    symmetrised for symmetric quantisation).
    """

    scale: torch.Tensor          # float32, S
    zero_point: torch.Tensor     # int64, thesis Z (PyTorch's zero point is -Z)
    bits: int
    signed: bool
    qmin: int
    qmax: int
    axis: int | None = None
    alpha: torch.Tensor | None = None
    beta: torch.Tensor | None = None

    @property
    def torch_zero_point(self) -> torch.Tensor:
        """PyTorch/ONNX zero point ``zp = -Z`` (``q = round(r / S) + zp``)."""
        return -self.zero_point

    @property
    def per_channel(self) -> bool:
        """Whether there is one ``(S, Z)`` per channel along :attr:`axis`."""
        return self.axis is not None

    @property
    def rmin(self) -> torch.Tensor:
        """Smallest representable real value ``S * (qmin + Z)``."""
        return self.scale * (self.qmin + self.zero_point).to(torch.float32)

    @property
    def rmax(self) -> torch.Tensor:
        """Largest representable real value ``S * (qmax + Z)``."""
        return self.scale * (self.qmax + self.zero_point).to(torch.float32)


def integer_range(bits: int, signed: bool) -> tuple[int, int]:
    """``[qmin, qmax]`` of a ``bits``-bit integer: ``[-2^(b-1), 2^(b-1)-1]`` or ``[0, 2^b-1]``."""
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in [2, 16], got {bits}")
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def affine_params(alpha: float | torch.Tensor, beta: float | torch.Tensor, bits: int = 8, *,
                  symmetric: bool = False, signed: bool = False,
                  axis: int | None = None) -> QuantParams:
    """Scale and zero point for the range ``[alpha, beta]`` (thesis section 1.4).

    ``S = (beta - alpha) / (2^b - 1)``.  Asymmetric: ``alpha, beta`` are used as given
    (widened to contain 0) and ``Z = round(alpha / S) - qmin`` maps ``alpha`` to ``qmin``.
    Symmetric: ``-alpha = beta = max(|alpha|, |beta|)`` and ``Z = 0`` for signed storage
    (``-2^(b-1)`` for unsigned, the middle code).  Tensors ``alpha, beta`` of shape [C]
    with ``axis`` give per-channel parameters.
    """
    qmin, qmax = integer_range(bits, signed)
    lo = torch.as_tensor(alpha, dtype=torch.float32)
    hi = torch.as_tensor(beta, dtype=torch.float32)
    if axis is None and (lo.ndim or hi.ndim):
        raise ValueError("per-tensor parameters need scalar alpha and beta; pass axis for per-channel")
    if torch.any(lo > hi):
        raise ValueError("alpha must not exceed beta")
    lo = torch.clamp(lo, max=0.0)                     # widen to contain 0 exactly
    hi = torch.clamp(hi, min=0.0)
    if symmetric:
        m = torch.maximum(-lo, hi)
        lo, hi = -m, m
        scale = torch.clamp(2 * m / (qmax - qmin), min=_EPS)
        z = torch.full_like(scale, 0 if signed else -(qmin + qmax + 1) // 2, dtype=torch.int64)
    else:
        scale = torch.clamp((hi - lo) / (qmax - qmin), min=_EPS)
        z = torch.clamp(torch.round(lo / scale).to(torch.int64) - qmin, min=-qmax, max=-qmin)
    return QuantParams(scale.to(torch.float32), z.to(torch.int64), bits, signed, qmin, qmax, axis,
                       lo, hi)


def _broadcast(p: QuantParams, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``S`` and ``Z`` shaped to broadcast against ``x`` (per-channel: along ``p.axis``)."""
    if p.axis is None:
        return p.scale, p.zero_point
    shape = [1] * x.ndim
    shape[p.axis] = -1
    return p.scale.reshape(shape), p.zero_point.reshape(shape)


def _unclamped(r: torch.Tensor, params: QuantParams) -> torch.Tensor:
    """``round(r / S) - Z`` before saturation (float32)."""
    scale, z = _broadcast(params, r)
    inv = 1.0 / scale                                # as PyTorch: multiply by float32 1/S
    return torch.round(r.to(torch.float32) * inv) - z.to(torch.float32)


def quantize(r: torch.Tensor, params: QuantParams) -> torch.Tensor:
    """Integer codes ``Q = clamp(round(r / S) - Z, qmin, qmax)`` (int64 tensor)."""
    return torch.clamp(_unclamped(r, params), params.qmin, params.qmax).to(torch.int64)


def in_range(r: torch.Tensor, params: QuantParams) -> torch.Tensor:
    """Where ``r`` lies in the clipping range: not saturated, or inside ``[alpha, beta]``.

    Not saturated, ``qmin <= round(r / S) - Z <= qmax``, is PyTorch's ``fake_quantize``
    gradient mask: ``[rmin - S/2, rmax + S/2]``.  It misses the end of the calibrated
    range when that lands on a rounding tie: with the thesis' symmetric scale
    ``S = 2m / (2^b - 1)`` the largest weight ``m`` sits at ``m / S = qmax + 1/2`` and may
    round past ``qmax``; adding ``[alpha, beta]`` keeps its straight-through gradient.
    """
    q = _unclamped(r, params)
    mask = (q >= params.qmin) & (q <= params.qmax)
    if params.alpha is not None and params.beta is not None:
        lo, hi = params.alpha, params.beta
        if params.axis is not None:
            shape = [1] * r.ndim
            shape[params.axis] = -1
            lo, hi = lo.reshape(shape), hi.reshape(shape)
        mask |= (r >= lo) & (r <= hi)
    return mask


def dequantize(q: torch.Tensor, params: QuantParams) -> torch.Tensor:
    """Real values ``r_hat = S * (Q + Z)``."""
    scale, z = _broadcast(params, q)
    return (q.to(torch.int64) + z).to(torch.float32) * scale


def fake_quantize(r: torch.Tensor, params: QuantParams) -> torch.Tensor:
    """``dequantize(quantize(r))``: the float tensor the integer network would compute with."""
    return dequantize(quantize(r, params), params)


# -- ranges ---------------------------------------------------------------------------------

def minmax_range(x: torch.Tensor) -> tuple[float, float]:
    """``(r_min, r_max)`` of ``x``: the thesis' asymmetric range."""
    return float(x.min()), float(x.max())


def dynamic_range(x: torch.Tensor) -> tuple[float, float]:
    """Dynamic quantisation: the min-max range of the tensor being quantised right now."""
    return minmax_range(x)


def _quantile(flat: torch.Tensor, q: float) -> float:
    """Linear-interpolation quantile by sorting (``torch.quantile`` caps the input size)."""
    s, _ = torch.sort(flat.to(torch.float64))
    pos = q * (s.numel() - 1)
    i = int(np.floor(pos))
    j = min(i + 1, s.numel() - 1)
    return float(s[i] + (s[j] - s[i]) * (pos - i))


def percentile_range(x: torch.Tensor, percentile: float = 99.99) -> tuple[float, float]:
    """``(p_(100-percentile), p_percentile)`` of ``x``: min-max with the rare outliers clipped."""
    if not 50.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (50, 100], got {percentile}")
    flat = x.detach().reshape(-1)
    return _quantile(flat, 1 - percentile / 100), _quantile(flat, percentile / 100)


def entropy_threshold(x: torch.Tensor, bits: int = 8, bins: int = 2048,
                      levels: int | None = None, ignore_zeros: bool = True) -> float:
    """KL-divergence clipping threshold of ``|x|`` (TensorRT / onnxruntime Entropy calibrator).

    Algorithm: histogram ``|x|`` into ``bins`` bins over ``[0, max|x|]``.  For every
    candidate threshold ``i`` (in bins) from ``levels`` to ``bins``: the reference
    distribution ``P`` is ``hist[:i]`` with the clipped tail ``sum(hist[i:])`` added to its
    last bin; the candidate ``Q`` merges ``hist[:i]`` into ``levels`` groups (the last one
    takes the remainder) and spreads each group's count uniformly over its non-empty bins.
    Both are normalised, empty bins of ``Q`` under mass of ``P`` get 1e-4, and the
    ``i`` minimising ``KL(P || Q)`` wins; the threshold is the upper edge of bin ``i - 1``.
    ``levels`` defaults to the codes that land on ``[0, t]``: ``2^b`` for non-negative
    data (asymmetric unsigned), ``2^(b-1)`` otherwise (TensorRT's 128 for 8 bits).
    ``ignore_zeros`` leaves exact zeros out of the histogram (as ncnn does): they are
    represented exactly anyway, and the zero spike of a ReLU output would otherwise
    dominate the divergence and pull the threshold far down.
    """
    a = x.detach().abs().reshape(-1).to(torch.float64).numpy()
    if ignore_zeros:
        a = a[a != 0]
    top = float(a.max()) if a.size else 0.0
    if top == 0.0:
        return 0.0
    if levels is None:
        levels = 2 ** bits if float(x.min()) >= 0 else 2 ** (bits - 1)
    if bins <= levels:
        return top
    hist, edges = np.histogram(a, bins=bins, range=(0.0, top))
    hist = hist.astype(np.float64)
    tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])   # tail[i] = sum(hist[i:])
    best_i, best_kl = bins, np.inf
    for i in range(levels, bins + 1):
        sliced = hist[:i]
        p = sliced.copy()
        p[-1] += tail[i]
        merged = i // levels
        group = np.minimum(np.arange(i) // merged, levels - 1)
        starts = np.arange(levels) * merged
        qsum = np.add.reduceat(sliced, starts)
        nonzero = sliced != 0
        nz = np.add.reduceat(nonzero.astype(np.float64), starts)
        q = np.where(nonzero, (qsum / np.maximum(nz, 1))[group], 0.0)
        kl = _kl(p, q)
        if kl < best_kl:
            best_kl, best_i = kl, i
    return float(edges[best_i])


def _kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    """``KL(P || Q)`` of two unnormalised histograms.

    Both are normalised; bins where ``P > 0`` but ``Q = 0`` get mass ``eps`` (then ``Q`` is
    renormalised) so the divergence stays finite.  Unlike onnxruntime's
    ``smooth_distribution`` this never drives a small non-empty bin negative.
    """
    if p.sum() == 0 or q.sum() == 0:
        return float("inf")
    ps = p / p.sum()
    qs = q / q.sum()
    mask = ps > 0
    qs = np.where(mask & (qs == 0), eps, qs)
    qs = qs / qs.sum()
    return float(np.sum(ps[mask] * np.log(ps[mask] / qs[mask])))


def entropy_range(x: torch.Tensor, bits: int = 8, bins: int = 2048,
                  ignore_zeros: bool = True) -> tuple[float, float]:
    """The min-max range of ``x`` clipped to ``[-t, t]``, ``t`` = :func:`entropy_threshold`."""
    lo, hi = minmax_range(x)
    t = entropy_threshold(x, bits, bins, ignore_zeros=ignore_zeros)
    return max(lo, -t), min(hi, t)


RangeMethod = Literal["minmax", "percentile", "entropy"]


def static_range(batches: Iterable[torch.Tensor], method: RangeMethod = "minmax",
                 **kwargs: float) -> tuple[float, float]:
    """Static calibration: one range for all the values seen over several batches.

    Min-max takes the extreme over batches; percentile and entropy pool the values
    (the calibration sets of this book are small) and apply :func:`percentile_range` /
    :func:`entropy_range` with ``kwargs``.
    """
    batches = [b.detach().reshape(-1) for b in batches]
    if not batches:
        raise ValueError("static_range needs at least one batch")
    if method == "minmax":
        return min(float(b.min()) for b in batches), max(float(b.max()) for b in batches)
    pooled = torch.cat(batches)
    if method == "percentile":
        return percentile_range(pooled, **kwargs)
    if method == "entropy":
        return entropy_range(pooled, **{k: int(v) for k, v in kwargs.items()})  # type: ignore[arg-type]
    raise ValueError(f"unknown range method {method!r}")


def tensor_params(x: torch.Tensor, bits: int = 8, *, symmetric: bool = False, signed: bool = False,
                  range_fn: RangeFn = minmax_range) -> QuantParams:
    """Per-tensor parameters from ``range_fn(x)`` (min-max by default)."""
    lo, hi = range_fn(x)
    return affine_params(lo, hi, bits, symmetric=symmetric, signed=signed)


def channel_params(x: torch.Tensor, bits: int = 8, *, axis: int = 0, symmetric: bool = True,
                   signed: bool = True) -> QuantParams:
    """Per-channel min-max parameters along ``axis`` (output channels of a weight: axis 0)."""
    moved = x.detach().movedim(axis, 0).reshape(x.shape[axis], -1)
    return affine_params(moved.min(1).values, moved.max(1).values, bits,
                         symmetric=symmetric, signed=signed, axis=axis)


# -- errors ---------------------------------------------------------------------------------

def quantization_error(x: torch.Tensor, params: QuantParams,
                       kind: Literal["mse", "relative"] = "mse") -> float:
    """MSE ``mean((x - x_hat)^2)``, or ``relative``: ``||x - x_hat||^2 / ||x||^2``."""
    x = x.detach().to(torch.float32)
    err = (x - fake_quantize(x, params)).pow(2)
    if kind == "mse":
        return float(err.mean())
    if kind == "relative":
        return float(err.sum() / x.pow(2).sum().clamp_min(1e-30))
    raise ValueError(f"unknown error kind {kind!r}")


def weight_error_per_tensor_vs_per_channel(weight: torch.Tensor, bits: int = 8, *,
                                           symmetric: bool = True,
                                           kind: Literal["mse", "relative"] = "mse") -> dict[str, float]:
    """Quantisation error of a weight with one range per layer vs one per output channel."""
    per_tensor = tensor_params(weight, bits, symmetric=symmetric, signed=symmetric)
    per_channel = channel_params(weight, bits, axis=0, symmetric=symmetric, signed=symmetric)
    return {"per_tensor": quantization_error(weight, per_tensor, kind),
            "per_channel": quantization_error(weight, per_channel, kind)}


def activation_error_sym_vs_asym(activations: torch.Tensor, bits: int = 8, *,
                                 kind: Literal["mse", "relative"] = "mse") -> dict[str, float]:
    """Error of symmetric (signed, ``Z = 0``) vs asymmetric (unsigned, min-max) quantisation.

    On post-ReLU activations the symmetric range spends half of its codes on negative
    values that never occur, so its step is twice as coarse.
    """
    sym = tensor_params(activations, bits, symmetric=True, signed=True)
    asym = tensor_params(activations, bits, symmetric=False, signed=False)
    return {"symmetric": quantization_error(activations, sym, kind),
            "asymmetric": quantization_error(activations, asym, kind)}
