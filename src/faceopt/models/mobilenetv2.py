"""MobileNetV2 (Sandler et al. 2018) as a face embedder: a thin wrapper over torchvision.

torchvision's network ends in global average pooling, so it accepts any input size
(112x112 faces give a 4x4 last feature map); its classifier ``Dropout + Linear``
becomes the embedding layer. Weights are always randomly initialised: nothing is
downloaded.
"""
from __future__ import annotations

from torch import nn
from torchvision.models import mobilenet_v2


def mobilenetv2(
    embedding_size: int = 512,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    num_classes: int | None = None,
) -> nn.Module:
    """MobileNetV2 returning ``[B, num_classes or embedding_size]``."""
    out = embedding_size if num_classes is None else num_classes
    if out < 1 or width_mult <= 0:
        raise ValueError(
            f"need a positive output size and width_mult, got {out!r} and {width_mult!r}"
        )
    return mobilenet_v2(weights=None, width_mult=width_mult, num_classes=out, dropout=dropout)
