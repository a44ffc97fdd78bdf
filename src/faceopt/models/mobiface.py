"""MobiFace (Duong et al. 2018) and the thesis's widened Swish+SE variant.

Layout at 112x112, as in the paper's architecture table (``t`` expansion, ``c`` output
channels at width 1, ``n`` repeats, ``s`` stride)::

    112x112x3    conv3x3                         c=64   s=2
    56x56x64     depthwise conv3x3               c=64   s=1
    56x56x64     bottleneck              t=2     c=64   n=1  s=2   (fast downsampling)
    28x28x64     residual bottleneck     t=2     c=64   n=2  s=1
    28x28x64     bottleneck              t=2     c=128  n=1  s=2
    14x14x128    residual bottleneck     t=2     c=128  n=3  s=1
    14x14x128    bottleneck              t=2     c=256  n=1  s=2
    7x7x256      residual bottleneck     t=2     c=256  n=6  s=1
    7x7x256      conv1x1                         c=512
    7x7x512      flatten + fully connected       D=512, then BN1d

Bottlenecks are MobileNetV2 inverted residuals with PReLU. ``width`` multiplies every
channel count up to the 1x1 conv (which stays 512); ``act="swish"`` swaps PReLU for
Swish; ``se_late`` adds a Squeeze-and-Excitation gate to the 7x7 residual bottlenecks.
The thesis's MobiFace_x3_swish_se is ``width=3, act="swish", se_late=True``.

Size: this layout has 15.00M parameters, 12.85M of them in the 25088x512 FC (2.15M
without it; 2.40M with a 512x512 FC instead, the "2.4M" other papers quote for MobiFace).
The x3 Swish+SE variant has 32.69M, far from the thesis's 9.11M (Table 15): no variant
with the flatten+FC head can be below 12.85M, so the thesis's model must differ in its
head or in what "x3" widens; the paper's layout is kept here rather than guessed.
"""
from __future__ import annotations

from torch import Tensor, nn

from faceopt.models.mobilefacenet import ACTIVATIONS, Bottleneck, conv_bn, init_weights

STAGES = ((64, 2), (128, 3), (256, 6))  # (channels at width 1, residual repeats)


class MobiFace(nn.Module):
    """MobiFace embedding network for 112x112 faces (see the module docstring)."""

    def __init__(
        self,
        embedding_size: int = 512,
        width: int = 1,
        act: str = "prelu",
        se_late: bool = False,
        expansion: int = 2,
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
        stem = 64 * width
        layers: list[nn.Module] = [
            conv_bn(3, stem, 3, 2, act=act),
            conv_bn(stem, stem, 3, groups=stem, act=act),
        ]
        cin = stem
        for i, (channels, repeats) in enumerate(STAGES):
            cout = channels * width
            se = se_late and i == len(STAGES) - 1
            layers.append(Bottleneck(cin, cout, expansion * cin, 2, act=act))
            layers += [Bottleneck(cout, cout, expansion * cout, act=act, se=se)
                       for _ in range(repeats)]
            cin = cout
        layers.append(conv_bn(cin, 512, 1, act=act))
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(512 * 7 * 7, embedding_size)
        self.bn = nn.BatchNorm1d(embedding_size)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.fc(self.body(x).flatten(1)))
