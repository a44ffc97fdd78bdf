"""Build the Jupyter Book (1.x) from executed chapter notebooks.

Every build happens in a staging folder ``_build/<scale>/site``: a copy of
``_config.yml``, ``_toc.yml`` and ``book/``, with the smoke notebooks laid over
the committed full-scale pages for a smoke build, and MathJax (the registry asset
``mathjax``) in ``_static/`` so that formulas render without the network. The committed pages are read,
never written, except by a full-scale run.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import nbformat

from faceopt import results, scorecard
from faceopt.assets import asset_path
from faceopt.config import Paths, check_scale, paths
from faceopt.io import atomic_write_text
from faceopt.runner import DRAFT_CHAPTERS, ChapterError, list_chapters, output_dir, results_dir, run_chapter

#: The MathJax file the pages load from the book's own ``_static/mathjax/`` (``mathjax_path`` in _config.yml).
MATHJAX_FILE = "tex-svg-full.js"


class BookBuildError(RuntimeError):
    """Jupyter Book reported an error or a warning (warnings are errors here)."""


def jupyter_book_executable() -> list[str]:
    """The jupyter-book command of the running environment."""
    script = Path(sys.executable).with_name("jupyter-book")
    if script.exists():
        return [str(script)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    raise BookBuildError("jupyter-book is not installed in this environment; run `make venv` (pip install -r requirements.txt)")


def stage_book(scale: str, p: Paths | None = None) -> Path:
    """Copy the book's sources into ``_build/<scale>/site`` and lay this scale's notebooks over them."""
    p = p or paths()
    site = p.build / scale / "site"
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(p.root / name, site / name)
    shutil.copytree(p.root / "_static", site / "_static")  # the book's CSS
    (site / "_static" / "mathjax").mkdir(parents=True)
    shutil.copy2(asset_path("mathjax"), site / "_static" / "mathjax" / MATHJAX_FILE)
    shutil.copytree(p.book, site / "book", ignore=shutil.ignore_patterns("results", "*.tmp", ".ipynb_checkpoints"))
    if scale == "smoke":
        smoke_dir = output_dir("smoke", p)
        for nb in sorted(smoke_dir.glob("*.ipynb")):
            if nb.stem not in DRAFT_CHAPTERS:  # a draft is not in the TOC
                shutil.copy2(nb, site / "book" / "chapters" / nb.name)
    return site


def chapter_titles(folder: Path) -> dict[str, str]:
    """Chapter stem -> the title of its notebook in ``folder`` (the first heading of its first cell)."""
    titles = {}
    for nb_path in sorted(folder.glob("*.ipynb")):
        first = nbformat.read(nb_path, as_version=4).cells[0].source.splitlines()[0]
        titles[nb_path.stem] = first.lstrip("#").strip()
    return titles


def _published(entries: list[dict]) -> list[dict]:
    """Results of chapters that are pages of the book (a draft's smoke results stay off the scorecard)."""
    return [e for e in entries if e.get("chapter") not in DRAFT_CHAPTERS]


def render_result_pages(scale: str, site: Path, p: Paths | None = None) -> Path:
    """Write the pages about results into ``site/book``: the scorecard, the intro's glance and, in the
    staged chapter notebooks, each chapter's claims box; return the scorecard's path.

    Full results always lead; a smoke build adds its smoke results beside them, and its chapter
    boxes (the smoke notebooks) show the smoke statuses. With ``site = p.root`` this refreshes the
    committed ``book/scorecard.md`` and ``book/glance.md`` (``faceopt scorecard``), not the pages.
    """
    p = p or paths()
    full = _published(results.load_results(results_dir("full", p)))
    smoke = _published(results.load_results(results_dir("smoke", p))) if scale == "smoke" else []
    claims = results.load_claims(p.claims)
    book = site / "book"
    card = book / "scorecard.md"
    atomic_write_text(card, scorecard.render_markdown(claims, full + smoke, scales=("full", "smoke")[:1 + bool(smoke)]))
    chapters = book / "chapters"
    atomic_write_text(book / "glance.md", scorecard.render_glance(claims, full, chapter_titles(chapters)))
    if site != p.root:
        smoke_stems = {nb.stem for nb in output_dir("smoke", p).glob("*.ipynb")} if scale == "smoke" else set()
        for nb_path in sorted(chapters.glob("*.ipynb")):
            in_smoke = nb_path.stem in smoke_stems
            box = scorecard.render_claims_box(nb_path.stem, claims, smoke if in_smoke else full,
                                              scale="smoke" if in_smoke else "full")
            if box:
                nb = nbformat.read(nb_path, as_version=4)
                cell = nbformat.v4.new_markdown_cell(box)
                cell.metadata["tags"] = ["claims-box"]
                nb.cells.insert(1, cell)
                atomic_write_text(nb_path, nbformat.writes(nb))
    return card


def build_html(site: Path, *, log: Callable[[str], None] = print) -> Path:
    """Run ``jupyter-book build`` with warnings as errors; return index.html."""
    cmd = [*jupyter_book_executable(), "build", str(site), "--warningiserror", "--keep-going", "--quiet"]
    log(f"[book] jupyter-book build {site}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise BookBuildError(f"jupyter-book build failed for {site} (warnings count as errors):\n{tail}")
    index = site / "_build" / "html" / "index.html"
    if not index.exists():
        raise BookBuildError(f"jupyter-book finished but {index} is missing")
    return index


def build_book(
    scale: str,
    *,
    run: bool = True,
    chapters: Iterable[str] | None = None,
    allow_dirty: bool = False,
    p: Paths | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Run the chapters at ``scale`` (unless ``run`` is false) and build the HTML book; return index.html."""
    p = p or paths()
    check_scale(scale)
    names = list(chapters) if chapters else list(list_chapters(p, drafts=False))
    if run:
        start = time.perf_counter()
        for i, name in enumerate(names, 1):
            log(f"[book] chapter {i}/{len(names)}: {name}")
            run_chapter(name, scale, allow_dirty=allow_dirty, p=p, log=log)
        log(f"[book] {len(names)} chapter(s) ran in {time.perf_counter() - start:.0f} s")
    missing = [n for n in names if not (output_dir(scale, p) / f"{n}.ipynb").exists()]
    if scale == "full" and missing:
        raise ChapterError(f"no executed page for {', '.join(missing)}; run `faceopt run {missing[0]} --scale full`")
    if scale == "full" and run:
        render_result_pages("full", p.root, p)  # new full-scale results: refresh the committed page
    site = stage_book(scale, p)
    render_result_pages(scale, site, p)
    return build_html(site, log=log)
