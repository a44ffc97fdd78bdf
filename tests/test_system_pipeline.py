"""The end-to-end system on real photos: detect, align from the original, embed in PyTorch and ONNX alike."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import require_asset

from faceopt.models import get_model
from faceopt.system.align import template
from faceopt.system.embedders import OnnxEmbedder, TorchEmbedder, to_input
from faceopt.system.onnx_export import export_onnx
from faceopt.system.pipeline import FacePipeline


@pytest.fixture(scope="module")
def detector():
    from faceopt.detection.blazeface import BlazeFace

    return BlazeFace.from_tflite(require_asset("blazeface_short_range"))


@pytest.fixture(scope="module")
def obama():
    return cv2.imread(str(require_asset("obama.jpg")))


def test_one_face_per_photo_aligned_eyes_on_the_template(detector, obama):
    faces = FacePipeline(detector).process(obama)
    assert len(faces) == 1
    crop = faces[0].aligned
    assert crop.shape == (112, 112, 3)
    # the aligned crop's eyes are where the template puts them: BlazeFace finds them there again
    again = FacePipeline(detector).process(cv2.resize(crop, (448, 448)))
    assert len(again) == 1
    np.testing.assert_allclose(again[0].landmarks[:2] / 4.0, template(112)[:2], atol=4.0)


def test_the_crop_does_not_depend_on_the_frame_resolution(detector, obama):
    small = FacePipeline(detector).process(obama)[0]
    big_frame = cv2.resize(obama, None, fx=3.0, fy=3.0, interpolation=cv2.INTER_CUBIC)
    big = FacePipeline(detector).process(big_frame)[0]
    np.testing.assert_allclose(big.landmarks / 3.0, small.landmarks, atol=3.0)  # same face, pixels scale
    diff = np.abs(big.aligned.astype(int) - small.aligned.astype(int)).mean()
    assert diff < 12  # the same 112x112 crop, up to resampling


def test_torch_and_onnx_embed_the_same_crop_alike(tmp_path, detector, obama):
    torch_model = get_model("mobilefacenet_relu512")
    crop = FacePipeline(detector).process(obama)[0].aligned
    path = export_onnx(torch_model, tmp_path / "student.onnx")
    a, b = TorchEmbedder(torch_model)(crop), OnnxEmbedder(path)(crop)
    assert a.shape == b.shape == (1, 512)
    assert float((a * b).sum()) >= 0.9999  # cosine: the same preprocessing, the same network
    assert to_input(crop).shape == (1, 3, 112, 112) and to_input(crop).min() >= -1.0


def test_pipeline_embeds_every_face_and_times_each_stage(detector, obama):
    pipe = FacePipeline(detector, TorchEmbedder(get_model("mobilefacenet_relu512")))
    faces = pipe.process(obama)
    assert faces[0].embedding is not None and np.linalg.norm(faces[0].embedding) == pytest.approx(1.0, abs=1e-5)
    assert pipe.last.faces == 1 and pipe.last.total > 0
    assert FacePipeline(detector).process(np.zeros((480, 640, 3), np.uint8)) == []


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="aligned BGR uint8"):
        to_input(np.zeros((112, 112), np.uint8))
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        OnnxEmbedder("/nonexistent/model.onnx")


def test_frames_of_every_table9_size_hold_the_face_and_the_benchmark_reports_each(detector, obama):
    from faceopt.models import get_model
    from faceopt.system.benchmark import TABLE9_SIZES, frame_of_size, resolution_times

    for rows, cols in TABLE9_SIZES[:2]:
        frame = frame_of_size(obama, rows, cols)
        assert frame.shape == (rows, cols, 3)
        assert len(FacePipeline(detector).process(frame)) == 1
    pipe = FacePipeline(detector, TorchEmbedder(get_model("mobilefacenet_relu512")))
    out = resolution_times(pipe, obama, sizes=((120, 180), (240, 360)), repeats=2, warmup=1)
    assert [r["frame"] for r in out] == ["120x180", "240x360"] and out[0]["ratio_to_smallest"] == 1.0
    assert all(r["total_ms"] > 0 and r["faces"] in (0, 1) for r in out)  # a benchmark: no timing asserted
    assert all(r["total_p25_ms"] <= r["total_ms"] <= r["total_p75_ms"] for r in out)


def test_time_per_image_interleaves_systems_and_reports_each():
    from faceopt.system.benchmark import time_per_image

    calls = []
    systems = {"a": lambda im: calls.append(("a", int(im[0, 0, 0]))), "b": lambda im: calls.append(("b", int(im[0, 0, 0])))}
    images = [np.full((4, 4, 3), k, np.uint8) for k in (1, 2)]
    rows = time_per_image(systems, images, repeats=2, warmup=1)
    assert calls[:2] == [("a", 1), ("b", 1)]  # warm-up: each system once
    assert calls[2:6] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]  # interleaved by image, then system
    assert [r["system"] for r in rows] == ["a", "b"] and all(r["n"] == 4 and r["median_ms"] >= 0 for r in rows)
    with pytest.raises(ValueError, match="needs systems"):
        time_per_image({}, images)
