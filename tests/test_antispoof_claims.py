"""Page 08's claims and tables from hand-made records: the parts pair seeds and point the thesis's way."""
from __future__ import annotations

import math

import pytest

from faceopt import results
from faceopt.antispoof import claims, fas_tables

METHODS = ("teacher", "student", "kd", "hints", "hints_kd")


def _cell(held_out, seed, acer):
    models = {m: {"acer": acer[m], "apcer": acer[m], "bpcer": acer[m], "auc": 0.9, "val_acer": acer[m], "params": 1,
                  "train_seconds": 1.0, "apcer_per_type": {"print": acer[m]}} for m in METHODS}
    return {"held_out": held_out, "seed": seed, "models": models}


def _fas(unseen_gap=0.05, keep_gap=0.01):
    runs = {}
    for seed in (0, 1, 2):
        for held_out in (None, "print", "replay"):
            base = 0.2 + 0.01 * seed
            acer = {"teacher": base, "student": base + 0.1, "kd": base + 0.08, "hints_kd": base + 0.07,
                    "hints": base + (keep_gap if held_out is None else 0.1 - unseen_gap - 0.002 * seed)}
            runs[f"{held_out}-{seed}"] = _cell(held_out, seed, acer)
    return runs


def test_long_and_summary_tables() -> None:
    long = fas_tables.long_table(_fas())
    assert len(long) == 3 * 3 * 5 and list(dict.fromkeys(long["protocol"]))[0] == "seen"
    table = fas_tables.summary_table(long)
    assert list(table.columns) == ["seen", "unseen print", "unseen replay", "unseen mean"]
    assert table.loc["teacher (ResNet)", "seen"] == "21.0 ± 1.0"


def test_unseen_differences_pair_seeds() -> None:
    long = fas_tables.long_table(_fas(unseen_gap=0.05))
    d = fas_tables.unseen_differences(long, better="hints", worse="student")
    assert d.tolist() == pytest.approx([0.05, 0.052, 0.054])


def test_fas_parts_follow_the_formula() -> None:
    parts = claims.fas_parts(fas_tables.long_table(_fas(unseen_gap=0.05, keep_gap=0.01)))
    assert parts[0].effect == pytest.approx(0.052) and parts[0].stderr == pytest.approx(0.002 / math.sqrt(3))
    assert parts[1].effect == pytest.approx(claims.KEEP_MARGIN - 0.01)
    assert results.decide(parts) == "reproduced"
    worse = claims.fas_parts(fas_tables.long_table(_fas(unseen_gap=-0.05, keep_gap=0.05)))
    assert worse[0].effect < 0 and worse[1].effect < 0
    assert results.decide(worse) == "not-reproduced"


def _pta_record(seed, pta_acer, base_acer, pta_s=70.0, base_s=(30.0, 35.0, 40.0)):
    def model(kind, spec, width, acer, ms, flops):
        return {"kind": kind, "spec": spec, "width": width, "flops": flops, "params": 1,
                "val": {"acer": acer}, "test": {"acer": acer, "accuracy": 1 - acer, "auc": 0.9},
                "latency_ms": {"median_ms": ms, "p25_ms": ms * 0.98, "p75_ms": ms * 1.02, "n": 10}}
    models = {"pta:min": model("pta", "min", 1.0, pta_acer["min"], 0.1 * (1 + 0.01 * seed), 1e7),
              "pta:mid": model("pta", "mid", 1.0, pta_acer["mid"], 0.3, 3e7),
              "pta:max": model("pta", "max", 1.0, pta_acer["max"], 0.6, 5e7),
              "mobilenetv2:w0.5": model("baseline", None, 0.5, base_acer[0], 0.2, 2e7),
              "mobilenetv2:w1": model("baseline", None, 1.0, base_acer[1], 0.6, 5e7)}
    walls = {"pta_train_s": pta_s, "pta_recalibrate_s": 1.0, "pta_total_s": pta_s + 1.0,
             "baselines_s": {"0.5": base_s[0], "1": base_s[1]}, "baselines_total_s": base_s[0] + base_s[1],
             "ratio": (pta_s + 1.0) / (base_s[0] + base_s[1])}
    return {"seed": seed, "models": models, "wall_time": walls}


def test_pta_parts_pair_each_baseline_with_the_configuration_validation_picks() -> None:
    records = [_pta_record(s, {"min": 0.30 - 0.01 * s, "mid": 0.5, "max": 0.25}, (0.35, 0.30)) for s in (0, 1, 2)]
    parts = claims.pta_parts(records)
    better = parts["PTA-better"]
    # w0.5 (0.2 ms) only admits pta:min (0.1 ms); w1 (0.6 ms) admits every configuration and validation picks max
    assert [p.name.split(": ")[-1] for p in better] == ["pta:min", "pta:max"]
    assert better[0].effect == pytest.approx(0.06) and better[1].effect == pytest.approx(0.05)
    runtime = parts["PTA-runtime"]
    assert runtime[0].effect == 1 and runtime[1].effect == pytest.approx(math.log(6.0), abs=0.02)
    train = parts["PTA-train-time"][0]
    assert train.effect == pytest.approx(math.log(65 / 71)) and train.effect < 0  # PTA slower here: not reproduced
    assert results.decide(parts["PTA-train-time"]) == "not-reproduced"
