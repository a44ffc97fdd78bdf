"""What a detector accepts as an image, checked once with errors that say how to fix the input."""
from __future__ import annotations

import numpy as np

__all__ = ["check_image"]


def check_image(image: np.ndarray, color: str) -> None:
    """Refuse anything but a uint8 H x W x 3 image in ``color`` ("bgr" or "rgb"), saying how to convert it."""
    if color not in ("bgr", "rgb"):
        raise ValueError(f"color must be 'bgr' or 'rgb', not {color!r}")
    if not isinstance(image, np.ndarray):
        raise ValueError(f"pass a numpy uint8 HxWx3 image, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"pass a uint8 HxWx3 image (values 0..255), got dtype {image.dtype}; "
                         "for floats in [0, 1] use (img * 255).round().astype(np.uint8)")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise ValueError(f"pass a colour HxWx3 image, got grayscale shape {image.shape}; "
                         "convert with cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)")
    if image.ndim == 3 and image.shape[2] == 4:
        raise ValueError(f"pass an HxWx3 image, got 4 channels {image.shape}; "
                         "drop alpha with cv2.cvtColor(img, cv2.COLOR_BGRA2BGR) (or RGBA2RGB)")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"pass a uint8 HxWx3 image, got shape {image.shape}")
