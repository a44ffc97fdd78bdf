"""Pose (person) detector port: anchors, full-body box, parity with the reference TFLite runtime on vtest.avi."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import require_asset

from faceopt.detection import blazeface as bf
from faceopt.detection import blazepose as bp


# --------------------------------------------------------------------------- #
# Pure unit tests (no asset needed)
# --------------------------------------------------------------------------- #
def test_anchor_count_and_layout():
    a = bf.generate_anchors(bp.ANCHOR_OPTIONS)
    assert a.shape == (bp.NUM_ANCHORS, 4) == (2254, 4)  # 28*28*2 + 14*14*2 + 7*7*6
    assert np.all(a[:, 2:] == 1.0)
    np.testing.assert_allclose(a[0:2, :2], [[0.5 / 28, 0.5 / 28]] * 2)  # stride 8: 2 per cell
    np.testing.assert_allclose(a[2, :2], [1.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1567, :2], [27.5 / 28, 27.5 / 28])
    np.testing.assert_allclose(a[1568:1570, :2], [[0.5 / 14, 0.5 / 14]] * 2)  # stride 16: 2 per cell
    np.testing.assert_allclose(a[1960:1966, :2], [[0.5 / 7, 0.5 / 7]] * 6)  # three stride-32 layers: 6 per cell
    np.testing.assert_allclose(a[-1, :2], [6.5 / 7, 6.5 / 7])


def test_person_box_from_keypoints_hand_case():
    # hip centre (100, 200), full-body scale point 30 right and 40 up: radius 50
    kps = np.array([[[100, 200], [130, 160], [100, 150], [110, 140]]], np.float32)
    np.testing.assert_allclose(bp.person_box_from_keypoints(kps), [[50, 150, 150, 250]])
    np.testing.assert_allclose(bp.person_box_from_keypoints(kps, scale=1.25), [[37.5, 137.5, 162.5, 262.5]])
    assert bp.person_box_from_keypoints(np.zeros((0, 4, 2))).shape == (0, 4)
    with pytest.raises(ValueError):
        bp.person_box_from_keypoints(np.zeros((3, 2)))


def test_missing_asset_error_names_fetch_command(monkeypatch, tmp_path):
    import faceopt.assets as assets

    monkeypatch.setattr(assets.cache, "cached_path", lambda name: tmp_path / "absent" / "x.tflite")
    with pytest.raises(assets.AssetMissingError, match="faceopt assets fetch blazepose_detection"):
        bp.BlazePose.from_tflite()


# --------------------------------------------------------------------------- #
# Parity with the reference runtime (needs the assets and ai_edge_litert)
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def model_path():
    return require_asset("blazepose_detection")


@pytest.fixture(scope="module")
def net(model_path):
    return bp.BlazePose.from_tflite(model_path)


@pytest.fixture(scope="module")
def reference(model_path):
    """TFLite reference kernels (no XNNPACK delegate)."""
    litert = pytest.importorskip(
        "ai_edge_litert.interpreter", reason="ai_edge_litert not installed: pip install ai-edge-litert==2.3.0"
    )
    it = litert.Interpreter(
        model_path=str(model_path),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = {tuple(d["shape"])[-1]: d["index"] for d in it.get_output_details()}

    def run(x: torch.Tensor):
        it.set_tensor(inp, np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()))
        it.invoke()
        return it.get_tensor(outs[12]), it.get_tensor(outs[1])

    return run


VIDEO_FRAMES = (0, 200, 400, 550, 600, 650)  # 550 and 650: frames where a person scores >= 0.5


@pytest.fixture(scope="module")
def frames():
    cv2 = pytest.importorskip("cv2")
    cap = cv2.VideoCapture(str(require_asset("vtest.avi")))
    out = []
    for idx in VIDEO_FRAMES:
        cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
        ok, frame = cap.read()
        assert ok, f"could not read frame {idx} of vtest.avi"
        out.append((idx, frame))
    cap.release()
    out.append(("blank", np.zeros((480, 640, 3), np.uint8)))
    return out


def test_architecture_and_stage_table(net):
    assert net.num_layers == 17
    feats = net.features(torch.zeros(1, 3, 224, 224))
    table = [tuple(f.shape[1:]) for f in feats]
    assert table == [(24, 112, 112), (16, 112, 112), (24, 56, 56), (24, 56, 56), (40, 28, 28), (40, 28, 28),
                     (80, 14, 14), (80, 14, 14), (80, 14, 14), (112, 14, 14), (112, 14, 14), (112, 14, 14),
                     (192, 7, 7), (192, 7, 7), (192, 7, 7), (192, 7, 7), (1152, 7, 7)]
    assert sorted(net.head_inputs.values()) == [5, 11, 16]
    reg, cls = net.head(feats)
    assert reg.shape == (1, 2254, 12) and cls.shape == (1, 2254, 1)
    assert len(net.features(torch.zeros(1, 3, 224, 224), upto=5)) == 5
    with pytest.raises(ValueError):
        net.features(torch.zeros(1, 3, 224, 224), upto=18)
    with pytest.raises(ValueError):
        net.head(feats[:16])
    with pytest.raises(ValueError):
        net(torch.zeros(1, 3, 128, 128))


def _close(ours: np.ndarray, ref: np.ndarray, atol: float) -> float:
    """Max abs difference, checked against ``atol`` plus float32 round-off of the reference's magnitude."""
    diff = float(np.abs(ours - ref).max())
    assert diff <= atol + 1e-5 * float(np.abs(ref).max()), (diff, float(np.abs(ref).max()))
    return diff


def test_raw_outputs_match_tflite(net, reference, frames):
    for _, img in frames:
        x, _ = bp.preprocess(img)
        reg_ref, cls_ref = reference(x)
        with torch.no_grad():
            reg, cls = net(x)
        _close(reg.numpy(), reg_ref, 1e-2)  # pixels of the 224x224 input (|values| up to ~700)
        _close(cls.numpy(), cls_ref, 1e-3)  # score logits (|values| up to ~560)


def test_detections_match_tflite_and_people_are_found(net, reference, frames):
    found = {}
    for name, img in frames:
        x, lb = bp.preprocess(img)
        reg_ref, cls_ref = reference(x)
        b_ref, s_ref, k_ref = bp.postprocess(torch.from_numpy(reg_ref[0]), torch.from_numpy(cls_ref[0]), letterbox=lb)
        b, s, k = net.detect(img, box="detector")
        assert b.shape == b_ref.shape and k.shape == (len(s), 4, 2)
        np.testing.assert_allclose(s, s_ref, atol=1e-4)
        np.testing.assert_allclose(b, b_ref, atol=0.05)  # image pixels
        np.testing.assert_allclose(k, k_ref, atol=0.05)
        full, s_full, k_full = net.detect(img)
        np.testing.assert_allclose(full, bp.person_box_from_keypoints(k_ref), atol=0.1)
        np.testing.assert_array_equal(s_full, s)
        found[name] = len(s)
        if len(s):
            assert np.all(full[:, 2] > full[:, 0]) and np.all(b[:, 3] > b[:, 1])
    print("people per frame:", found)
    assert found["blank"] == 0
    # vtest.avi people are small (about 100-150 px of 768); this detector expects large people
    # and fires on only a few frames at 0.5 -- but it must fire on some.
    assert found[550] >= 1 and found[650] >= 1


def test_full_body_box_contains_the_keypoints_on_a_real_person(net, frames):
    img = dict(frames)[550]
    b, s, k = net.detect(img)
    assert s[0] >= 0.5
    x1, y1, x2, y2 = b[0]
    body = k[0, :3]  # hip centre, full-body scale point (on the circle), shoulder centre; kp 3 is the upper-body scale
    assert x1 <= body[:, 0].min() and body[:, 0].max() <= x2 and y1 <= body[:, 1].min() and body[:, 1].max() <= y2
    assert k[0, 2, 1] < k[0, 0, 1]  # shoulders above the hips
    assert 100 < k[0, 0, 0] < 300 and 350 < k[0, 0, 1] < 500  # hip centre on the couple at the lower left


def test_split_matches_the_whole_network(net, frames):
    split = bp.BlazePoseSplit(net)
    img = dict(frames)[550]
    x, lb = split.prepare(img)
    with torch.inference_mode():
        whole = net(x)
        for m in (1, 5, 6, 12, 17):
            state = split.run_until(x, m)
            assert len(state.outputs) == m and state.features.ndim == 4
            reg, cls = split.run_from(state, m)
            assert torch.allclose(reg, whole[0], atol=1e-5) and torch.allclose(cls, whole[1], atol=1e-5)
    boxes, scores, normalised = split.decode(whole, lb)
    ref_boxes, ref_scores, _ = net.detect(img)
    np.testing.assert_allclose(boxes, ref_boxes, atol=1e-3)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    assert len(boxes) >= 1 and ((normalised >= 0) & (normalised <= 1)).all()
