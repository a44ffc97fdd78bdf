"""MobileFaceNet (Chen et al. 2018) and the building blocks shared with MobiFace.

Paper layout at 112x112 (``t`` expansion, ``c`` output channels, ``n`` repeats, ``s`` stride)::

    112x112x3    conv3x3                 c=64   s=2
    56x56x64     depthwise conv3x3       c=64   s=1
    56x56x64     bottleneck        t=2   c=64   n=5  s=2  (first block strided)
    28x28x64     bottleneck        t=4   c=128  n=1  s=2
    14x14x128    bottleneck        t=2   c=128  n=6  s=1
    14x14x128    bottleneck        t=4   c=128  n=1  s=2
    7x7x128      bottleneck        t=2   c=128  n=2  s=1
    7x7x128      conv1x1                 c=512
    7x7x512      linear GDC 7x7 (depthwise)
    1x1x512      linear conv1x1          c=D, then BN

``expansion`` replaces the t=2 of the paper (the mobile recipe article uses 4); the
strided t=4 blocks keep 4. ``se`` adds a Squeeze-and-Excitation gate to every residual
(non-strided) bottleneck. ``width`` multiplies the stem and bottleneck channels while
the hidden (expanded) widths stay those of width 1, which is how insightface's
``arcface_torch`` ``MobileFaceNet(scale=2)`` ("mbf") widens the net; ``blocks`` gives the
number of blocks at 56, 28, 14 and 7 pixels (paper and insightface: ``(1, 4, 6, 2)``,
a first entry > 1 turns the stem depthwise conv into residual bottlenecks).
``input_size`` (height, width) sizes the GDC kernel to the last feature map (7x6 for
the paper's 112x96 crops).

Thesis match (Table 4: 0.44 GFLOPs, 1.19M params, 5.3 MB): the paper layout with a
512-d embedding. Its 1.19M params are the paper's 0.99M plus the 512x512 (instead of
512x128) last conv; its "GFLOPs" are true FLOPs = 2 x MACs (0.22 G MACs at 112x112),
the same convention as the thesis's 24.2 GFLOPs for iResNet-100 (12.1 G MACs). The
activation does not change params or MACs (PReLU adds a few thousand slopes), so the
thesis student ``mobilefacenet_relu512`` (ReLU, 512-d) matches these numbers too.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

ACTIVATIONS = ("prelu", "relu", "swish")


def make_act(name: str, channels: int) -> nn.Module:
    """Activation by name: per-channel PReLU, ReLU or Swish (SiLU)."""
    if name == "prelu":
        return nn.PReLU(channels)
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "swish":
        return nn.SiLU(inplace=True)
    raise ValueError(f"act must be one of {ACTIVATIONS}, got {name!r}")


def conv_bn(
    cin: int,
    cout: int,
    kernel: int = 1,
    stride: int = 1,
    groups: int = 1,
    act: str | None = "prelu",
    padding: int | None = None,
) -> nn.Sequential:
    """Conv (no bias, "same" padding by default) + BN + activation; ``act=None`` is linear."""
    pad = kernel // 2 if padding is None else padding
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(make_act(act, cout))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation channel gate (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class Bottleneck(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand, 3x3 depthwise (stride), linear 1x1 project.

    The skip connection is used when stride is 1 and widths agree; the optional SE gate
    acts on the projected branch before the addition.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        hidden: int,
        stride: int = 1,
        act: str = "prelu",
        se: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            conv_bn(cin, hidden, 1, act=act),
            conv_bn(hidden, hidden, 3, stride, groups=hidden, act=act),
            conv_bn(hidden, cout, 1, act=None),
        ]
        if se:
            layers.append(SqueezeExcite(cout))
        self.branch = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = self.branch(x)
        return x + out if self.residual else out


class GDCHead(nn.Module):
    """Global depthwise conv head: linear 7x7 depthwise conv + BN, linear 1x1 conv + BN."""

    def __init__(
        self, channels: int, embedding_size: int, kernel: tuple[int, int] = (7, 7)
    ) -> None:
        super().__init__()
        self.gdc = conv_bn(channels, channels, kernel, groups=channels, act=None, padding=0)  # type: ignore[arg-type]
        self.linear = nn.Conv2d(channels, embedding_size, 1, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.linear(self.gdc(x)).flatten(1))


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs and linears, unit/zero batch norms."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class MobileFaceNet(nn.Module):
    """MobileFaceNet embedding network for 112x112 faces (see the module docstring)."""

    def __init__(
        self,
        embedding_size: int = 128,
        act: str = "prelu",
        expansion: int = 2,
        se: bool = False,
        width: int = 1,
        blocks: Sequence[int] = (1, 4, 6, 2),
        input_size: tuple[int, int] = (112, 112),
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
        if len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"blocks must be 4 positive counts, got {tuple(blocks)!r}")
        if len(input_size) != 2 or min(input_size) < 16:
            raise ValueError(f"input_size must be (height, width) >= 16, got {input_size!r}")
        t = expansion
        c64, c128 = 64 * width, 128 * width
        layers: list[nn.Module] = [conv_bn(3, c64, 3, 2, act=act)]
        if blocks[0] == 1:
            layers.append(conv_bn(c64, c64, 3, groups=64, act=act))
        else:
            layers += [Bottleneck(c64, c64, t * 64, act=act, se=se) for _ in range(blocks[0])]
        stages = (  # (cin, cout, strided block's hidden width, repeats' hidden width, repeats)
            (c64, c64, t * 64, t * 64, blocks[1]),
            (c64, c128, 4 * 64, t * 128, blocks[2]),
            (c128, c128, 4 * 128, t * 128, blocks[3]),
        )
        for cin, cout, strided_hidden, hidden, n in stages:
            layers.append(Bottleneck(cin, cout, strided_hidden, 2, act=act))
            layers += [Bottleneck(cout, cout, hidden, act=act, se=se) for _ in range(n)]
        layers.append(conv_bn(c128, 512, 1, act=act))
        self.body = nn.Sequential(*layers)
        gdc_kernel = ((input_size[0] + 15) // 16, (input_size[1] + 15) // 16)
        self.head = GDCHead(512, embedding_size, gdc_kernel)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))
