"""Model cost measures: trainable parameters, multiply-accumulates and checkpoint size.

Conventions, so that numbers can be compared with the thesis and insightface:

* ``count_macs`` returns multiply-accumulates (MACs); ``count_flops`` returns 2 x MACs.
  :class:`torch.utils.flop_counter.FlopCounterMode` counts 2 FLOPs per MAC for
  convolutions and matrix products and ignores batch norm, activations and additions,
  so MACs = counted FLOPs / 2. The thesis's "GFLOPs" are FLOPs = 2 x MACs, measured:
  iResNet-100 is 12.09 G MACs = 24.18 G FLOPs against its 24.2, MobileFaceNet (512-d)
  0.221 G MACs = 0.442 G FLOPs against its 0.44 (OpenVINO's model zoo uses the same
  convention: 24.209 and 0.449 GFLOPs). Some tools (ptflops, fvcore) print MACs and
  call them FLOPs, so check the convention of any number you compare against.
* ``size_on_disk_mb`` is the size of ``torch.save(model.state_dict())`` (parameters
  *and* buffers such as batch-norm running statistics, float32) in units of 2**20 bytes
  (MiB) by default; pass ``unit=MB`` (10**6 bytes) for decimal megabytes, the unit of
  the thesis's "261.2 MB" for iResNet-100 (ours: 261.19 MB = 249.09 MiB).
"""
from __future__ import annotations

import os
import tempfile

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

MIB = 2**20
MB = 10**6


def count_parameters(model: nn.Module) -> int:
    """Number of trainable (``requires_grad``) parameter elements."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 112, 112)) -> int:
    """Multiply-accumulates of one forward pass in eval mode (FLOPs counted by torch / 2)."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(input_size, device=device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops() // 2
    finally:
        model.train(was_training)


def count_flops(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 112, 112)) -> int:
    """FLOPs of one forward pass, 2 x :func:`count_macs` (the thesis's "FLOPs")."""
    return 2 * count_macs(model, input_size)


def size_on_disk_mb(model: nn.Module, unit: int = MIB) -> float:
    """Size of the saved ``state_dict`` in ``unit`` bytes (default MiB = 2**20 bytes)."""
    fd, path = tempfile.mkstemp(suffix=".pth")
    os.close(fd)
    try:
        torch.save(model.state_dict(), path)
        return os.path.getsize(path) / unit
    finally:
        os.remove(path)


def settle_batchnorm(model: nn.Module, *, batches: int = 4, batch_size: int = 8,
                     input_size: tuple[int, int, int] = (3, 112, 112), seed: int = 0) -> nn.Module:
    """Set every batch-norm's running statistics from a few random batches; return the model in eval mode.

    A freshly initialised deep network has unit running statistics, so in eval mode its
    activations grow layer after layer (iResNet-100 reaches ~1e10 and its float
    arithmetic slows down by an order of magnitude). A trained network keeps them near
    unit scale. Estimating the statistics once, as a trained network would have them,
    makes a random-weight model time like a trained one without any training.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in norms]
    gen = torch.Generator().manual_seed(seed)
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    model.train()
    try:
        with torch.no_grad():
            for _ in range(batches):
                model(torch.randn(batch_size, *input_size, generator=gen))
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    return model
