"""The system on real photos (page 05): enrol, identify, compare landmarks, cut aligned crops.

The photos are face_recognition's test images (asset ``face_recognition-1.3.0`` sdist on PyPI):
three of Barack Obama and one of Joe Biden. Identities come from the file names. Two real
pipelines see them: dlib's pretrained reference (HOG detector, 5-point predictor, 128-d ResNet;
:class:`~faceopt.system.dlib_reference.DlibFacePipeline`) and ours (BlazeFace, five ArcFace
landmarks, :func:`~faceopt.system.align.align_face`).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from faceopt.assets import require
from faceopt.detection.blazeface import INPUT_SIZE, BlazeFace
from faceopt.system.align import align_face
from faceopt.system.dlib_reference import DlibFacePipeline
from faceopt.system.gallery import Gallery
from faceopt.system.landmarks import eye_centres_from_dlib5, from_blazeface

__all__ = ["PHOTOS", "load_photos", "identify_photos", "similarity_matrix", "landmark_agreement", "aligned_crops",
           "jittered_crops"]

#: Photo asset -> the person in it.
PHOTOS: dict[str, str] = {"obama.jpg": "Obama", "obama2.jpg": "Obama", "obama3.jpg": "Obama", "biden.jpg": "Biden"}


def load_photos(names: Sequence[str] = tuple(PHOTOS)) -> dict[str, np.ndarray]:
    """The photos as BGR images, fetched once from their registry package (``faceopt.assets.require``)."""
    photos = {}
    for name in names:
        path = require(name)
        image = cv2.imread(str(path))
        if image is None:
            raise ValueError(f"{path}: not a readable image; delete it and run `faceopt assets fetch {name}`")
        photos[name] = image
    return photos


def _largest_face_embedding(pipeline: DlibFacePipeline, name: str, image: np.ndarray) -> np.ndarray:
    encoded = pipeline.encode(image)
    if not encoded:
        raise ValueError(f"{name}: dlib found no face")
    e = np.asarray(encoded[0][1], dtype=np.float32)
    return e / np.linalg.norm(e)


def identify_photos(photos: Mapping[str, np.ndarray], pipeline: DlibFacePipeline, threshold: float, *,
                    enrol: Sequence[str] = ("obama.jpg",), people: Mapping[str, str] = PHOTOS
                    ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Enrol the photos ``enrol`` into a fresh :class:`Gallery` under their person's name, then identify
    every other photo against it.

    Returns one row per photo (enrolled or probe, the best match and its cosine, whether it reaches
    ``threshold`` and whether that decision is right) and every photo's unit embedding.
    """
    embeddings = {name: _largest_face_embedding(pipeline, name, image) for name, image in photos.items()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="faceopt-gallery-") as tmp:
        gallery = Gallery.create(Path(tmp) / "people.gallery", dim=len(next(iter(embeddings.values()))))
        gallery.enroll_many((people[name], embeddings[name]) for name in enrol)
        for name, e in embeddings.items():
            if name in enrol:
                continue
            match, score = gallery.identify(e, k=1)[0]
            accepted = score >= threshold
            rows.append({"photo": name, "person": people[name], "best match": match, "cosine": score,
                         "accepted": accepted, "right": accepted == (match == people[name])})
    return pd.DataFrame(rows).set_index("photo"), embeddings


def similarity_matrix(embeddings: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Cosine similarity of every pair of unit embeddings, labelled by photo name."""
    names = list(embeddings)
    e = np.stack([embeddings[n] for n in names])
    return pd.DataFrame(e @ e.T, index=names, columns=names)


def landmark_agreement(photos: Mapping[str, np.ndarray], blazeface: BlazeFace,
                       reference: DlibFacePipeline) -> pd.DataFrame:
    """Eye centres of our BlazeFace path against dlib's 5-point predictor on the largest face of each photo,
    as distances in the photo's pixels, as a fraction of the inter-ocular distance (dlib's) and in the
    pixels of the detector's input (BlazeFace sees the photo letterboxed to 128x128)."""
    rows = []
    for name, image in photos.items():
        faces = reference.detect(image)
        if not faces:
            raise ValueError(f"{name}: dlib found no face")
        ours = _largest_five(blazeface, name, image)[:2]
        theirs = eye_centres_from_dlib5(faces[0].landmarks)
        iod = float(np.linalg.norm(theirs[1] - theirs[0]))
        err = np.linalg.norm(ours - theirs, axis=1)
        to_detector = INPUT_SIZE / max(image.shape[:2])  # the letterbox scale
        rows.append({"photo": name, "inter-ocular px": iod, "left eye px": err[0], "right eye px": err[1],
                     "worst / inter-ocular": float(err.max()) / iod,
                     "worst in detector px": float(err.max()) * to_detector})
    return pd.DataFrame(rows).set_index("photo")


def _largest_five(blazeface: BlazeFace, name: str, image: np.ndarray) -> np.ndarray:
    """The five ArcFace landmarks of the largest face BlazeFace finds in ``image``."""
    boxes, _, keypoints = blazeface.detect(image, 0.5)
    if not len(boxes):
        raise ValueError(f"{name}: BlazeFace found no face")
    largest = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
    return from_blazeface(keypoints[largest])


def aligned_crops(photos: Mapping[str, np.ndarray], blazeface: BlazeFace, size: int = 112
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The largest face of each photo aligned to the ArcFace template (BGR ``size`` x ``size``), and its
    five landmarks in the photo's pixels."""
    five = {name: _largest_five(blazeface, name, image) for name, image in photos.items()}
    return {name: align_face(photos[name], five[name], size) for name in photos}, five


def jittered_crops(photos: Mapping[str, np.ndarray], blazeface: BlazeFace, per_photo: int, *, size: int = 112,
                   seed: int = 0, shift: float = 0.05, scale: float = 0.05, degrees: float = 5.0) -> np.ndarray:
    """``per_photo`` aligned crops of each photo's largest face with the landmarks moved by a random
    similarity (shift up to ``shift`` of the inter-ocular distance, scale by up to ``scale``, rotation up
    to ``degrees``), as a detector's errors would move them: real faces for calibration and parity."""
    rng = np.random.default_rng(seed)
    out = []
    for name, image in photos.items():
        five = _largest_five(blazeface, name, image)
        iod = float(np.linalg.norm(five[1] - five[0]))
        centre = five.mean(axis=0)
        for _ in range(per_photo):
            a = np.deg2rad(rng.uniform(-degrees, degrees))
            k = 1 + rng.uniform(-scale, scale)
            rot = k * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], dtype=np.float32)
            moved = (five - centre) @ rot.T + centre + rng.uniform(-shift, shift, 2).astype(np.float32) * iod
            out.append(align_face(image, moved.astype(np.float32), size))
    return np.stack(out)


def face_squares(photos: Mapping[str, np.ndarray], reference: DlibFacePipeline, *, margin: float = 0.5,
                 size: int = 160) -> dict[str, np.ndarray]:
    """A grey square around each photo's largest face (dlib's box grown by ``margin`` on every side), in
    [0, 1] at ``size`` pixels: the faces :func:`faceopt.data.doorbell.doorbell_scene` pastes into its clip."""
    squares = {}
    for name, image in photos.items():
        faces = reference.detect(image)
        if not faces:
            raise ValueError(f"{name}: dlib found no face")
        x1, y1, x2, y2 = faces[0].box
        half = (1 + 2 * margin) * max(x2 - x1, y2 - y1) / 2
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        padded = cv2.copyMakeBorder(grey, *(int(half) + 1,) * 4, cv2.BORDER_REPLICATE)
        off = int(half) + 1
        crop = padded[int(cy - half) + off:int(cy + half) + off, int(cx - half) + off:int(cx + half) + off]
        squares[name] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return squares


#: Who walks up to the door in :func:`doorbell_clip`, and the poster on the wall.
VISITORS = ("obama2.jpg", "biden.jpg", "obama3.jpg")
POSTER = "obama.jpg"


def doorbell_clip(photos: Mapping[str, np.ndarray], reference: DlibFacePipeline, path: str | Path, *,
                  frames: int = 150, fps: float = 15.0, seed: int = 0) -> Path:
    """An MP4 door-phone clip (:func:`faceopt.data.doorbell.doorbell_scene`, grey, 640x480) in which the
    :data:`VISITORS` photos walk up and leave while :data:`POSTER` hangs on the wall; returns its path."""
    from faceopt.data.doorbell import DoorbellConfig, doorbell_scene
    from faceopt.system.video import write_video

    squares = face_squares(photos, reference)
    faces = np.stack([squares[n] for n in (*VISITORS, POSTER)])  # the scene's poster is its last face
    scene = doorbell_scene(faces, DoorbellConfig(frames=frames, visits=3, seed=seed))
    return write_video((frame for frame, _ in scene), path, fps=fps)
