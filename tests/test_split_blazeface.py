"""AmphibianDetector over the ported BlazeFace on real frames (skips without the assets)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from helpers import require_asset

from faceopt.detection.amphibian import AmphibianDetector
from faceopt.detection.split import BlazeFaceSplit


@pytest.fixture(scope="module")
def split():
    from faceopt.detection.blazeface import BlazeFace

    return BlazeFaceSplit(BlazeFace.from_tflite(require_asset("blazeface_short_range")))


@pytest.fixture(scope="module")
def scene():
    cap = cv2.VideoCapture(str(require_asset("vtest.avi")))
    ok, background = cap.read()
    cap.release()
    assert ok
    face = np.load(require_asset("lfw_subset"))[0]
    face = cv2.resize((face * 255).round().astype(np.uint8), (220, 220), interpolation=cv2.INTER_CUBIC)
    with_face = background.copy()
    with_face[100:320, 300:520] = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
    return background, with_face


def test_split_matches_the_whole_network(split, scene):
    x, lb = split.prepare(scene[1])
    with torch.inference_mode():
        whole = split.net(x)
        for m in (1, 6, 12, 17):
            reg, cls = split.run_from(split.run_until(x, m), m)
            assert torch.allclose(reg, whole[0], atol=1e-5) and torch.allclose(cls, whole[1], atol=1e-5)
    boxes, scores, normalised = split.decode(whole, lb)
    ref_boxes, ref_scores, _ = split.net.detect(scene[1])
    np.testing.assert_allclose(boxes, ref_boxes, atol=1e-3)
    assert len(boxes) >= 1 and ((normalised >= -0.01) & (normalised <= 1.01)).all()


def test_static_frames_exit_early_and_the_face_is_kept(split, scene):
    background, with_face = scene
    amph = AmphibianDetector(split, layer=6, threshold=0.3, alpha=0.9)
    amph.reset(background)
    boxes, _ = amph.process(background)
    assert len(boxes) == 0 and amph.stats.static == [True]
    boxes, scores = amph.process(with_face)
    assert amph.stats.static == [True, False]
    assert len(boxes) >= 1
    cx, cy = (boxes[0, 0] + boxes[0, 2]) / 2, (boxes[0, 1] + boxes[0, 3]) / 2
    assert 300 <= cx <= 520 and 100 <= cy <= 320  # the detection sits on the pasted face
