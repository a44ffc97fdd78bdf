"""The book: chapters wired into the TOC, Colab cells, committed pages, scorecard, and a real build."""
from __future__ import annotations

import json
import re

import nbformat
import pytest
import yaml
from helpers import require_asset

from faceopt import results, scorecard
from faceopt.book import build_book, chapter_titles
from faceopt.config import paths
from faceopt.runner import DRAFT_CHAPTERS, list_chapters, page_parameters, read_chapter

ROOT = paths().root
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = (ROOT / "_toc.yml").read_text()
CHAPTERS = list(list_chapters(drafts=False))  # drafts have no page yet (runner.DRAFT_CHAPTERS)


def test_toc_and_chapter_sources_match():
    """Every chapter source is a page of the book and every chapter page of the TOC has a source."""
    pages = re.findall(r"file: book/chapters/(\S+)", TOC)
    assert pages == CHAPTERS, "_toc.yml's chapter pages and chapters/*.py differ (or are in another order)"


@pytest.mark.parametrize("stem", sorted(DRAFT_CHAPTERS))
def test_draft_is_a_chapter_without_page_or_toc_entry(stem):
    """A draft runs and has a golden, but no page yet: once its full page is committed, it leaves DRAFT_CHAPTERS."""
    assert stem in list_chapters() and stem not in CHAPTERS
    assert f"book/chapters/{stem}" not in TOC
    assert not (ROOT / "book" / "chapters" / f"{stem}.ipynb").exists(), f"{stem} has a page: remove it from DRAFT_CHAPTERS"
    assert (ROOT / "tests" / "golden" / f"{stem}.ipynb").exists()


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_is_in_toc(stem):
    assert f"book/chapters/{stem}" in TOC


@pytest.mark.parametrize("stem", CHAPTERS)
def test_first_code_cell_installs_only_in_colab(stem):
    nb = read_chapter(stem)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert 'if "google.colab" in sys.modules:' in first.source
    url, branch = CONFIG["repository"]["url"], CONFIG["repository"]["branch"]
    assert f"faceopt @ git+{url}@{branch}" in first.source, "the Colab install must point at _config.yml's repository"


def test_colab_launch_buttons_configured():
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["execute"]["execute_notebooks"] == "off"


def _injected_scale(nb) -> str:
    return page_parameters(nb)["scale"]


@pytest.mark.parametrize("stem", CHAPTERS)
def test_committed_page_is_full_scale_and_golden_is_smoke(stem):
    page = nbformat.read(ROOT / "book" / "chapters" / f"{stem}.ipynb", as_version=4)
    golden = nbformat.read(ROOT / "tests" / "golden" / f"{stem}.ipynb", as_version=4)
    assert _injected_scale(page) == "full"
    assert _injected_scale(golden) == "smoke"
    assert "provenance" in page.cells[1].metadata.get("tags", [])
    box = page.cells[1].source
    assert "+dirty" not in box and "revision `unknown`" not in box, "pages come from a clean, committed tree"
    assert "data: " in box and "Rendered on" in box
    assert not [c for c in page.cells if "injected-parameters" in c.metadata.get("tags", [])], \
        "a page keeps its parameters in one cell, so that editing scale there works (Colab)"
    url = CONFIG["repository"]["url"]
    assert f"git+{url}@" in next(c for c in page.cells if "colab" in c.metadata.get("tags", [])).source
    errors = [o for c in page.cells if c.cell_type == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors


def test_claims_copy_keeps_every_shared_id():
    shared = ROOT.parent / "shared" / "claims.yml"
    if not shared.exists():
        pytest.skip("shared/ is not beside this checkout")
    ids = set(re.findall(r"^\s*- id: (\S+)", shared.read_text(), flags=re.M))
    assert ids == set(results.load_claims())


def test_committed_scorecard_is_current_and_complete(tmp_path):
    fresh = scorecard.render_scorecard(tmp_path / "scorecard.md", scales=("full",), results_dir=paths().book / "results")
    committed = (ROOT / "book" / "scorecard.md").read_text()
    assert fresh.read_text() == committed, "book/scorecard.md is stale: run `faceopt scorecard`"
    for claim_id in results.load_claims():
        assert f"**{claim_id}**" in committed
    glance = scorecard.render_glance(results.load_claims(), results.load_results(paths().book / "results"),
                                     chapter_titles(ROOT / "book" / "chapters"))
    assert (ROOT / "book" / "glance.md").read_text() == glance, "book/glance.md is stale: run `faceopt scorecard`"


@pytest.mark.slow
def test_book_builds_from_committed_pages_without_warnings(tmp_path, monkeypatch):
    require_asset("mathjax")  # the book serves its own MathJax
    monkeypatch.setenv("FACEOPT_BUILD_DIR", str(tmp_path))
    index = build_book("full", run=False, log=lambda *_: None)
    assert "book/intro.html" in index.read_text()  # Jupyter Book's index redirects to the root page
    assert "faceopt" in (index.parent / "book" / "intro.html").read_text()
    chapter_html = (index.parent / "book" / "chapters" / "01_pipeline_cost.html").read_text()
    assert "GFLOPs" in chapter_html and "<img" in chapter_html  # the cost table and the plots
    assert "colab.research.google.com" in chapter_html
    assert "_static/mathjax/tex-svg-full.js" in chapter_html and "cdn.jsdelivr.net" not in chapter_html
    assert (index.parent / "_static" / "mathjax" / "tex-svg-full.js").stat().st_size > 1_000_000
    scorecard_html = (index.parent / "book" / "scorecard.html").read_text()
    assert "T4-cost" in scorecard_html


def test_built_book_reads_well_in_a_browser(tmp_path, monkeypatch):
    """Every page at a desktop and a phone width: no overflow, cut-off output or table, raw TeX or external
    script (faceopt.browser_check); the screenshots land in _build/browser for a maintainer."""
    pytest.importorskip("selenium", reason="the browser check needs selenium (requirements.txt)")
    from faceopt.browser_check import book_pages, check_pages, find_browser

    try:
        find_browser()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    require_asset("mathjax")
    monkeypatch.setenv("FACEOPT_BUILD_DIR", str(tmp_path))
    html = build_book("full", run=False, log=lambda *_: None).parent
    problems, formulas = check_pages(book_pages(html), root=html, screenshots=ROOT / "_build" / "browser")
    assert not problems, "\n".join(map(str, problems))
    assert sum(formulas.values()) > 50  # typeset without the network


def _recorded_entries():
    files = sorted((ROOT / "book" / "results").glob("*.full.json")) + sorted((ROOT / "tests" / "golden").glob("*.smoke.json"))
    for path in files:
        for claim_id, entry in json.loads(path.read_text())["claims"].items():
            yield f"{path.name}:{claim_id}", entry


@pytest.mark.parametrize("where, entry", list(_recorded_entries()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_recorded_status_follows_the_one_rule(where, entry):
    """Recompute each committed status from its recorded parts with the library's rule."""
    if entry["status"] in results.STATUS_STRENGTH:
        assert entry.get("parts"), f"{where}: a status of the rule needs its parts"
        assert results.decide(results.parts_from_json(entry["parts"])) == entry["status"], where
    else:
        assert entry["status"] in ("needs-real-data", results.PENDING) and not entry.get("parts"), where


@pytest.mark.parametrize("stem", CHAPTERS)
def test_no_chapter_decides_a_status(stem):
    """Statuses come from faceopt.results.decide: no chapter writes one of the rule's statuses itself."""
    import ast

    for cell in read_chapter(stem).cells:
        if cell.cell_type != "code":
            continue
        literals = {n.value for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Constant)}
        assert not literals & set(results.STATUS_STRENGTH), f"{stem}: a cell names a status:\n{cell.source[:300]}"
