"""Small classifiers for the 8x8 digits, the scale of the lottery-ticket experiments."""
from __future__ import annotations

from torch import nn


def lenet300_100(in_features: int = 64, num_classes: int = 10) -> nn.Sequential:
    """LeNet-300-100: the fully connected network of the lottery-ticket paper (64 inputs here)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, 300), nn.ReLU(),
        nn.Linear(300, 100), nn.ReLU(),
        nn.Linear(100, num_classes),
    )


def lenet5_digits(num_classes: int = 10, width: int = 1) -> nn.Sequential:
    """A LeNet-5-style CNN for 1x8x8 inputs: two 3x3 conv + pool stages, three linear layers."""
    c1, c2 = 16 * width, 32 * width
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 2 * 2, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )
