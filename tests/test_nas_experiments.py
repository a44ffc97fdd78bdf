"""The NAS experiments end to end on a tiny preset: structure, sanity, and the claim's signs."""
from __future__ import annotations

import dataclasses
import json

import matplotlib
import numpy as np
import pytest

from faceopt.compress import nas_experiments as X
from faceopt.compress.nas import PRIMITIVES, Genotype

matplotlib.use("Agg")

TINY = X.NASPreset(seeds=(0, 1), darts_epochs=1, alpha_lr=0.04, collapse_epochs=2, candidate_epochs=1, candidates=4,
                   population=3, sample=2, retrain_epochs=1, channels=4, nodes=2, batch_size=32,
                   max_search_samples=64)


@pytest.fixture(scope="module")
def result() -> X.NASResult:
    return X.run_all(TINY)


def test_presets_are_valid_and_full_is_larger() -> None:
    smoke, full = X.NAS_PRESETS["smoke"], X.NAS_PRESETS["full"]
    assert len(full.seeds) >= 5 and len(smoke.seeds) >= 2
    assert full.darts_epochs > smoke.darts_epochs and full.collapse_epochs > full.darts_epochs
    assert full.candidates > smoke.candidates
    with pytest.raises(ValueError, match="sample"):
        dataclasses.replace(smoke, sample=5)
    with pytest.raises(ValueError, match="seeds"):
        dataclasses.replace(smoke, seeds=())


def test_run_all_structure(result: X.NASResult) -> None:
    assert set(result.darts) == set(X.DARTS_VARIANTS)
    assert set(result.collapse) == {"vanilla", "P-DARTS"}
    assert result.collapse["vanilla"].config.epochs == 2 and result.collapse["vanilla"].config.order == 1
    assert result.data == {"search_train": 64, "search_val": 64, "train": 1257, "test": 540}
    for name, r in result.darts.items():
        order, remedy = X.DARTS_VARIANTS[name]
        assert r.config.order == order and r.config.remedy == remedy
        assert r.alpha_history.shape == (2, 5, len(PRIMITIVES))  # 64 samples / 32 per batch, 2 + 3 edges
        assert np.allclose(r.alpha_history.sum(-1), 1, atol=1e-5)
        if remedy:
            assert r.genotype.skip_count <= TINY.max_skip
    assert len(result.evolution.candidates) == len(result.random.candidates) == TINY.candidates
    assert set(result.cells) == {X.PRIMARY, "DARTS second-order + P-DARTS", "evolution best", "random best",
                                 *X.HAND_DESIGNED}
    assert result.baseline in X.HAND_DESIGNED
    assert len(result.retrain) == len(result.cells) * len(TINY.seeds)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in result.retrain)
    assert all(v > 0 for v in result.search_cpu_seconds.values())
    assert set(result.search_cpu_seconds) == set(X.DARTS_VARIANTS) | {"evolution", "random"}
    json.dumps({k: g.to_dict() for k, g in result.cells.items()})


def test_baseline_is_the_hand_designed_cell_closest_in_size(result: X.NASResult) -> None:
    gaps = {k: abs(result.parameters[k] - result.parameters[X.PRIMARY]) for k in X.HAND_DESIGNED}
    assert gaps[result.baseline] == min(gaps.values())


def test_tables_and_figure_data(result: X.NASResult) -> None:
    t = X.tables(result)
    assert set(t) == {"retrained", "searches", "collapse", "claim"}
    assert list(t["retrained"].index) == list(result.cells)
    assert (t["retrained"]["seeds"] == len(TINY.seeds)).all()
    assert t["retrained"]["baseline"].sum() == 1
    assert set(t["searches"].index) == set(X.DARTS_VARIANTS) | {"evolution", "random"}
    assert (t["searches"]["cpu_seconds"] > 0).all()
    assert len(t["claim"]) == 2
    assert set(t["collapse"]["run"]) == {"collapse: vanilla", "collapse: P-DARTS", *X.DARTS_VARIANTS}
    alpha = X.alpha_frame(result, X.PRIMARY)
    assert len(alpha) == 2 * 5 * len(PRIMITIVES)
    assert np.allclose(alpha.groupby(["step", "edge"])["weight"].sum(), 1, atol=1e-5)
    assert len(X.alpha_frame(result, "collapse: vanilla")) == 4 * 5 * len(PRIMITIVES)
    cost = X.cost_frame(result)
    assert set(cost["method"]) == {"evolution", "random", *X.DARTS_VARIANTS}
    for method in ("evolution", "random"):
        c = cost[cost.method == method]
        assert c["cpu_seconds"].is_monotonic_increasing and c["best so far"].is_monotonic_increasing


def test_draw_cell_runs() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    X.draw_cell(X.HAND_DESIGNED["hand: ResNet-like"], ax)
    assert len(ax.texts) >= 6 + 5
    plt.close(fig)


def _synthetic(result: X.NASResult, darts: list[float], base: list[float], darts_cpu: float, evo_cpu: float) -> X.NASResult:
    rows = [{"cell": X.PRIMARY, "seed": i, "accuracy": a, "parameters": 1} for i, a in enumerate(darts)]
    rows += [{"cell": result.baseline, "seed": i, "accuracy": a, "parameters": 1} for i, a in enumerate(base)]
    cpu = dict(result.search_cpu_seconds) | {X.PRIMARY: darts_cpu, "evolution": evo_cpu}
    return dataclasses.replace(result, retrain=rows, search_cpu_seconds=cpu)


def test_claim_parts_signs(result: X.NASResult) -> None:
    better = X.claim_parts(_synthetic(result, [0.95, 0.96, 0.97], [0.90, 0.91, 0.90], 10.0, 100.0))
    assert [p.status for p in better] == ["reproduced", "reproduced"]
    assert better[0].effect == pytest.approx(0.0566667, abs=1e-6)
    worse = X.claim_parts(_synthetic(result, [0.80, 0.81, 0.80], [0.90, 0.91, 0.90], 100.0, 10.0))
    assert worse[0].effect < 0 and worse[1].effect == -1.0
    assert all(p.status == "not-reproduced" for p in worse)
    tie = X.claim_parts(_synthetic(result, [0.90, 0.92, 0.91], [0.91, 0.90, 0.92], 10.0, 100.0))
    assert not tie[0].beyond_noise and tie[0].stderr is not None and tie[0].stderr > 0
    single = X.claim_parts(_synthetic(result, [0.95], [0.90], 10.0, 100.0))
    assert single[0].stderr is None


def test_run_all_is_deterministic(result: X.NASResult) -> None:
    tiny = dataclasses.replace(TINY, collapse_epochs=0, candidates=3, seeds=(0,))
    a, b = X.run_all(tiny), X.run_all(tiny)
    assert a.cells == b.cells and a.retrain == b.retrain
    assert np.array_equal(a.darts[X.PRIMARY].alpha_history, b.darts[X.PRIMARY].alpha_history)
    assert [c.accuracy for c in a.evolution.candidates] == [c.accuracy for c in b.evolution.candidates]
    assert isinstance(a.cells[X.PRIMARY], Genotype)
