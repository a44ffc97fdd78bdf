"""The PTA MobileNetV2 experiment: run-time configurations, BN recalibration, ONNX parity, the budget table, the cache."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from faceopt.antispoof import pta_experiments as px
from faceopt.antispoof import pta_runs
from faceopt.models.pta import PTAMobileNetV2, extract_subnet, flops_and_params, recalibrate_bn
from faceopt.recognition.runs import StaleRunError

SMOKE = px.PTA_PRESETS["smoke"]


def _tiny(seed: int = 0) -> PTAMobileNetV2:
    torch.manual_seed(seed)
    return PTAMobileNetV2(num_classes=2, width=0.35, input_size=32).eval()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_one_set_of_weights_gives_three_configs_of_different_cost():
    model = _tiny()
    specs = ("max", "min/max", "mid", "min", "random0")
    configs = {s: px.resolve_config(model, s) for s in specs}
    flops = {s: flops_and_params(extract_subnet(model, c), 32).flops for s, c in configs.items()}
    assert flops["max"] > flops["mid"] > flops["min"]
    assert len(set(flops.values())) >= 3
    half = len(model.blocks) // 2
    assert configs["min/max"][:half] == px.resolve_config(model, "min")[:half]
    assert configs["min/max"][half:] == px.resolve_config(model, "max")[half:]
    assert px.resolve_config(model, "random0") == px.resolve_config(_tiny(1), "random0")  # the same in every run
    with pytest.raises(ValueError):
        px.resolve_config(model, "fast")


def test_switching_configuration_changes_outputs_not_weights():
    model = _tiny()
    before = _state(model)
    x = torch.randn(2, 3, 32, 32)
    outs = {}
    with torch.no_grad():
        for spec in ("max", "mid", "min"):
            model.set_config(px.resolve_config(model, spec))
            outs[spec] = model(x)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.allclose(outs["max"], outs["min"]) and not torch.allclose(outs["mid"], outs["min"])


def test_recalibrating_bn_changes_only_bn_running_stats():
    model = _tiny()
    before = _state(model)
    recalibrate_bn(model, "min", torch.randn(16, 3, 32, 32), batches=2)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "recalibration changed nothing"
    assert all(k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked") for k in changed)
    names = {k.rsplit(".", 1)[0] for k in changed}
    bns = {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert names <= bns
    min_branch = {f"features.{i}.branches.{b.preset('min')}" for i, b in enumerate(model.features) if hasattr(b, "preset")}
    touched_branches = {n.split(".conv")[0] for n in names if ".branches." in n}
    assert touched_branches <= min_branch  # only the active (min) branches


def test_exported_subnet_matches_pytorch(tmp_path):
    model = _tiny()
    recalibrate_bn(model, "mid", torch.randn(16, 3, 32, 32))
    subnet = extract_subnet(model, "mid").eval()
    x = torch.randn(3, 3, 32, 32)
    check = px._onnx_check(subnet, tmp_path / "mid.onnx", x, 32)
    assert check["parity_max_abs"] < 1e-4 and check["bytes"] > 0
    with torch.no_grad():
        torch.testing.assert_close(subnet(x), model(x), rtol=0, atol=1e-5)


def _model(kind: str, spec: str | None, val_acer: float, test_acer: float, latency: float) -> dict[str, Any]:
    return {"kind": kind, "spec": spec, "width": 1.0, "flops": 1e6, "params": 10,
            "val": {"acer": val_acer}, "test": {"acer": test_acer, "accuracy": 1 - test_acer, "auc": 0.9},
            "latency_ms": {"median_ms": latency, "p25_ms": latency * 0.95, "p75_ms": latency * 1.05}}


def test_budget_table_picks_by_validation_not_test():
    # pta:a is best on validation, pta:b on test; both fit 2 ms. pta:c is best on both but too slow.
    record = {"seed": 0, "wall_time": {"pta_total_s": 1.0, "baselines_total_s": 2.0, "ratio": 0.5},
              "models": {"pta:a": _model("pta", "a", 0.10, 0.30, 1.0), "pta:b": _model("pta", "b", 0.20, 0.05, 1.5),
                         "pta:c": _model("pta", "c", 0.01, 0.01, 5.0),
                         "mobilenetv2:w0.5": _model("baseline", None, 0.15, 0.25, 1.2),
                         "mobilenetv2:w1": _model("baseline", None, 0.05, 0.02, 4.0)}}
    table = px.latency_budget_table([record], [0.5, 2.0, 10.0])
    assert table["pta_model"].tolist() == [None, "pta:a", "pta:c"]
    assert table.loc[1, "pta_test_acer"] == pytest.approx(0.30)
    assert table["baseline_model"].tolist() == [None, "mobilenetv2:w0.5", "mobilenetv2:w1"]
    assert np.isnan(table.loc[0, "pta_test_acer"])
    checks = px.claim_checks({"seed0": record})
    assert checks["train_time"]["holds"] and checks["runtime"]["holds"]
    assert not checks["better"]["holds"]  # at w0.5's latency, pta:a (0.30) loses to 0.25


@pytest.fixture(scope="module")
def smoke_folder(tmp_path_factory) -> tuple[Path, Path]:
    run_dir = tmp_path_factory.mktemp("pta")
    lines: list[str] = []
    folder = pta_runs.run_pta(SMOKE, run_dir, log=lines.append)
    assert any("seed0" in line for line in lines)
    return run_dir, folder


def test_smoke_seed_runs(smoke_folder):
    _, folder = smoke_folder
    record = pta_runs.load_pta_runs(folder)["seed0"]
    models = record["models"]
    assert {f"pta:{s}" for s in SMOKE.configs} | {f"mobilenetv2:w{w:g}" for w in SMOKE.baseline_widths} == set(models)
    for m in models.values():
        assert 0.0 <= m["test"]["acer"] <= 1.0 and 0.0 <= m["test"]["accuracy"] <= 1.0
        assert m["onnx"]["parity_max_abs"] < 1e-3
        for key in ("latency_ms", "latency_cold_ms"):
            assert 0 < m[key]["p25_ms"] <= m[key]["median_ms"] <= m[key]["p75_ms"]
        if m["kind"] == "pta":
            assert m["torch_switch_latency_ms"]["median_ms"] > 0 and m["recalibrate_s"] > 0
        assert m["flops"] > 0 and m["params"] > 0
    assert models["pta:max"]["flops"] == models[f"mobilenetv2:w{SMOKE.width:g}"]["flops"]  # max is MobileNetV2
    assert models["pta:max"]["flops"] > models["pta:mid"]["flops"] > models["pta:min"]["flops"]
    wall = record["wall_time"]
    assert wall["pta_total_s"] > 0 and wall["baselines_total_s"] == pytest.approx(sum(wall["baselines_s"].values()))
    for key in ("format", "git_rev", "machine", "torch", "code", "preset", "seconds"):
        assert key in record
    assert len(px.latency_budget_table([record], [1e9])) == 1


def test_run_pta_caches_one_json_per_seed(smoke_folder, monkeypatch):
    run_dir, folder = smoke_folder
    assert folder == pta_runs.run_folder(SMOKE, run_dir)
    assert sorted(p.name for p in (folder / "runs").glob("*.json")) == [f"seed{s}.json" for s in SMOKE.seeds]
    assert json.loads((folder / "config.json").read_text())["preset"]["name"] == "smoke"

    def no_training(*args, **kwargs):
        raise AssertionError("a cached seed was trained again")

    monkeypatch.setattr(px, "run_seed", no_training)
    monkeypatch.setattr(pta_runs, "make_pad_splits", no_training)
    assert pta_runs.run_pta(SMOKE, run_dir, train_missing=False) == folder


def test_missing_run_raises_stale_with_the_command(tmp_path):
    with pytest.raises(StaleRunError, match=r"python -m faceopt\.antispoof\.pta_runs --preset smoke --run-dir"):
        pta_runs.run_pta(SMOKE, tmp_path, train_missing=False)
    assert not any(tmp_path.iterdir())


def test_changed_code_fingerprint_gives_a_new_folder(monkeypatch, tmp_path):
    before = pta_runs.run_folder(SMOKE, tmp_path)
    monkeypatch.setattr(px, "code_fingerprint", lambda modules: "0" * 64)
    after = pta_runs.run_folder(SMOKE, tmp_path)
    assert after != before and after.parent == before.parent
    monkeypatch.undo()
    assert pta_runs.run_folder(SMOKE, tmp_path) == before
