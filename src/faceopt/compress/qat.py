"""Post-training quantisation (PTQ) vs quantisation-aware training (QAT), thesis section 1.4.

Both simulate integer inference in float ("fake quantisation", :mod:`.quantization`):
every ``Linear`` / ``Conv2d`` sees its weight and its input rounded to ``bits``-bit codes.

* PTQ copies the trained float network, calibrates the activation ranges on a few
  batches (min-max) and freezes them; nothing is trained.
* QAT fine-tunes the network with the rounding in the loop.  ``round`` has zero
  gradient almost everywhere, so the backward pass uses the straight-through estimator
  (thesis Fig. 1.8): the quantiser is treated as the identity inside its clipping range
  and as a constant outside it (the *clipped* STE, ``dQ/dr = 1[alpha <= r <= beta]``).
  "Inside" means the rounded code is not saturated, ``qmin <= round(r/S) - Z <= qmax``,
  i.e. ``[alpha - S/2, beta + S/2]`` for the representable ``alpha, beta``: exactly
  PyTorch's ``fake_quantize`` gradient mask, and the calibrated range always lies in it.

Weights use symmetric signed per-channel (or per-tensor) ranges taken from the current
weight; activations use asymmetric unsigned ranges from a running min-max (an EMA
during QAT, the exact extremes during PTQ calibration).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from faceopt.compress.quantization import QuantParams, affine_params, channel_params, fake_quantize, in_range
from faceopt.compress.training import evaluate, fit
from faceopt.data.digits import Split

Observer = Literal["ema", "minmax", "off"]


class FakeQuantSTE(torch.autograd.Function):
    """Fake quantisation with the clipped straight-through estimator as its gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, params: QuantParams) -> torch.Tensor:
        """``S * (clamp(round(x / S) - Z, qmin, qmax) + Z)``."""
        ctx.save_for_backward(in_range(x, params))
        return fake_quantize(x, params)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Pass the gradient where ``x`` is not saturated, zero outside (none to the range)."""
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None


def fake_quant_ste(x: torch.Tensor, params: QuantParams) -> torch.Tensor:
    """Functional form of :class:`FakeQuantSTE`."""
    return FakeQuantSTE.apply(x, params)


class FakeQuant(nn.Module):
    """A fake-quantisation node with its own range.

    ``kind="weight"``: the range is the min-max of the tensor itself on every call
    (per output channel along ``axis`` when ``per_channel``), symmetric signed by default.
    ``kind="activation"``: asymmetric unsigned by default; the range is held in buffers
    and updated by the ``observer``: ``"ema"`` (running min-max with ``momentum``, in
    training mode only), ``"minmax"`` (the extremes of everything seen: calibration) or
    ``"off"`` (frozen).  Until a range has been observed the input passes unchanged.
    """

    running_min: torch.Tensor
    running_max: torch.Tensor

    def __init__(self, bits: int = 8, *, kind: Literal["weight", "activation"] = "activation",
                 per_channel: bool = False, axis: int = 0, symmetric: bool | None = None,
                 signed: bool | None = None, momentum: float = 0.01,
                 observer: Observer = "ema") -> None:
        super().__init__()
        self.bits, self.kind, self.per_channel, self.axis = bits, kind, per_channel, axis
        self.symmetric = (kind == "weight") if symmetric is None else symmetric
        self.signed = self.symmetric if signed is None else signed
        self.momentum, self.observer = momentum, observer
        self.register_buffer("running_min", torch.tensor(float("inf")))
        self.register_buffer("running_max", torch.tensor(float("-inf")))

    def reset_range(self) -> None:
        """Forget the observed activation range."""
        self.running_min.fill_(float("inf"))
        self.running_max.fill_(float("-inf"))

    def params(self, x: torch.Tensor | None = None) -> QuantParams:
        """Current :class:`QuantParams` (weights: from ``x``; activations: from the buffers)."""
        if self.kind == "weight":
            assert x is not None
            if self.per_channel:
                return channel_params(x, self.bits, axis=self.axis, symmetric=self.symmetric,
                                      signed=self.signed)
            w = x.detach()
            return affine_params(w.min(), w.max(), self.bits, symmetric=self.symmetric, signed=self.signed)
        return affine_params(self.running_min, self.running_max, self.bits, symmetric=self.symmetric,
                             signed=self.signed)

    @torch.no_grad()
    def _observe(self, x: torch.Tensor) -> None:
        lo, hi = x.min(), x.max()
        if self.observer == "minmax" or not torch.isfinite(self.running_min):
            self.running_min.copy_(torch.minimum(self.running_min, lo))
            self.running_max.copy_(torch.maximum(self.running_max, hi))
        elif self.observer == "ema" and self.training:
            self.running_min.lerp_(lo, self.momentum)
            self.running_max.lerp_(hi, self.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantise ``x`` (straight-through gradient)."""
        if self.kind == "activation":
            if self.observer != "off" and (self.training or self.observer == "minmax"):
                self._observe(x)
            if not torch.isfinite(self.running_min):
                return x
        return fake_quant_ste(x, self.params(x))

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, kind={self.kind}, per_channel={self.per_channel}, "
                f"symmetric={self.symmetric}, observer={self.observer}")


class QuantWrapper(nn.Module):
    """A ``Linear`` or ``Conv2d`` whose input and weight are fake-quantised (bias stays float,
    as an int32 bias at scale ``S_in * S_w`` is effectively exact)."""

    def __init__(self, module: nn.Linear | nn.Conv2d, bits: int, *, per_channel: bool = True,
                 activations: bool = True) -> None:
        super().__init__()
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            raise TypeError(f"QuantWrapper wraps Linear or Conv2d, got {type(module).__name__}")
        self.module = module
        self.weight_fq = FakeQuant(bits, kind="weight", per_channel=per_channel, axis=0)
        self.input_fq: nn.Module = FakeQuant(bits, kind="activation") if activations else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped layer on the fake-quantised input with the fake-quantised weight."""
        x = self.input_fq(x)
        w = self.weight_fq(self.module.weight)
        if isinstance(self.module, nn.Linear):
            return F.linear(x, w, self.module.bias)
        return self.module._conv_forward(x, w, self.module.bias)


def quantize_modules(model: nn.Module, bits: int, *, per_channel: bool = True,
                     activations: bool = True) -> nn.Module:
    """A deep copy of ``model`` with every ``Linear`` and ``Conv2d`` in a :class:`QuantWrapper`."""
    model = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, (nn.Linear, nn.Conv2d)):
                setattr(parent, name, QuantWrapper(child, bits, per_channel=per_channel,
                                                   activations=activations))
            else:
                swap(child)

    if isinstance(model, (nn.Linear, nn.Conv2d)):
        return QuantWrapper(model, bits, per_channel=per_channel, activations=activations)
    swap(model)
    return model


def fake_quant_nodes(model: nn.Module) -> list[FakeQuant]:
    """All activation :class:`FakeQuant` nodes of ``model``."""
    return [m for m in model.modules() if isinstance(m, FakeQuant) and m.kind == "activation"]


def set_observer(model: nn.Module, observer: Observer) -> None:
    """Switch every activation range of ``model`` to ``observer`` (``"off"`` freezes)."""
    for fq in fake_quant_nodes(model):
        fq.observer = observer


@torch.no_grad()
def calibrate(model: nn.Module, data: Split, batch_size: int = 256) -> None:
    """Static min-max calibration: reset the activation ranges and run ``data`` through."""
    for fq in fake_quant_nodes(model):
        fq.reset_range()
    set_observer(model, "minmax")
    was_training = model.training
    model.eval()
    for i in range(0, len(data), batch_size):
        model(data.x[i:i + batch_size])
    model.train(was_training)


def ptq(model: nn.Module, calib: Split, bits: int, *, per_channel: bool = True,
        activations: bool = True, batch_size: int = 256) -> nn.Module:
    """Post-training quantisation: copy, calibrate min-max ranges on ``calib``, freeze (no training)."""
    qmodel = quantize_modules(model, bits, per_channel=per_channel, activations=activations)
    calibrate(qmodel, calib, batch_size)
    set_observer(qmodel, "off")
    return qmodel.eval()


def qat(model: nn.Module, train: Split, bits: int, *, epochs: int, lr: float = 0.01, seed: int = 0,
        per_channel: bool = True, activations: bool = True, momentum: float = 0.01,
        test: Split | None = None, **fit_kwargs: Any) -> nn.Module:
    """Quantisation-aware training: fine-tune a copy of the trained float ``model``.

    The activation ranges start from a min-max calibration on ``train`` (the PTQ model),
    then follow an EMA of the batch min-max while :func:`~.training.fit` trains through
    the straight-through estimator; finally they are frozen.
    """
    qmodel = quantize_modules(model, bits, per_channel=per_channel, activations=activations)
    calibrate(qmodel, train)
    for fq in fake_quant_nodes(qmodel):
        fq.momentum = momentum
    set_observer(qmodel, "ema")
    fit(qmodel, train, epochs=epochs, lr=lr, seed=seed, test=test, **fit_kwargs)
    set_observer(qmodel, "off")
    return qmodel.eval()


def ptq_vs_qat(make_model: Callable[[], nn.Module], train: Split, test: Split,
               bits_list: tuple[int, ...] = (8, 6, 4), *, float_epochs: int, qat_epochs: int,
               lr: float = 0.1, seed: int = 0, qat_lr: float | None = None,
               per_channel: bool = True, calib_size: int | None = 256) -> list[dict[str, float]]:
    """Train one float model, then PTQ and QAT it at every bit width; test accuracies.

    ``qat_lr`` defaults to ``lr / 10`` (fine-tuning); PTQ calibrates on the first
    ``calib_size`` training images (all of them for ``None``).
    """
    torch.manual_seed(seed)
    model = make_model()
    fit(model, train, epochs=float_epochs, lr=lr, seed=seed)
    float_acc = evaluate(model, test)
    calib = train if calib_size is None else Split(train.x[:calib_size], train.y[:calib_size])
    rows: list[dict[str, float]] = []
    for bits in bits_list:
        ptq_acc = evaluate(ptq(model, calib, bits, per_channel=per_channel), test)
        q = qat(model, train, bits, epochs=qat_epochs, lr=lr / 10 if qat_lr is None else qat_lr,
                seed=seed, per_channel=per_channel)
        rows.append({"bits": bits, "float_acc": float_acc, "ptq_acc": ptq_acc,
                     "qat_acc": evaluate(q, test)})
    return rows
