"""Turn the jupytext chapter sources into executed notebooks with papermill.

A chapter is ``chapters/NN_name.py`` (py:percent). It is addressed by its file
stem (``01_pipeline_cost``) or by the stem without the number
(``pipeline_cost``). Full-scale runs write the book's committed pages
(``book/chapters``); smoke runs write to ``_build/smoke`` and never touch the
committed pages.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from .config import ALLOWED_SCALES, Paths, check_scale, paths

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


def list_chapters(p: Paths | None = None) -> dict[str, Path]:
    """Chapter stem -> jupytext source, in book order."""
    p = p or paths()
    return {f.stem: f for f in sorted(p.chapters_src.glob("[0-9][0-9]_*.py"))}


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


def read_chapter(stem: str, p: Paths | None = None):
    """The chapter source as an nbformat notebook with a python3 kernelspec."""
    import jupytext

    source = list_chapters(p)[stem]
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    return nb


def chapter_parameters(stem: str, p: Paths | None = None) -> dict[str, Any]:
    """Name -> default value of the chapter's ``parameters`` cell."""
    nb = read_chapter(stem, p)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ChapterError(f"chapter {stem}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    namespace: dict[str, Any] = {}
    exec(compile(cells[0].source, f"{stem}:parameters", "exec"), {}, namespace)  # noqa: S102 - our own source
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


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
            value = type(default)(value) if isinstance(default, float) else value
        if isinstance(default, str):
            value = str(value)
        checked[name] = value
    return checked


def git_revision(root: Path) -> str:
    """Short git revision of the checkout, with '+dirty' for uncommitted changes, or 'unknown'."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_description() -> str:
    """CPU model and core count (or GPU name), OS, for the provenance line of a page."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} logical cores, {platform.system()}"
    try:
        import torch

        if torch.cuda.is_available():
            desc += f", GPU {torch.cuda.get_device_name(0)}"
        desc += f", torch {torch.__version__.split('+')[0]}"
    except ImportError:  # pragma: no cover
        pass
    return desc


def provenance_markdown(scale: str, params: Mapping[str, Any], wall_s: float, root: Path) -> str:
    """The line every page shows: scale, data, machine, revision, wall time."""
    data = params.get("data", "synthetic")
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    extra = {k: v for k, v in params.items() if k not in COMMON_PARAMETERS}
    extra_text = "; parameters " + ", ".join(f"`{k}={v}`" for k, v in extra.items()) if extra else ""
    return (
        f"```{{admonition}} How this page was produced\n"
        f"Scale **{scale}**, data `{data}`{extra_text}; machine: {machine_description()}; "
        f"revision `{git_revision(root)}`; wall time {wall_s:.0f} s; {when}.\n```"
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
    p: Paths | None = None,
    log=print,
) -> RunResult:
    """Execute one chapter with papermill and write it atomically to ``out_dir``.

    On a failing cell, raises :class:`ChapterError` naming the chapter and the cell; the
    partly executed notebook is kept in ``_build/failed`` for inspection, never in ``book/``.
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
    parameters = {"scale": scale, **user}
    out_dir = Path(out_dir) if out_dir else output_dir(scale, p)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{stem}.ipynb"

    env_results = results_dir(scale, p)
    env_results.mkdir(parents=True, exist_ok=True)
    old_env = {k: os.environ.get(k) for k in ("FACEOPT_RESULTS_DIR", "FACEOPT_QUIET")}
    os.environ["FACEOPT_RESULTS_DIR"] = str(env_results)
    os.environ["FACEOPT_QUIET"] = "1"  # a page is no place for progress bars; the runner reports progress
    nb = read_chapter(stem, p)
    work = Path(tempfile.mkdtemp(prefix=f"faceopt-{stem}-"))
    try:
        src = work / f"{stem}.src.ipynb"
        executed = work / f"{stem}.ipynb"
        nbformat.write(nb, src)
        log(f"[{stem}] running at scale={scale} ...")
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(src),
                str(executed),
                parameters=parameters,
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
        banner = nbformat.v4.new_markdown_cell(provenance_markdown(scale, parameters, wall, p.root))
        banner.metadata["tags"] = ["provenance"]
        out.cells.insert(1, banner)
        tmp_target = target.with_suffix(".ipynb.tmp")
        nbformat.write(out, tmp_target)
        os.replace(tmp_target, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    log(f"[{stem}] done in {wall:.1f} s -> {target}")
    return RunResult(stem, scale, target, wall)


__all__ = [
    "ALLOWED_SCALES",
    "ChapterError",
    "RunResult",
    "chapter_parameters",
    "check_parameters",
    "list_chapters",
    "output_dir",
    "parse_parameter",
    "resolve_chapter",
    "results_dir",
    "run_chapter",
]
