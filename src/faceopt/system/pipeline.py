"""The recognition system of thesis Chapter 4, end to end: detect, five landmarks, align, embed.

The detector (BlazeFace) sees one fixed-size letterbox of the frame (128x128), whatever the frame's
resolution; its keypoints come back in the frame's pixels, are turned into the five ArcFace
landmarks (:func:`faceopt.system.landmarks.from_blazeface`) and the face is warped from the
ORIGINAL frame (:func:`faceopt.system.align.align_face`). So the work per face does not grow with
the frame: only the one resize for the detector does, which is what the thesis's Table 9 shows
(34 ms at every input from 480x720 to 3000x4500).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from faceopt.detection.blazeface import BlazeFace
from faceopt.system.align import align_face
from faceopt.system.landmarks import from_blazeface

#: An embedder: aligned BGR crops ``[N, H, W, 3]`` -> L2-normalised embeddings ``[N, D]``.
Embedder = Callable[[np.ndarray], np.ndarray]


@dataclass
class Face:
    """One face of a frame: box (x1, y1, x2, y2) and five landmarks in the frame's pixels, the aligned crop."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    aligned: np.ndarray
    embedding: np.ndarray | None = None

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


@dataclass
class StageSeconds:
    """Wall time of each stage of one :meth:`FacePipeline.process` call."""

    detect: float = 0.0
    align: float = 0.0
    embed: float = 0.0
    faces: int = 0

    @property
    def total(self) -> float:
        return self.detect + self.align + self.embed


class FacePipeline:
    """BlazeFace -> five landmarks -> ArcFace alignment of the original frame -> ``embedder``."""

    def __init__(self, detector: BlazeFace, embedder: Embedder | None = None, *, size: int = 112,
                 score_threshold: float = 0.5) -> None:
        self.detector = detector
        self.embedder = embedder
        self.size = size
        self.score_threshold = score_threshold
        self.last = StageSeconds()

    def process(self, frame_bgr: np.ndarray, *, max_faces: int | None = None) -> list[Face]:
        """Every face of a BGR frame, largest first (at most ``max_faces``), aligned and, with an
        embedder, embedded; the stage times land in :attr:`last`."""
        t0 = time.perf_counter()
        boxes, scores, keypoints = self.detector.detect(frame_bgr, self.score_threshold)
        t1 = time.perf_counter()
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable")[:max_faces]
        faces = []
        for i in order:
            five = from_blazeface(keypoints[i])
            faces.append(Face(boxes[i], float(scores[i]), five, align_face(frame_bgr, five, self.size)))
        t2 = time.perf_counter()
        if self.embedder is not None and faces:
            embeddings = self.embedder(np.stack([f.aligned for f in faces]))
            for face, e in zip(faces, embeddings):
                face.embedding = e
        t3 = time.perf_counter()
        self.last = StageSeconds(t1 - t0, t2 - t1, t3 - t2, len(faces))
        return faces
