"""Turn the jupytext chapter sources into executed notebooks with papermill.

A chapter is ``chapters/NN_name.py`` (py:percent). It is addressed by its file
stem (``01_pipeline_cost``) or by the stem without the number
(``pipeline_cost``). Full-scale runs write the book's committed pages
(``book/chapters``); smoke runs write to ``_build/smoke`` and never touch the
committed pages.
"""
from __future__ import annotations

import ast
import datetime as _dt
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from faceopt.config import ALLOWED_SCALES, Paths, check_scale, paths
from faceopt.io import atomic_output
from faceopt.provenance import PROVENANCE_ENV, git_revision, machine_description, read_declarations

#: Parameters every chapter has; the runner sets ``scale`` itself.
COMMON_PARAMETERS = ("scale", "data", "device", "seed")


class ChapterError(RuntimeError):
    """A chapter could not be run; the message names the chapter and, if any, the failing cell."""


@dataclass(frozen=True)
class RunResult:
    chapter: str
    scale: str
    output: Path
    wall_s: float
    results: Path  #: the claims this run recorded (may not exist if the chapter records none)


#: Chapters whose smoke run and golden exist but whose full page waits for a cached heavy step that could
#: not be made yet: stem -> what it waits for. A draft is run and tested at smoke scale like any chapter,
#: but is not in _toc.yml, has no committed page and is skipped by full-scale runs and the book.
DRAFT_CHAPTERS: dict[str, str] = {}


def list_chapters(p: Paths | None = None, *, drafts: bool = True) -> dict[str, Path]:
    """Chapter stem -> jupytext source, in book order (without :data:`DRAFT_CHAPTERS` if ``drafts`` is false)."""
    p = p or paths()
    found = {f.stem: f for f in sorted(p.chapters_src.glob("[0-9][0-9]_*.py"))}
    return found if drafts else {stem: f for stem, f in found.items() if stem not in DRAFT_CHAPTERS}


def resolve_chapter(name: str, p: Paths | None = None) -> str:
    """Map a chapter name (with or without its number) to its stem, or fail listing the allowed ones."""
    chapters = list_chapters(p)
    if name in chapters:
        return name
    matches = [stem for stem in chapters if stem.split("_", 1)[1] == name]
    if len(matches) == 1:
        return matches[0]
    allowed = ", ".join(chapters) or "(none found in chapters/)"
    raise ChapterError(f"unknown chapter {name!r}; allowed: {allowed}")


COLAB_CELL = """\
# Colab only: install faceopt from {url} ({branch}) beside Colab's own torch. Does nothing elsewhere.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "faceopt @ git+{url}@{branch}"], check=True)"""


def repository(p: Paths | None = None) -> tuple[str, str]:
    """(url, branch) of the book's repository: the one setting is ``repository`` in ``_config.yml``."""
    p = p or paths()
    config_file = p.root / "_config.yml"
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        repo = config["repository"]
        return str(repo["url"]).rstrip("/"), str(repo.get("branch", "main"))
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ChapterError(f"{config_file}: cannot read repository.url ({exc!r}); "
                           "set `repository: {url: https://github.com/<owner>/<repo>, branch: main}`") from None


def _cells_tagged(nb, tag: str) -> list:
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def _tagged(nb, tag: str, stem: str):
    cells = _cells_tagged(nb, tag)
    if len(cells) != 1:
        raise ChapterError(f"chapter {stem}: expected exactly one cell tagged {tag!r}, found {len(cells)}")
    return cells[0]


def read_chapter(stem: str, p: Paths | None = None):
    """The chapter source as an nbformat notebook with a python3 kernelspec; its cell tagged ``colab``
    is written from :data:`COLAB_CELL` and ``_config.yml``'s repository."""
    import jupytext

    p = p or paths()
    source = list_chapters(p)[stem]
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    colab = _cells_tagged(nb, "colab")
    if colab:
        url, branch = repository(p)
        for cell in colab:
            cell.source = COLAB_CELL.format(url=url, branch=branch)
    return nb


def _literal(value: Any) -> str:
    """Python source of a parameter value: strings in double quotes, numbers and booleans as is."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bool, int, float)) or value is None:
        return repr(value)
    raise ChapterError(f"parameter value {value!r} must be a string, number or boolean")


def set_parameters(nb, values: Mapping[str, Any], stem: str = "chapter") -> None:
    """Write ``values`` into the assignments of the cell tagged ``parameters``, in place.

    The page keeps one parameters cell (papermill would add a second, injected cell after it),
    so a reader who edits ``scale`` there, in Colab say, changes what the notebook runs. The
    comments after each value are kept.
    """
    cell = _tagged(nb, "parameters", stem)
    lines = cell.source.split("\n")
    spans: dict[str, tuple[int, int, int]] = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            v = node.value
            if v.lineno == v.end_lineno and v.end_col_offset is not None:
                spans[node.targets[0].id] = (v.lineno - 1, v.col_offset, v.end_col_offset)
    for name, value in values.items():
        if name not in spans:
            raise ChapterError(f"chapter {stem}: its parameters cell has no one-line assignment to {name!r}")
        row, start, end = spans[name]
        line = lines[row].encode("utf-8")  # ast offsets count UTF-8 bytes
        lines[row] = (line[:start] + _literal(value).encode("utf-8") + line[end:]).decode("utf-8")
    cell.source = "\n".join(lines)


def page_parameters(nb, stem: str = "chapter") -> dict[str, Any]:
    """Name -> value of a notebook's cell tagged ``parameters`` (a chapter source or an executed page)."""
    cell = _tagged(nb, "parameters", stem)
    namespace: dict[str, Any] = {}
    exec(compile(cell.source, f"{stem}:parameters", "exec"), {}, namespace)  # noqa: S102 - our own source
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def chapter_parameters(stem: str, p: Paths | None = None) -> dict[str, Any]:
    """Name -> default value of the chapter's ``parameters`` cell."""
    return page_parameters(read_chapter(stem, p), stem)


def parse_parameter(text: str) -> tuple[str, Any]:
    """``name=value`` -> (name, value), the value read as YAML (numbers, booleans, strings)."""
    if "=" not in text:
        raise ChapterError(f"parameter {text!r} is not of the form name=value")
    name, raw = text.split("=", 1)
    name = name.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return name, value


#: Choices of the parameters every chapter shares (a chapter checks its own ``data`` choices itself).
PARAMETER_CHOICES: dict[str, tuple[str, ...]] = {"scale": ("smoke", "full"), "device": ("auto", "cpu", "cuda")}


def check_parameters(stem: str, params: Mapping[str, Any], p: Paths | None = None) -> dict[str, Any]:
    """Reject parameters the chapter does not declare, and values of the wrong type."""
    defaults = chapter_parameters(stem, p)
    checked: dict[str, Any] = {}
    for name, value in params.items():
        if name not in defaults:
            raise ChapterError(
                f"chapter {stem} has no parameter {name!r}; allowed: {', '.join(sorted(defaults))}"
            )
        default = defaults[name]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ChapterError(f"chapter {stem}: parameter {name} must be true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ChapterError(f"chapter {stem}: parameter {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ChapterError(f"chapter {stem}: parameter {name} must be a finite number, got {value!r}")
            if isinstance(default, int):
                if not float(value).is_integer():
                    raise ChapterError(f"chapter {stem}: parameter {name} must be a whole number, got {value!r}")
                value = int(value)
            else:
                value = float(value)
        if isinstance(default, str):
            value = str(value)
            allowed = PARAMETER_CHOICES.get(name)
            if allowed is not None and value not in allowed:
                raise ChapterError(f"chapter {stem}: parameter {name} must be one of {', '.join(allowed)}, got {value!r}")
        checked[name] = value
    return checked


#: What a run of the book writes itself; changes there do not make a page's revision dirty.
PAGE_OUTPUTS = ("book/chapters", "book/results", "book/scorecard.md", "book/glance.md")


def busy_note(others: float | None, cores: int | None = None) -> str:
    """A warning for the page when other processes used more than a quarter of the machine's CPU
    time while it ran (``others``: their share, see :class:`OtherLoad`): timings, and whatever a
    page chooses by them, may differ on a quiet machine."""
    cores = cores or os.cpu_count() or 1
    if others is None or others <= 0.25:
        return ""
    return (f" Other processes used {others:.0%} of the machine's {cores} cores while this page ran: its "
            "timings, and any setting chosen by them, may differ on a quiet machine.")


class OtherLoad:
    """The share of the machine's CPU time that processes other than this one and its children
    (the chapter's kernel) used between :meth:`start` and :meth:`stop`; ``None`` where the system
    does not report CPU time (no ``/proc/stat``)."""

    def start(self) -> OtherLoad:
        self._t0, self._mine0 = self._system(), self._mine()
        self._wall0 = time.perf_counter()
        return self

    def stop(self) -> float | None:
        t1 = self._system()
        if t1 is None or self._t0 is None:
            return None
        wall = time.perf_counter() - self._wall0
        cores = os.cpu_count() or 1
        if wall <= 0:
            return None
        busy = (t1 - self._t0) - (self._mine() - self._mine0)
        return max(0.0, min(1.0, busy / (wall * cores)))

    @staticmethod
    def _system() -> float | None:
        """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        ticks = [int(v) for v in fields]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _mine() -> float:
        """CPU seconds of this process and its finished children (the kernel, once shut down)."""
        import resource

        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def provenance_markdown(scale: str, params: Mapping[str, Any], wall_s: float, root: Path,
                        declared: Mapping[str, Any] | None = None, others: float | None = None) -> str:
    """The box every page shows: scale, the data really used, parameters, the machine that rendered the
    page and the machines of any cached heavy step it read, the git revision and the wall time; a
    warning if the machine was busy (``others``: the CPU share other processes used during the run)."""
    declared = declared or {}
    data = declared.get("data") or f"`{params.get('data', 'synthetic')}`"
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    extra = {k: v for k, v in params.items() if k not in COMMON_PARAMETERS}
    extra_text = "; parameters " + ", ".join(f"`{k}={v}`" for k, v in extra.items()) if extra else ""
    cached = "".join(
        f" Cached heavy step read by this page: {c['what']}, made on {c['machine']}"
        + (f" ({c['made']})" if c.get("made") else "") + "."
        for c in declared.get("cached_steps", [])
    )
    return (
        f"```{{admonition}} How this page was produced\n"
        f"Scale **{scale}**; data: {data}{extra_text}. Rendered on {machine_description()}; "
        f"revision `{git_revision(root, ignore=PAGE_OUTPUTS)}`; wall time {wall_s:.0f} s; {when}.{cached}"
        f"{busy_note(others)}\n```"
    )


def output_dir(scale: str, p: Paths | None = None) -> Path:
    """Full-scale runs write the book's pages; smoke runs write under _build/smoke."""
    p = p or paths()
    return p.book / "chapters" if scale == "full" else p.build / "smoke" / "chapters"


def results_dir(scale: str, p: Paths | None = None) -> Path:
    """Full-scale claims go to book/results (committed); smoke claims stay in _build/smoke/results."""
    p = p or paths()
    return p.book / "results" if scale == "full" else p.build / "smoke" / "results"


def run_chapter(
    name: str,
    scale: str,
    params: Mapping[str, Any] | None = None,
    *,
    out_dir: Path | None = None,
    allow_dirty: bool = False,
    p: Paths | None = None,
    log=print,
) -> RunResult:
    """Execute one chapter with papermill and write it atomically to ``out_dir``.

    The parameters are written into the chapter's own parameters cell. A full-scale run that
    writes the book's pages needs a clean tree (every page names a clean revision) unless
    ``allow_dirty``. On a failing cell, raises :class:`ChapterError` naming the chapter and the
    cell; the partly executed notebook is kept in ``_build/failed``, never in ``book/``.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    p = p or paths()
    check_scale(scale)
    stem = resolve_chapter(name, p)
    user = check_parameters(stem, dict(params or {}), p)
    if "scale" in user:
        raise ChapterError("set the scale with --scale, not -p scale=...")
    writes_pages = out_dir is None and scale == "full"
    if writes_pages and not allow_dirty and git_revision(p.root, ignore=PAGE_OUTPUTS).endswith("+dirty"):
        raise ChapterError(
            f"chapter {stem}: the working tree has uncommitted changes outside {', '.join(PAGE_OUTPUTS)}; "
            "commit them first so the page names a clean revision (or pass --allow-dirty for a trial run)"
        )
    nb = read_chapter(stem, p)
    parameters = {**page_parameters(nb, stem), "scale": scale, **user}
    set_parameters(nb, parameters, stem)
    out_dir = Path(out_dir) if out_dir else output_dir(scale, p)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{stem}.ipynb"

    work = Path(tempfile.mkdtemp(prefix=f"faceopt-{stem}-"))
    declarations = work / "provenance.json"
    run_results = work / "results"  # moved into results_dir only when the whole chapter succeeded
    env = {
        "FACEOPT_RESULTS_DIR": str(run_results),
        "FACEOPT_QUIET": "1",  # a page is no place for progress bars; the runner reports progress
        PROVENANCE_ENV: str(declarations),
        # the records name the revision the page names: pages other chapters wrote before do not make it dirty
        "FACEOPT_GIT_REV": git_revision(p.root, ignore=PAGE_OUTPUTS),
    }
    old_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        src = work / f"{stem}.src.ipynb"
        executed = work / f"{stem}.ipynb"
        nbformat.write(nb, src)
        log(f"[{stem}] running at scale={scale} ...")
        start, other_load = time.perf_counter(), OtherLoad().start()
        try:
            papermill.execute_notebook(
                str(src),
                str(executed),
                kernel_name="python3",
                progress_bar=False,
                cwd=str(p.root),
                log_output=False,
            )
        except PapermillExecutionError as err:
            failed_dir = p.build / "failed"
            failed_dir.mkdir(parents=True, exist_ok=True)
            if executed.exists():
                shutil.copyfile(executed, failed_dir / f"{stem}.ipynb")
            raise ChapterError(
                f"chapter {stem} failed in cell {err.cell_index} (execution count {err.exec_count}): "
                f"{err.ename}: {err.evalue}\n  partly executed notebook: {failed_dir / (stem + '.ipynb')}"
            ) from None
        wall = time.perf_counter() - start
        out = nbformat.read(executed, as_version=4)
        others = other_load.stop()
        box = provenance_markdown(scale, parameters, wall, p.root, read_declarations(declarations), others=others)
        note = busy_note(others)
        if note:
            print(f"[{stem}] warning:{note}", file=sys.stderr)
        banner = nbformat.v4.new_markdown_cell(box)
        banner.metadata["tags"] = ["provenance"]
        out.cells.insert(1, banner)
        with atomic_output(target, suffix=".ipynb") as tmp_target:
            nbformat.write(out, tmp_target)
        final_results = results_dir(scale, p)
        final_results.mkdir(parents=True, exist_ok=True)
        for recorded in sorted(run_results.glob("*.json")):
            shutil.move(str(recorded), final_results / recorded.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    log(f"[{stem}] done in {wall:.1f} s -> {target}")
    return RunResult(stem, scale, target, wall, results_dir(scale, p) / f"{stem}.{scale}.json")


__all__ = [
    "ALLOWED_SCALES",
    "ChapterError",
    "RunResult",
    "chapter_parameters",
    "check_parameters",
    "list_chapters",
    "output_dir",
    "page_parameters",
    "provenance_markdown",
    "read_chapter",
    "repository",
    "set_parameters",
    "parse_parameter",
    "resolve_chapter",
    "results_dir",
    "run_chapter",
]
