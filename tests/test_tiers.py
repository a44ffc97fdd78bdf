"""Device tiers: the margin warm-up, the tier rule, the cached runs, their tables and claims."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from faceopt.recognition.losses import CombinedMarginLoss
from faceopt.recognition.margin_warmup import MarginWarmupLoss
from faceopt.recognition.runs import StaleRunError
from faceopt.results import decide
from faceopt.system import tier_runs, tier_tables
from faceopt.system.cost import LatencyStats
from faceopt.system.deploy_claims import t9_part
from faceopt.system.tier_choice import choose_tier
from faceopt.system.tiers import CANDIDATES, TIERS, Candidate, build_backbone, build_loss, resize_images

# ----------------------------------------------------------------------------- margin warm-up

def test_margin_grows_linearly_then_stays():
    loss = MarginWarmupLoss(s=32, m_start=0.1, m_end=0.5, warmup_steps=100)
    assert [round(float(loss.margin_at(t)), 6) for t in (0, 25, 50, 100, 1000)] == [0.1, 0.2, 0.3, 0.5, 0.5]
    assert float(MarginWarmupLoss(s=64, m_start=0.5, m_end=0.5, warmup_steps=0).margin_at(0)) == 0.5


def test_warmup_loss_is_arcface_at_the_current_margin_and_counts_training_steps():
    torch.manual_seed(0)
    cos, y = torch.rand(6, 10) * 2 - 1, torch.randint(0, 10, (6,))
    loss = MarginWarmupLoss(s=32, m_start=0.1, m_end=0.5, warmup_steps=4).train()
    for step in range(6):
        m = 0.1 + 0.4 * min(1.0, step / 4)
        want = CombinedMarginLoss(32, 1.0, m, 0.0)(cos, y)
        assert torch.allclose(loss(cos, y), want, atol=1e-6), step
    assert int(loss.steps_seen) == 6 and "steps_seen" in loss.state_dict()
    loss.eval()
    loss(cos, y)
    assert int(loss.steps_seen) == 6  # evaluation does not advance the schedule


def test_warmup_loss_takes_bf16_cosines_to_float32():
    cos, y = (torch.rand(4, 5) * 2 - 1), torch.tensor([0, 1, 2, 3])
    loss = MarginWarmupLoss(warmup_steps=0)
    assert loss(cos.bfloat16(), y).dtype == torch.float32


def test_bad_margins_are_refused():
    with pytest.raises(ValueError, match="m_start <= m_end"):
        MarginWarmupLoss(m_start=0.6, m_end=0.5)
    with pytest.raises(ValueError, match="warmup_steps"):
        MarginWarmupLoss(warmup_steps=-1)


# ----------------------------------------------------------------------------- candidates

def test_candidates_and_losses_follow_the_recipe():
    preset = tier_runs.PRESETS["smoke"]
    assert {t: c.name for t, c in TIERS.items()} == {"S": "recipe-112", "A": "recipe-96", "B": "light-96"}
    paper, recipe = build_loss(Candidate("paper", 112), preset), build_loss(Candidate("recipe", 112), preset)
    assert paper.arcface.s == 64 and float(paper.margin_at(0)) == 0.5
    assert recipe.arcface.s == 32 and math.isclose(float(recipe.margin_at(0)), 0.1, rel_tol=1e-6)
    for c in CANDIDATES:
        out = build_backbone(c, preset).eval()(torch.zeros(1, 3, c.size, c.size))
        assert out.shape == (1, preset.embedding_size), c.name
    light = sum(p.numel() for p in build_backbone(Candidate("light", 112), preset).parameters())
    full = sum(p.numel() for p in build_backbone(Candidate("recipe", 112), preset).parameters())
    assert 0.3 < light / full < 0.5


def test_resize_keeps_uint8_layout():
    x = torch.randint(0, 256, (3, 3, 112, 112), dtype=torch.uint8)
    y = resize_images(x, 96)
    assert y.shape == (3, 3, 96, 96) and y.dtype == torch.uint8
    assert resize_images(x, 112) is x
    flat = torch.full((1, 3, 112, 112), 77, dtype=torch.uint8)
    assert (resize_images(flat, 96) == 77).all()


# ----------------------------------------------------------------------------- the tier rule

ROWS = [{"candidate": "S", "accuracy": 80.0, "ms": 2.0}, {"candidate": "A", "accuracy": 78.0, "ms": 1.0},
        {"candidate": "B", "accuracy": 78.0, "ms": 0.5}]


def test_choose_tier_takes_the_most_accurate_that_fits():
    assert choose_tier(ROWS, 5.0)["candidate"] == "S"
    assert choose_tier(ROWS, 1.5)["candidate"] == "B"  # A and B tie on accuracy: the faster
    assert choose_tier(ROWS, 0.4) is None
    with pytest.raises(ValueError, match="budget_ms"):
        choose_tier(ROWS, 0)


# ----------------------------------------------------------------------------- cached runs

@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiers")
    preset = tier_runs.PRESETS["smoke"]
    folder = tier_runs.run_tiers(preset, root / "runs", device="cpu", cache_dir=root / "cache", log=lambda m: None)
    return preset, folder


def test_smoke_runs_write_one_record_per_candidate_and_weights(smoke_runs):
    preset, folder = smoke_runs
    records = tier_runs.load_tier_runs(folder)
    assert [r["candidate"] for r in records] == [c.name for c in CANDIDATES]
    r = records[1]
    assert r["format"] == tier_runs.FORMAT and r["code"] and r["train"]["steps"] == preset.steps
    assert 0 <= r["metrics"]["agedb"]["accuracy"] <= 100 and 0 < r["int8"]["int8_bytes"] < r["int8"]["fp32_bytes"]
    net = tier_runs.load_backbone(folder, Candidate("recipe", 96), preset)
    assert net(torch.zeros(2, 3, 96, 96)).shape == (2, preset.embedding_size)


def test_cached_runs_are_read_back_not_retrained(smoke_runs):
    preset, folder = smoke_runs
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "runs").glob("*.json")}
    tier_runs.run_tiers(preset, folder.parent, device="cpu", train_missing=False, cache_dir=folder / "nope")
    assert before == {p.name: p.stat().st_mtime_ns for p in (folder / "runs").glob("*.json")}


def test_missing_runs_stop_the_full_page_with_the_command(tmp_path):
    with pytest.raises(StaleRunError, match="faceopt tiers --preset smoke"):
        tier_runs.run_tiers(tier_runs.PRESETS["smoke"], tmp_path, train_missing=False)


def test_a_damaged_record_names_the_file(smoke_runs, tmp_path):
    _, folder = smoke_runs
    bad = tmp_path / "runs"
    bad.mkdir()
    (bad / "x.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="x.json"):
        tier_runs.load_tier_runs(tmp_path)


def test_the_key_follows_every_setting():
    smoke = tier_runs.PRESETS["smoke"]
    import dataclasses
    assert dataclasses.replace(smoke, steps=5).key() != smoke.key()
    assert dataclasses.replace(smoke, name="other", seeds=(3,)).key() == smoke.key()


# ----------------------------------------------------------------------------- tables and claims

def _record(candidate, seed, agedb, int8, fp32=None, params=1_000_000):
    return {"candidate": candidate, "seed": seed, "params": params,
            "metrics": {"agedb": {"accuracy": agedb, "tar@far=1e-2": 10.0}, "lfw": {"accuracy": 95.0}},
            "int8": {"int8": {"agedb": {"accuracy": int8}}, "fp32": {"agedb": {"accuracy": fp32 or agedb}}}}


def test_accuracy_table_means_stds_and_int8_drop():
    records = [_record("recipe-112", s, a, a - 0.5) for s, a in enumerate((70.0, 72.0, 74.0))]
    table = tier_tables.accuracy_table(records)
    row = table.loc["recipe-112"]
    assert row["AgeDB-like %"] == 72.0 and row["AgeDB-like % std"] == 2.0 and row["seeds"] == 3
    assert math.isclose(row["INT8 drop (points)"], 0.5)


def test_budgets_are_fractions_of_tier_s():
    table = pd.DataFrame({"tier": ["S", "A", "B", "baseline"], "INT8 ms": [2.0, 1.0, 0.5, 0.1],
                          "INT8 AgeDB-like %": [80.0, 79.0, 75.0, 99.0]}, index=["s", "a", "b", "paper"])
    out = tier_tables.choices_for_budgets(table, [0.2, 0.5, 1.0])
    assert out["loads"].tolist() == ["nothing fits", "a", "s"]  # the baseline is never loaded


def test_t9_part_holds_below_the_limit_beyond_the_noise():
    def rows(large_ms):
        return [{"frame": "480x720", "total_ms": 10.0, "total_p25_ms": 9.9, "total_p75_ms": 10.1, "repeats": 20},
                {"frame": "3000x4500", "total_ms": large_ms, "total_p25_ms": large_ms - 0.1,
                 "total_p75_ms": large_ms + 0.1, "repeats": 20}]
    part, ratio = t9_part(rows(10.2))
    assert math.isclose(ratio, 1.02) and decide([part]) == "reproduced"
    part, ratio = t9_part(rows(13.0))
    assert decide([part]) == "direction-reproduced"  # within 1.5x but not the thesis's flat time
    part, _ = t9_part(rows(16.0))
    assert decide([part]) == "not-reproduced"
    assert LatencyStats(10.0, 9.9, 10.1, 20).log_stderr < 0.01
