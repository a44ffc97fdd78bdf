"""INT8 deployment: onnxruntime static/dynamic quantisation, torch.ao x86, and the comparison table.

Small, CPU-light models only; timings are measured but never asserted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from faceopt.compress.int8 import (
    ArrayCalibrationReader,
    Int8Config,
    RandomCalibrationReader,
    compare_int8,
    embedding_cosine,
    quantize_onnx_dynamic,
    quantize_onnx_static,
    quantize_torch_x86,
)
from faceopt.models.profile import settle_batchnorm
from faceopt.system.cost import ort_session
from faceopt.system.onnx_export import export_onnx

SHAPE = (3, 32, 32)


def tiny_net() -> nn.Module:
    """Conv-BN-ReLU x3 and a linear embedding: ~100k weights, so INT8 weights dominate the file."""
    torch.manual_seed(0)

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    net = nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 64))
    return settle_batchnorm(net, input_size=SHAPE)


@pytest.fixture(scope="module")
def fp32_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(tiny_net(), tmp_path_factory.mktemp("int8") / "fp32.onnx", (1, *SHAPE))


def _inputs(n: int = 8, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *SHAPE)).astype(np.float32)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort_session(path, threads=1)
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _op_types(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_calibration_readers_batch_and_rewind() -> None:
    reader = ArrayCalibrationReader(np.zeros((10, *SHAPE), np.float32), batch_size=4)
    sizes = []
    while (batch := reader.get_next()) is not None:
        sizes.append(len(batch["input"]))
    assert sizes == [4, 4, 2] and len(reader) == 3
    reader.rewind()
    assert reader.get_next()["input"].shape == (4, *SHAPE)
    rand = RandomCalibrationReader(batches=2, batch_size=3, input_shape=SHAPE)
    assert rand.images.shape == (6, *SHAPE) and rand.images.dtype == np.float32
    with pytest.raises(ValueError):
        ArrayCalibrationReader(np.zeros((0, *SHAPE), np.float32))


def test_embedding_cosine() -> None:
    a = np.random.default_rng(0).standard_normal((5, 16))
    assert embedding_cosine(a, a) == pytest.approx((1.0, 1.0))
    mean, low = embedding_cosine(a, -a)
    assert mean == pytest.approx(-1.0) and low == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        embedding_cosine(a, a[:, :8])


@pytest.mark.parametrize("fmt, marker", [("QDQ", {"QuantizeLinear", "DequantizeLinear"}),
                                         ("QOperator", {"QLinearConv"})])
def test_static_quantisation_is_valid_small_and_close(fp32_path: Path, tmp_path: Path, fmt: str,
                                                      marker: set[str]) -> None:
    out = quantize_onnx_static(fp32_path, tmp_path / f"{fmt}.onnx",
                               RandomCalibrationReader(batches=2, input_shape=SHAPE), fmt=fmt)
    assert out == tmp_path / f"{fmt}.onnx" and out.is_file()
    onnx.checker.check_model(str(out))
    assert marker <= _op_types(out)
    x = _inputs()
    mean, low = embedding_cosine(_run(fp32_path, x), _run(out, x))
    assert low >= 0.98, (mean, low)
    # INT8 weights: about a quarter of the FP32 bytes, plus scales, zero points and graph.
    assert out.stat().st_size < 0.4 * fp32_path.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporaries left


def test_failed_quantisation_leaves_no_file(fp32_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.onnx"
    with pytest.raises(FileNotFoundError):
        quantize_onnx_static(tmp_path / "missing.onnx", target, RandomCalibrationReader(input_shape=SHAPE))
    bad_reader = ArrayCalibrationReader(_inputs(4), input_name="not_the_input")
    with pytest.raises(Exception):
        quantize_onnx_static(fp32_path, target, bad_reader)
    with pytest.raises(ValueError):
        quantize_onnx_static(fp32_path, target, RandomCalibrationReader(input_shape=SHAPE), fmt="QDQQ")
    assert list(tmp_path.iterdir()) == []


def test_dynamic_quantisation_gives_conv_integer(fp32_path: Path, tmp_path: Path) -> None:
    out = quantize_onnx_dynamic(fp32_path, tmp_path / "dyn.onnx")
    assert "ConvInteger" in _op_types(out)
    x = _inputs(4)
    assert embedding_cosine(_run(fp32_path, x), _run(out, x))[1] >= 0.95


def test_torch_x86_matches_fp32() -> None:
    try:
        from torch.ao.quantization.quantize_fx import prepare_fx  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the torch build
        pytest.skip(f"torch.ao FX quantisation unavailable: {exc}")
    if "x86" not in torch.backends.quantized.supported_engines:  # pragma: no cover
        pytest.skip("torch built without the x86 quantised engine")
    net = tiny_net()
    calib = [torch.from_numpy(_inputs(8, seed=s)) for s in range(2)]
    q = quantize_torch_x86(net, calib, example_input=calib[0][:1])
    assert any("quantized" in type(m).__module__ for m in q.modules())
    x = torch.from_numpy(_inputs())
    with torch.inference_mode():
        ref, out = net(x), q(x)
    assert embedding_cosine(ref, out)[1] >= 0.98
    assert net(x).shape == out.shape  # the original model is untouched and still float


def test_compare_int8_one_run(tmp_path: Path) -> None:
    configs = [Int8Config("qdq"), Int8Config("torch", backend="torch_x86"),
               Int8Config("broken", backend="nope")]
    net, x = tiny_net(), _inputs(6)
    torch.manual_seed(1)
    head = nn.Linear(64, 3)
    with torch.inference_mode():
        logits = head(net(torch.from_numpy(x))).numpy()
    labels = logits.argmin(1)            # the FP32 model is wrong on every item by construction of the labels
    labels[:2] = logits[:2].argmax(1)    # ... except the first two: FP32 accuracy 2/6
    rows = compare_int8(net, configs=configs, eval_inputs=x, threads=[1],
                        repeats=2, warmup=1, workdir=tmp_path, batch_sizes=(1, 2), labels=labels, head=head)
    by_name = {r["config"]: r for r in rows}
    assert set(by_name) == {"qdq", "torch", "broken"}
    assert by_name["broken"]["error"].startswith("ValueError")
    mib = 2 ** 20
    assert by_name["qdq"]["fp32_mb"] == (tmp_path / "fp32.onnx").stat().st_size / mib
    assert by_name["qdq"]["int8_mb"] == (tmp_path / "qdq.onnx").stat().st_size / mib
    assert by_name["torch"]["int8_mb"] == (tmp_path / "torch.pt").stat().st_size / mib
    for name in ("qdq", "torch"):
        r = by_name[name]
        assert r["error"] is None and r["threads"] == 1
        for suffix in ("", "_b2"):     # a speed-up is the ratio of the two medians (and of the two minima)
            assert r[f"speedup{suffix}"] == r[f"fp32_ms{suffix}"] / r[f"int8_ms{suffix}"]
            assert r[f"speedup_min{suffix}"] == r[f"fp32_min_ms{suffix}"] / r[f"int8_min_ms{suffix}"]
            assert r[f"fp32_min_ms{suffix}"] <= r[f"fp32_ms{suffix}"] and r[f"speedup_log_se{suffix}"] >= 0
        assert r["int8_mb"] < r["fp32_mb"] / 2     # INT8 weights: about a quarter of the float file
        assert r["cos_min"] >= 0.98
        assert r["acc_fp32"] == pytest.approx(2 / 6)   # the head on the reference embeddings, against the labels
        assert abs(r["acc_int8"] - r["acc_fp32"]) <= 2 / 6   # cosine >= 0.98: at most the near-ties flip


def test_int8_deployment_reports_the_fp32_accuracy_both_ways() -> None:
    """The eager FP32 accuracy and the FP32 ONNX model's accuracy in onnxruntime agree (one path each)."""
    import dataclasses

    from faceopt.compress.experiments import PRESETS, int8_deployment

    preset = dataclasses.replace(PRESETS["smoke"], int8_train_epochs=1, int8_eval=64, int8_calib=16, int8_repeats=2,
                                 int8_warmup=1, int8_threads=(1,), int8_batches=(1,))
    rows, fp32_acc = int8_deployment("mobilefacenet_relu512", preset)
    assert {r["config"] for r in rows} == set(preset.int8_configs)
    assert 0.3 < fp32_acc <= 1.0          # one epoch on the digits is far above chance (0.1)
    for r in rows:
        assert r["error"] is None
        # fp32_acc is over the whole test split, acc_fp32 over its first int8_eval items
        assert abs(r["acc_fp32"] - fp32_acc) < 0.2 and r["acc_int8"] is not None


def test_decompose_prelu_is_exact() -> None:
    from faceopt.compress.int8 import PReLUDecomposed, decompose_prelu

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(4), nn.Conv2d(4, 2, 1), nn.PReLU())
    with torch.no_grad():
        net[1].weight.uniform_(-0.5, 0.9)
    dec = decompose_prelu(net)
    assert isinstance(dec[1], PReLUDecomposed) and isinstance(net[1], nn.PReLU)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(dec(x), net(x))
