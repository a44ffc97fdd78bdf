"""faceopt.train: schedule, frozen parameters, weight decay, determinism, checkpoints, torchrun."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from faceopt.train import CheckpointError, DemoNet, TrainConfig, load_checkpoint, lr_at, main, state_checksum, train


class Tiny(nn.Module):
    """Linear embedding + dropout + frozen class centres; ``forward(x, y)`` is the loss."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.drop = nn.Dropout(0.3)
        self.centres = nn.Parameter(torch.randn(3, 4), requires_grad=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.drop(self.fc(x)) @ self.centres.T, y)


def _data(n: int = 20) -> TensorDataset:
    g = torch.Generator().manual_seed(123)
    return TensorDataset(torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g))


def _model(seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    return Tiny()


def _cfg(**kw) -> TrainConfig:
    base = dict(max_steps=6, batch_size=4, device="cpu", progress=False, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_config_needs_a_length() -> None:
    with pytest.raises(ValueError, match="epochs or max_steps"):
        TrainConfig()
    with pytest.raises(ValueError, match="increasing"):
        TrainConfig(max_steps=3, milestones=(5, 2))


def test_lr_schedule_divides_by_ten_at_milestones() -> None:
    lrs: list[float] = []
    train(_model(), _data(), _cfg(milestones=(2, 4)), on_step=lambda s, loss, lr: lrs.append(lr))
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    cfg = _cfg(milestones=(1, 2), milestone_unit="epochs")
    assert [lr_at(s, cfg, steps_per_epoch=5) for s in (0, 4, 5, 9, 10)] == \
        pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])


def test_frozen_parameters_stay_frozen() -> None:
    model = _model()
    centres, weight = model.centres.detach().clone(), model.fc.weight.detach().clone()
    result = train(model, _data(), _cfg())
    assert torch.equal(model.centres, centres) and not model.centres.requires_grad
    assert not torch.equal(model.fc.weight, weight)
    assert result.steps == 6 and len(result.loss_history) == 6 and result.images_per_s > 0


def test_weight_decay_and_momentum_match_a_manual_sgd_step() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(3, 2).double()
    x, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    ref = [p.detach().clone() for p in lin.parameters()]
    loss = nn.functional.mse_loss(lin(x), y)
    grads = torch.autograd.grad(loss, list(lin.parameters()))
    # first SGD step: buffer = g + wd * p, p <- p - lr * buffer
    expected = [p - 0.1 * (g + 5e-4 * p) for p, g in zip(ref, grads)]
    no_decay = [p - 0.1 * g for p, g in zip(ref, grads)]

    def mse(model: nn.Module, batch) -> torch.Tensor:
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    train(lin, TensorDataset(x, y), _cfg(max_steps=1, batch_size=8), loss_fn=mse)
    for p, e, n in zip(lin.parameters(), expected, no_decay):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-12)
        assert (p.detach() - n).abs().max() > 1e-7  # decay made a measurable difference


def test_same_seed_same_weights() -> None:
    a, b, c = _model(), _model(), _model()
    train(a, _data(), _cfg(seed=1, deterministic=True))
    assert not torch.are_deterministic_algorithms_enabled()  # restored afterwards
    train(b, _data(), _cfg(seed=1))
    train(c, _data(), _cfg(seed=2))
    assert _same(a, b)
    assert not _same(a, c)


class _Stop(Exception):
    pass


def test_resume_continues_exactly(tmp_path: Path) -> None:
    cfg = dict(milestones=(4,), seed=3)  # 5 steps per epoch: the resumed part crosses an epoch
    whole = _model()
    full = train(whole, _data(), _cfg(**cfg))

    def stop_at_3(step: int, loss: float, lr: float) -> None:
        if step == 3:
            raise _Stop

    ckpt = tmp_path / "ckpt"
    with pytest.raises(_Stop):
        train(_model(), _data(), _cfg(checkpoint_dir=str(ckpt), checkpoint_every=3, **cfg),
              on_step=stop_at_3)
    assert load_checkpoint(ckpt / "last.pt")["step"] == 3
    resumed = _model(seed=99)  # weights come from the checkpoint
    result = train(resumed, _data(), _cfg(checkpoint_dir=str(ckpt), checkpoint_every=3, **cfg))
    assert result.resumed_from == 3 and result.steps == 6
    assert _same(whole, resumed)
    assert [s for s, _ in result.loss_history] == [1, 2, 3, 4, 5, 6]
    assert result.loss_history == full.loss_history  # bit-identical losses, too


def test_checkpoint_contents_and_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    result = train(model, _data(), _cfg(checkpoint_dir=str(tmp_path), checkpoint_every=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left
    assert result.checkpoint == tmp_path / "last.pt"
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["step"] == 6 and state["config"]["batch_size"] == 4
    assert {"model", "optimizer", "scheduler", "rng"} <= state.keys()
    assert isinstance(state["rng"][0]["torch"], torch.Tensor)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state["model"].items())

    before = (tmp_path / "last.pt").read_bytes()

    def broken_save(obj, f, *a, **k):   # writes half a file, then fails
        if hasattr(f, "write"):
            f.write(b"half a checkpoint")
        else:
            Path(f).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        train(_model(), _data(), _cfg(max_steps=8, checkpoint_dir=str(tmp_path)))
    assert (tmp_path / "last.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_corrupt_checkpoint_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=str(bad).replace("\\", "\\\\")):
        train(_model(), _data(), _cfg(checkpoint_dir=str(tmp_path)))


def test_demo_cli_single_process(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path)])  # --demo is required
    assert main(["--demo", "--max-steps", "2", "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2
    model = DemoNet()
    model.load_state_dict(load_checkpoint(tmp_path / "last.pt")["model"])
    assert state_checksum(model) == (tmp_path / "weights-rank0.sha256").read_text().strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():
        pytest.skip("torchrun not found")
    out = tmp_path / "demo"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "FACEOPT_QUIET": "1"}
    cmd += ["--nnodes=1", "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
            "-m", "faceopt.train", "--demo", "--max-steps", "4", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    state = load_checkpoint(out / "last.pt")
    assert state["step"] == 4 and state["world_size"] == 2 and len(state["rng"]) == 2
    r0 = (out / "weights-rank0.sha256").read_text().strip()
    r1 = (out / "weights-rank1.sha256").read_text().strip()
    assert r0 == r1
    model = DemoNet()
    model.load_state_dict(state["model"])
    assert state_checksum(model) == r0


def test_callbacks_see_every_step_log_and_checkpoint(tmp_path: Path) -> None:
    from faceopt.train import Callback

    events: list[tuple] = []

    class Record(Callback):
        def on_step(self, run, loss, lr):
            events.append(("step", run.step, round(lr, 6)))

        def on_log(self, run, mean_loss, lr):
            events.append(("log", run.step, run.history[-1] == (run.step, mean_loss)))

        def on_checkpoint(self, run, path):
            events.append(("ckpt", run.step, path == tmp_path / "last.pt" and path.exists()))

    steps: list[int] = []
    train(_model(), _data(), _cfg(log_every=2, checkpoint_every=3, checkpoint_dir=str(tmp_path),
                                  milestones=(4,)),
          callbacks=[Record()], on_step=lambda s, loss, lr: steps.append(s))
    assert steps == [1, 2, 3, 4, 5, 6]               # the on_step function argument still works
    assert [e for e in events if e[0] == "step"] == [("step", k, 0.1 if k <= 4 else 0.01) for k in range(1, 7)]
    assert [e for e in events if e[0] == "log"] == [("log", 2, True), ("log", 4, True), ("log", 6, True)]
    assert [e for e in events if e[0] == "ckpt"] == [("ckpt", 3, True), ("ckpt", 6, True)]
    # within a step: log, then checkpoint, then the step hook
    assert events.index(("log", 6, True)) < events.index(("ckpt", 6, True)) < events.index(("step", 6, 0.01))
    # the callback does not change the training: same weights as without it
    a, b = _model(), _model()
    train(a, _data(), _cfg())
    train(b, _data(), _cfg(), callbacks=[Record()])
    assert _same(a, b)
