"""Build the Jupyter Book (1.x) from executed chapter notebooks.

Every build happens in a staging folder ``_build/<scale>/site``: a copy of
``_config.yml``, ``_toc.yml`` and ``book/``, with the smoke notebooks laid over
the committed full-scale pages for a smoke build, and MathJax (the registry asset
``mathjax``) in ``_static/`` so that formulas render without the network. The committed pages are read,
never written, except by a full-scale run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from faceopt import results
from faceopt.assets import asset_path
from faceopt.config import Paths, check_scale, paths
from faceopt.runner import ChapterError, list_chapters, output_dir, results_dir, run_chapter

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
    (site / "_static" / "mathjax").mkdir(parents=True)
    shutil.copy2(asset_path("mathjax"), site / "_static" / "mathjax" / MATHJAX_FILE)
    shutil.copytree(p.book, site / "book", ignore=shutil.ignore_patterns("results", "*.tmp", ".ipynb_checkpoints"))
    if scale == "smoke":
        smoke_dir = output_dir("smoke", p)
        for nb in sorted(smoke_dir.glob("*.ipynb")):
            shutil.copy2(nb, site / "book" / "chapters" / nb.name)
    return site


def render_scorecard_for(scale: str, site: Path, p: Paths | None = None) -> Path:
    """Write the scorecard page into the staged book: full results always, smoke results on a smoke build."""

    p = p or paths()
    dirs: list[str | os.PathLike] = [results_dir("full", p)]
    scales: tuple[str, ...] = ("full",)
    if scale == "smoke":
        dirs.append(results_dir("smoke", p))
        scales = ("full", "smoke")
    return results.render_scorecard(site / "book" / "scorecard.md", scales=scales, results_dir=dirs, claims_path=p.claims)


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
    names = list(chapters) if chapters else list(list_chapters(p))
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
        render_scorecard_for("full", p.root, p)  # new full-scale results: refresh the committed page
    site = stage_book(scale, p)
    render_scorecard_for(scale, site, p)
    return build_html(site, log=log)
