"""The faceopt command: conventions and clear errors."""
from __future__ import annotations

import pytest

from faceopt.cli import main


def test_list_shows_chapters_and_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "01_pipeline_cost" in out and "scale='smoke'" in out


def test_unknown_chapter_is_one_clear_error(capsys):
    assert main(["run", "nope", "--scale", "smoke"]) == 1
    err = capsys.readouterr().err
    assert "unknown chapter 'nope'" in err and "01_pipeline_cost" in err


def test_unknown_parameter_is_one_clear_error(capsys):
    assert main(["run", "pipeline_cost", "-p", "epochs=3"]) == 1
    err = capsys.readouterr().err
    assert "no parameter 'epochs'" in err and "allowed: data, device, scale, seed" in err


def test_scale_cannot_be_set_as_parameter(capsys):
    assert main(["run", "pipeline_cost", "-p", "scale=full"]) == 1
    assert "--scale" in capsys.readouterr().err


def test_unknown_scale_lists_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "pipeline_cost", "--scale", "medium"])
    assert exc.value.code == 2
    assert "choose from 'smoke', 'full'" in capsys.readouterr().err


def test_golden_needs_smoke(capsys):
    assert main(["run", "pipeline_cost", "--scale", "full", "--golden"]) == 1
    assert "--golden needs --scale smoke" in capsys.readouterr().err


def test_assets_unknown_name(capsys):
    assert main(["assets", "fetch", "no-such-asset"]) == 2
    assert "vtest.avi" in capsys.readouterr().err


def test_train_passes_arguments_through(tmp_path):
    assert main(["train", "--demo", "--max-steps", "1", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "last.pt").exists()


def test_distill_passes_arguments_through(capsys):
    assert main(["distill", "--preset", "smoke", "--run-dir", "unused", "--set", "bogus=1"]) == 2
    assert "bad override 'bogus=1'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["pseudo-labels", "person-detector"])
def test_artifact_makers_take_a_named_preset(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--preset", "no-such-preset", "--out", "unused"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"faceopt {command}" in err and "(choose from 'vtest')" in err


def test_bench_system_writes_json(tmp_path):
    import json

    from helpers import require_asset

    require_asset("obama.jpg")
    require_asset("blazeface_short_range")
    out = tmp_path / "system.json"
    assert main(["bench", "system", "--repeats", "1", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["frame"] for r in doc["table9"]] == ["480x720", "960x1440", "1600x2400", "3000x4500"]
    assert doc["table9"][0]["ratio_to_smallest"] == 1.0 and "machine" in doc


def test_an_output_folder_that_cannot_exist_is_one_line(capsys):
    assert main(["run", "pipeline_cost", "--out", "/dev/null/x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("faceopt run: error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_sigterm_unwinds_and_removes_temporary_folders(monkeypatch, capsys):
    import argparse
    import os
    import signal
    import tempfile
    from pathlib import Path

    import faceopt.cli as cli

    made = []

    def work(args):
        with tempfile.TemporaryDirectory(prefix="faceopt-test-") as tmp:
            made.append(Path(tmp))
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("SIGTERM did not interrupt the command")

    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda self, argv: argparse.Namespace(
        command="work", func=work)})())
    assert cli.main(["work"]) == 130
    assert made and not made[0].exists()
    assert signal.getsignal(signal.SIGTERM) is not cli._terminate  # the handler is put back
