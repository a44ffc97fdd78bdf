"""faceopt.checkpoint: a tampered or foreign last.pt gives one CheckpointError naming it (issue 15's findings)."""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from faceopt.checkpoint import MAX_NESTING, CheckpointError, check_torch_archive, load_checkpoint, resume_fields
from faceopt.pickle_nesting import first_deep_nesting
from faceopt.train import TrainConfig, train


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.fc(x), y)


def _cfg(folder: Path, steps: int = 4) -> TrainConfig:
    return TrainConfig(max_steps=steps, batch_size=4, device="cpu", progress=False, checkpoint_dir=str(folder))


@pytest.fixture()
def ckpt(tmp_path: Path) -> Path:
    """A real ``last.pt`` at step 4 (of 8 in the resumed run)."""
    torch.manual_seed(0)
    train(_Net(), _data(), _cfg(tmp_path))
    return tmp_path / "last.pt"


def _resume(path: Path) -> None:
    torch.manual_seed(0)
    train(_Net(), _data(), _cfg(path.parent, steps=8))


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)


def _rng(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        state["rng"][0][key] = value
    return change


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        state[key] = value
    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda state: state.pop(key)


def _rewrite_member(path: Path, suffix: str, body: bytes) -> None:
    """Replace the archive member ending with ``suffix`` by ``body`` (the rest stays as torch.save wrote it)."""
    members = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            members[info.filename] = body if info.filename.endswith(suffix) else z.read(info)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())


def test_a_real_checkpoint_resumes(ckpt: Path) -> None:
    state = load_checkpoint(ckpt)
    assert state["step"] == 4
    step, history, _, rngs = resume_fields(state, ckpt, 8)
    assert step == 4 and len(rngs) == 1 and [s for s, _ in history] == [4]
    _resume(ckpt)


# The findings of issue 15: each of these once ended in a raw exception (or a crash, or was accepted).
FIELD_DAMAGE = {
    "step=inf (OverflowError)": _set("step", float("inf")),
    "step=10**12 (was accepted)": _set("step", 10 ** 12),
    "step a float": _set("step", 2.5),
    "no step (KeyError)": _drop("step"),
    "no rng (KeyError)": _drop("rng"),
    "rng empty (IndexError)": _set("rng", []),
    "loss history with an infinite step (OverflowError)": _set("loss_history", [[float("inf"), 1.0]]),
    "numpy_pos=10**12 (OverflowError)": _rng("numpy_pos", 10 ** 12),
    "numpy words negative (OverflowError)": _rng("numpy", torch.full((624,), -1, dtype=torch.int64)),
    "python words out of range": _rng("python", torch.full((625,), 2 ** 40, dtype=torch.int64)),
    "torch RNG state too short": _rng("torch", torch.zeros(10, dtype=torch.uint8)),
    "numpy_has_gauss a tensor (RuntimeError)": _rng("numpy_has_gauss", torch.zeros(3)),
    "model state not tensors": _set("model", {"fc.weight": "x"}),
}


@pytest.mark.parametrize("damage", list(FIELD_DAMAGE), ids=list(FIELD_DAMAGE))
def test_damaged_fields_give_one_error_naming_the_file(ckpt: Path, damage: str) -> None:
    _edit(ckpt, FIELD_DAMAGE[damage])
    with pytest.raises(CheckpointError, match=re.escape(str(ckpt))):
        _resume(ckpt)


def test_big_endian_byteorder_is_refused(ckpt: Path) -> None:
    """A little-endian file relabelled big-endian decodes to wrong numbers: the RNG ranges catch it."""
    _rewrite_member(ckpt, "/byteorder", b"big")
    with pytest.raises(CheckpointError, match=re.escape(str(ckpt))):
        _resume(ckpt)


def test_deeply_nested_pickle_is_refused_before_torch_load(ckpt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """200,000 nested tuples used as a dict key crashed torch.load (signal 11): refused unread."""
    _rewrite_member(ckpt, "/data.pkl", b"\x80\x04}" + b"N" + b"\x85" * 200_000 + b"Ns.")

    def never(*a: Any, **k: Any) -> None:
        raise AssertionError("torch.load must not see this file")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(CheckpointError, match=r"nests tuples 101 deep.*" + re.escape("start afresh")):
        load_checkpoint(ckpt)


def test_oversize_pickle_is_refused_unread(ckpt: Path) -> None:
    with pytest.raises(CheckpointError, match="over the 100 a checkpoint needs"):
        check_torch_archive(ckpt, max_pickle_bytes=100)


@pytest.mark.parametrize("body", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_files_that_are_not_archives(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(body)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_checkpoint(path)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "none.pt"))):
        load_checkpoint(tmp_path / "none.pt")


def test_person_detector_refuses_a_deep_pickle(ckpt: Path) -> None:
    from faceopt.detection.person_training import load_person_detector

    _rewrite_member(ckpt, "/data.pkl", b"\x80\x04}" + b"N" + b"\x85" * 200_000 + b"Ns.")
    with pytest.raises(ValueError, match=re.escape(str(ckpt)) + ".*faceopt person-detector"):
        load_person_detector(ckpt)


# ----------------------------------------------------------------------------- pickle nesting

def test_nesting_counts_tuples_through_the_memo() -> None:
    import pickle

    t: Any = ()
    for _ in range(30):
        t = (t, t)   # the second reference comes from the memo
    data = pickle.dumps({t: 1}, protocol=2)
    assert first_deep_nesting(data, 29) == (30, first_deep_nesting(data, 29)[1])   # 30 levels, () itself counts 0
    assert first_deep_nesting(data, 30) is None
    assert first_deep_nesting(pickle.dumps([[[[1]]]] * 3), 1) is None   # lists do not count


def test_nesting_cap_is_above_what_a_checkpoint_uses(ckpt: Path) -> None:
    with zipfile.ZipFile(ckpt) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    assert first_deep_nesting(data, 8) is None and MAX_NESTING >= 100


def test_load_torch_file_reads_weights_and_names_the_fix(tmp_path: Path) -> None:
    from faceopt.checkpoint import load_torch_file

    good = tmp_path / "w.pt"
    torch.save({"w": torch.arange(4.0)}, good)
    assert torch.equal(load_torch_file(good, mmap=True)["w"], torch.arange(4.0))
    bad = tmp_path / "cache.pt"
    torch.save({"w": torch.arange(4.0)}, bad)
    _rewrite_member(bad, "/data.pkl", b"\x80\x04}" + b"N" + b"\x85" * 5_000 + b"Ns.")
    with pytest.raises(CheckpointError, match=re.escape(str(bad)) + ".*delete it to rebuild"):
        load_torch_file(bad, fix="delete it to rebuild")
    bad.write_bytes(good.read_bytes()[:-30])   # truncated: zipfile or torch notices
    with pytest.raises(CheckpointError, match=re.escape(str(bad))):
        load_torch_file(bad, fix="delete it to rebuild")


def test_nist_teacher_cache_that_is_not_weights_is_one_error(tmp_path: Path) -> None:
    from faceopt.recognition import nist_experiments as nx
    from faceopt.recognition.nist_runs import PRESETS, _load_teacher

    preset = PRESETS["smoke"]
    path = tmp_path / f"teacher-resnet50-{preset.key()}.pt"
    torch.save({"backbone": {"x": torch.zeros(1)}, "head": {}}, path)
    assert "resnet50" in nx.TEACHERS
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*train the teacher again"):
        _load_teacher(preset, tmp_path, "resnet50")
