"""Identify the people in a video against a gallery, frame by frame, optionally behind an AmphibianDetector gate.

:func:`identify_video` reads the frames with OpenCV, looks at every ``every``-th one and, where a
gate is given (:class:`~faceopt.detection.amphibian.AmphibianDetector` over BlazeFace, thesis
Chapter 2), runs recognition only on frames where the gate lets a face through: a static frame
stops after the detector's first layers, a frame with motion but no face after the detector.
Recognition is the reference pipeline (dlib's detector, landmarks and ResNet,
:class:`~faceopt.system.dlib_reference.DlibFacePipeline`) and the gallery's 1:N search; every face
seen becomes a :class:`Sighting`. A progress bar runs on stderr unless ``FACEOPT_QUIET`` is set.

:func:`write_video` writes frames to an MP4 file (OpenCV's FFmpeg writer, ``mp4v``), atomically.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceopt.data.cdnet import open_video, read_video
from faceopt.io import atomic_output
from faceopt.progress import progress
from faceopt.system.gallery import Gallery

__all__ = ["VIDEO_SUFFIXES", "Sighting", "VideoReport", "is_video", "read_frames", "doorbell_gate",
           "identify_video", "people_table", "write_video"]

#: File suffixes read as videos by ``faceopt identify``.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
#: The gate setting page 03 chose on its door-phone scene: layer m, lambda and the background's alpha.
DOORBELL_LAYER, DOORBELL_THRESHOLD, DOORBELL_ALPHA = 1, 0.05, 0.9


@dataclass(frozen=True)
class Sighting:
    """One face in one frame: where, the best gallery name and its cosine, and whether it reached the threshold."""

    frame: int
    seconds: float
    box: tuple[int, int, int, int]
    name: str | None
    cosine: float
    accepted: bool


@dataclass
class VideoReport:
    """What :func:`identify_video` saw."""

    path: Path
    fps: float
    frames: int = 0              # frames read
    looked_at: int = 0           # frames the gate (or recognition) saw: every ``every``-th
    recognised: int = 0          # frames recognition ran on (the gate let them through)
    sightings: list[Sighting] = field(default_factory=list)
    wall_seconds: float = 0.0

    def people(self) -> list[dict[str, Any]]:
        """Per accepted name: frames seen, first and last time, best cosine; then the unknown faces."""
        rows: dict[str, dict[str, Any]] = {}
        for s in self.sightings:
            key = s.name if s.accepted and s.name is not None else "(unknown)"
            row = rows.setdefault(key, {"name": key, "frames": 0, "first s": s.seconds, "last s": s.seconds,
                                        "best cosine": s.cosine})
            row["frames"] += 1
            row["last s"] = s.seconds
            row["best cosine"] = max(row["best cosine"], s.cosine)
        return sorted(rows.values(), key=lambda r: (r["name"] == "(unknown)", r["first s"]))

    def to_dict(self) -> dict[str, Any]:
        return {"video": str(self.path), "fps": self.fps, "frames": self.frames, "looked_at": self.looked_at,
                "recognised": self.recognised, "wall_seconds": round(self.wall_seconds, 3), "people": self.people(),
                "sightings": [{"frame": s.frame, "seconds": round(s.seconds, 3), "box": list(s.box), "name": s.name,
                               "cosine": round(s.cosine, 4), "accepted": s.accepted} for s in self.sightings]}


def is_video(path: Path) -> bool:
    """Whether ``path`` is taken as a video (by its suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def read_frames(path: str | Path) -> tuple[float, int, Iterator[np.ndarray]]:
    """``(fps, frame count as the container states it, BGR frames)`` of a video.

    The file is checked by :func:`faceopt.data.cdnet.open_video` and read by
    :func:`~faceopt.data.cdnet.read_video`: a missing file is ``FileNotFoundError``, a bad one a
    :class:`~faceopt.data.errors.DataFileError` naming it.
    """
    capture = open_video(path)
    fps = float(capture.get(cv2.CAP_PROP_FPS))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    if not math.isfinite(fps) or fps <= 0:
        fps = 25.0
    return fps, max(count, 0), read_video(path)


def doorbell_gate() -> Any:
    """AmphibianDetector over BlazeFace at page 03's door-phone setting (the asset ``blazeface_short_range``)."""
    from faceopt.detection.amphibian import AmphibianDetector
    from faceopt.detection.split import BlazeFaceSplit

    return AmphibianDetector(BlazeFaceSplit(), DOORBELL_LAYER, DOORBELL_THRESHOLD, DOORBELL_ALPHA)


def identify_video(path: str | Path, pipeline: Any, gallery: Gallery, threshold: float, *, every: int = 1,
                   gate: Any = None) -> VideoReport:
    """Every face in every ``every``-th frame identified against ``gallery`` (accepted at ``cosine >=
    threshold``). ``pipeline`` has ``encode(frame) -> [(face with .box, descriptor)]`` (the dlib reference);
    ``gate`` (optional) has ``reset(frame)`` and ``process(frame) -> (boxes, scores)``: recognition runs
    only on frames where it returns a box, and keeps only the faces whose centre lies in one of those
    boxes (AmphibianDetector drops the boxes of static faces, a poster on the wall). The gate's
    background model starts from the first frame."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    fps, count, frames = read_frames(path)
    report = VideoReport(Path(path), fps)
    start = time.perf_counter()
    for index, frame in progress(enumerate(frames), desc=Path(path).name, total=count or None):
        report.frames += 1
        if index % every:
            continue
        report.looked_at += 1
        boxes = None
        if gate is not None:
            if index == 0:
                gate.reset(frame)
            boxes, _ = gate.process(frame)
            if not len(boxes):
                continue
        report.recognised += 1
        for face, descriptor in pipeline.encode(frame):
            if boxes is not None and not _inside_any(face.box, boxes):
                continue  # a face the gate did not pass: static (a poster) or not found by the gate's detector
            e = np.asarray(descriptor, dtype=np.float32)
            match = gallery.identify(e / np.linalg.norm(e), k=1) if len(gallery) else []
            name, cosine = match[0] if match else (None, -1.0)
            x1, y1, x2, y2 = (int(v) for v in face.box)
            report.sightings.append(Sighting(index, index / fps, (x1, y1, x2, y2), name, cosine,
                                             name is not None and cosine >= threshold))
    report.wall_seconds = time.perf_counter() - start
    return report


def people_table(reports: dict[str, VideoReport]) -> Any:
    """One row per (run, person): the frames recognition ran on and each person's sightings, side by side."""
    import pandas as pd

    rows = []
    for run, report in reports.items():
        for person in report.people() or [{"name": "(nobody)", "frames": 0}]:
            rows.append({"run": run, "frames looked at": report.looked_at, "frames recognised": report.recognised,
                         **person})
    return pd.DataFrame(rows).set_index(["run", "name"])


def _inside_any(box: Any, boxes: np.ndarray) -> bool:
    """Whether the centre of ``box`` (x1, y1, x2, y2) lies inside one of ``boxes`` [N, 4]."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bool(((boxes[:, 0] <= cx) & (cx <= boxes[:, 2]) & (boxes[:, 1] <= cy) & (cy <= boxes[:, 3])).any())


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 25.0) -> Path:
    """Write BGR frames (all of one size) to an MP4 file at ``path``; nothing is left there on failure."""
    path = Path(path)
    writer = None
    with atomic_output(path, suffix=path.suffix or ".mp4") as tmp:
        try:
            for frame in frames:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
                    if not writer.isOpened():
                        raise OSError(f"{path}: OpenCV could not open an MP4 writer (FFmpeg backend missing?)")
                writer.write(frame)
        finally:
            if writer is not None:
                writer.release()
        if writer is None:
            raise ValueError(f"{path}: no frames to write")
    return path
