"""Aligned faces stored as ``root/<identity>/<image>.jpg|png`` (one folder per identity).

Labels are the positions of the identity folders in sorted order. Images are read with
OpenCV and returned as arcface_torch's input: RGB float [3, size, size] in [-1, 1].
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from faceopt.data.recordio import image_to_tensor

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class ImageFolderFaces(Dataset):
    """(tensor [3, size, size] in [-1, 1], label) for each image under ``root/<identity>/``."""

    def __init__(self, root: str | os.PathLike, size: int = 112,
                 extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> None:
        self.root = Path(root)
        self.size = size
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root} is not a directory (expected root/<identity>/<image>)")
        self.classes: list[str] = sorted(p.name for p in self.root.iterdir()
                                         if p.is_dir() and not p.name.startswith("."))
        if not self.classes:
            raise ValueError(f"{self.root} has no identity folders (expected root/<identity>/<image>"
                             f"{'|'.join(extensions)})")
        self.samples: list[tuple[Path, int]] = []
        empty: list[str] = []
        for label, name in enumerate(self.classes):
            files = sorted(p for p in (self.root / name).iterdir()
                           if p.is_file() and p.suffix.lower() in extensions)
            if not files:
                empty.append(name)
            self.samples += [(p, label) for p in files]
        if empty:
            raise ValueError(f"{self.root}: {len(empty)} identity folder(s) hold no "
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
        import cv2

        path = self.samples[i][0]
        img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{path}: OpenCV cannot decode this file as an image")
        return img

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return image_to_tensor(self.image(i), self.size), self.samples[i][1]
