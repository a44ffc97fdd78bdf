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
