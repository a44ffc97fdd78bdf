"""Formula tests for section 1.5: DARTS's mixed operation and second-order gradient, cell derivation,
the P-DARTS skip cap, aging evolution, and the genotype format."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from faceopt.compress import nas as N
from faceopt.data.digits import Split

SKIP = N.PRIMITIVES.index("skip_connect")


def _tiny_split(n: int = 48, seed: int = 0, size: int = 8) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g)
    y = (x[:, 0, : size // 2].mean((1, 2)) > x[:, 0, size // 2:].mean((1, 2))).long()
    return Split(x, y)


def _weights(rows: dict[int, dict[str, float]], edges: int = 9) -> np.ndarray:
    """Operation weights [edges, ops]: 0.01 everywhere but the entries given per edge."""
    w = np.full((edges, len(N.PRIMITIVES)), 0.01)
    for e, ops in rows.items():
        for op, value in ops.items():
            w[e, N.PRIMITIVES.index(op)] = value
    return w


# ----------------------------------------------------------------------------- operations
def test_zero_op_outputs_zeros_and_skip_is_identity() -> None:
    x = torch.randn(2, 4, 5, 5)
    zero, skip = N.make_op("none", 4), N.make_op("skip_connect", 4)
    assert torch.equal(zero(x), torch.zeros_like(x))
    assert torch.equal(skip(x), x)


@pytest.mark.parametrize("name", N.PRIMITIVES)
def test_every_op_keeps_the_shape(name: str) -> None:
    x = torch.randn(3, 4, 4, 4)
    assert N.make_op(name, 4)(x).shape == x.shape


def test_mixed_op_is_the_softmax_weighted_sum_of_the_operations() -> None:
    torch.manual_seed(0)
    mixed = N.MixedOp(3)
    x = torch.randn(4, 3, 6, 6)
    alpha = torch.randn(len(N.PRIMITIVES))
    w = torch.exp(alpha) / torch.exp(alpha).sum()
    by_hand = sum(w[k] * op(x) for k, op in enumerate(mixed.ops))
    assert torch.allclose(mixed(x, F.softmax(alpha, dim=0)), by_hand, atol=1e-6)


def test_mixed_op_gradient_of_alpha_matches_the_explicit_sum() -> None:
    """Leaving out ``none`` (which adds w * 0) changes no gradient, alpha_none's included."""
    torch.manual_seed(1)
    mixed = N.MixedOp(2)
    x = torch.randn(2, 2, 4, 4)
    alpha = torch.randn(len(N.PRIMITIVES), requires_grad=True)
    (g_mixed,) = torch.autograd.grad(mixed(x, F.softmax(alpha, 0)).pow(2).sum(), alpha)
    outs = [op(x) for op in mixed.ops]
    (g_hand,) = torch.autograd.grad(sum(wk * o for wk, o in zip(F.softmax(alpha, 0), outs)).pow(2).sum(), alpha)
    assert torch.allclose(g_mixed, g_hand, atol=1e-5)
    assert g_mixed[0] != 0


def test_skip_dropout_only_in_training() -> None:
    mixed = N.MixedOp(2)
    mixed.skip_dropout = 0.5
    x = torch.randn(2, 2, 4, 4)
    w = torch.zeros(len(N.PRIMITIVES))
    w[SKIP] = 1.0
    mixed.eval()
    assert torch.equal(mixed(x, w), x)
    mixed.train()
    torch.manual_seed(0)
    y = mixed(x, w)
    assert (y == 0).any() and torch.allclose(y[y != 0], 2 * x[y != 0])


def test_mixed_op_rejects_wrong_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        N.MixedOp(2)(torch.randn(1, 2, 4, 4), torch.ones(3))


def test_networks_give_logits_and_count_parameters() -> None:
    g = N.Genotype((("conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 1), ("max_pool_3x3", 2)))
    net = N.DiscreteNetwork(g, channels=4)
    assert net(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert N.network_parameters(g, channels=4) == sum(p.numel() for p in net.parameters())
    sup = N.SearchNetwork(channels=4, nodes=2, cells_per_stage=2)
    assert sup(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert sup.alpha.shape == (5, len(N.PRIMITIVES))
    assert all(p is not sup.alpha for p in sup.weight_parameters())
    assert len(sup.weight_parameters()) == len(list(sup.parameters())) - 1


def test_parameter_free_cells_have_fewer_parameters() -> None:
    convs = N.Genotype((("conv_3x3", 0), ("conv_3x3", 1), ("conv_3x3", 1), ("conv_3x3", 2)))
    pools = N.Genotype((("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("skip_connect", 1), ("avg_pool_3x3", 2)))
    assert N.network_parameters(pools, channels=4) < N.network_parameters(convs, channels=4)


# ----------------------------------------------------------------------------- second order
def _tiny_problem() -> tuple:
    g = torch.Generator().manual_seed(0)
    xt, yt = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    xv, yv = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    w = torch.nn.Parameter(torch.randn(3, 4, generator=g, dtype=torch.float64))
    a = torch.nn.Parameter(torch.randn(4, generator=g, dtype=torch.float64))

    def loss(w_: torch.Tensor, a_: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = (torch.tanh(x @ w_) * torch.softmax(a_, 0)).sum(1)
        return ((out - y) ** 2).mean() + 0.1 * (w_ ** 2).sum() * torch.sigmoid(a_[0])

    return w, a, loss, (xt, yt), (xv, yv)


def test_finite_difference_hvp_matches_autograd_in_float64() -> None:
    w, a, loss, (xt, yt), _ = _tiny_problem()
    v = torch.randn(3, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    (gw,) = torch.autograd.grad(loss(w, a, xt, yt), w, create_graph=True)
    (exact,) = torch.autograd.grad((gw * v).sum(), a)
    w0 = w.detach().clone()
    (approx,) = N.finite_difference_hvp(lambda: loss(w, a, xt, yt), [w], [a], [v], r=1e-4)
    assert torch.allclose(approx, exact, rtol=1e-6, atol=1e-9)
    assert torch.equal(w.detach(), w0)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_unrolled_alpha_gradient_matches_exact_unrolled_autograd(momentum: float) -> None:
    w, a, loss, (xt, yt), (xv, yv) = _tiny_problem()
    buf = torch.randn(3, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    xi, wd = 0.05, 3e-4
    (gw,) = torch.autograd.grad(loss(w, a, xt, yt), w, create_graph=True)
    w_prime = w - xi * (momentum * buf + gw + wd * w)
    (exact,) = torch.autograd.grad(loss(w_prime, a, xv, yv), a)
    (approx,) = N.unrolled_alpha_gradient(lambda: loss(w, a, xt, yt), lambda: loss(w, a, xv, yv), [w], [a], xi=xi,
                                          momentum=momentum, momentum_buffers=[buf], weight_decay=wd, r=1e-4)
    assert torch.allclose(approx, exact, rtol=1e-6, atol=1e-9)
    (first,) = N.unrolled_alpha_gradient(lambda: loss(w, a, xt, yt), lambda: loss(w, a, xv, yv), [w], [a], xi=0.0)
    (plain,) = torch.autograd.grad(loss(w, a, xv, yv), a)
    assert torch.allclose(first, plain)
    assert not torch.allclose(approx, plain)


# ----------------------------------------------------------------------------- deriving a cell
def test_derive_genotype_keeps_the_two_strongest_non_zero_edges_per_node() -> None:
    w = _weights({
        0: {"none": 0.9, "sep_conv_3x3": 0.05},            # none ignored: sep_conv is this edge's best
        1: {"avg_pool_3x3": 0.3},
        2: {"conv_3x3": 0.2}, 3: {"none": 0.99}, 4: {"max_pool_3x3": 0.4},  # edge 3 only strong in none
        5: {"skip_connect": 0.5}, 6: {"conv_3x3": 0.1}, 7: {"sep_conv_3x3": 0.6}, 8: {"avg_pool_3x3": 0.55},
    })
    g = N.derive_genotype(w)
    assert g.normal == (("sep_conv_3x3", 0), ("avg_pool_3x3", 1),
                        ("conv_3x3", 0), ("max_pool_3x3", 2),
                        ("sep_conv_3x3", 2), ("avg_pool_3x3", 3))


def test_skip_cap_keeps_the_two_strongest_skips_and_replaces_the_rest() -> None:
    rows = {e: {"skip_connect": 0.6 + 0.01 * e, "conv_3x3": 0.2, "max_pool_3x3": 0.1 + 0.001 * e} for e in range(9)}
    w = _weights(rows)
    assert N.derive_genotype(w).skip_count == 6
    capped = N.derive_genotype(w, max_skip=2)
    assert capped.skip_count == 2
    # the strongest skips are on the last edges (of node 4): both survive, every other edge falls to conv_3x3
    assert capped.normal[4:] == (("skip_connect", 2), ("skip_connect", 3))
    assert all(op == "conv_3x3" for op, _ in capped.normal[:4])
    assert N.derive_genotype(w, max_skip=0).skip_count == 0


def test_derive_genotype_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match="shape"):
        N.derive_genotype(np.ones((9, 3)))
    with pytest.raises(ValueError, match="edge count"):
        N.derive_genotype(np.ones((4, len(N.PRIMITIVES))))
    with pytest.raises(ValueError, match="finite"):
        N.derive_genotype(np.full((9, len(N.PRIMITIVES)), np.nan))
    with pytest.raises(ValueError, match="max_skip"):
        N.derive_genotype(np.ones((9, len(N.PRIMITIVES))), max_skip=-1)


def test_skip_dropout_schedule_is_p_darts() -> None:
    assert N.skip_dropout_rate(0, 10, 0.7) == pytest.approx(0.7)
    assert N.skip_dropout_rate(5, 10, 0.7) == pytest.approx(0.7 * np.exp(-1.0))
    assert N.skip_dropout_rate(2, 10, 0.5, warmup=4) == pytest.approx(0.5 * 7 / 10)
    assert N.skip_dropout_rate(3, 10, 0.0) == 0.0
    with pytest.raises(ValueError):
        N.skip_dropout_rate(0, 10, 1.0)


# ----------------------------------------------------------------------------- genotype
def test_genotype_json_round_trip_and_hashable() -> None:
    g = N.Genotype((("conv_3x3", 0), ("skip_connect", 1), ("avg_pool_3x3", 0), ("sep_conv_3x3", 2)))
    assert N.Genotype.from_json(g.to_json()) == g
    assert N.Genotype.from_dict(g.to_dict()) == g
    assert len({g, N.Genotype.from_json(g.to_json())}) == 1
    assert g.nodes == 2 and g.skip_count == 1
    assert g.edges() == [(0, 2, "conv_3x3"), (1, 2, "skip_connect"), (0, 3, "avg_pool_3x3"), (2, 3, "sep_conv_3x3")]


@pytest.mark.parametrize("genes, match", [
    ((("conv_3x3", 0),), "two"),
    ((("conv_5x5", 0), ("conv_3x3", 1)), "operation"),
    ((("none", 0), ("conv_3x3", 1)), "operation"),
    ((("conv_3x3", 0), ("conv_3x3", 2)), "input"),
    ((("conv_3x3", 1), ("conv_3x3", 1)), "twice"),
    ((("conv_3x3",), ("conv_3x3", 1)), "pairs"),
    ((("conv_3x3", 0), ("conv_3x3", 1.5)), "integers"),
])
def test_genotype_rejects_bad_cells(genes: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        N.Genotype(genes)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        N.make_op("conv_7x7", 4)
    with pytest.raises(ValueError, match="order"):
        N.DartsConfig(order=3)
    with pytest.raises(ValueError, match="skip_dropout"):
        N.DartsConfig(skip_dropout=1.5)
    with pytest.raises(ValueError, match="sample_size"):
        N.regularized_evolution(lambda g, i: 0.0, nodes=2, candidates=5, population_size=6, sample_size=2)
    with pytest.raises(ValueError, match="candidate"):
        N.random_search(lambda g, i: 0.0, nodes=2, candidates=0)
    with pytest.raises(ValueError, match="epochs"):
        N.TrainBudget(epochs=0)
    with pytest.raises(ValueError, match="Genotype|mapping"):
        N.Genotype.from_dict({"cells": []})
    with pytest.raises(ValueError, match="same number of nodes"):
        N.crossover(N.random_genotype(2, random.Random(0)), N.random_genotype(3, random.Random(0)))


# ----------------------------------------------------------------------------- evolution
def test_mutation_changes_exactly_one_gene() -> None:
    rng = random.Random(0)
    kinds = set()
    for _ in range(300):
        parent = N.random_genotype(3, rng)
        child = N.mutate(parent, rng)
        flat_p = [x for gene in parent.normal for x in gene]
        flat_c = [x for gene in child.normal for x in gene]
        diffs = [i for i, (p, c) in enumerate(zip(flat_p, flat_c)) if p != c]
        assert len(diffs) == 1
        kinds.add("op" if diffs[0] % 2 == 0 else "input")
    assert kinds == {"op", "input"}


def test_crossover_takes_half_the_genome_from_each_parent() -> None:
    a = N.Genotype((("conv_3x3", 0), ("conv_3x3", 1)) * 1 + (("conv_3x3", 1), ("conv_3x3", 2))
                   + (("conv_3x3", 2), ("conv_3x3", 3)) + (("conv_3x3", 3), ("conv_3x3", 4)))
    b = N.Genotype((("avg_pool_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0), ("skip_connect", 2),
                    ("avg_pool_3x3", 1), ("skip_connect", 3), ("max_pool_3x3", 0), ("skip_connect", 4)))
    child = N.crossover(a, b)
    assert child.normal[:4] == a.normal[:4] and child.normal[4:] == b.normal[4:]


def _fitness(g: N.Genotype, index: int) -> float:
    return sum(op == "conv_3x3" for op, _ in g.normal) + 0.01 * sum(src for _, src in g.normal)


def test_aging_evolution_removes_the_oldest_and_keeps_the_youngest() -> None:
    trace = N.regularized_evolution(_fitness, nodes=3, candidates=30, population_size=8, sample_size=3, seed=1)
    assert [c.index for c in trace.candidates] == list(range(30))
    assert trace.removed == list(range(22))
    assert trace.population == list(range(22, 30))
    for c in trace.candidates[8:]:
        assert c.parent is not None and c.parent < c.index
        parent = trace.candidates[c.parent].genotype
        assert sum(x != y for pg, cg in zip(parent.normal, c.genotype.normal) for x, y in zip(pg, cg)) == 1
    costs = [c.cpu_seconds for c in trace.candidates]
    assert costs == sorted(costs) and all(c.wall_seconds >= 0 for c in trace.candidates)
    assert trace.best.accuracy == max(c.accuracy for c in trace.candidates)
    assert trace.best_so_far()[-1] == trace.best.accuracy


def test_evolution_beats_random_on_a_simple_fitness_and_is_deterministic() -> None:
    evo = N.regularized_evolution(_fitness, nodes=3, candidates=120, population_size=12, sample_size=4, seed=0)
    rnd = N.random_search(_fitness, nodes=3, candidates=120, seed=0)
    assert evo.best.accuracy > rnd.best.accuracy
    again = N.regularized_evolution(_fitness, nodes=3, candidates=120, population_size=12, sample_size=4, seed=0)
    assert [c.genotype for c in again.candidates] == [c.genotype for c in evo.candidates]
    cross = N.regularized_evolution(_fitness, nodes=3, candidates=40, population_size=8, sample_size=3,
                                    crossover_halves=True, seed=0)
    assert len(cross.candidates) == 40


# ----------------------------------------------------------------------------- searches end to end
def test_darts_search_is_deterministic_and_records_alpha() -> None:
    train, val = _tiny_split(48, 0), _tiny_split(40, 1)
    cfg = N.DartsConfig(epochs=2, order=2, channels=4, nodes=2, batch_size=16, skip_dropout=0.5, max_skip=1, seed=3)
    a, b = N.darts_search(train, val, cfg), N.darts_search(train, val, cfg)
    assert a.alpha_history.shape == (2 * 3, 5, len(N.PRIMITIVES))
    assert np.allclose(a.alpha_history.sum(-1), 1.0, atol=1e-5)
    assert np.array_equal(a.alpha_history, b.alpha_history) and a.genotype == b.genotype
    assert len(a.skip_counts) == len(a.epoch_genotypes) == 2
    assert a.genotype.skip_count <= 1 and a.cpu_seconds > 0 and a.wall_seconds > 0
    assert a.edges == N.edge_list(2)
    first = N.darts_search(train, val, N.DartsConfig(epochs=1, order=1, channels=4, nodes=2, batch_size=16))
    assert first.alpha_history.shape[0] == 3


def test_train_genotype_and_evaluator_are_deterministic() -> None:
    train, val = _tiny_split(64, 0), _tiny_split(32, 1)
    g = N.Genotype((("conv_3x3", 0), ("avg_pool_3x3", 1)))
    budget = N.TrainBudget(epochs=2, channels=4, batch_size=16)
    assert N.train_genotype(g, train, val, budget, seed=0) == N.train_genotype(g, train, val, budget, seed=0)
    score = N.candidate_evaluator(train, val, budget)
    trace = N.random_search(score, nodes=1, candidates=3, seed=0)
    assert all(0.0 <= c.accuracy <= 1.0 for c in trace.candidates)
    again = N.random_search(score, nodes=1, candidates=3, seed=0)
    assert [c.accuracy for c in trace.candidates] == [c.accuracy for c in again.candidates]
