"""Google Colab: a plain (not editable) install of faceopt runs a committed page from an empty folder.

The fast tests check that everything a chapter reads from the package is there and that
pyproject's package-data puts it into the wheel. The slow test rebuilds Colab: a fresh
virtual environment that sees this environment's packages (Colab has torch & co
preinstalled), ``pip install`` of the checkout, and a committed page executed by papermill
with that environment's Python after setting ``scale = "smoke"`` by hand.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
import tomllib

from faceopt.config import paths
from faceopt.data.person_boxes import default_annotation_path
from faceopt.recognition import experiments as md
from faceopt.recognition import runs as md_runs
from faceopt.resources import resource_path, resources_root

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "faceopt"
PAGE = REPO / "book" / "chapters" / "02_pruning_quantisation.ipynb"
#: Files and folders the chapters read from the package.
CHAPTER_RESOURCES = (
    ("claims.yml",),
    ("annotations", "vtest_persons.json"),
    ("runs", "person_detector", "ssdlite_mobilenetv2_vtest.pt"),
    ("runs", "person_detector", "ssdlite_mobilenetv2_vtest.json"),
    ("runs", "margin_distillation"),
)
#: The last cell appended to the page: which Python and which faceopt the kernel used.
WHERE_CELL = "import json, sys, faceopt\nprint(json.dumps({'prefix': sys.prefix, 'faceopt': faceopt.__file__}))"


# --------------------------------------------------------------------------- #
# Fast: the resources exist and the wheel gets them
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("parts", CHAPTER_RESOURCES, ids="/".join)
def test_chapter_resources_are_packaged(parts):
    assert resource_path(*parts).exists()


def test_code_points_at_the_packaged_resources():
    assert paths().claims == resource_path("claims.yml")
    assert default_annotation_path() == resource_path("annotations", "vtest_persons.json")
    assert md_runs.run_folder(md.PRESETS["full"], resource_path("runs", "margin_distillation")).is_dir()
    assert resources_root() == PACKAGE / "resources", "the tests expect the editable install of this checkout"


def test_missing_resource_names_it_and_the_fix():
    with pytest.raises(FileNotFoundError, match=r"'runs/nothing\.json'.*pip install"):
        resource_path("runs", "nothing.json")
    assert not resource_path("runs", "nothing.json", must_exist=False).exists()


def _package_data_globs() -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["tool"]["setuptools"]["package-data"]["faceopt"]


def _resource_files() -> set[Path]:
    """Files under src/faceopt/resources that git tracks or would track (not ignored), .py aside."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "--", "src/faceopt/resources"],
                             cwd=REPO, capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout: cannot tell committed resources from local ones")
    files = {REPO / name for name in out.split("\0") if name}
    return {f for f in files if f.suffix != ".py" and f.exists()}


def test_package_data_covers_every_resource():
    packaged = {f for pattern in _package_data_globs() for f in PACKAGE.glob(pattern) if f.is_file()}
    files = _resource_files()
    assert files, "no resources found under src/faceopt/resources"
    missing = sorted(str(f.relative_to(REPO)) for f in files - packaged)
    assert not missing, f"not in the wheel: add globs to [tool.setuptools.package-data] in pyproject.toml: {missing}"


# --------------------------------------------------------------------------- #
# Slow: Colab rebuilt
# --------------------------------------------------------------------------- #
def colab_env(venv: Path) -> dict[str, str]:
    """This environment as Colab would have it: no FACEOPT_*, PYTHONPATH or Jupyter paths; venv first on PATH."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FACEOPT_", "JUPYTER_")) and k not in dropped}
    env.update(FACEOPT_QUIET="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return env


def _run(cmd: list[str | Path], *, env: dict[str, str], cwd: Path, timeout: float) -> str:
    """Run ``cmd``; on failure fail the test with the command and the end of its output."""
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"exit {proc.returncode}: {' '.join(map(str, cmd))}\n{(proc.stdout + proc.stderr)[-6000:]}")
    return proc.stdout


def source_copy(dest: Path) -> Path:
    """What ``pip install .`` reads from the checkout, copied, so that its build/ never lands in the checkout."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def venv_site_packages(venv: Path) -> Path:
    """The site-packages folder of ``venv``, as its own Python reports it."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(_run([venv / "bin" / "python", "-c", code], env=colab_env(venv), cwd=venv, timeout=60).strip())


def make_colab_venv(venv: Path) -> Path:
    """A virtual environment whose Python sees this one's packages (Colab's preinstalled ones); its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    preinstalled = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    # Plain path lines, so the editable faceopt's own .pth over there is not processed.
    pth = venv_site_packages(venv) / "colab_preinstalled.pth"
    pth.write_text("".join(f"{p}\n" for p in preinstalled), encoding="utf-8")
    return venv / "bin" / "python"


def install_faceopt(python: Path, venv: Path, source: Path) -> None:
    """``pip install .`` (not editable) with the preinstalled pip and setuptools; --no-index: nothing is downloaded."""
    _run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-cache-dir", "-q", "."],
         env=colab_env(venv), cwd=source, timeout=600)


def set_scale_like_colab_user(nb: nbformat.NotebookNode, scale: str) -> None:
    """Edit the ``scale = ...`` line of the cell tagged ``parameters``, as the README tells a Colab user."""
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert not any("injected-parameters" in t for t in tags), (
        "the page has papermill's injected-parameters cell, which would override a scale set by hand in the "
        "parameters cell; regenerate the page (`make pages`) with the parameters in the parameters cell only")
    cell = next(c for c, t in zip(nb.cells, tags) if "parameters" in t)
    cell.source, n = re.subn(r'^scale = "\w+"', f'scale = "{scale}"', cell.source, flags=re.M)
    assert n == 1, f"expected one `scale = ...` line in the parameters cell:\n{cell.source}"


def run_page_like_colab(page: Path, python: Path, venv: Path, where: Path) -> tuple[nbformat.NotebookNode, Path]:
    """Execute a copy of ``page`` at smoke scale with ``python``'s papermill; (executed notebook, its cwd)."""
    nb = nbformat.read(page, as_version=4)
    set_scale_like_colab_user(nb, "smoke")
    nb.cells.append(nbformat.v4.new_code_cell(WHERE_CELL))
    content = where / "content"
    content.mkdir(parents=True)
    src, out = where / page.name, where / f"executed-{page.name}"
    nbformat.write(nb, src)
    _run([python, "-m", "papermill", src, out, "-k", "python3", "--cwd", content, "--no-progress-bar"],
         env=colab_env(venv), cwd=content, timeout=1800)
    return nbformat.read(out, as_version=4), content


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o["output_type"] == "stream")


@pytest.mark.slow
def test_committed_page_runs_from_a_plain_install_in_an_empty_folder(tmp_path):
    venv = tmp_path / "venv"
    python = make_colab_venv(venv)
    install_faceopt(python, venv, source_copy(tmp_path / "checkout"))
    site = venv_site_packages(venv)
    imported = Path(_run([python, "-c", "import faceopt; print(faceopt.__file__)"],
                         env=colab_env(venv), cwd=tmp_path, timeout=120).strip())
    assert imported.is_relative_to(site), f"faceopt imported from {imported}, not the plain install in {site}"

    executed, content = run_page_like_colab(PAGE, python, venv, tmp_path / "colab")

    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert not errors, errors
    where = json.loads(_stdout(executed.cells[-1]))
    assert Path(where["prefix"]).resolve() == venv.resolve() and Path(where["faceopt"]).is_relative_to(site), where
    ran = [c for c in executed.cells if re.search(r"^scale=smoke:", _stdout(c), flags=re.M)]
    assert ran, "the chapter did not print scale=smoke: it did not run at smoke scale"
    recorded = json.loads((content / "book" / "results" / f"{PAGE.stem}.smoke.json").read_text())
    assert recorded["scale"] == "smoke" and recorded["claims"]
