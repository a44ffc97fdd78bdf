"""Deployment of a trained embedder (ONNX FP32, INT8, FP16) and the system on real photos."""
from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
import torch
from helpers import require_asset

from faceopt.models.mobilefacenet import MobileFaceNet
from faceopt.models.profile import settle_batchnorm
from faceopt.system.cost import LatencyStats
from faceopt.system.deployment import FORMS, best_threads, deploy_embedder, zoo_parity
from faceopt.system.landmarks import eye_centres_from_dlib5


def _crops(n, size, seed):
    """Smooth random 'faces' (blurred noise), closer to photos than white noise."""
    rng = np.random.default_rng(seed)
    return np.stack([cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (9, 9), 3)
                     for _ in range(n)])


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    torch.manual_seed(0)
    net = MobileFaceNet(64, act="relu", input_size=(96, 96))
    settle_batchnorm(net, input_size=(3, 96, 96))
    return deploy_embedder(net, 96, _crops(16, 96, 1), _crops(8, 96, 2), tmp_path_factory.mktemp("dep"),
                           threads=(1,), repeats=2, warmup=1)


def test_every_form_is_written_compared_and_timed(deployed):
    assert set(deployed.files) == set(FORMS) and all(p.is_file() for p in deployed.files.values())
    assert deployed.cosine_min["fp32"] > 0.9999  # ONNX FP32 is PyTorch, through the one preprocessing
    assert 0.8 < deployed.cosine_mean["int8"] < 1.0  # random weights: lossy but same direction (trained: > 0.999)
    assert deployed.bytes["int8"] < 0.4 * deployed.bytes["fp32"] and deployed.bytes["fp16"] < 0.6 * deployed.bytes["fp32"]
    rows = deployed.rows()
    assert [r["form"] for r in rows] == list(FORMS) and all(r["ms 1 thread"] > 0 for r in rows)


def test_fp16_file_holds_half_precision_weights(deployed):
    model = onnx.load(str(deployed.files["fp16"]))
    types = {init.data_type for init in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in and out


def test_crops_of_another_size_are_refused(tmp_path):
    with pytest.raises(ValueError, match="aligned at 112x112"):
        deploy_embedder(MobileFaceNet(), 112, _crops(2, 96, 0), _crops(2, 96, 0), tmp_path)


def test_best_threads_by_measurement():
    stats = {1: LatencyStats(3.0, 2.9, 3.1, 5), 2: LatencyStats(2.0, 1.9, 2.1, 5)}
    assert best_threads(stats) == 2
    assert best_threads({1: LatencyStats(2.0, 2, 2, 5), 2: LatencyStats(2.0, 2, 2, 5)}) == 1
    with pytest.raises(ValueError):
        best_threads({})


def test_zoo_parity_rows(tmp_path):
    rows = zoo_parity(["mobilefacenet"], _crops(3, 112, 0), tmp_path)
    assert rows[0]["model"] == "mobilefacenet" and rows[0]["cosine min"] > 0.9999
    assert not list(tmp_path.glob("*.onnx"))  # the exported files are removed


def test_dlib_eye_centres_are_the_corner_midpoints_in_template_order():
    points = np.array([[70, 10], [60, 12], [20, 10], [30, 12], [45, 40]], np.float32)
    np.testing.assert_allclose(eye_centres_from_dlib5(points), [[25, 11], [65, 11]])
    with pytest.raises(ValueError, match="five points"):
        eye_centres_from_dlib5(points[:4])


@pytest.fixture(scope="module")
def photos_and_models():
    pytest.importorskip("dlib", reason="dlib-bin (requirements.txt) runs the reference models")
    from faceopt.detection.blazeface import BlazeFace
    from faceopt.system import real_photos
    from faceopt.system.dlib_reference import DlibFacePipeline

    for name in ("face_recognition_models", "dlib_face_recognition_resnet", "blazeface_short_range", *real_photos.PHOTOS):
        require_asset(name)
    return real_photos.load_photos(), DlibFacePipeline(), BlazeFace.from_tflite()


def test_enrolled_person_is_recognised_and_the_other_rejected(photos_and_models):
    from faceopt.system import real_photos
    from faceopt.system.gallery_cli import DEFAULT_THRESHOLD

    photos, reference, _ = photos_and_models
    table, embeddings = real_photos.identify_photos(photos, reference, DEFAULT_THRESHOLD)
    assert list(table.index) == ["obama2.jpg", "obama3.jpg", "biden.jpg"]
    assert table["accepted"].tolist() == [True, True, False] and table["right"].all()
    sims = real_photos.similarity_matrix(embeddings)
    assert np.allclose(np.diag(sims), 1, atol=1e-5) and np.allclose(sims, sims.T)


def test_blazeface_eyes_agree_with_dlib_within_two_detector_pixels(photos_and_models):
    from faceopt.system import real_photos

    photos, reference, blazeface = photos_and_models
    table = real_photos.landmark_agreement(photos, blazeface, reference)
    assert (table["worst in detector px"] < 2.5).all() and (table["worst / inter-ocular"] < 0.25).all()


def test_jittered_crops_are_aligned_faces_near_the_plain_crop(photos_and_models):
    from faceopt.system import real_photos

    photos, _, blazeface = photos_and_models
    one = {"obama.jpg": photos["obama.jpg"]}
    crops, five = real_photos.aligned_crops(one, blazeface, size=96)
    jittered = real_photos.jittered_crops(one, blazeface, 4, size=96, seed=0)
    assert jittered.shape == (4, 96, 96, 3) and five["obama.jpg"].shape == (5, 2)
    plain = crops["obama.jpg"].astype(np.float32)
    assert all(np.abs(j.astype(np.float32) - plain).mean() < 40 for j in jittered)
    assert not np.array_equal(jittered[0], jittered[1])
