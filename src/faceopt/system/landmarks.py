"""Five landmarks for alignment from what each detector gives (thesis Chapter 4: detector -> landmarks).

:func:`faceopt.system.align.align_face` wants, in image order, the left eye, the right eye, the nose
tip and the left and right mouth corners (ArcFace's five points). BlazeFace gives six keypoints in
MediaPipe's order, right and left meaning the subject's: right eye, left eye, nose tip, mouth centre,
right and left ear tragion. :func:`from_blazeface` maps them:

* the subject's right eye is the image's left one, so eyes and nose are taken as they are;
* the mouth corners, which BlazeFace does not give, are placed on the line through the mouth centre
  parallel to the eyes, each ``MOUTH_TO_EYES / 2`` of the eye distance away, where ``MOUTH_TO_EYES``
  is the template's ratio of mouth width to eye distance (0.828). On a face shaped like the
  template this is exact; elsewhere it puts the corners where an average face has them;
* the ears are not used.
"""
from __future__ import annotations

import numpy as np

from faceopt.system.align import ARCFACE_TEMPLATE_112

_EYES = ARCFACE_TEMPLATE_112[1] - ARCFACE_TEMPLATE_112[0]
_MOUTH = ARCFACE_TEMPLATE_112[4] - ARCFACE_TEMPLATE_112[3]
#: The template's mouth width over its eye distance.
MOUTH_TO_EYES = float(np.linalg.norm(_MOUTH) / np.linalg.norm(_EYES))


def from_blazeface(keypoints6: np.ndarray) -> np.ndarray:
    """BlazeFace's six keypoints (float [6, 2] or [N, 6, 2], pixels) -> the five of the ArcFace template."""
    kp = np.asarray(keypoints6, dtype=np.float32)
    if kp.shape[-2:] != (6, 2) or not np.isfinite(kp).all():
        raise ValueError(f"expected BlazeFace keypoints float [6, 2] or [N, 6, 2], got shape {kp.shape}")
    left_eye, right_eye, nose, mouth = kp[..., 0, :], kp[..., 1, :], kp[..., 2, :], kp[..., 3, :]
    half_mouth = 0.5 * MOUTH_TO_EYES * (right_eye - left_eye)
    return np.stack([left_eye, right_eye, nose, mouth - half_mouth, mouth + half_mouth], axis=-2)


def eye_centres_from_dlib5(points5: np.ndarray) -> np.ndarray:
    """dlib's five points (float [5, 2]: image-right eye outer and inner corner, image-left eye outer
    and inner corner, nose base) -> the two eye centres ``[[image-left], [image-right]]``, each the
    midpoint of its eye's corners, in the order of the ArcFace template's first two points.

    dlib gives no mouth and a nose *base* where the template has the nose *tip*, so only the eyes
    are comparable with the other detectors' landmarks.
    """
    p = np.asarray(points5, dtype=np.float32)
    if p.shape != (5, 2) or not np.isfinite(p).all():
        raise ValueError(f"expected dlib's five points float [5, 2], got shape {p.shape}")
    return np.stack([(p[2] + p[3]) / 2, (p[0] + p[1]) / 2])
