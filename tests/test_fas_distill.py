"""Claim FAS-fmd's experiment: feature-map distillation from a ResNet teacher into MobileNetV2 students for PAD.

Behavioural checks of the parts (adapters, hint term, teacher targets), of one smoke cell (every method, thresholds
from validation, equal start and batches) and of the run cache (one JSON per cell, no retraining, stale errors,
code-keyed folders).
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from faceopt.antispoof import fas_distill as fd
from faceopt.antispoof import fas_runs
from faceopt.antispoof.pad_data import make_pad_splits
from faceopt.compress.distill import HintRegressor
from faceopt.recognition.runs import StaleRunError

SMOKE = fd.FAS_PRESETS["smoke"]


@pytest.fixture(autouse=True)
def _one_thread_and_no_git(monkeypatch):
    monkeypatch.setenv("FACEOPT_GIT_REV", "test-rev")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_hint_term_is_zero_at_a_match_and_grows_with_the_difference():
    torch.manual_seed(0)
    adapters = torch.nn.ModuleDict({"stride8": HintRegressor(4, 6, batch_norm=True)}).eval()
    s = torch.randn(3, 4, 5, 5)
    with torch.no_grad():
        adapted = adapters["stride8"](s)
    assert fd.hint_term(adapters, {"stride8": s}, {"stride8": adapted}).item() == pytest.approx(0.0, abs=1e-12)
    d = torch.randn_like(adapted)
    losses = [fd.hint_term(adapters, {"stride8": s}, {"stride8": adapted + eps * d}).item() for eps in (0.1, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(losses, losses[1:]))
    assert losses[2] == pytest.approx(0.5 * d.pow(2).mean().item(), rel=1e-4)  # half the mean squared difference


@pytest.mark.parametrize("size", [32, 48])
def test_adapters_map_student_stages_onto_the_teacher_stages(size):
    student, teacher = fd.build_student(0.25), fd.build_teacher(8)
    adapters = fd.build_adapters(student, teacher, list(fd.STAGES), size)
    s_tap = fd.FeatureTap(student, [fd.STAGES[k][0] for k in fd.STAGES])
    t_tap = fd.FeatureTap(teacher, [fd.STAGES[k][1] for k in fd.STAGES])
    x = torch.randn(2, 3, size, size)
    student.eval(), teacher.eval(), adapters.eval()
    with torch.no_grad():
        student(x), teacher(x)
        for stage, (s_name, t_name) in fd.STAGES.items():
            s_map, t_map = s_tap.maps[s_name], t_tap.maps[t_name]
            assert adapters[stage].conv.in_channels == s_map.shape[1]
            assert adapters[stage](s_map).shape == t_map.shape  # same stride: no resizing needed
        # MobileNetV2 and ResNet downsample at the same points
        sides = [(s_tap.maps[s].shape[-1], t_tap.maps[t].shape[-1]) for s, t in fd.STAGES.values()]
        assert all(a == b for a, b in sides)


def test_the_teacher_is_resnet18_shaped_and_much_larger_than_the_student():
    full = fd.FAS_PRESETS["full"]
    assert fd.parameter_count(fd.build_teacher(64)) == 11_177_538  # torchvision's ResNet-18 with two classes
    teacher, student = fd.build_teacher(full.teacher_width), fd.build_student(full.student_width)
    assert [len(getattr(teacher, f"layer{i}")) for i in (1, 2, 3, 4)] == [2, 2, 2, 2]
    assert fd.parameter_count(teacher) > 3 * fd.parameter_count(student)


def test_presets_cover_the_grid_and_refuse_bad_settings():
    full = fd.FAS_PRESETS["full"]
    assert len(full.seeds) >= 3 and len(full.protocols) == 5 and len(full.hint_stages) >= 1
    assert dataclasses.replace(full, seeds=(5, 6, 7)).key() == full.key()  # seeds pick cells, not their numbers
    assert dataclasses.replace(full, hint_weight=2.0).key() != full.key()
    with pytest.raises(ValueError, match="hint_stages"):
        dataclasses.replace(full, hint_stages=("stride2",))
    with pytest.raises(ValueError, match="protocols"):
        dataclasses.replace(full, protocols=("glasses",))


def test_precomputed_teacher_targets_equal_a_forward_pass():
    torch.manual_seed(0)
    teacher = fd.build_teacher(8).eval()
    x = torch.randn(5, 3, 32, 32)
    logits, maps = fd.teacher_targets(teacher, x, ["stride8"], chunk=2)
    tap = fd.FeatureTap(teacher, ["layer2"])
    with torch.no_grad():
        flipped = teacher(x.flip(-1))
    assert torch.allclose(logits[1], flipped, atol=1e-6) and torch.allclose(maps["stride8"][1], tap.maps["layer2"], atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(logits[0], teacher(x), atol=1e-6)


def test_the_batch_schedule_covers_every_image_once_per_epoch():
    steps = fd.batch_schedule(37, 2, 16, seed=3)
    assert len(steps) == 6 and min(len(i) for i, _ in steps) >= 8
    for epoch in (steps[:3], steps[3:]):
        assert sorted(np.concatenate([i for i, _ in epoch]).tolist()) == list(range(37))
    again = fd.batch_schedule(37, 2, 16, seed=3)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(steps, again))


@pytest.fixture(scope="module")
def smoke_cell():
    """One smoke cell (print held out) with every call of equal_error_threshold recorded."""
    splits = make_pad_splits(SMOKE.data)
    calls = []
    real = fd.equal_error_threshold

    def spy(bonafide, attacks, types):
        t = real(bonafide, attacks, types)
        calls.append((np.asarray(bonafide).copy(), np.asarray(attacks).copy(), np.asarray(types).copy(), t))
        return t

    mp = pytest.MonkeyPatch()
    mp.setattr(fd, "equal_error_threshold", spy)
    try:
        with torch.random.fork_rng():
            record = fd.run_cell(SMOKE, splits, "print", 0)
    finally:
        mp.undo()
    return splits, record, calls


def test_the_smoke_cell_reports_every_method(smoke_cell):
    _, record, _ = smoke_cell
    assert list(record["models"]) == ["teacher", *fd.FAS_METHODS]
    json.dumps(record, allow_nan=False)  # plain JSON values only
    for m in record["models"].values():
        assert 0.0 <= m["acer"] <= 1.0 and 0.0 <= m["auc"] <= 1.0
        assert m["acer"] == pytest.approx((m["apcer"] + m["bpcer"]) / 2)
        assert set(m["apcer_per_type"]) == {"print"}  # only the held-out attack is tested
        assert m["params"] > 0 and m["train_seconds"] >= 0
    students = [record["models"][k] for k in fd.FAS_METHODS]
    assert record["models"]["teacher"]["params"] > students[0]["params"]
    assert {s["params"] for s in students} == {students[0]["params"]}
    assert record["counts"]["train"].get("print", 0) == 0 and set(record["counts"]["test"]) == {"bonafide", "print"}


def test_students_of_a_cell_start_equal_and_see_the_same_batches(smoke_cell):
    _, record, _ = smoke_cell
    students = [record["models"][k] for k in fd.FAS_METHODS]
    assert len({s["init_digest"] for s in students}) == 1
    assert len({s["batch_digest"] for s in students}) == 1
    assert len({(s["epochs"], s["steps"]) for s in students}) == 1
    assert [s["adapter_params"] > 0 for s in students] == [False, False, True, True]
    # the same initial weights outside a cell, too
    torch.manual_seed(fd._seed(0, "student-init"))
    a = fd.build_student(0.25)
    torch.manual_seed(fd._seed(0, "student-init"))
    b = fd.build_student(0.25)
    assert fd.state_digest(a) == fd.state_digest(b) == students[0]["init_digest"]


def test_thresholds_come_from_the_validation_split(smoke_cell):
    splits, record, calls = smoke_cell
    val = splits.val.subset(splits.val.types != "print")
    n_live, n_attack = int((val.types == "bonafide").sum()), int((val.types != "bonafide").sum())
    assert n_live != int((splits.test.types == "bonafide").sum())  # validation and test sizes tell them apart
    assert len(calls) == 1 + len(fd.FAS_METHODS)
    for (bonafide, attacks, types, t), model in zip(calls, record["models"].values()):
        assert len(bonafide) == n_live and len(attacks) == n_attack and "print" not in set(types.tolist())
        assert model["threshold"] == t


def test_run_fas_writes_one_record_per_cell_and_reuses_them(tmp_path, monkeypatch, capsys):
    preset = dataclasses.replace(SMOKE, protocols=(None, "mask"))
    with pytest.raises(StaleRunError, match="python -m faceopt.antispoof.fas_runs --preset smoke"):
        fas_runs.run_fas(preset, tmp_path, train_missing=False)
    lines: list[str] = []
    with torch.random.fork_rng():
        folder = fas_runs.run_fas(preset, tmp_path, log=lines.append)
    assert folder == fas_runs.run_folder(preset, tmp_path) and folder.name == f"smoke-{preset.key()}"
    assert sorted(p.name for p in (folder / "runs").iterdir()) == ["mask-seed0.json", "seen-seed0.json"]
    assert len(lines) == 2 and lines[0].startswith("[1/2] seen-seed0")
    runs = fas_runs.load_fas_runs(folder)
    assert set(runs) == {"seen-seed0", "mask-seed0"}
    rec = runs["mask-seed0"]
    assert rec["format"] == fas_runs.FORMAT and rec["protocol"] == "mask" and rec["held_out"] == "mask"
    assert rec["git_rev"] == "test-rev" and rec["torch"] == torch.__version__ and rec["machine"]
    assert rec["code"] == fd.code_fingerprint(fd.FAS_CODE) and rec["data_seed"] == preset.data.seed
    assert runs["seen-seed0"]["held_out"] is None and set(runs["seen-seed0"]["models"]["student"]["apcer_per_type"]) == {
        "print", "replay", "cutout", "mask"}

    def no_training(*args, **kwargs):
        raise AssertionError("a cached cell was trained again")

    monkeypatch.setattr(fd, "run_cell", no_training)
    assert fas_runs.run_fas(preset, tmp_path, train_missing=False) == folder
    monkeypatch.setitem(fd.FAS_PRESETS, "smoke", preset)
    capsys.readouterr()
    assert fas_runs.main(["--preset", "smoke", "--run-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(folder)


def test_changed_code_gives_a_new_folder(tmp_path, monkeypatch):
    before = fas_runs.run_folder(SMOKE, tmp_path)
    monkeypatch.setattr(fd, "code_fingerprint", lambda modules: "0" * 64)
    after = fas_runs.run_folder(SMOKE, tmp_path)
    assert after != before and after.parent == before.parent and after.name.startswith("smoke-")
