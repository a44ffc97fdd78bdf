"""Page 02's seven claims are recorded from the experiments' frames by the one rule."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from faceopt import results
from faceopt.compress.claims import record_claims
from faceopt.compress.experiments import PRESETS
from faceopt.stats import compare


def _frames(int8_speedup=3.0):
    collapse = pd.DataFrame([{"criterion": c, "sparsity": 0.999, "collapsed": layers}
                             for c, layers in (("magnitude", ["fc2"]), ("gradient", []), ("synflow", []))])
    structured = pd.DataFrame([{"model": "structured", "torch_ms": 1.0, "ort_ms": 0.5, "nonzero": 10,
                                "torch_log_se": 0.01, "ort_log_se": 0.01},
                               {"model": "unstructured", "torch_ms": 2.0, "ort_ms": 1.0, "nonzero": 10,
                                "torch_log_se": 0.01, "ort_log_se": 0.01}])
    errors = pd.DataFrame([{"kind": k, "coarse": 0.2, "fine": 0.1} for k in ("weight", "activation") for _ in range(3)])
    pq = pd.DataFrame([{"bits": b, "seed": s, "QAT": 0.97 - (b == 2) * 0.02 + 0.001 * s, "PTQ": 0.97 - (b < 8) * 0.05 + 0.001 * s}
                       for b in (8, 4, 2) for s in range(3)])
    int8 = pd.DataFrame([{"threads": 2, "error": None, "cos_mean": 0.999, "backend": "ort static", "speedup": int8_speedup,
                          "config": "ort static U8S8", "acc_fp32": 0.9, "acc_int8": 0.9, "fp32_ms": 3.0,
                          "int8_ms": 3.0 / int8_speedup, "speedup_log_se": 0.02}])
    return dict(collapse=collapse, structured=structured, errors=errors, pq=pq, int8=int8)


def test_every_survey_claim_is_recorded_with_the_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEOPT_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("FACEOPT_GIT_REV", "abc1234")
    iterative = compare([0.95, 0.951, 0.949], [0.90, 0.901, 0.899])
    lottery = compare([0.96, 0.961, 0.959], [0.30, 0.31, 0.29])
    parts = record_claims(preset=PRESETS["smoke"], seeds=3, iterative=iterative, lottery=lottery, lottery_sparsity=0.93,
                          **_frames(), chapter="02_pruning_quantisation", scale="smoke", data="digits")
    found = {e["claim_id"]: e for e in results.load_results(tmp_path)}
    assert {c: e["status"] for c, e in found.items()} == {
        "S1-iterative": "reproduced", "S1-lth-rewind": "reproduced", "S1-synflow-collapse": "reproduced",
        "S1-structured": "reproduced", "S1-quant-perchannel": "reproduced", "S1-qat-vs-ptq": "reproduced",
        "T2-ssd-int8": "reproduced"}
    structured_part = next(p for p in found["S1-structured"]["parts"] if "ort" in p["name"])
    assert structured_part["effect"] == pytest.approx(math.log(2.0))
    assert set(parts["claim"]) == set(found)


def test_no_int8_frame_leaves_t2_unrecorded(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEOPT_RESULTS_DIR", str(tmp_path))
    frames = _frames() | {"int8": None}
    record_claims(preset=PRESETS["smoke"], seeds=3, iterative=compare([1.0, 1.0], [0.5, 0.5]),
                  lottery=compare([1.0, 1.0], [0.5, 0.5]), lottery_sparsity=0.9, **frames,
                  chapter="02_pruning_quantisation", scale="smoke", data="digits")
    assert "T2-ssd-int8" not in {e["claim_id"] for e in results.load_results(tmp_path)}
