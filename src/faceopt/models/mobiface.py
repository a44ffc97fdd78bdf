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
head or in what "x3" widens.

What the thesis implies. Its text says the filters of every layer are tripled, Swish
replaces PReLU and SE blocks follow the late layers; it does not describe the head, and it
gives 9.11M parameters. With the flatten+FC head no width fits (12.85M for the FC alone).
With MobileFaceNet's global depthwise head (``head="gdc"``: a 7x7 depthwise conv and a
linear 1x1 to the embedding, no flatten), the parameters are 9.24M at ``width=2`` (1.4% above
9.11M) and 20.13M at ``width=3`` (2.2 times). The parameter count is the number the thesis
measured, so the chapter's student (``mobiface_x2_swish_se_gdc``) is width 2 with the GDC head;
"x3" is read as the thesis's name for its variant, not as a multiplier we could reproduce
together with its size. ``input_size`` sizes the head to the last feature map (input / 16).
"""
from __future__ import annotations

from torch import Tensor, nn

from faceopt.models.mobilefacenet import ACTIVATIONS, Bottleneck, GDCHead, conv_bn, init_weights

STAGES = ((64, 2), (128, 3), (256, 6))  # (channels at width 1, residual repeats)
HEADS = ("fc", "gdc")


class MobiFace(nn.Module):
    """MobiFace embedding network for 112x112 faces (see the module docstring)."""

    def __init__(
        self,
        embedding_size: int = 512,
        width: int = 1,
        act: str = "prelu",
        se_late: bool = False,
        expansion: int = 2,
        head: str = "fc",
        input_size: tuple[int, int] = (112, 112),
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if len(input_size) != 2 or min(input_size) < 16:
            raise ValueError(f"input_size must be (height, width) >= 16, got {input_size!r}")
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
        grid = ((input_size[0] + 15) // 16, (input_size[1] + 15) // 16)  # four stride-2 stages
        self.head: nn.Module
        if head == "fc":
            self.head = nn.Sequential(nn.Flatten(1), nn.Linear(512 * grid[0] * grid[1], embedding_size),
                                      nn.BatchNorm1d(embedding_size))
        else:
            self.head = GDCHead(512, embedding_size, grid)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))
