"""The dlib reference pipeline agrees with the face_recognition package it mirrors, on its own test photos."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import require_asset

pytest.importorskip("dlib", reason="dlib-bin (requirements.txt) runs the reference models")

from faceopt.system.dlib_reference import TOLERANCE, DlibFacePipeline, same_person  # noqa: E402


@pytest.fixture(scope="module")
def pipeline():
    require_asset("face_recognition_models")
    require_asset("dlib_face_recognition_resnet")
    return DlibFacePipeline()


def _photo(name):
    return cv2.imread(str(require_asset(name)))


def test_detection_matches_face_recognitions_own_test(pipeline):
    # face_recognition's test_face_locations: obama.jpg -> (top, right, bottom, left) = (142, 617, 409, 349)
    faces = pipeline.detect(_photo("obama.jpg"))
    assert len(faces) == 1 and faces[0].box == (349, 142, 617, 409)
    eyes_x = faces[0].landmarks[:4, 0]
    assert eyes_x[0] > eyes_x[1] > eyes_x[3] > eyes_x[2]  # image-right eye's corners, then the image-left eye's
    assert faces[0].landmarks[4, 1] > faces[0].landmarks[:4, 1].max()  # the nose base lies below the eyes


def test_same_person_within_the_tolerance_and_others_beyond(pipeline):
    enc = {n: pipeline.encode(_photo(n))[0][1] for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")}
    assert all(v.shape == (128,) for v in enc.values())
    assert same_person(enc["obama.jpg"], enc["obama2.jpg"]) and same_person(enc["obama.jpg"], enc["obama3.jpg"])
    assert not same_person(enc["obama.jpg"], enc["biden.jpg"])
    assert np.linalg.norm(enc["obama.jpg"] - enc["biden.jpg"]) > TOLERANCE + 0.1  # not a near miss


def test_bad_images_are_refused(pipeline):
    with pytest.raises(ValueError, match="BGR uint8"):
        pipeline.detect(np.zeros((10, 10), np.uint8))
    assert pipeline.detect(np.zeros((200, 200, 3), np.uint8)) == []  # no face: an empty list, not an error
