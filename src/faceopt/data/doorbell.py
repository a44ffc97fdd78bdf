"""A door-phone scene with exact ground truth, for the face-detector experiments of thesis Chapter 2 (page 03).

A fixed camera looks at a wall. Real faces (grey LFW crops from scikit-image, upscaled)
walk into view, stop, and leave; between visits the scene is empty, which is when an
early exit should pay. A face poster hangs on the wall in every frame: a detector fires
on it, but it never moves, so it is the false-positive trap the thesis's static-box filter
is meant to remove. Sensor noise (additive, and optionally the thesis's multiplicative
N(0.8, 0.2) gain) is seeded.

Ground truth lists only the visitors' faces: the region where each face image was pasted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np


@dataclass(frozen=True)
class DoorbellConfig:
    """Scene layout and noise. Sizes in pixels of a ``width`` x ``height`` frame."""

    width: int = 640
    height: int = 480
    frames: int = 300
    visits: int = 3
    face_size: tuple[int, int] = (150, 230)  # min, max side of a visitor's face
    poster_size: int = 140
    poster_xy: tuple[int, int] = (40, 60)
    additive_noise: float = 3.0  # sd in grey levels
    gain_mean: float = 1.0  # the thesis's pedestrian protocol uses 0.8 ...
    gain_sd: float = 0.0  # ... and 0.2
    seed: int = 0


@dataclass(frozen=True)
class Visit:
    face: int
    start: int  # first frame with the face in view
    end: int  # frame after the last
    size: int
    stop_x: int
    y: int


def wall(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A plain textured wall with a door frame: a static background, BGR uint8."""
    rng = np.random.default_rng(seed)
    base = np.full((height, width, 3), (170, 180, 190), np.float32)
    base += np.linspace(-15, 15, width, dtype=np.float32)[None, :, None]
    base += rng.normal(0, 4, (height // 8 + 1, width // 8 + 1, 1)).repeat(8, 0).repeat(8, 1)[:height, :width]
    img = np.clip(base, 0, 255).astype(np.uint8)
    cv2.rectangle(img, (width // 2 - 120, 20), (width // 2 + 120, height), (90, 110, 130), 12)
    return img


def _paste(frame: np.ndarray, face: np.ndarray, x: int, y: int, size: int) -> tuple[int, int, int, int] | None:
    """Paste a grey face as a size x size square with its top-left at (x, y); return the visible box."""
    patch = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    patch = cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR)
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + size, w), min(y + size, h)
    if x1 <= x0 or y1 <= y0:
        return None
    frame[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]
    return x0, y0, x1, y1


def plan_visits(config: DoorbellConfig, faces: int, rng: np.random.Generator) -> list[Visit]:
    """Visits spread over the clip with empty frames between them; each walks in, stops, walks out."""
    slot = config.frames // max(config.visits, 1)
    visits = []
    for k in range(config.visits):
        length = int(slot * rng.uniform(0.45, 0.7))
        start = k * slot + int(rng.integers(2, max(3, slot - length)))
        size = int(rng.integers(config.face_size[0], config.face_size[1] + 1))
        stop_x = int(rng.integers(config.width // 2 - size // 2 - 60, config.width // 2 - size // 2 + 60))
        y = int(rng.integers(40, max(41, config.height - size - 20)))
        visits.append(Visit(int(rng.integers(0, faces)), start, min(start + length, config.frames), size, stop_x, y))
    return visits


def _x_at(visit: Visit, t: int, width: int) -> int:
    """Walk in from the right edge over the first third, stand, walk out to the left over the last third."""
    span = visit.end - visit.start
    third = max(span // 3, 1)
    enter_x, leave_x = width, -visit.size
    i = t - visit.start
    if i < third:
        return int(enter_x + (visit.stop_x - enter_x) * i / third)
    if i >= span - third:
        return int(visit.stop_x + (leave_x - visit.stop_x) * (i - (span - third)) / third)
    return visit.stop_x


def doorbell_scene(faces: np.ndarray, config: DoorbellConfig = DoorbellConfig(), *, poster_face: int | None = None
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (BGR frame, ground-truth face boxes [N, 4]) for every frame of the clip.

    ``faces``: grey face crops [K, h, w] in [0, 1] (e.g. scikit-image's ``lfw_subset``,
    whose first 100 images are faces). The poster shows ``poster_face`` (default: the
    last face), which no visitor uses.
    """
    faces = np.asarray(faces)
    if faces.ndim != 3 or len(faces) < 2:
        raise ValueError(f"faces must be grey crops [K >= 2, h, w], got shape {faces.shape}")
    grey = (np.clip(faces, 0, 1) * 255).round().astype(np.uint8)
    poster = len(grey) - 1 if poster_face is None else poster_face
    rng = np.random.default_rng(config.seed)
    visits = plan_visits(config, len(grey) - 1, rng)
    background = wall(config.width, config.height, config.seed)
    _paste(background, grey[poster], *config.poster_xy, config.poster_size)
    noise_rng = np.random.default_rng(config.seed + 1)
    for t in range(config.frames):
        frame = background.copy()
        boxes = []
        for v in visits:
            if v.start <= t < v.end:
                box = _paste(frame, grey[v.face], _x_at(v, t, config.width), v.y, v.size)
                if box is not None:
                    boxes.append(box)
        noisy = frame.astype(np.float32)
        if config.gain_sd > 0 or config.gain_mean != 1.0:
            noisy *= noise_rng.normal(config.gain_mean, config.gain_sd, noisy.shape[:2])[..., None]
        if config.additive_noise > 0:
            noisy += noise_rng.normal(0, config.additive_noise, noisy.shape)
        yield np.clip(noisy, 0, 255).astype(np.uint8), np.asarray(boxes, np.float32).reshape(-1, 4)
