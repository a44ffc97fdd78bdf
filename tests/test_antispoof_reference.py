"""The TFJS graph reader (faceopt.antispoof.tfjs_graph) on tiny hand-written graphs, and the Human library's two
anti-spoofing models read into PyTorch against the official tfjs outputs (tests/fixtures/antispoof_tfjs_reference.json,
written by .ci/tfjs_reference.mjs)."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faceopt.antispoof.tfjs_graph import load_tfjs_graph, read_weights, same_padding
from faceopt.data.errors import DataFileError

FIXTURE = Path(__file__).parent / "fixtures" / "antispoof_tfjs_reference.json"
ATOL = 1e-4  # on probabilities and logits


# --------------------------------------------------------------------------- #
# Tiny graphs written by hand
# --------------------------------------------------------------------------- #
def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def write_graph(folder: Path, nodes: list[dict], weights: dict[str, tuple[np.ndarray, str]], *,
                shard: str = "group1-shard1of1.bin") -> Path:
    """model.json + one shard; ``weights`` maps name -> (float32/int32 array, stored dtype:
    "float32" | "int32" | "float16" | "uint8")."""
    specs, blobs = [], []
    for name, (value, stored) in weights.items():
        spec: dict = {"name": name, "shape": list(value.shape), "dtype": "int32" if value.dtype == np.int32 else "float32"}
        if stored == "float16":
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blobs.append(value.astype("<f2").tobytes())
        elif stored == "uint8":
            lo, hi = float(value.min()), float(value.max())
            scale = (hi - lo) / 255 or 1.0
            spec["quantization"] = {"dtype": "uint8", "min": lo, "scale": scale, "original_dtype": "float32"}
            blobs.append(np.round((value - lo) / scale).astype(np.uint8).tobytes())
        else:
            blobs.append(value.astype("<i4" if stored == "int32" else "<f4").tobytes())
        specs.append(spec)
    consts = [{"name": name, "op": "Const", "attr": {}} for name in weights]
    model = {"format": "graph-model", "modelTopology": {"node": consts + nodes},
             "weightsManifest": [{"paths": [shard], "weights": specs}]}
    path = folder / "model.json"
    path.write_text(json.dumps(model))
    (folder / shard).write_bytes(b"".join(blobs))
    return path


def placeholder(shape) -> dict:
    return {"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": str(d)} for d in shape]}}}}


def conv_node(name, inp, kernel, bias=None, *, padding="SAME", strides=(1, 1), dilations=(1, 1), fused=("BiasAdd",),
              op="_FusedConv2D") -> dict:
    attr = {"padding": _s(padding), "strides": _ints([1, *strides, 1]), "dilations": _ints([1, *dilations, 1]),
            "data_format": _s("NHWC")}
    inputs = [inp, kernel]
    if op.startswith("_Fused"):
        attr["fused_ops"] = {"list": {"s": [_s(f)["s"] for f in fused]}}
        inputs.append(bias)
    return {"name": name, "op": op, "input": inputs, "attr": attr}


def np_conv_nhwc(x, w, pads, stride=(1, 1), dilation=(1, 1)):
    """Plain-loop NHWC x HWIO convolution with explicit ((top, bottom), (left, right)) zero padding."""
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw, _, co = w.shape
    eh, ew = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    oh = (xp.shape[1] - eh) // stride[0] + 1
    ow = (xp.shape[2] - ew) // stride[1] + 1
    out = np.zeros((x.shape[0], oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride[0]: i * stride[0] + eh: dilation[0], j * stride[1]: j * stride[1] + ew: dilation[1], :]
            out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def test_same_padding_is_tfs_asymmetric_rule():
    assert same_padding(6, 3, 2) == (0, 1)  # out 3: (3-1)*2 + 3 - 6 = 1 -> the odd pixel after
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(7, 2, 1) == (0, 1)
    assert same_padding(7, 3, 1, 2) == (2, 2)
    assert same_padding(4, 1, 3) == (0, 0)


@pytest.mark.parametrize("shape,stride,dilation,pads", [
    ((1, 6, 8, 2), (2, 2), (1, 1), ((0, 1), (0, 1))),   # even sizes, stride 2: one extra pixel after
    ((2, 5, 7, 2), (2, 3), (1, 1), ((1, 1), (1, 1))),   # odd sizes: H (3-1)*2+3-5 = 2, W (3-1)*3+3-7 = 2
    ((1, 5, 5, 2), (1, 1), (2, 2), ((2, 2), (2, 2))),   # dilation 2: effective kernel 5
])
def test_fused_conv_same_padding_matches_numpy(tmp_path, shape, stride, dilation, pads):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    path = write_graph(tmp_path, [placeholder([-1, *shape[1:]]),
                                  conv_node("conv", "x", "w", "b", strides=stride, dilations=dilation, fused=("BiasAdd", "Relu")),
                                  {"name": "Identity", "op": "Identity", "input": ["conv"]}],
                       {"w": (w, "float32"), "b": (b, "float32")})
    module = load_tfjs_graph(path)
    x = rng.normal(size=shape).astype(np.float32)
    got = module(torch.from_numpy(x)).numpy()
    want = np.maximum(np_conv_nhwc(x, w, pads, stride, dilation) + b, 0)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    # the kernel is stored once, in PyTorch's OIHW layout
    assert [tuple(t.shape) for name, t in module.named_buffers() if name.startswith("kernel")] == [(4, 2, 3, 3)]
    # NCHW in, NCHW out
    nchw = load_tfjs_graph(path, input_layout="NCHW")(torch.from_numpy(x).permute(0, 3, 1, 2))
    np.testing.assert_allclose(nchw.permute(0, 2, 3, 1).numpy(), want, atol=1e-5)


def test_depthwise_conv_and_valid_padding(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 3, 2, 2)).astype(np.float32)  # H W C M
    path = write_graph(tmp_path, [placeholder([-1, 5, 6, 2]),
                                  conv_node("dw", "x", "w", padding="VALID", op="DepthwiseConv2dNative")],
                       {"w": (w, "float32")})
    x = rng.normal(size=(1, 5, 6, 2)).astype(np.float32)
    got = load_tfjs_graph(path)(torch.from_numpy(x)).numpy()
    want = np.concatenate([np_conv_nhwc(x[..., c:c + 1], w[:, :, c:c + 1, :], ((0, 0), (0, 0))) for c in range(2)], axis=-1)
    np.testing.assert_allclose(got, want, atol=1e-5)  # output channel c*M + m, as TF orders it


def test_max_and_avg_pool_same_on_odd_sizes(tmp_path):
    pool = {"ksize": _ints([1, 2, 2, 1]), "strides": _ints([1, 2, 2, 1]), "padding": _s("SAME"), "data_format": _s("NHWC")}
    path = write_graph(tmp_path, [placeholder([-1, 5, 5, 1]),
                                  {"name": "max", "op": "MaxPool", "input": ["x"], "attr": pool},
                                  {"name": "avg", "op": "AvgPool", "input": ["x"], "attr": pool}], {})
    module = load_tfjs_graph(path)
    x = -np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1)  # all negative: a zero pad would win a max
    out = module.run(torch.from_numpy(x), ["max", "avg"])
    padded = np.pad(x[0, :, :, 0], ((0, 1), (0, 1)), constant_values=np.nan)  # SAME: (3-1)*2+2-5 = 1 after
    blocks = padded.reshape(3, 2, 3, 2).transpose(0, 2, 1, 3).reshape(3, 3, 4)
    np.testing.assert_allclose(out["max"].numpy()[0, :, :, 0], np.nanmax(blocks, axis=-1))
    np.testing.assert_allclose(out["avg"].numpy()[0, :, :, 0], np.nanmean(blocks, axis=-1), rtol=1e-6)  # pad not counted


def test_fused_matmul_bias_relu_transpose_and_quantised_weights(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 8)).astype(np.float32)  # used with transpose_b: x (N x 8) @ w.T
    b = rng.normal(size=3).astype(np.float32)
    scale = rng.normal(size=3).astype(np.float32)
    nodes = [placeholder([-1, 2, 2, 2]),
             {"name": "flat", "op": "Reshape", "input": ["x", "shape"]},
             {"name": "fc", "op": "_FusedMatMul", "input": ["flat", "w", "b"],
              "attr": {"transpose_a": {"b": False}, "transpose_b": {"b": True},
                       "fused_ops": {"list": {"s": [_s("BiasAdd")["s"], _s("Relu")["s"]]}}}},
             {"name": "mul", "op": "Mul", "input": ["fc", "scale"]},
             {"name": "prob", "op": "Softmax", "input": ["mul"]}]
    path = write_graph(tmp_path, nodes, {"shape": (np.array([-1, 8], np.int32), "int32"), "w": (w, "uint8"),
                                         "b": (b, "float16"), "scale": (scale, "float32")})
    weights = read_weights(path)
    lo = float(w.min())
    step = (float(w.max()) - lo) / 255
    np.testing.assert_allclose(weights["w"], np.round((w - lo) / step) * step + lo, atol=1e-6)  # q * scale + min
    np.testing.assert_array_equal(weights["b"], b.astype(np.float16).astype(np.float32))
    x = rng.normal(size=(4, 2, 2, 2)).astype(np.float32)
    out = load_tfjs_graph(path).run(torch.from_numpy(x), ["fc", "prob"])
    fc = np.maximum(x.reshape(4, 8) @ weights["w"].T + weights["b"], 0)  # NHWC flatten order, as Keras Flatten
    np.testing.assert_allclose(out["fc"].numpy(), fc, atol=1e-5)
    e = np.exp(fc * scale - (fc * scale).max(axis=1, keepdims=True))
    np.testing.assert_allclose(out["prob"].numpy(), e / e.sum(axis=1, keepdims=True), atol=1e-6)


def test_unknown_op_is_named_with_the_file(tmp_path):
    path = write_graph(tmp_path, [placeholder([-1, 4]), {"name": "weird", "op": "FancyOp", "input": ["x"]}], {})
    with pytest.raises(ValueError, match=r"model\.json: node 'weird' uses op 'FancyOp'.*does not support"):
        load_tfjs_graph(path)


def test_unknown_fused_op_is_named(tmp_path):
    w = np.ones((1, 1, 1, 1), np.float32)
    node = conv_node("c", "x", "w", "w", fused=("BiasAdd", "Gelu"))
    path = write_graph(tmp_path, [placeholder([-1, 2, 2, 1]), node], {"w": (w, "float32")})
    with pytest.raises(ValueError, match=r"fuses \['Gelu'\]"):
        load_tfjs_graph(path)


def test_bad_files_raise_data_file_error_naming_the_file(tmp_path):
    w = np.ones((3, 3, 1, 2), np.float32)
    path = write_graph(tmp_path, [placeholder([-1, 4, 4, 1]), conv_node("c", "x", "w", op="Conv2D")], {"w": (w, "float32")})
    shard = tmp_path / "group1-shard1of1.bin"
    data = shard.read_bytes()
    shard.write_bytes(data[:-4])  # truncated
    with pytest.raises(DataFileError, match=r"group1-shard1of1\.bin.*truncated"):
        load_tfjs_graph(path)
    shard.write_bytes(data + b"\0" * 4)  # too long
    with pytest.raises(DataFileError, match=r"group1-shard1of1\.bin.*does not belong"):
        load_tfjs_graph(path)
    shard.unlink()
    with pytest.raises(DataFileError, match=r"group1-shard1of1\.bin: weight shard .* not found"):
        load_tfjs_graph(path)
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(data)
    assert load_tfjs_graph(path, {"group1-shard1of1.bin": elsewhere}).input_shape == (-1, 4, 4, 1)
    path.write_text('{"format": "graph-model", "modelTopology": ')
    with pytest.raises(DataFileError, match=r"model\.json: not a TFJS model\.json"):
        load_tfjs_graph(path)
    path.write_text('{"format": "layers-model", "modelTopology": {}, "weightsManifest": []}')
    with pytest.raises(DataFileError, match="only graph models"):
        load_tfjs_graph(path)


# --------------------------------------------------------------------------- #
# The Human models against tfjs
# --------------------------------------------------------------------------- #
def lcg_bytes(seed: int, count: int) -> np.ndarray:
    out = np.empty(count, np.uint8)
    s = seed & 0xFFFFFFFF
    for k in range(count):
        s = (1664525 * s + 1013904223) & 0xFFFFFFFF
        out[k] = s >> 24
    return out


def generate(spec: dict, n: int, h: int, w: int, c: int) -> np.ndarray:
    if spec["formula"] == "lcg":
        return lcg_bytes(spec["seed"], n * h * w * c).reshape(n, h, w, c)
    b, i, j, ch = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    return ((7 * i + 13 * j + 29 * ch + 53 * b + 3 * ((i * j) % 17)) % 256).astype(np.uint8)


@pytest.fixture(scope="module")
def reference():
    return json.loads(FIXTURE.read_text())


def _load(name):
    from faceopt.antispoof.reference import load_antispoof_reference
    from faceopt.assets import AssetError

    try:
        return load_antispoof_reference(name)
    except AssetError as exc:
        pytest.skip(f"the {name} model assets cannot be fetched ({exc}); run: "
                    f"faceopt assets fetch human_{name}.json human_{name}.bin")


@pytest.fixture(scope="module", params=["antispoof", "liveness"])
def model(request):
    module, info = _load(request.param)
    return request.param, module, info


def test_fixture_was_made_from_the_catalogued_models(reference, model):
    from faceopt.assets import ASSETS

    name, _, info = model
    entry = reference["models"][name]
    assert entry["json"]["sha256"] == ASSETS[info.assets[0]].sha256 == hashlib.sha256(info.json_path.read_bytes()).hexdigest()
    assert entry["bin"]["sha256"] == ASSETS[info.assets[1]].sha256
    assert list(info.input_size) == entry["input_shape"][:2]


def test_model_inputs_match_tfjs(reference, model):
    name, module, info = model
    entry = reference["models"][name]
    h, w = info.input_size
    for spec in reference["inputs"]:
        if spec["kind"] != "model":
            continue
        x = generate(spec, spec["batch"], h, w, 3).astype(np.float32) / np.float32(255)
        out = module.run(torch.from_numpy(x), ["Identity", entry["logits_node"]])
        want = entry["cases"][spec["id"]]
        np.testing.assert_allclose(out["Identity"].numpy(), want["output"], atol=ATOL, err_msg=f"{name} {spec['id']}")
        np.testing.assert_allclose(out[entry["logits_node"]].numpy(), want["logits"], atol=ATOL, err_msg=f"{name} {spec['id']}")


def test_human_preprocessing_and_scores_match_tfjs(reference, model):
    from faceopt.antispoof.reference import (
        human_face_tensor,
        human_outputs,
        resize_bilinear,
        score_face_tensors,
        score_faces,
    )

    name, module, _ = model
    entry = reference["models"][name]
    for spec in reference["inputs"]:
        if spec["kind"] != "human":
            continue
        rgb = generate(spec, 1, spec["height"], spec["width"], 3)[0]
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        face = human_face_tensor(bgr, spec["box_xyxy"], reference["face_size"])
        case = entry["cases"][spec["id"]]
        model_input = resize_bilinear(face[None], module.input_shape[1:3]).reshape(-1)
        np.testing.assert_allclose(model_input[::499], case["input_every_499th"], atol=1e-6)  # bit-exact in practice
        assert model_input.astype(np.float64).sum() == pytest.approx(case["input_sum"], abs=1e-3)
        want = np.asarray(case["output"])
        np.testing.assert_allclose(human_outputs(module, face[None]), want, atol=ATOL, err_msg=f"{name} {spec['id']}")
        attack = score_face_tensors(module, name, face[None])
        np.testing.assert_allclose(attack, 1 - want[:, 0], atol=ATOL)
        if spec["box_xyxy"] == [0, 0, spec["width"], spec["height"]]:  # the whole frame is the face crop
            np.testing.assert_allclose(score_faces(module, name, [bgr]), 1 - want[:, 0], atol=ATOL)


def test_unknown_reference_name():
    from faceopt.antispoof.reference import load_antispoof_reference

    with pytest.raises(ValueError, match="unknown anti-spoofing reference 'bogus'"):
        load_antispoof_reference("bogus")
