"""Readers for the detection chapter: CDNet2014 videos and ordinary video files.

CDNet2014 (changedetection.net) stores each video as ``<category>/<video>/`` with
``input/in000001.jpg ...``, ``groundtruth/gt000001.png ...`` and ``temporalROI.txt``
(two 1-based frame numbers: the first and last frame that are evaluated). Ground-truth
pixel values: 0 static, 50 hard shadow, 85 outside the region of interest, 170 unknown
motion, 255 motion. The thesis turned these masks into boxes; we do the same with the
connected components of the motion pixels.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from faceopt.data.errors import DataFileError
from faceopt.data.images import DEFAULT_MAX_IMAGE_PIXELS

MOTION = 255


@dataclass(frozen=True)
class CDNetVideo:
    """One CDNet2014 video: frame and ground-truth paths and the evaluated frame range."""

    root: Path
    frames: tuple[Path, ...]
    groundtruth: tuple[Path, ...]
    roi: tuple[int, int]  # 1-based, inclusive, as in temporalROI.txt

    @property
    def name(self) -> str:
        return f"{self.root.parent.name}/{self.root.name}"

    def __len__(self) -> int:
        return len(self.frames)


def _numbered(folder: Path, prefix: str, suffix: str) -> dict[int, Path]:
    pattern = re.compile(rf"^{prefix}(\d+){re.escape(suffix)}$")
    found = {}
    for p in folder.iterdir():
        m = pattern.match(p.name)
        if m:
            found[int(m.group(1))] = p
    return found


def load_cdnet_video(path: str | Path) -> CDNetVideo:
    """Read the layout of one CDNet2014 video folder; errors name the file and what is expected."""
    root = Path(path)
    inputs, gts, roi_file = root / "input", root / "groundtruth", root / "temporalROI.txt"
    for needed in (inputs, gts, roi_file):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} is missing: a CDNet2014 video folder holds input/in%06d.jpg, "
                                    f"groundtruth/gt%06d.png and temporalROI.txt")
    frames = _numbered(inputs, "in", ".jpg")
    masks = _numbered(gts, "gt", ".png")
    if not frames:
        raise ValueError(f"{inputs} holds no in%06d.jpg frames")
    numbers = sorted(frames)
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"{inputs}: frames must be numbered in000001.jpg .. without gaps; "
                         f"found {len(numbers)} frames from {numbers[0]} to {numbers[-1]}")
    missing = [n for n in numbers if n not in masks]
    if missing:
        raise ValueError(f"{gts}: no ground truth for {len(missing)} frame(s), e.g. gt{missing[0]:06d}.png")
    try:
        start, end = (int(v) for v in roi_file.read_text().split()[:2])
    except ValueError:
        raise ValueError(f"{roi_file} must hold two frame numbers 'start end'") from None
    if not 1 <= start <= end <= len(numbers):
        raise ValueError(f"{roi_file}: range {start}..{end} lies outside the {len(numbers)} frames")
    return CDNetVideo(root, tuple(frames[n] for n in numbers), tuple(masks[n] for n in numbers), (start, end))


def list_cdnet_videos(dataset: str | Path, categories: tuple[str, ...] | None = None) -> list[CDNetVideo]:
    """Every video folder under ``dataset/<category>/`` (optionally only some categories)."""
    dataset = Path(dataset)
    if not dataset.is_dir():
        raise FileNotFoundError(f"{dataset} is not a folder; expected the CDNet2014 root with category folders")
    videos = []
    for category in sorted(p for p in dataset.iterdir() if p.is_dir()):
        if categories and category.name not in categories:
            continue
        for video in sorted(p for p in category.iterdir() if (p / "input").is_dir()):
            videos.append(load_cdnet_video(video))
    if not videos:
        raise ValueError(f"{dataset}: no <category>/<video>/input folders found")
    return videos


def mask_to_boxes(mask: np.ndarray, *, min_area: int = 25, value: int = MOTION) -> np.ndarray:
    """Boxes [N, 4] (x1, y1, x2, y2, pixels, end-exclusive) of the 8-connected components equal to ``value``."""
    if mask.ndim == 3:
        mask = mask[..., 0]
    binary = (mask == value).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    boxes = [(x, y, x + w, y + h) for x, y, w, h, area in stats[1:count] if area >= min_area]
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def iter_cdnet(video: CDNetVideo, *, only_roi: bool = True, min_area: int = 25
               ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(1-based frame number, BGR frame, ground-truth boxes) for the evaluated range (or all frames)."""
    start, end = video.roi if only_roi else (1, len(video))
    for number in range(start, end + 1):
        frame = cv2.imread(str(video.frames[number - 1]), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(video.groundtruth[number - 1]), cv2.IMREAD_GRAYSCALE)
        if frame is None or mask is None:
            raise ValueError(f"{video.name}: cannot read frame {number} or its mask "
                             f"({video.frames[number - 1].name}, {video.groundtruth[number - 1].name})")
        yield number, frame, mask_to_boxes(mask, min_area=min_area)


def as_bgr(frame: np.ndarray, *, where: str = "frame") -> np.ndarray:
    """Return a 3-channel BGR uint8 frame: grey is replicated, BGRA drops alpha; anything else is a
    :class:`~faceopt.data.errors.DataFileError` naming ``where``."""
    if frame.dtype != np.uint8:
        raise DataFileError(f"{where}: expected uint8 pixels, got {frame.dtype}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise DataFileError(f"{where}: expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {frame.shape}")


_REENCODE = "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`) or pass another file"


def open_video(path: str | Path, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` (FFmpeg) of a video file whose declared frame size is sane.

    ``FileNotFoundError`` for a missing path; :class:`~faceopt.data.errors.DataFileError` naming the
    file for one that is not a file, that FFmpeg cannot open, or whose frames declare no size or more
    than ``max_pixels`` pixels (checked before any frame is decoded). The caller releases the capture.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file")
    if not path.is_file():
        raise DataFileError(f"{path} is not a file; pass a video file (MP4, AVI, ...)")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)   # never CAP_IMAGES: a '%d' in a name is not a pattern
    if not cap.isOpened():
        cap.release()
        raise DataFileError(f"{path}: FFmpeg (OpenCV) cannot open it as a video (truncated, corrupt or not a video); "
                            f"{_REENCODE}")
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width <= 0 or height <= 0 or width * height > max_pixels:
        cap.release()
        raise DataFileError(f"{path}: its frames declare {width}x{height} pixels, outside 1..{max_pixels:,} per frame; "
                            f"{_REENCODE}")
    return cap


def read_video(path: str | Path, *, max_frames: int | None = None,
               max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Iterator[np.ndarray]:
    """Frames of a video file as BGR uint8 arrays (OpenCV's FFmpeg); :func:`open_video` checks the file first.

    A file without one readable frame, or whose frames outgrow what it declared, raises
    :class:`~faceopt.data.errors.DataFileError` naming it.
    """
    path = Path(path)
    cap = open_video(path, max_pixels=max_pixels)
    try:
        count = 0
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            if frame.shape[0] * frame.shape[1] > max_pixels:
                raise DataFileError(f"{path}: frame {count} is {frame.shape[1]}x{frame.shape[0]}, over "
                                    f"{max_pixels:,} pixels; {_REENCODE}")
            yield as_bgr(frame, where=f"{path} frame {count}")
        if count == 0:
            raise DataFileError(f"{path}: the video holds no readable frame; {_REENCODE}")
    finally:
        cap.release()
