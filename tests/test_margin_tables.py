"""The page-04 tables and claim parts read the run records as the thesis's tables are laid out."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from faceopt.recognition import experiments as ex  # noqa: E402
from faceopt.recognition import tables  # noqa: E402
from faceopt.results import decide  # noqa: E402

METHODS = ex.METHODS


def _values():
    """MarginDistillation clearly first on every metric, then the other methods in METHODS order."""
    rank = {m: i for i, m in enumerate(METHODS)}
    out = {}
    for k in tables.METRICS:
        out[k] = {m: [90.0 - 5 * rank[m] + d for d in (0.0, 0.1, -0.1)] for m in METHODS}
        out[k]["margin_distillation"] = [99.0, 99.2, 98.8]
    return out


THESIS = {"T5-verification": {"lfw": {"teacher": 99.8, "student_arcface": 99.5, **{m: 99.0 for m in METHODS}},
                              "agedb30": {"teacher": 98.0, "student_arcface": 95.0, **{m: 96.0 for m in METHODS}}},
          "T6-identification": {"teacher": 98.35, "student_arcface": 90.0, **{m: 91.0 for m in METHODS}},
          "T7-ablation": {m: 99.4 for m in ex.TABLE7_METHODS}}
TEACHER = {"metrics": {"lfw": 99.5, "agedb": 95.0, "megaface_rank1": 80.0}, "eval_sizes": {"distractors": 100}}


def test_mean_sd_is_the_sample_standard_deviation():
    assert tables.mean_sd([1.0, 2.0, 3.0]) == "2.00 ± 1.00"
    assert tables.mean_sd([4.5]) == "4.50"


def test_tables_put_our_numbers_beside_the_thesis():
    values = _values()
    t5 = tables.verification_table(TEACHER, values, THESIS["T5-verification"])
    assert list(t5.index) == [tables.LABEL[m] for m in ("teacher", *ex.TABLE5_METHODS)]
    assert t5.loc["teacher (ArcFace)", "LFW-like %"] == "99.50"
    assert t5.loc["student: ArcFace", "thesis lfw %"] == 99.5
    assert t5.loc["MarginDistillation", "AgeDB-like %"] == "99.00 ± 0.20"
    t6 = tables.identification_table(TEACHER, values, THESIS["T6-identification"])
    assert t6.loc["teacher (ArcFace)", "thesis MegaFace %"] == 98.35
    t7 = tables.ablation_table(values, THESIS["T7-ablation"])
    # the ablation's first row, copy + m_i + freeze, is MarginDistillation's runs
    assert t7.loc["copy + m_i + freeze", "LFW-like %"] == t5.loc["MarginDistillation", "LFW-like %"]
    assert list(t7.columns) == ["LFW-like %", "AgeDB-like %", "MegaFace-like rank-1 %", "thesis LFW %"]


def test_claim_parts_compare_margin_distillation_with_each_method():
    values = _values()
    claim = tables.claim_parts(values)
    assert len(claim.verification) == 2 * (len(ex.TABLE5_METHODS) - 1)
    assert decide(claim.verification) == "reproduced"
    first = claim.verification[0]
    assert first.name == "LFW-like: margin_distillation > arcface"
    assert first.effect == pytest.approx(np.mean(values["lfw"]["margin_distillation"]) - np.mean(values["lfw"]["arcface"]))
    # T6's second half: both triplet rows below the ArcFace student (here they are below it: effect > 0)
    assert [p.name for p in claim.identification[-2:]] == ["rank-1: arcface > triplet_l2", "rank-1: arcface > triplet_cos"]
    assert all(p.beyond_noise for p in claim.identification)
    assert set(claim.ablation) == set(tables.METRICS)
    names = [p.name for p in claim.ablation["lfw"]]
    assert "LFW-like: copy_freeze > copy" in names and "LFW-like: copy_mi_freeze > mi" in names
    frame = claim.table()
    assert set(frame.index.get_level_values("claim")) == {"T5", "T6", "T7"}


def test_comparison_table_has_one_row_per_rival_and_metric():
    values = _values()
    table = tables.comparison_table(values)
    assert len(table) == len(tables.METRICS) * (len(METHODS) - 1)
    row = table.loc[("LFW-like", "student: ArcFace")]
    assert row["difference"] == pytest.approx(np.mean(values["lfw"]["margin_distillation"]) - np.mean(values["lfw"]["arcface"]))
    assert bool(row["beyond the noise"]) is True and row["seeds"] == "3/3"


def test_record_claims_records_the_three_tables_by_the_rule(tmp_path, monkeypatch):
    from faceopt import results

    monkeypatch.setenv("FACEOPT_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("FACEOPT_GIT_REV", "abc1234")
    statuses = tables.record_claims(TEACHER, _values(), chapter="04_margin_distillation", scale="smoke",
                                    data="synthetic", seeds={"headline": 3, "others": 3})
    # in the made-up values copy + freeze is the worst row, so T7's "copy_freeze > copy" part fails
    assert statuses["status"].to_dict() == {"T5-verification": "reproduced", "T6-identification": "reproduced",
                                            "T7-ablation": "not-reproduced"}
    found = {e["claim_id"]: e for e in results.load_results(tmp_path)}
    assert set(found) == {"T5-verification", "T6-identification", "T7-ablation"}
    assert found["T5-verification"]["headline"].startswith("MarginDistillation / ArcFace student: LFW-like 99.00 / 90.00")
    assert set(found["T7-ablation"]["measured"]) == {"lfw_like", "agedb_like", "megaface_like_rank1", "seeds"}
    assert all(e["status"] == results.decide(results.parts_from_json(e["parts"])) for e in found.values())


def test_seed_points_draw_one_panel_per_metric():
    from faceopt.recognition.figures import seed_points

    students = [{"method": m, "seed": s, "metrics": {k: 90.0 + s for k in tables.METRICS}}
                for m in METHODS for s in range(3)]
    frame = tables.seed_frame(students)
    assert len(frame) == len(students) * len(tables.METRICS)
    fig = seed_points(frame, {name: 95.0 for name in tables.METRICS.values()}, [tables.LABEL[m] for m in METHODS])
    assert [ax.get_title() for ax in fig.axes] == list(tables.METRICS.values())
