"""The pages about results: the scorecard, the intro's glance and each chapter's claims box."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceopt import results as R
from faceopt import scorecard as S

REPO = Path(__file__).resolve().parents[1]
REAL_CLAIMS = REPO / "src" / "faceopt" / "resources" / "claims.yml"
GOOD = [R.Part("better", 1.0, 0.1)]




pytestmark = pytest.mark.usefixtures("fixed_rev")  # claims_path, rdir, fixed_rev: tests/conftest.py


def _rec(claim_id, rdir, claims_path, **kw):
    args = dict(chapter="03_amphibian_detector", scale="full", data="door phone | $5 scene", measured={"acc": 0.9},
                parts=GOOD)
    args.update(kw)
    return R.record(claim_id, results_dir=rdir, claims_path=claims_path, **args)


def test_every_claim_has_a_thesis_headline_and_cited_companion_works():
    claims = R.load_claims(REAL_CLAIMS)
    assert all(c.headline for c in claims.values())
    bib = (REPO / "book" / "references.bib").read_text()
    for c in claims.values():
        for key in c.cite:
            assert f"{{{key}," in bib, f"{c.id} cites {key}, which book/references.bib lacks"
    assert "seed" not in " ".join(c.source for c in claims.values())


def test_scorecard_table_takes_the_latest_record_per_scale(rdir, claims_path):
    _rec("T3-map", rdir, claims_path, measured={"map_amphibian": 0.61})
    rows = S.scorecard_table(R.load_claims(claims_path), R.load_results(rdir))
    t3 = next(r for r in rows if r["id"] == "T3-map")
    assert t3["full_status"] == "reproduced" and t3["full_measured"] == "map_amphibian=0.61"
    assert t3["smoke_status"] == "pending" and t3["smoke"] is None


def test_scorecard_shows_badge_thesis_and_ours_per_claim(rdir, claims_path):
    _rec("T3-map", rdir, claims_path, headline="mAP 0.755 → 0.770 (+0.015 ± 0.007)", note="a | b")
    _rec("T3-map", rdir, claims_path, scale="smoke", parts=[R.Part("noise", 0.0, 0.1)])
    claims = R.load_claims(claims_path)
    text = S.render_markdown(claims, R.load_results(rdir), revision="abc1234", day="2026-11-26")
    assert text.startswith("# Reproduction scorecard\n") and "recorded up to 2026-11-26 (latest at revision abc1234)" in text
    for cid in claims:
        assert f"({S.claim_label(cid)})=" in text and f"**{cid}**" in text
    block = text[text.index("(claim-t3-map)="):text.index("(claim-f25-baseline)=")]
    assert "{bdg-success}`reproduced` **T3-map**" in block
    assert "*Thesis:* mAP 0.326 → 0.548" in block and "*Ours:* mAP 0.755 → 0.770 (+0.015 ± 0.007)" in block
    assert "{doc}`page 03 <chapters/03_amphibian_detector>`" in block
    assert "*Smoke run:* {bdg-danger}`not-reproduced`" in block
    assert "a \\| b" in block and "\\$5" in block  # escaped: no table cell split, no math
    assert block.count(":::{dropdown}") == 1
    pending = text[text.index("(claim-t4-cost)="):text.index("(claim-t5-verification)=")]
    assert "{bdg-secondary}`pending`" in pending and "*Ours:* not measured yet" in pending
    assert "{bdg-success}`reproduced` 1" in text  # the counts line (full scale leads)
    assert R.RULE_TEXT in text and "|" not in text.replace("\\|", "")  # no pipe table anywhere


def test_companion_works_are_cited(rdir, claims_path):
    text = S.render_markdown(R.load_claims(claims_path), [], revision="r", day="d")
    assert "{cite:p}`khabarlak2022pta`" in text


def test_orphan_results_are_listed(rdir, claims_path):
    path = _rec("T3-map", rdir, claims_path)
    doc = json.loads(path.read_text())
    doc["claims"]["OLD-claim"] = doc["claims"]["T3-map"]
    path.write_text(json.dumps(doc))
    text = S.render_markdown(R.load_claims(claims_path), R.load_results(rdir), revision="r", day="d")
    assert "Results without a claim" in text and "OLD-claim" in text


def test_glance_counts_and_one_line_per_chapter(rdir, claims_path):
    _rec("T3-map", rdir, claims_path)
    _rec("C6-time", rdir, claims_path, parts=[R.Part("slower", -0.2, 0.01)])
    chapters = {"01_pipeline_cost": "Pipeline cost", "03_amphibian_detector": "AmphibianDetector"}
    text = S.render_glance(R.load_claims(claims_path), R.load_results(rdir), chapters)
    assert text.startswith(f"Of the {len(R.load_claims(claims_path))} claims, 2 are measured so far")
    lines = [ln for ln in text.splitlines() if ln.startswith("- ")]
    assert lines[0] == "- {doc}`page 01 <chapters/01_pipeline_cost>`, Pipeline cost: no claims"
    assert "{ref}`T3-map <claim-t3-map>` {bdg-success}`reproduced`" in lines[1]
    assert "{ref}`C6-time <claim-c6-time>` {bdg-danger}`not-reproduced`" in lines[1]


def test_claims_box_lists_only_the_chapters_claims(rdir, claims_path):
    _rec("T3-map", rdir, claims_path, headline="ours in one line")
    _rec("T4-cost", rdir, claims_path, chapter="01_pipeline_cost")
    claims, found = R.load_claims(claims_path), R.load_results(rdir)
    box = S.render_claims_box("03_amphibian_detector", claims, found, scale="full")
    assert box.startswith(":::{admonition} The claims this page tests") and box.rstrip().endswith(":::")
    assert "T3-map" in box and "T4-cost" not in box and "*ours* ours in one line" in box
    assert S.render_claims_box("02_pruning_quantisation", claims, found, scale="full") == ""


def test_cli_writes_the_page(tmp_path, rdir, claims_path, capsys):
    _rec("T3-map", rdir, claims_path)
    out = tmp_path / "page.md"
    assert S.cli_main(["--out", str(out), "--results-dir", str(rdir), "--claims", str(claims_path)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and "**T1-fitnet**" in out.read_text()
