"""Page 06's tables and claim parts from run records (faceopt.recognition.nist_tables / nist_claims)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from faceopt.recognition import nist_claims, nist_tables

SETTINGS = ("day-weak", "day-strong", "night-weak")


def _metrics(tar: dict[str, float], fnmr: dict[str, float], rank1: float, fmr: float = 1e-6) -> dict:
    det = {"fmr": [1e-3, 1.0], "fnmr": [0.5, 0.0]}
    return {"nist": {c: {"fmr": fmr if c != "wild" else 1e-4, "fmr_target": 1e-6 if c != "wild" else 1e-4,
                         "fnmr": v, "ci_low": max(v - 0.02, 0), "ci_high": min(v + 0.02, 1), "genuine": 10,
                         "impostor": 2_000_000, "det": det} for c, v in fnmr.items()},
            "doorphone": {s: {"tar": tar[s], "threshold": 0.5, "ci_low": tar[s] - 0.05, "ci_high": tar[s] + 0.05,
                              "positive_visits": 40, "negative_visits": 40} for s in SETTINGS},
            "megaface_rank1": rank1}


def _runs(distilled_gain: float = 0.05, int8_night_loss: float = 0.04) -> dict:
    fnmr = {"visa": 0.03, "border": 0.9, "wild": 0.1}
    base = {"day-weak": 0.80, "day-strong": 0.70, "night-weak": 0.60}
    runs = {"teacher-resnet100": {"metrics": _metrics({s: v + 0.03 for s, v in base.items()}, fnmr, 98.0)},
            "teacher-resnet50": {"metrics": _metrics({s: v - 0.10 for s, v in base.items()}, fnmr, 96.0)}}
    for seed, jitter in enumerate((-0.005, 0.0, 0.005)):
        student = {s: v + jitter for s, v in base.items()}
        distilled = {s: v + distilled_gain + jitter for s, v in base.items()}
        int8 = {s: v - (int8_night_loss if s == "night-weak" else 0.01) for s, v in distilled.items()}
        runs[f"student-arcface-seed{seed}"] = {"metrics": _metrics(student, fnmr, 90.0 + 10 * jitter)}
        runs[f"student-margin_distillation-seed{seed}"] = {
            "metrics": _metrics(distilled, {c: v - 0.01 * seed for c, v in fnmr.items()}, 92.0 + 10 * jitter),
            "int8": _metrics(int8, fnmr, 91.8 + 10 * jitter)}
    return runs


def _times(ratio: float = 1.83) -> pd.DataFrame:
    rows = {"iResNet-100 (full width)": 100.0 * ratio, "iResNet-50 (full width)": 100.0,
            "student MobiFace x3 Swish SE": 10.0}
    return pd.DataFrame([{"system": k, "median_ms": v, "p25_ms": 0.99 * v, "p75_ms": 1.01 * v, "n": 9}
                         for k, v in rows.items()]).set_index("system")


def test_metric_values_by_model_and_seed() -> None:
    runs = _runs()
    assert nist_tables.metric_values(runs, "student (ArcFace)", ("doorphone", "day-weak", "tar")) == pytest.approx(
        [0.795, 0.80, 0.805])
    assert nist_tables.metric_values(runs, "distilled INT8", ("megaface_rank1",)) == pytest.approx([91.75, 91.8, 91.85])
    assert len(nist_tables.metric_values(runs, "teacher iResNet-50-like", ("megaface_rank1",))) == 1
    with pytest.raises(ValueError, match="unknown model"):
        nist_tables.metric_values(runs, "teacher", ("megaface_rank1",))


def test_tables_have_thesis_columns_and_percent() -> None:
    runs = _runs()
    t13 = nist_tables.table13(runs)
    assert t13.loc["student (ArcFace)", "TAR strong %"] == pytest.approx(70.0)
    assert t13.loc["student (ArcFace)", "thesis TAR strong %"] == 89.8
    assert t13.loc["teacher iResNet-100-like", "thesis TAR weak %"] == 100
    assert math.isnan(t13.loc["teacher iResNet-50-like", "thesis TAR weak %"])
    t14 = nist_tables.table14(runs)
    assert t14.loc["distilled INT8", "thesis TAR night %"] == 85.48
    t11 = nist_tables.table11(runs)
    assert t11.loc["distilled (MarginDistillation)", "rank-1 %"] == pytest.approx(92.0)
    assert t11.loc["distilled (MarginDistillation)", "runs"] == 3
    t8 = nist_tables.table8(runs)
    assert list(t8.index) == ["visa", "border", "wild"]
    assert t8.loc["visa", "FNMR"] == pytest.approx(0.02)  # 0.03, 0.02, 0.01 over seeds
    assert t8.loc["border", "thesis FNMR"] == 0.9996
    t16 = nist_tables.table16_17(runs)
    assert t16.loc["teacher iResNet-50-like", "thesis strong %"] == 87.76
    assert set(nist_tables.det_curves(runs, "wild")) == set(nist_tables.MODELS)


def test_teacher_stderr_from_interval() -> None:
    se = nist_claims.teacher_stderr(_runs(), "teacher iResNet-100-like", ("doorphone", "day-weak", "tar"))
    assert se == pytest.approx(0.10 / 3.92)


def test_claim_parts_follow_the_direction_of_the_runs() -> None:
    parts = nist_claims.claim_parts(_runs(), _times())
    by = {c: {p.name: p for p in ps} for c, ps in parts.items()}
    assert all(p.effect > 0 for p in parts["T13-compression"][:2])
    assert by["T11-quantised-megaface"]["INT8 costs less than 1 point (rank-1)"].effect == pytest.approx(0.8)
    night = by["T14-night"]["INT8 loses more at night than by day"]
    assert night.effect == pytest.approx(0.03) and night.stderr == pytest.approx(0.0, abs=1e-12)
    assert parts["T8-nist"][0].effect == 1.0 and parts["T8-nist"][1].effect > 0
    assert all(p.effect == pytest.approx(0.13) for p in parts["T16-18-teacher-size"][:4])
    timing = parts["T16-18-teacher-size"][-1]
    assert timing.effect == pytest.approx(math.log(1.83)) and timing.size_met is True
    assert nist_claims.claim_parts(_runs(), _times(3.0))["T16-18-teacher-size"][-1].size_met is False
    # distilled 0.75 vs teacher 0.73 under strong compression: +0.02 with the teacher's bootstrap noise
    vs_teacher = by["T13-compression"]["distilled above the teacher, strong compression"]
    assert vs_teacher.effect == pytest.approx(0.02)
    assert vs_teacher.stderr == pytest.approx(math.hypot(0.005 / math.sqrt(3), 0.10 / 3.92), rel=1e-6)


def test_claim_parts_turn_negative_when_distillation_hurts() -> None:
    parts = nist_claims.claim_parts(_runs(distilled_gain=-0.05, int8_night_loss=0.0), _times())
    assert all(p.effect < 0 for p in parts["T13-compression"][:2])
    assert parts["T14-night"][2].effect < 0


def test_unresolved_fmr_fails_the_observation() -> None:
    runs = _runs()
    runs["student-margin_distillation-seed0"]["metrics"]["nist"]["visa"]["fmr"] = 1e-5
    assert nist_claims.claim_parts(runs, _times())["T8-nist"][0].effect == -1.0


def test_record_claims_writes_every_claim(tmp_path, monkeypatch) -> None:
    from faceopt import results

    calls = []
    monkeypatch.setattr(nist_claims, "record", lambda claim, **kw: calls.append((claim, kw)) or tmp_path)
    statuses = nist_claims.record_claims(_runs(), _times(), chapter="06_nist_evaluation", scale="smoke", data="synthetic",
                                         student_timed="student MobiFace x3 Swish SE", dlib_timed=None)
    assert [c for c, _ in calls] == ["T8-nist", "T10-vendors", "T11-quantised-megaface", "T13-compression", "T14-night",
                                     "T16-18-teacher-size"]
    assert statuses["T10-vendors"] == "needs-real-data"
    assert set(statuses) == {c for c, _ in calls}
    assert all(s in results.RECORDED_STATUSES for s in statuses.values())
    assert np.isfinite(calls[-1][1]["measured"]["time_ratio"])
