"""align_face warps the original image so that the five landmarks land on the ArcFace template."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceopt.system.align import ARCFACE_TEMPLATE_112, align_face, similarity_transform, template


def _umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama 1991), written out to check OpenCV's fit."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def _similar(points: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points @ rot.T + np.array(shift)).astype(np.float32)


def test_exact_landmarks_land_on_the_template_at_112_and_96():
    src = _similar(ARCFACE_TEMPLATE_112, 17.0, 3.5, (400.0, 250.0))  # a face 3.5x larger, rotated, elsewhere
    for size in (112, 96):
        m = similarity_transform(src, size)
        mapped = src @ m[:, :2].T + m[:, 2]
        np.testing.assert_allclose(mapped, template(size), atol=1e-3)
    np.testing.assert_allclose(template(96), ARCFACE_TEMPLATE_112 * 96 / 112)


def test_noisy_landmarks_get_the_least_squares_fit():
    rng = np.random.default_rng(0)
    src = _similar(ARCFACE_TEMPLATE_112, -8.0, 2.0, (100.0, 80.0)) + rng.normal(0, 2.0, (5, 2)).astype(np.float32)
    np.testing.assert_allclose(similarity_transform(src), _umeyama(src.astype(np.float64), template().astype(np.float64)),
                               atol=1e-3)


def test_align_face_samples_the_original_image():
    # a 3000x4500 image with a marker at each landmark: the crop shows the markers at the template points
    image = np.zeros((3000, 4500, 3), np.uint8)
    src = _similar(ARCFACE_TEMPLATE_112, 10.0, 12.0, (2000.0, 1200.0))
    for x, y in src:
        cv2.circle(image, (int(round(x)), int(round(y))), 12, (255, 255, 255), -1)
    crop = align_face(image, src, 112)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    for x, y in template(112):
        assert crop[int(round(y)), int(round(x))].min() > 200  # a marker lands on every template point
    assert crop.mean() < 60  # and little else is bright


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="five finite"):
        align_face(np.zeros((10, 10, 3), np.uint8), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="five finite"):
        align_face(np.zeros((10, 10, 3), np.uint8), np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="BGR image"):
        align_face(np.zeros((10, 10), np.uint8), ARCFACE_TEMPLATE_112)
    with pytest.raises(ValueError, match="16x16"):
        template(8)


def test_blazeface_keypoints_map_to_the_five_template_points():
    from faceopt.system.landmarks import MOUTH_TO_EYES, from_blazeface

    t = ARCFACE_TEMPLATE_112
    mouth_centre = (t[3] + t[4]) / 2
    six = np.stack([t[0], t[1], t[2], mouth_centre, t[0] - (20, 0), t[1] + (20, 0)])  # ears unused
    assert MOUTH_TO_EYES == pytest.approx(0.828, abs=1e-3)
    # on a template-shaped face, rotated and scaled, the mapping is exact (up to the template's tiny tilt)
    moved = _similar(six, 25.0, 2.0, (300.0, 100.0))
    np.testing.assert_allclose(from_blazeface(moved), _similar(t, 25.0, 2.0, (300.0, 100.0)), atol=0.4)
    assert from_blazeface(np.stack([moved, moved])).shape == (2, 5, 2)
    with pytest.raises(ValueError, match="BlazeFace keypoints"):
        from_blazeface(np.zeros((5, 2)))
