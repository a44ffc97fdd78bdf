"""insightface "improved ResNet" (iResNet) face embedders: iResNet-18/50/100.

Layout (input 3x112x112, as insightface ``arcface_torch/backbones/iresnet.py``):
conv3x3 64 + BN + PReLU at 112x112, four stages of :class:`IBasicBlock` with widths
64/128/256/512 each starting with a stride-2 block (56, 28, 14, 7), then BN2d, flatten,
dropout, ``Linear(512*7*7, D)`` and BatchNorm1d ("features"). As in insightface the
final BatchNorm1d's scale is frozen at 1, so it is not a trainable parameter.

Against the thesis (Table 4, iResNet-100: 24.2 GFLOPs, 52.56M params, 261.2 MB): ours has
12.09 G MACs = 24.18 G FLOPs, 65.16M trainable parameters and a 261.19 MB (10**6 bytes)
state_dict. The size matches; the thesis's 52.56M does not (it disagrees with its own
261.2 MB, which needs ~65.3M float32 values); the nearest reading is the network without
the 25088x512 ``fc`` layer, 52.31M.
"""
from __future__ import annotations

from torch import Tensor, nn

LAYERS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation-style residual block: BN-conv3x3-BN-PReLU-conv3x3(stride)-BN."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = _conv3x3(cin, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = _conv3x3(cout, cout, stride)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


def _final_side(side: int) -> int:
    """Spatial side after the four stride-2 3x3 convolutions (padding 1): 112 -> 7, 56 -> 4, 32 -> 2."""
    for _ in range(4):
        side = (side - 1) // 2 + 1
    return side


class IResNet(nn.Module):
    """iResNet backbone returning a ``num_features``-d embedding (112x112 faces by default).

    ``width`` scales the channels of every stage (insightface: 1.0) and ``input_size``
    sizes the final fully connected layer, so that reduced teachers for CPU-sized
    experiments keep the architecture's shape.
    """

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        num_features: int = 512,
        dropout: float = 0.0,
        width: float = 1.0,
        input_size: int = 112,
    ) -> None:
        super().__init__()
        if width <= 0 or input_size < 16:
            raise ValueError(f"width must be > 0 and input_size >= 16, got {width}, {input_size}")
        widths = tuple(max(8, int(round(c * width))) for c in (64, 128, 256, 512))
        self.fc_scale = _final_side(input_size) ** 2
        self.conv1 = _conv3x3(3, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-5)
        self.prelu = nn.PReLU(widths[0])
        stages: list[nn.Module] = []
        cin = widths[0]
        for width, n in zip(widths, layers):
            blocks = [IBasicBlock(cin, width, stride=2)]
            blocks += [IBasicBlock(width, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = nn.BatchNorm2d(widths[3], eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(widths[3] * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.ones_(self.features.weight)
        self.features.weight.requires_grad = False

    def forward(self, x: Tensor) -> Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x).flatten(1))
        return self.features(self.fc(x))


def iresnet(depth: int = 100, num_features: int = 512, dropout: float = 0.0, width: float = 1.0,
            input_size: int = 112) -> IResNet:
    """iResNet of the given depth (18, 34, 50 or 100), optionally narrower or for smaller inputs."""
    if depth not in LAYERS:
        raise ValueError(f"depth must be one of {sorted(LAYERS)}, got {depth!r}")
    return IResNet(LAYERS[depth], num_features=num_features, dropout=dropout, width=width, input_size=input_size)
