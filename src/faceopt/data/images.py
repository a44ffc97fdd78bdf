"""Images in and out: what a detector accepts (checked once, with errors that say how to fix the input), and
encoded images decoded safely (the size read from the header first, so a decompression bomb is refused
before it is decoded)."""
from __future__ import annotations

import io
import struct
import warnings
from typing import Any

import numpy as np

from faceopt.data.errors import DataFileError

__all__ = ["check_image", "DEFAULT_MAX_IMAGE_PIXELS", "encoded_image_size", "decode_image"]

# JPEG start-of-frame markers (they carry the size): C0..CF except DHT (C4), JPG (C8), DAC (CC)


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


_JPEG_STANDALONE = frozenset(range(0xD0, 0xD9)) | {0x01}  # RSTn, SOI, TEM: no length field
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest encoded image decoded (width x height); face crops are ~112 x 112, so this only stops bombs."""


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the first start-of-frame, walking the segments as libjpeg does."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in _JPEG_STANDALONE:
            i += 2
        elif marker in (0x00, 0xD9, 0xDA):  # stuffed zero, end of image, start of scan: no frame header
            return None
        elif marker in _JPEG_SOF:
            if i + 9 > len(data):
                return None
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        else:
            i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def _pillow_size(data: bytes) -> tuple[int, int] | None:
    """Pillow reads only the header in ``Image.open``; None if Pillow is absent or cannot identify the image."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own DecompressionBombWarning; the caller applies its cap
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                return int(w), int(h)
    except Exception:  # UnidentifiedImageError, DecompressionBombError, a corrupt header: size unknown
        return None


def encoded_image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) an encoded image declares in its header, read without decoding; None if unknown."""
    if data.startswith(_PNG_SIGNATURE):
        return _png_size(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg_size(data)
    return _pillow_size(data)


def decode_image(data: Any, where: str, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """BGR uint8 [H, W, 3] of encoded ``data``; refuses, naming ``where``, what is empty, unreadable or too large
    (:class:`~faceopt.data.errors.DataFileError`, a ValueError).

    The size is read from the header first, so a decompression bomb is refused before it is decoded.
    """
    import cv2

    if not isinstance(data, (bytes, bytearray)) or not data:
        size = len(data) if hasattr(data, "__len__") else "?"
        raise DataFileError(f"{where} is not a decodable encoded image ({type(data).__name__}, {size} bytes)")
    data = bytes(data)
    wh = encoded_image_size(data)
    if wh is None:
        raise DataFileError(f"{where} is not a decodable encoded image ({len(data)} bytes): its width and height cannot be "
                         f"read from a PNG, JPEG or other header Pillow reads; the data is corrupt")
    w, h = wh
    if w * h > max_pixels or w < 1 or h < 1:
        raise DataFileError(f"{where} declares a {w}x{h} image ({w * h} pixels) in {len(data)} bytes; the cap is "
                         f"{max_pixels} pixels (max_image_pixels), so this is corrupt or a decompression bomb; "
                         f"pass a larger max_image_pixels only if you trust the file")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:
        raise DataFileError(f"{where}: OpenCV cannot decode its {len(data)} bytes ({e}); the data is corrupt") from None
    if img is None or img.shape[0] * img.shape[1] > max_pixels:
        raise DataFileError(f"{where} holds {len(data)} bytes that OpenCV cannot decode as a {w}x{h} image; "
                         f"the data is corrupt")
    return np.asarray(img)
