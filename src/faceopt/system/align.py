"""Face alignment (thesis Chapter 4): warp the ORIGINAL image so that five landmarks land on a template.

The detector sees a small, fixed-size resize of the frame; its five landmarks are mapped back to
the frame's own pixels, and the face is cut from the original image. So the aligned crop keeps
all the detail the camera gave, whatever the frame's resolution (the thesis's Table 9: the
end-to-end time does not depend on the input size).

The template is the ArcFace one (insightface's ``arcface_dst``) for a 112x112 crop, in the
order left eye, right eye, nose tip, left mouth corner, right mouth corner, "left" meaning the
image's left. Other crop sizes scale it by ``size / 112`` (96 for the MobileFaceNet seed's
small device tier). The similarity transform (rotation, uniform scale, shift) is the
least-squares fit of the five points, estimated by OpenCV's ``estimateAffinePartial2D`` with
every point an inlier and refined by Levenberg-Marquardt, then applied with ``warpAffine``.
"""
from __future__ import annotations

import cv2
import numpy as np

#: ArcFace's five-point template for a 112x112 crop (x, y in pixels): eyes, nose tip, mouth corners.
ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963],
                                 [73.5318, 51.5014],
                                 [56.0252, 71.7366],
                                 [41.5493, 92.3655],
                                 [70.7299, 92.2041]], dtype=np.float32)


def template(size: int = 112) -> np.ndarray:
    """The five target points for a ``size`` x ``size`` crop: the 112-px ArcFace template scaled by ``size/112``."""
    if size < 16:
        raise ValueError(f"an aligned face needs at least 16x16 pixels, not {size}")
    return ARCFACE_TEMPLATE_112 * (size / 112.0)


def similarity_transform(landmarks5: np.ndarray, size: int = 112) -> np.ndarray:
    """The 2x3 similarity transform taking ``landmarks5`` (float [5, 2], image pixels) onto the template.

    Least squares over the five points: OpenCV's RANSAC with a threshold so large that every
    point is an inlier, whose final step refines the fit on all of them.
    """
    src = _check_landmarks(landmarks5)
    matrix, _ = cv2.estimateAffinePartial2D(src, template(size), method=cv2.RANSAC, ransacReprojThreshold=1e6,
                                            maxIters=1, refineIters=50)
    if matrix is None:
        raise ValueError("no similarity transform fits these landmarks (are several of them the same point?)")
    return matrix


def align_face(image_bgr: np.ndarray, landmarks5: np.ndarray, size: int = 112) -> np.ndarray:
    """The ``size`` x ``size`` BGR crop of the face whose five landmarks are ``landmarks5`` (pixels of
    ``image_bgr``, order: left eye, right eye, nose tip, left and right mouth corners), warped
    from the original image onto the ArcFace template; pixels outside the image are black."""
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        shape = getattr(image_bgr, "shape", type(image_bgr).__name__)
        raise ValueError(f"align_face expects a BGR image [H, W, 3], got {shape}")
    matrix = similarity_transform(landmarks5, size)
    return cv2.warpAffine(image_bgr, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))


def _check_landmarks(landmarks5: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks5, dtype=np.float32)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise ValueError(f"landmarks5 must be five finite (x, y) points, float [5, 2], got shape {points.shape}")
    return points
