"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, no download.

The setting of the lottery-ticket experiments at a size that trains in seconds on a
CPU. A fixed stratified split keeps every experiment on the same images.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    """Images [N, C, H, W] in [0, 1] and integer labels [N]."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


def load_digits_split(*, test_fraction: float = 0.3, seed: int = 0, size: int | None = None,
                      channels: int = 1) -> tuple[Split, Split]:
    """(train, test) splits of the digits, stratified by class.

    ``size`` resizes the 8x8 images bilinearly (for mobile networks that expect larger
    inputs) and ``channels`` repeats the grey channel (3 for RGB networks).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(torch.arange(len(y)).numpy(), test_size=test_fraction,
                                           random_state=seed, stratify=y.numpy())
    if size is not None and size != 8:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if channels == 3:
        x = x.repeat(1, 3, 1, 1)
    return Split(x[idx_train], y[idx_train]), Split(x[idx_test], y[idx_test])
