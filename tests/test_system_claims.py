"""Page 01's claims: Table 4's counts checked within 5%, the latency ratios recorded by the one rule."""
from __future__ import annotations

import pytest

from faceopt import results
from faceopt.system import claims as C
from faceopt.system.cost import LatencyStats, ModelCost


def _cost(name, params, gmacs, ms, size_mb=1.0):
    return ModelCost(name, int(params), int(gmacs * 1e9), size_mb,
                     latency={"ort_2t": LatencyStats(ms, ms * 0.98, ms * 1.02, 30)})


MODELS = {c.name: c for c in (
    _cost("iresnet100", 65.2e6, 12.1, 100.0, size_mb=249.0),
    _cost("mobilefacenet_relu512", 1.19e6, 0.22, 10.0, size_mb=4.5),
    _cost("mobiface_x3_swish_se", 9.1e6, 1.0, 8.0),
    _cost("iresnet50", 43.6e6, 6.3, 55.0),
)}


def test_table4_check_compares_gflops_and_parameters_within_five_percent():
    rows = C.table4_check(MODELS, results.load_claims()["T4-cost"].thesis)
    assert rows["ours GFLOPs"].tolist() == pytest.approx([24.2, 0.44])
    assert rows["GFLOPs within 5%"].tolist() == [True, True]
    assert rows["params within 5%"].tolist() == [False, True]  # 65.2 M against the thesis's 52.56 M


def test_record_claims_sizes_and_statuses(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEOPT_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("FACEOPT_GIT_REV", "abc1234")
    ratios = C.record_claims(MODELS, list(MODELS.values()), "ort_2t", results.load_claims(),
                             chapter="01_pipeline_cost", scale="smoke")
    assert ratios["latency ratio (ours)"].tolist() == pytest.approx([10.0, 12.5, 100 / 55])
    found = {e["claim_id"]: e for e in results.load_results(tmp_path)}
    assert found["T4-cost"]["status"] == "direction-reproduced"  # slower beyond the noise, counts not all within 5%
    assert found["T15-speedup"]["status"] == "reproduced"  # 12.5x is within 20% of 13.9x
    assert "T16-18-teacher-size" not in found  # page 06 records it, with its accuracy half
    assert found["T15-speedup"]["headline"] == "ResNet-100 12.5x slower than MobiFace x3 on this CPU (thesis 13.9x)"
