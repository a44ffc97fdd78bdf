"""Tests of faceopt.results: the claims, the one status rule, and recording measurements.

Everything writes under tmp_path; the real book/results is never touched.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceopt import results as R

REPO = Path(__file__).resolve().parents[1]
REAL_CLAIMS = REPO / "src" / "faceopt" / "resources" / "claims.yml"




pytestmark = pytest.mark.usefixtures("fixed_rev")  # claims_path, rdir, fixed_rev: tests/conftest.py


#: Parts that the rule turns into each of its statuses.
PARTS_FOR = {
    "reproduced": [R.Part("better", 1.0, 0.1)],
    "direction-reproduced": [R.Part("better, size not met", 1.0, 0.1, size_met=False)],
    "not-reproduced": [R.Part("within the noise", 0.1, 0.1)],
}


def _rec(claim_id, rdir, claims_path, *, status="direction-reproduced", **kw):
    """Record with the parts that give ``status`` (or that status itself, when the rule does not give it)."""
    args = dict(chapter="ch3", scale="smoke", data="embedded synthetic faces", measured={"acc": 0.9})
    args.update({"parts": PARTS_FOR[status]} if status in PARTS_FOR else {"status": status})
    args.update(kw)
    return R.record(claim_id, results_dir=rdir, claims_path=claims_path, **args)


@pytest.mark.parametrize("part, status", [
    (R.Part("clear", 0.10, 0.04), "reproduced"),                    # 0.10 > 2 x 0.04
    (R.Part("clear, size missed", 0.10, 0.04, size_met=False), "direction-reproduced"),
    (R.Part("clear, size met", 0.10, 0.04, size_met=True), "reproduced"),
    (R.Part("within the noise", 0.07, 0.04), "not-reproduced"),      # 0.07 < 0.08
    (R.Part("opposite", -0.5, 0.01), "not-reproduced"),
    (R.Part("exact, positive", 1e-9, 0.0), "reproduced"),
    (R.Part("exact, zero", 0.0, 0.0), "not-reproduced"),
    (R.Part.observed("held", True), "reproduced"),
    (R.Part("one seed: noise not estimated", 5.0, None), "not-reproduced"),
    (R.Part.observed("did not hold", False, size_met=True), "not-reproduced"),
])
def test_one_rule_by_hand(part, status):
    assert part.status == status == R.decide([part])


def test_a_claim_holds_as_far_as_its_weakest_part():
    parts = [R.Part("a", 1.0, 0.1), R.Part("b", 1.0, 0.1, size_met=False)]
    assert R.decide(parts) == "direction-reproduced"
    assert R.decide(parts + [R.Part("c", 0.0, 0.1)]) == "not-reproduced"
    with pytest.raises(ValueError, match="at least one part"):
        R.decide([])
    with pytest.raises(ValueError, match="stderr"):
        R.Part("bad", 1.0, -0.1)


def test_record_stores_the_parts_and_the_rule_decides(rdir, claims_path):
    parts = [R.Part("a", 0.3, 0.1), R.Part("b", 0.3, 0.2)]        # b: 0.3 < 0.4, within the noise
    doc = json.loads(_rec("T3-map", rdir, claims_path, status=None, parts=parts).read_text())
    entry = doc["claims"]["T3-map"]
    assert entry["status"] == "not-reproduced"
    assert R.parts_from_json(entry["parts"]) == parts
    with pytest.raises(ValueError, match="decided by the rule"):
        R.record("T3-map", chapter="ch3", scale="smoke", data="d", measured={}, status="reproduced",
                 results_dir=rdir, claims_path=claims_path)
    with pytest.raises(ValueError, match="not both"):
        R.record("T3-map", chapter="ch3", scale="smoke", data="d", measured={}, status="pending", parts=parts,
                 results_dir=rdir, claims_path=claims_path)
    pending = json.loads(_rec("T4-cost", rdir, claims_path, status="pending").read_text())["claims"]["T4-cost"]
    assert pending["status"] == "pending" and "parts" not in pending


def test_load_claims_real_file():
    claims = R.load_claims(REAL_CLAIMS)
    assert "T5-verification" in claims
    c = claims["T4-cost"]
    assert c.section == "margin_distillation"
    assert c.thesis["resnet100"]["gflops"] == 24.2
    assert claims["S1-lth-rewind"].thesis == {}
    assert list(claims)[0] == "T1-fitnet"  # file order kept


def test_load_claims_duplicate_and_missing(tmp_path):
    dup = tmp_path / "dup.yml"
    dup.write_text(
        "a:\n  - {id: X1, source: s, statement: t, check: c}\n"
        "b:\n  - {id: X1, source: s, statement: t, check: c}\n"
    )
    with pytest.raises(ValueError, match=r"dup\.yml.*duplicate claim id 'X1'"):
        R.load_claims(dup)
    missing = tmp_path / "missing.yml"
    missing.write_text("a:\n  - {id: X1, source: s, check: c}\n")
    with pytest.raises(ValueError, match=r"missing\.yml.*X1.*statement"):
        R.load_claims(missing)


def test_record_roundtrip_merge_and_replace(rdir, claims_path):
    p = _rec("T5-verification", rdir, claims_path, measured={"lfw": {"md": 99.1, "arcface": 98.7}})
    assert p == rdir / "ch3.smoke.json"
    doc = json.loads(p.read_text())
    assert doc["chapter"] == "ch3" and doc["scale"] == "smoke"
    e = doc["claims"]["T5-verification"]
    assert e["measured"] == {"lfw": {"md": 99.1, "arcface": 98.7}}
    assert e["git_rev"] == "abc1234" and e["recorded_at"]

    # another claim in the same file merges
    _rec("T7-ablation", rdir, claims_path, status="reproduced", note="frozen centres best")
    loaded = R.load_results(rdir)
    assert {(x["claim_id"], x["chapter"], x["scale"]) for x in loaded} == {
        ("T5-verification", "ch3", "smoke"), ("T7-ablation", "ch3", "smoke")}
    t7 = next(x for x in loaded if x["claim_id"] == "T7-ablation")
    assert t7["status"] == "reproduced" and t7["note"] == "frozen centres best"

    # re-recording replaces the earlier entry, other entries survive
    _rec("T5-verification", rdir, claims_path, measured={"lfw": {"md": 99.5}}, status="reproduced")
    loaded = R.load_results(rdir)
    assert len(loaded) == 2
    t5 = next(x for x in loaded if x["claim_id"] == "T5-verification")
    assert t5["measured"] == {"lfw": {"md": 99.5}} and t5["status"] == "reproduced"

    # a different scale is a different file
    _rec("T5-verification", rdir, claims_path, scale="full")
    assert (rdir / "ch3.full.json").exists()
    assert len(R.load_results(rdir)) == 3


def test_unknown_claim_lists_close_matches(rdir, claims_path):
    with pytest.raises(ValueError, match=r"unknown claim id 'T5-verifcation'.*T5-verification"):
        _rec("T5-verifcation", rdir, claims_path)
    with pytest.raises(ValueError, match=r"t3-map.*'T3-map'"):
        _rec("t3-map", rdir, claims_path)
    assert not rdir.exists() or not list(rdir.iterdir())


@pytest.mark.parametrize(
    "kw, pattern",
    [
        (dict(scale="medium"), r"scale 'medium'.*smoke, full"),
        (dict(status="done"), r"status 'done'.*needs-real-data, pending"),
        (dict(measured={"x": object()}), r"measured\['x'\].*object.*not JSON-serialisable"),
        (dict(measured={"x": {1, 2}}), r"measured\['x'\].*set"),
        (dict(measured={"x": float("nan")}), r"measured\['x'\].*nan"),
        (dict(measured=[1, 2]), r"measured must be a dict"),
        (dict(chapter="../evil"), r"chapter"),
        (dict(data=""), r"data"),
        (dict(headline="two\nlines"), r"headline"),
    ],
)
def test_bad_arguments(rdir, claims_path, kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        _rec("T3-map", rdir, claims_path, **kw)


def test_numpy_values_converted(rdir, claims_path):
    measured = {
        "map": np.float32(0.5),
        "n": np.int64(7),
        "ok": np.bool_(True),
        "curve": np.array([0.25, 0.5]),
        "grid": {np.int64(5): np.float64(0.125)},
    }
    p = _rec("F24-grid", rdir, claims_path, measured=measured)
    got = json.loads(p.read_text())["claims"]["F24-grid"]["measured"]
    assert got == {"map": 0.5, "n": 7, "ok": True, "curve": [0.25, 0.5], "grid": {"5": 0.125}}
    assert type(got["map"]) is float and type(got["n"]) is int


def test_no_temp_files_left(rdir, claims_path):
    _rec("T3-map", rdir, claims_path)
    _rec("C6-time", rdir, claims_path)
    assert sorted(p.name for p in rdir.iterdir()) == ["ch3.smoke.json"]


def test_malformed_results_file(rdir, claims_path):
    rdir.mkdir()
    bad = rdir / "broken.full.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.full\.json.*delete or regenerate"):
        R.load_results(rdir)
    with pytest.raises(ValueError, match=r"broken\.full\.json"):
        _rec("T3-map", rdir, claims_path, chapter="broken", scale="full")
    bad.write_text('{"chapter": "x"}')
    with pytest.raises(ValueError, match=r"broken\.full\.json.*delete or regenerate"):
        R.load_results(rdir)


def test_format_value():
    assert R.format_value({"resnet100": {"gflops": 24.2, "ms": 401}, "m": 0.3333333}) == (
        "resnet100.gflops=24.2; resnet100.ms=401; m=0.3333")
    assert R.format_value({"fmr": 1.0e-6}) == "fmr=1e-06"
    assert R.format_value({}) == ""
    assert R.format_value(list(range(20))).endswith("(n=20)")
