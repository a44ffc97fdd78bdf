"""BlazeFace port: anchors, SAME padding, and parity with the reference TFLite runtime on real frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import require_asset

from faceopt.detection import blazeface as bf
from faceopt.detection.tflite_weights import (
    conv2d_weight_to_torch,
    depthwise_weight_to_torch,
    pad_same,
    same_padding,
)


# --------------------------------------------------------------------------- #
# Pure unit tests (no asset needed)
# --------------------------------------------------------------------------- #
def test_anchor_count_and_first_centres():
    a = bf.generate_anchors()
    assert a.shape == (896, 4) and a.dtype == np.float32
    assert np.all(a[:, 2:] == 1.0)  # fixed_anchor_size
    # stride 8: 16x16 cells, 2 anchors per cell, row-major, centre (x + 0.5) / 16
    np.testing.assert_allclose(a[0, :2], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[1, :2], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[2, :2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[32, :2], [0.5 / 16, 1.5 / 16])  # second row
    np.testing.assert_allclose(a[511, :2], [15.5 / 16, 15.5 / 16])
    # the three stride-16 layers merge: 8x8 cells, 6 anchors per cell
    np.testing.assert_allclose(a[512:518, :2], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(a[518, :2], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(a[-1, :2], [7.5 / 8, 7.5 / 8])


def test_same_padding_matches_tensorflow_rule():
    assert same_padding(128, 5, 2) == (1, 2)  # the stem
    assert same_padding(64, 3, 2) == (0, 1)  # stride-2 depthwise
    assert same_padding(64, 3, 1) == (1, 1)
    assert same_padding(7, 3, 2) == (1, 1)  # odd size: symmetric
    assert same_padding(16, 1, 1) == (0, 0)
    assert same_padding(10, 3, 1, dilation=2) == (2, 2)
    with pytest.raises(ValueError):
        same_padding(0, 3, 1)


def test_pad_same_gives_ceil_output_and_asymmetric_pad():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = pad_same(x, 3, 2)
    assert y.shape[-2:] == (5, 5)  # (0, 1) on each axis
    assert torch.equal(y[..., :4, :4], x) and float(y[..., 4, :].abs().sum()) == 0.0
    conv = torch.nn.Conv2d(1, 1, 5, stride=2)
    z = conv(pad_same(torch.zeros(1, 1, 128, 128), 5, 2))
    assert z.shape[-2:] == (64, 64)
    assert pad_same(x, 1, 1) is x


def test_layout_conversions():
    ohwi = np.arange(2 * 3 * 3 * 4).reshape(2, 3, 3, 4)
    oihw = conv2d_weight_to_torch(ohwi)
    assert oihw.shape == (2, 4, 3, 3) and oihw[1, 2, 0, 1] == ohwi[1, 0, 1, 2]
    dw = np.arange(3 * 3 * 5).reshape(1, 3, 3, 5)
    o1hw = depthwise_weight_to_torch(dw)
    assert o1hw.shape == (5, 1, 3, 3) and o1hw[4, 0, 2, 1] == dw[0, 2, 1, 4]
    with pytest.raises(ValueError):
        depthwise_weight_to_torch(np.zeros((2, 3, 3, 5)))


def test_weighted_nms_blends_overlapping_boxes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.6, 0.7])
    kps = torch.zeros(3, 6, 2)
    kps[1] += 1.0
    b, s, k = bf.weighted_nms(boxes, scores, kps)
    assert s.tolist() == pytest.approx([0.9, 0.7])
    np.testing.assert_allclose(b[0].numpy(), [0.4, 0, 10.4, 10], atol=1e-6)  # (0*0.9 + 1*0.6) / 1.5
    np.testing.assert_allclose(k[0].numpy(), np.full((6, 2), 0.4), atol=1e-6)
    np.testing.assert_allclose(b[1].numpy(), [50, 50, 60, 60])


def test_bad_images_give_clear_errors():
    with pytest.raises(ValueError, match="COLOR_GRAY2BGR"):
        bf.preprocess(np.zeros((20, 30), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        bf.preprocess(np.zeros((20, 30, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        bf.preprocess(np.zeros((20, 30, 3), np.float32))
    with pytest.raises(ValueError, match="color"):
        bf.preprocess(np.zeros((20, 30, 3), np.uint8), color="hsv")


def test_preprocess_letterbox_geometry():
    img = np.full((64, 128, 3), 255, np.uint8)  # wide: bands top and bottom
    x, lb = bf.preprocess(img, color="rgb")
    assert x.shape == (1, 3, 128, 128)
    assert lb.side == 128 and lb.offset_y == 32 and lb.offset_x == 0
    assert float(x[0, :, 0].max()) == -1.0 and float(x[0, :, 127].max()) == -1.0  # black border -> -1
    assert float(x[0, :, 64].min()) == pytest.approx(1.0)
    np.testing.assert_allclose(lb.to_image(np.array([[0.5, 0.5]])), [[64, 32]])


def test_preprocess_of_bgr_is_the_preprocess_of_its_rgb():
    # the channel swap happens after the letterbox warp (so that no pass touches every pixel of a large frame)
    img = np.random.default_rng(0).integers(0, 256, (300, 170, 3), dtype=np.uint8)
    from_bgr, _ = bf.preprocess(img, color="bgr")
    from_rgb, _ = bf.preprocess(np.ascontiguousarray(img[..., ::-1]), color="rgb")
    assert torch.equal(from_bgr, from_rgb)
    assert not torch.equal(from_bgr, bf.preprocess(img, color="rgb")[0])  # the swap did happen


def test_missing_asset_error_names_fetch_command(monkeypatch, tmp_path):
    import faceopt.assets as assets

    monkeypatch.setattr(assets.cache, "cached_path", lambda name: tmp_path / "absent" / "x.tflite")
    with pytest.raises(assets.AssetMissingError, match="faceopt assets fetch blazeface_short_range"):
        bf.BlazeFace.from_tflite()


# --------------------------------------------------------------------------- #
# Parity with the reference runtime (needs the assets and ai_edge_litert)
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def model_path():
    return require_asset("blazeface_short_range")


@pytest.fixture(scope="module")
def net(model_path):
    return bf.BlazeFace.from_tflite(model_path)


@pytest.fixture(scope="module")
def reference(model_path):
    """TFLite reference kernels (no XNNPACK delegate), all intermediate tensors kept."""
    litert = pytest.importorskip(
        "ai_edge_litert.interpreter", reason="ai_edge_litert not installed: pip install ai-edge-litert==2.3.0"
    )
    it = litert.Interpreter(
        model_path=str(model_path),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = {d["name"]: d["index"] for d in it.get_output_details()}
    names = {d["name"]: d["index"] for d in it.get_tensor_details()}

    def run(x: torch.Tensor):
        it.set_tensor(inp, np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()))
        it.invoke()
        acts = [it.get_tensor(names["activation" if i == 0 else f"activation_{i}"]) for i in range(17)]
        return it.get_tensor(outs["regressors"]), it.get_tensor(outs["classificators"]), acts

    return run


@pytest.fixture(scope="module")
def frames():
    """Real frames: vtest.avi frames, some with real LFW faces (upscaled) pasted on, and a blank image."""
    cv2 = pytest.importorskip("cv2")
    cap = cv2.VideoCapture(str(require_asset("vtest.avi")))
    video = []
    for idx in (0, 150, 300, 450, 600):
        cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
        ok, frame = cap.read()
        assert ok, f"could not read frame {idx} of vtest.avi"
        video.append(frame)
    cap.release()
    faces = np.load(require_asset("lfw_subset"))[:100]
    out = [("video", f) for f in video]
    for j, i in enumerate(range(0, 100, 10)):
        img = video[j % len(video)].copy()
        size = (160, 220, 300)[j % 3]
        face = cv2.resize((faces[i] * 255).round().astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
        y, x = 60 + 20 * (j % 4), 100 + 40 * j
        img[y:y + size, x:x + size] = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
        out.append(("face", img))
    out.append(("blank", np.zeros((480, 640, 3), np.uint8)))
    return out


def test_architecture(net):
    assert net.num_layers == 17
    assert net.head_stages == (11, 16) and net.anchors_per_cell == (2, 6)
    feats = net.features(torch.zeros(1, 3, 128, 128))
    assert [tuple(f.shape[1:]) for f in feats][:4] == [(24, 64, 64), (24, 64, 64), (28, 64, 64), (32, 32, 32)]
    assert tuple(feats[11].shape[1:]) == (88, 16, 16) and tuple(feats[16].shape[1:]) == (96, 8, 8)
    assert len(net.features(torch.zeros(1, 3, 128, 128), upto=5)) == 5
    with pytest.raises(ValueError):
        net.features(torch.zeros(1, 3, 128, 128), upto=18)
    with pytest.raises(ValueError):
        net.head(feats[:12])


def _close(ours: np.ndarray, ref: np.ndarray, atol: float) -> float:
    """Max abs difference, checked against ``atol`` plus float32 round-off of the reference's magnitude."""
    diff = float(np.abs(ours - ref).max())
    assert diff <= atol + 1e-5 * float(np.abs(ref).max()), (diff, float(np.abs(ref).max()))
    return diff


def test_raw_outputs_and_features_match_tflite(net, reference, frames):
    worst_reg = worst_cls = 0.0
    for kind, img in frames:
        x, _ = bf.preprocess(img)
        reg_ref, cls_ref, acts_ref = reference(x)
        with torch.no_grad():
            feats = net.features(x)
            reg, cls = net.head(feats)
        for i, (f, a) in enumerate(zip(feats, acts_ref)):
            _close(f.permute(0, 2, 3, 1).numpy(), a, 1e-3)
        d_reg = _close(reg.numpy(), reg_ref, 1e-2)  # pixels of the 128x128 input
        d_cls = _close(cls.numpy(), cls_ref, 1e-3)  # score logits
        if kind != "blank":  # blank input drives the logits to ~1e4: only the relative bound applies
            worst_reg, worst_cls = max(worst_reg, d_reg), max(worst_cls, d_cls)
    assert worst_reg < 1e-2 and worst_cls < 1e-3


def test_detections_match_tflite(net, reference, frames):
    n_faces = n_fired = 0
    for kind, img in frames:
        x, lb = bf.preprocess(img)
        reg_ref, cls_ref, _ = reference(x)
        b_ref, s_ref, k_ref = bf.postprocess(torch.from_numpy(reg_ref[0]), torch.from_numpy(cls_ref[0]), letterbox=lb)
        b, s, k = net.detect(img)
        assert b.shape == b_ref.shape and k.shape == (len(s), 6, 2)
        np.testing.assert_allclose(s, s_ref, atol=1e-4)
        np.testing.assert_allclose(b, b_ref, atol=0.05)  # image pixels
        np.testing.assert_allclose(k, k_ref, atol=0.05)
        if kind == "face":
            n_faces += 1
            n_fired += len(s) >= 1
        if kind == "blank":
            assert len(s) == 0
        if len(s):
            assert np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])
    assert n_faces == 10
    # Tight 25x25 LFW crops are not MediaPipe's training distribution; most still fire.
    assert n_fired >= 8, f"the detector fired on only {n_fired} of 10 pasted real faces"


def test_face_box_lands_on_pasted_face(net, frames):
    _, img = frames[5]  # face 0, 160 px, pasted at (x=100, y=60)
    b, s, k = net.detect(img)
    cx, cy = (b[0, 0] + b[0, 2]) / 2, (b[0, 1] + b[0, 3]) / 2
    assert 100 < cx < 260 and 60 < cy < 220 and s[0] >= 0.5
    b_rgb, s_rgb, _ = net.detect(img[:, :, ::-1].copy(), color="rgb")
    np.testing.assert_allclose(b_rgb, b, atol=1e-4)


def test_fallback_reader_gives_same_weights(model_path):
    pytest.importorskip("ai_edge_litert.interpreter")
    pytest.importorskip("tflite")
    from faceopt.detection.tflite_weights import read_tflite

    a, b = read_tflite(model_path, "tflite"), read_tflite(model_path, "interpreter")
    ca, cb = a.compute_ops(), b.compute_ops()
    assert [o.opcode for o in ca] == [o.opcode for o in cb]
    for oa, ob in zip(ca, cb):
        assert oa.inputs == ob.inputs and oa.outputs == ob.outputs
        if oa.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            assert oa.options["stride"] == ob.options["stride"]
            np.testing.assert_array_equal(a.constant(oa.inputs[1]), b.constant(ob.inputs[1]))
            np.testing.assert_array_equal(a.constant(oa.inputs[2]), b.constant(ob.inputs[2]))
    net_b = bf.BlazeFace._from_graph(b).eval()
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(net_b(x), bf.BlazeFace._from_graph(a).eval()(x), rtol=0, atol=0)
