"""The chapter runner: name resolution, parameter checks, failures, provenance."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat
import pytest

from faceopt.config import Paths, paths
from faceopt.runner import (
    ChapterError,
    chapter_parameters,
    check_parameters,
    list_chapters,
    page_parameters,
    parse_parameter,
    resolve_chapter,
    run_chapter,
    set_parameters,
)

TINY = '''# %% [markdown]
# # Tiny chapter

# %% tags=["parameters"]
scale = "smoke"
data = "synthetic"
device = "auto"
seed = 0
fail = False
n = 3

# %%
import os
from faceopt import provenance
provenance.declare_data(f"{n} tiny things")
provenance.declare_cached_step("a tiny training", "a made-up GPU", "2026-01-02")
if fail:
    raise ZeroDivisionError("boom on purpose")
print(scale, n * 2, os.environ["FACEOPT_QUIET"])
'''


@pytest.fixture()
def tiny_repo(tmp_path: Path) -> Paths:
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "01_tiny.py").write_text(TINY)
    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    return Paths(tmp_path)


def test_real_chapters_resolve_with_and_without_number():
    chapters = list_chapters()
    assert "01_pipeline_cost" in chapters
    assert resolve_chapter("pipeline_cost") == "01_pipeline_cost"
    assert resolve_chapter("01_pipeline_cost") == "01_pipeline_cost"


def test_unknown_chapter_lists_allowed():
    with pytest.raises(ChapterError, match="allowed: .*01_pipeline_cost"):
        resolve_chapter("no_such_chapter")


def test_every_chapter_has_the_common_parameters():
    for stem in list_chapters():
        params = chapter_parameters(stem)
        assert {"scale", "data", "device", "seed"} <= set(params), stem
        assert params["scale"] == "smoke", f"{stem}: the source must default to smoke scale"


@pytest.mark.parametrize(
    "text, expected",
    [("seed=3", ("seed", 3)), ("data=/x/y", ("data", "/x/y")), ("flag=true", ("flag", True)), ("lr=0.1", ("lr", 0.1))],
)
def test_parse_parameter(text, expected):
    assert parse_parameter(text) == expected


def test_parse_parameter_rejects_missing_equals():
    with pytest.raises(ChapterError, match="name=value"):
        parse_parameter("seed")


def test_unknown_parameter_lists_allowed(tiny_repo):
    with pytest.raises(ChapterError, match=r"no parameter 'epochs'; allowed: data, device, fail, n, scale, seed"):
        check_parameters("01_tiny", {"epochs": 3}, tiny_repo)


def test_parameter_types_are_checked(tiny_repo):
    with pytest.raises(ChapterError, match="must be a number"):
        check_parameters("01_tiny", {"n": "many"}, tiny_repo)
    with pytest.raises(ChapterError, match="true or false"):
        check_parameters("01_tiny", {"fail": 1}, tiny_repo)
    assert check_parameters("01_tiny", {"n": 5, "data": 7}, tiny_repo) == {"n": 5, "data": "7"}


def test_numbers_must_be_finite_and_whole_where_the_default_is_and_devices_are_listed(tiny_repo):
    for value, message in ((1.5, "whole number"), (float("inf"), "finite"), (float("nan"), "finite")):
        with pytest.raises(ChapterError, match=message):
            check_parameters("01_tiny", {"seed": value}, tiny_repo)
    assert check_parameters("01_tiny", {"seed": 2.0}, tiny_repo) == {"seed": 2}
    with pytest.raises(ChapterError, match="device must be one of auto, cpu, cuda, got 'tpu'"):
        check_parameters("01_tiny", {"device": "tpu"}, tiny_repo)


def test_bad_scale_is_refused(tiny_repo):
    with pytest.raises(ValueError, match="allowed: smoke, full"):
        run_chapter("tiny", "medium", p=tiny_repo, log=lambda *_: None)


def test_run_writes_notebook_with_provenance(tiny_repo, tmp_path):
    out = tmp_path / "out"
    result = run_chapter("tiny", "smoke", {"n": 21}, out_dir=out, p=tiny_repo, log=lambda *_: None)
    nb = nbformat.read(result.output, as_version=4)
    assert result.output == out / "01_tiny.ipynb"
    banner = nb.cells[1]
    assert "provenance" in banner.metadata["tags"]
    assert "Scale **smoke**" in banner.source and "wall time" in banner.source and "revision" in banner.source
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "smoke 42 1" in printed  # parameter set; progress bars silenced in the kernel
    assert not list(out.glob("*.tmp"))
    assert "data: 21 tiny things" in banner.source
    assert "a tiny training, made on a made-up GPU (2026-01-02)" in banner.source


def test_parameters_stay_in_one_cell_with_their_comments(tiny_repo, tmp_path):
    result = run_chapter("tiny", "smoke", {"n": 5, "data": "/data/ü x"}, out_dir=tmp_path, p=tiny_repo,
                         log=lambda *_: None)
    nb = nbformat.read(result.output, as_version=4)
    assert not [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert page_parameters(nb) == {"scale": "smoke", "data": "/data/ü x", "device": "auto", "seed": 0,
                                   "fail": False, "n": 5}


def test_set_parameters_rewrites_values_and_keeps_comments():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        'scale = "smoke"  # "smoke" or "full" # really\nseed = 0\n', metadata={"tags": ["parameters"]})])
    set_parameters(nb, {"scale": "full", "seed": 3})
    assert nb.cells[0].source == 'scale = "full"  # "smoke" or "full" # really\nseed = 3\n'
    with pytest.raises(ChapterError, match="no one-line assignment to 'missing'"):
        set_parameters(nb, {"missing": 1})


def test_full_pages_need_a_clean_tree(tiny_repo):
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = lambda *a: subprocess.run(["git", *a], cwd=tiny_repo.root, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "tiny")
    (tiny_repo.root / "chapters" / "01_tiny.py").write_text(TINY + "\n# changed\n")
    with pytest.raises(ChapterError, match="uncommitted changes"):
        run_chapter("tiny", "full", p=tiny_repo, log=lambda *_: None)
    assert not (tiny_repo.book / "chapters" / "01_tiny.ipynb").exists()
    result = run_chapter("tiny", "full", allow_dirty=True, p=tiny_repo, log=lambda *_: None)
    assert "+dirty" in nbformat.read(result.output, as_version=4).cells[1].source


def test_failing_cell_names_chapter_and_cell_and_leaves_no_page(tiny_repo, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ChapterError, match=r"chapter 01_tiny failed in cell \d+ .*ZeroDivisionError: boom on purpose"):
        run_chapter("tiny", "smoke", {"fail": True}, out_dir=out, p=tiny_repo, log=lambda *_: None)
    assert not (out / "01_tiny.ipynb").exists()
    assert (tiny_repo.build / "failed" / "01_tiny.ipynb").exists()


def test_smoke_runs_never_write_into_book(tiny_repo):
    from faceopt.runner import output_dir, results_dir

    assert output_dir("full", tiny_repo) == tiny_repo.book / "chapters"
    assert tiny_repo.book not in output_dir("smoke", tiny_repo).parents
    assert tiny_repo.book not in results_dir("smoke", tiny_repo).parents


def test_paths_point_at_this_checkout():
    assert (paths().root / "_toc.yml").exists()
    assert shutil.which("git") is None or paths().root.joinpath(".git").exists()


def test_busy_machine_is_noted_on_the_page():
    from faceopt.runner import OtherLoad, busy_note, provenance_markdown

    assert busy_note(None) == "" and busy_note(0.2, cores=2) == ""
    assert "Other processes used 60% of the machine's 2 cores" in busy_note(0.6, cores=2)
    box = provenance_markdown("full", {"data": "x"}, 1.0, Path("."), others=0.9)
    assert "90%" in box and box.rstrip().endswith("```")
    # this process's own work is not "other processes": busy work here must not raise the share above what
    # other processes used anyway (measured just before, during a sleep; CI may share the machine)
    quiet = OtherLoad().start()
    time.sleep(0.3)
    before = quiet.stop()
    load = OtherLoad().start()
    sum(i * i for i in range(2_000_000))
    share = load.stop()
    if share is None or before is None:
        pytest.skip("this system does not report CPU time (/proc/stat)")
    assert share < before + 0.35, f"own work counted as other processes: {share:.2f} (others before: {before:.2f})"
