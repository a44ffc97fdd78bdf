"""The golden design itself: which cells nbval compares how, and the tolerance check of smoke claims."""
from __future__ import annotations

import json

import nbformat
import pytest
from golden_check import GOLDEN, MACHINE_DEPENDENT, TIMING, cell_tags, compare_claim, load_tolerances, mask

from faceopt.runner import list_chapters, page_parameters, read_chapter, set_parameters

#: chapter -> (cells tagged nbval-ignore-output: timings and machine descriptions,
#:             cells tagged machine-dependent: numbers of floating-point trainings, or of settings
#:             chosen by measured time, masked)
#: A change here is a decision about what the goldens stop comparing: say why in the commit.
CELL_KINDS = {
    "01_pipeline_cost": (6, 0),
    "02_pruning_quantisation": (2, 4),
    "03_amphibian_detector": (7, 5),
    "04_margin_distillation": (2, 8),
    "05_embedded_system": (7, 5),
    "06_nist_evaluation": (4, 4),
    "07_distillation_and_search": (1, 6),
    "08_antispoofing": (7, 3),
}
CHAPTERS = list(list_chapters())


def _golden(stem: str):
    return nbformat.read(GOLDEN / f"{stem}.ipynb", as_version=4)


def _count(nb, tag: str) -> int:
    return sum(tag in cell_tags(c) for c in nb.cells if c.cell_type == "code")


def test_every_chapter_has_pinned_cell_kinds():
    assert set(CELL_KINDS) == set(CHAPTERS)


@pytest.mark.parametrize("stem", CHAPTERS)
def test_ignored_and_masked_cells_are_counted(stem):
    timing, masked = CELL_KINDS[stem]
    source, golden = read_chapter(stem), _golden(stem)
    assert (_count(source, TIMING), _count(source, MACHINE_DEPENDENT)) == (timing, masked)
    assert (_count(golden, TIMING), _count(golden, MACHINE_DEPENDENT)) == (timing, masked)
    both = [c for c in source.cells if TIMING in cell_tags(c) and MACHINE_DEPENDENT in cell_tags(c)]
    assert not both, "a cell is either timing (ignored) or machine-dependent (masked), not both"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_golden_is_the_current_source_at_smoke_scale(stem):
    """A golden made from older code would test nothing: its code cells are the chapter's, with scale smoke."""
    source, golden = read_chapter(stem), _golden(stem)
    set_parameters(source, {"scale": "smoke"}, stem)
    assert page_parameters(golden, stem)["scale"] == "smoke"
    assert not [c for c in golden.cells if "injected-parameters" in cell_tags(c)], "parameters live in one cell"
    code = lambda nb: [c.source for c in nb.cells if c.cell_type == "code"]  # noqa: E731
    assert code(golden) == code(source), f"tests/golden/{stem}.ipynb is stale: run `make golden`"


def test_mask_hides_numbers_statuses_and_verdicts_but_keeps_names():
    text = "T5-verification bits4 iresnet18: 0.993 vs -3.2e-05 (n=3/3), beyond the seed noise; reproduced True"
    assert mask(text) == "T5-verification bits4 iresnet18: <n> vs <n> (n=<n>/<n>), <verdict> the noise; <status> <bool>"
    assert mask("<td>0.958</td>   not-reproduced") == mask("<td>0.99</td> reproduced")
    assert mask("accuracy 0.9") != mask("precision 0.9")


def test_compare_claim_applies_the_tolerance_and_the_status_rule():
    golden = {"acc": 0.90, "bits": 4, "status_by_metric": {"lfw": "reproduced"}, "config": "QDQ"}
    near = {"acc": 0.93, "bits": 4, "status_by_metric": {"lfw": "not-reproduced"}, "config": "QDQ"}
    rule = {"numbers": {"abs": 0.05}, "status": "free", "why": "test"}
    assert compare_claim(near, golden, "not-reproduced", "reproduced", rule) == []
    strict = {"numbers": {"abs": 0.01}, "status": "exact", "why": "test"}
    problems = compare_claim(near, golden, "not-reproduced", "reproduced", strict)
    assert any("acc" in p for p in problems) and any("status" in p for p in problems)
    assert any("status_by_metric.lfw" in p for p in problems)
    assert compare_claim({"acc": 0.9}, golden, "reproduced", "reproduced", rule)  # keys differ
    timing = {"numbers": "timing", "why": "test"}
    assert compare_claim({**golden, "acc": 5.0, "config": "QOperator"}, golden, "a", "a", timing) == []


def test_every_golden_claim_has_a_tolerance_with_a_reason():
    tolerances = load_tolerances()
    recorded = {p.name[: -len(".smoke.json")]: set(json.loads(p.read_text())["claims"])
                for p in GOLDEN.glob("*.smoke.json")}
    assert recorded, "no golden smoke claims: run `make golden`"
    for chapter, claims in recorded.items():
        assert claims == set(tolerances.get(chapter, {})), f"tests/golden/tolerances.yml for {chapter}"
    assert set(tolerances) <= set(recorded)


@pytest.mark.parametrize("stem", CHAPTERS)
def test_golden_holds_no_one_time_messages(stem):
    """A golden made while an asset was being fetched would expect that message on every run."""
    text = (GOLDEN / f"{stem}.ipynb").read_text()
    assert "fetching asset" not in text, f"regenerate tests/golden/{stem}.ipynb with the assets in data/cache"
