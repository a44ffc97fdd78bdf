"""Aligned faces stored as ``root/<identity>/<image>.jpg|png`` (one folder per identity).

Labels are the positions of the identity folders in sorted order. Images are read with
OpenCV and returned as arcface_torch's input: RGB float [3, size, size] in [-1, 1].
Identity folders and images that are symbolic links pointing outside the root are refused unless
``follow_links=True`` (a shared folder must not make the reader open files elsewhere); images are
decoded with :func:`faceopt.data.images.decode_image` (empty files and decompression bombs refused).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from faceopt.data.errors import DataFileError, inside
from faceopt.data.images import DEFAULT_MAX_IMAGE_PIXELS, decode_image
from faceopt.data.recordio import image_to_tensor

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class ImageFolderFaces(Dataset):
    """(tensor [3, size, size] in [-1, 1], label) for each image under ``root/<identity>/``."""

    def __init__(self, root: str | os.PathLike, size: int = 112,
                 extensions: tuple[str, ...] = IMAGE_EXTENSIONS, *, follow_links: bool = False,
                 max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        self.root = Path(root)
        self.size = size
        self.max_image_pixels = max_image_pixels
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root} is not a directory (expected root/<identity>/<image>)")
        self.classes: list[str] = sorted(p.name for p in self.root.iterdir()
                                         if p.is_dir() and not p.name.startswith("."))
        if not self.classes:
            raise DataFileError(f"{self.root} has no identity folders (expected root/<identity>/<image>"
                             f"{'|'.join(extensions)})")
        self.samples: list[tuple[Path, int]] = []
        empty: list[str] = []
        for label, name in enumerate(self.classes):
            files = sorted(p for p in (self.root / name).iterdir()
                           if p.is_file() and p.suffix.lower() in extensions)
            if not follow_links:
                outside = [p for p in [self.root / name, *files] if p.is_symlink() and not inside(self.root, p)]
                if outside:
                    raise DataFileError(f"{outside[0]} is a symbolic link to {outside[0].resolve()}, outside "
                                        f"{self.root}; copy the files in, or pass follow_links=True if you trust them")
            if not files:
                empty.append(name)
            self.samples += [(p, label) for p in files]
        if empty:
            raise DataFileError(f"{self.root}: {len(empty)} identity folder(s) hold no "
                             f"{'/'.join(extensions)} images, e.g. {empty[:5]}; remove them or "
                             f"add images, since they would be classes with no examples")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        """Label of every sample, int64 [N]."""
        return np.array([lab for _, lab in self.samples], dtype=np.int64)

    def image(self, i: int) -> np.ndarray:
        """BGR uint8 image [H, W, 3] of sample ``i``."""
        path = self.samples[i][0]
        return decode_image(path.read_bytes(), str(path), self.max_image_pixels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return image_to_tensor(self.image(i), self.size), self.samples[i][1]
