"""The thesis's protocol on a pedestrian video: a static human-like object and multiplicative noise.

Section 2.5 pastes a static object that looks like a person into every frame (a false
positive waiting to happen for the detector) and multiplies each frame by Gaussian
noise with mean 0.8 and standard deviation 0.2. We draw the object procedurally (a
mannequin: head, torso, arms, legs) so that no third-party image is needed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from faceopt.data.cdnet import read_video


def mannequin(height: int = 160, colour: tuple[int, int, int] = (60, 70, 85)) -> tuple[np.ndarray, np.ndarray]:
    """A standing human-like figure: (BGR image, boolean mask), ``height`` pixels tall."""
    if height < 20:
        raise ValueError(f"height must be at least 20 pixels, got {height}")
    w = height // 2
    img = np.zeros((height, w, 3), np.uint8)
    mask = np.zeros((height, w), np.uint8)
    cx, head = w // 2, height // 8
    for target, value in ((img, colour), (mask, 255)):
        cv2.circle(target, (cx, head), head * 3 // 4, value, -1)
        cv2.rectangle(target, (cx - w // 5, head * 2), (cx + w // 5, height * 11 // 20), value, -1)
        cv2.line(target, (cx - w // 5, head * 2 + 4), (cx - w // 3, height // 2), value, max(2, w // 10))
        cv2.line(target, (cx + w // 5, head * 2 + 4), (cx + w // 3, height // 2), value, max(2, w // 10))
        cv2.line(target, (cx - w // 10, height * 11 // 20), (cx - w // 6, height - 2), value, max(2, w // 8))
        cv2.line(target, (cx + w // 10, height * 11 // 20), (cx + w // 6, height - 2), value, max(2, w // 8))
    return img, mask > 0


def paste_object(frame: np.ndarray, obj: np.ndarray, mask: np.ndarray, xy: tuple[int, int]) -> np.ndarray:
    """A copy of ``frame`` with ``obj`` pasted through ``mask`` at top-left ``xy`` (clipped to the frame)."""
    out = frame.copy()
    x, y = xy
    h, w = mask.shape
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"object at {xy} of size {w}x{h} lies outside the {fw}x{fh} frame")
    region = out[y0:y1, x0:x1]
    m = mask[y0 - y:y1 - y, x0 - x:x1 - x]
    region[m] = obj[y0 - y:y1 - y, x0 - x:x1 - x][m]
    return out


def multiplicative_noise(frame: np.ndarray, rng: np.random.Generator, mean: float = 0.8, sd: float = 0.2
                         ) -> np.ndarray:
    """Multiply every pixel (all channels alike) by N(mean, sd), as in the thesis; clipped to 0..255."""
    gain = rng.normal(mean, sd, frame.shape[:2]).astype(np.float32)[..., None]
    return np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def augment_pedestrian_frame(frame: np.ndarray, rng: np.random.Generator, *, obj: tuple[np.ndarray, np.ndarray],
                             xy: tuple[int, int], mean: float = 0.8, sd: float = 0.2) -> np.ndarray:
    """The thesis's augmentation of one frame: the static object, then multiplicative noise."""
    return multiplicative_noise(paste_object(frame, *obj, xy), rng, mean, sd)


def pedestrian_scene(video_path: str | Path, boxes: Mapping[int, np.ndarray], indices: Sequence[int], *,
                     seed: int = 0, augment: bool = True, object_height: int = 150,
                     xy: tuple[int, int] = (330, 300), mean: float = 0.8, sd: float = 0.2
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames ``indices`` of a video with their person boxes, under the thesis's protocol.

    With ``augment`` every frame gets the same static mannequin at ``xy`` (not a person:
    never in the ground truth) and seeded multiplicative noise N(``mean``, ``sd``).
    ``boxes`` maps frame index -> float [N, 4] (frames without an entry have no person).
    """

    wanted = sorted(set(int(i) for i in indices))
    if not wanted or wanted[0] < 0:
        raise ValueError(f"indices must be non-negative frame numbers, got {list(indices)[:5]}...")
    rng = np.random.default_rng([seed, 0x9ED])
    obj = mannequin(object_height)
    frames: dict[int, np.ndarray] = {}
    for i, frame in enumerate(read_video(video_path, max_frames=wanted[-1] + 1)):
        if i in set(wanted):
            frames[i] = augment_pedestrian_frame(frame, rng, obj=obj, xy=xy, mean=mean, sd=sd) if augment else frame
    missing = [i for i in wanted if i not in frames]
    if missing:
        raise ValueError(f"{video_path}: has no frame {missing[0]} (it holds {len(frames) and max(frames) + 1} frames)")
    empty = np.zeros((0, 4), np.float32)
    return [frames[i] for i in wanted], [np.asarray(boxes.get(i, empty), np.float32).reshape(-1, 4) for i in wanted]
