"""dlib's pretrained face pipeline: the real reference system of page 05 (thesis Chapter 4 on real photos).

The face_recognition package wraps exactly this pipeline, and so does this module, with the same
models from the same registry package (``face_recognition_models``):

1. dlib's HOG frontal-face detector (built into dlib), the image upsampled ``upsample`` times;
2. dlib's 5-point shape predictor (asset ``face_recognition_models``): in image order, the outer and
   inner corners of the image-right eye, the outer and inner corners of the image-left eye, and the
   base of the nose;
3. dlib's ResNet (asset ``dlib_face_recognition_resnet``), which aligns a 150x150 chip by those five
   points itself and maps it to a 128-d descriptor. Two faces are the same person when the Euclidean
   distance of their descriptors is below :data:`TOLERANCE`, face_recognition's default.

Nothing is downloaded at run time: the model files are registry assets (``faceopt assets fetch``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np

from faceopt.assets import asset_path

#: face_recognition's default: descriptors closer than this are the same person.
TOLERANCE = 0.6


@dataclass(frozen=True)
class DlibFace:
    """One detected face: its box (x1, y1, x2, y2 pixels) and dlib's five landmarks (float [5, 2])."""

    box: tuple[int, int, int, int]
    landmarks: np.ndarray

    @property
    def area(self) -> int:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])


class DlibFacePipeline:
    """Detect faces, find their five landmarks and embed them with dlib's pretrained models."""

    def __init__(self, predictor: str | Path | None = None, embedder: str | Path | None = None, *,
                 upsample: int = 1) -> None:
        predictor = Path(predictor) if predictor else asset_path("face_recognition_models")
        embedder = Path(embedder) if embedder else asset_path("dlib_face_recognition_resnet")
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor))
        self.embedder = dlib.face_recognition_model_v1(str(embedder))
        self.upsample = upsample

    def detect(self, image_bgr: np.ndarray) -> list[DlibFace]:
        """Every face of a BGR image, largest first."""
        rgb = _rgb(image_bgr)
        faces = []
        for rect in self.detector(rgb, self.upsample):
            shape = self.predictor(rgb, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            faces.append(DlibFace((rect.left(), rect.top(), rect.right(), rect.bottom()), points))
        return sorted(faces, key=lambda f: -f.area)

    def embed(self, image_bgr: np.ndarray, face: DlibFace) -> np.ndarray:
        """The 128-d descriptor of one detected face (float64, as dlib gives it)."""
        rgb = _rgb(image_bgr)
        x1, y1, x2, y2 = face.box
        rect = dlib.rectangle(x1, y1, x2, y2)
        return np.array(self.embedder.compute_face_descriptor(rgb, self.predictor(rgb, rect)))

    def encode(self, image_bgr: np.ndarray) -> list[tuple[DlibFace, np.ndarray]]:
        """Every face of the image with its descriptor, largest first."""
        return [(face, self.embed(image_bgr, face)) for face in self.detect(image_bgr)]


def same_person(a: np.ndarray, b: np.ndarray, tolerance: float = TOLERANCE) -> bool:
    """face_recognition's rule: the Euclidean distance of two descriptors is below ``tolerance``."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b))) < tolerance


def _rgb(image_bgr: np.ndarray) -> np.ndarray:
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3 \
            or image_bgr.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 image [H, W, 3], got {getattr(image_bgr, 'shape', image_bgr)!r}")
    return np.ascontiguousarray(image_bgr[..., ::-1])
