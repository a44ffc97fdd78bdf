"""Cost measures: peak FLOP arithmetic, timing helpers, ONNX export parity, batch-norm settling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from faceopt.models import get_model
from faceopt.models.profile import settle_batchnorm
from faceopt.system import cost
from faceopt.system.onnx_export import export_onnx

XEON = """processor	: 0
model name	: Intel(R) Xeon(R) CPU E5-2630 v4 @ 2.20GHz
cpu MHz		: 1200.000
flags		: fpu sse sse2 avx avx2 fma
"""
EPYC_512 = """model name	: AMD EPYC 9654
cpu MHz		: 2400.000
flags		: sse sse2 avx avx2 fma avx512f
"""
OLD = """model name	: Old CPU
cpu MHz		: 3000.000
flags		: sse sse2 avx
"""


def test_cpu_peak_from_model_name_clock():
    peak = cost.cpu_peak(cpuinfo=XEON)
    assert (peak.ghz, peak.simd, peak.fp32_lanes, peak.fma_units) == (2.2, "AVX2", 8, 2)
    assert peak.flops_per_cycle_per_core == 32
    assert peak.gflops(1) == pytest.approx(2.2 * 32)
    assert peak.gflops(1000) == pytest.approx(peak.cores * 2.2 * 32)  # never more threads than cores


def test_cpu_peak_avx512_and_no_fma():
    p512 = cost.cpu_peak(cpuinfo=EPYC_512)
    assert (p512.ghz, p512.fp32_lanes, p512.flops_per_cycle_per_core) == (2.4, 16, 64)
    old = cost.cpu_peak(cpuinfo=OLD)
    assert (old.ghz, old.simd, old.fma_units, old.flops_per_cycle_per_core) == (3.0, "AVX", 1, 16)


def test_attainable_peak_takes_the_larger_bound():
    peak = cost.cpu_peak(cpuinfo=XEON)
    assert cost.attainable_peak_gflops(peak, 1, 10.0) == pytest.approx(70.4)
    assert cost.attainable_peak_gflops(peak, 1, 90.0) == 90.0


def test_fraction_of_peak_is_flop_rate_over_peak():
    row = cost.ModelCost("m", params=1, macs=500_000_000, size_mb=1.0,
                         latency={"ort_1t": cost.LatencyStats(10.0, 9.0, 11.0, 5)})
    # 2 * 0.5e9 FLOPs in 10 ms = 100 GFLOP/s; over a 200 GFLOP/s peak = 0.5
    assert cost.fraction_of_peak(row, "ort_1t", 200.0) == pytest.approx(0.5)


def test_time_callable_counts_calls_and_orders_quantiles():
    calls = []
    stats = cost.time_callable(lambda: calls.append(1), repeats=7, warmup=2)
    assert len(calls) == 9 and stats.n == 7
    assert stats.p25_ms <= stats.median_ms <= stats.p75_ms
    with pytest.raises(ValueError):
        cost.time_callable(lambda: None, repeats=0, warmup=0)


def test_latency_ratio_uses_one_key():
    rows = [cost.ModelCost("big", 1, 1, 1.0, latency={"k": cost.LatencyStats(30.0, 0, 0, 1)}),
            cost.ModelCost("small", 1, 1, 1.0, latency={"k": cost.LatencyStats(3.0, 0, 0, 1)})]
    assert cost.latency_ratio(rows, "big", "small", "k") == pytest.approx(10.0)


def test_onnx_export_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = settle_batchnorm(get_model("mobilefacenet_relu512"), batches=2, batch_size=4)
    path = export_onnx(model, tmp_path / "m.onnx")
    assert path.exists() and not list(tmp_path.glob("*.tmp"))
    x = torch.randn(2, 3, 112, 112)
    with torch.inference_mode():
        ref = model(x).numpy()
    sess = cost.ort_session(path, threads=1)
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)


def test_failed_export_leaves_nothing(tmp_path):
    class Bad(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("cannot trace")

    with pytest.raises(RuntimeError):
        export_onnx(Bad(), tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_settle_batchnorm_keeps_deep_activations_at_unit_scale():
    torch.manual_seed(0)
    model = get_model("iresnet50").eval()
    x = torch.randn(1, 3, 112, 112)
    with torch.inference_mode():
        raw = model(x).abs().max().item()
    settle_batchnorm(model, batches=2, batch_size=4)
    assert not model.training
    with torch.inference_mode():
        settled = model(x).abs().max().item()
    assert settled < 50 and raw > 1e4


def test_presets_cover_the_thesis_models():
    for preset in cost.PRESETS.values():
        assert {"iresnet100", "iresnet50", "mobilefacenet_relu512", "mobiface_x3_swish_se"} <= set(preset.timed)
        assert set(preset.timed) <= set(preset.models)


def test_runtime_labels():
    assert cost.runtime_label("ort_2t") == "onnxruntime, 2 threads"
    assert cost.runtime_label("torch_1t") == "PyTorch eager, 1 thread"
    assert cost.key_threads("torch_12t") == 12
