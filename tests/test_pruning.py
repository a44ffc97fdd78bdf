"""Formula tests for chapter 1.2: pruning criteria, masks, the prune loop, lottery tickets."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from faceopt.compress import pruning as P
from faceopt.compress.lottery import lottery_ticket, reset_weights, snapshot_weights
from faceopt.compress.structured import latency_comparison, nonzero_parameters, prune_channels
from faceopt.compress.training import fit
from faceopt.data.digits import Split
from faceopt.models.lenet import lenet5_digits
from faceopt.models.profile import count_parameters


def _linear(weight: list[list[float]]) -> nn.Linear:
    w = torch.tensor(weight)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    return lin


def _tiny_data(n: int = 120, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)
    y = (x.flatten(1).sum(1) > 8).long()
    return Split(x, y)


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 2))


# ----------------------------------------------------------------------------- scores
def test_obd_on_quadratic_is_half_h_w_squared() -> None:
    """loss = 0.5 * sum h_i w_i^2 has Hessian diag(h): Hutchinson is exact, saliency 0.5 h w^2."""
    lin = _linear([[1.0, -2.0, 0.5, 3.0]])
    h = torch.tensor([[2.0, 0.5, 4.0, 1.0]])
    scores = P.obd_scores(lin, loss_fn=lambda m: 0.5 * (h * m.weight ** 2).sum(), samples=3)
    expected = torch.tensor([[0.5 * 2 * 1, 0.5 * 0.5 * 4, 0.5 * 4 * 0.25, 0.5 * 1 * 9]])
    torch.testing.assert_close(scores[lin], expected)


def test_hutchinson_averages_off_diagonal_terms() -> None:
    """With a coupled Hessian the estimate is unbiased: many probes approach the diagonal."""
    lin = _linear([[1.0, 1.0]])
    hess = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
    loss = lambda m: 0.5 * m.weight[0] @ hess @ m.weight[0]  # noqa: E731
    scores = P.obd_scores(lin, loss_fn=loss, samples=400, seed=1)
    torch.testing.assert_close(scores[lin], 0.5 * torch.tensor([[3.0, 2.0]]), atol=0.1, rtol=0)


def test_gradient_scores_hand_case() -> None:
    """w = (2, -3), x = (1, 2), L = (w.x)^2: dL/dw = 2(w.x)x = (-8, -16), |w g| = (16, 48)."""
    lin = _linear([[2.0, -3.0]])
    x = torch.tensor([[1.0, 2.0]])
    scores = P.gradient_scores(lin, loss_fn=lambda m: (m(x) ** 2).sum())
    torch.testing.assert_close(scores[lin], torch.tensor([[16.0, 48.0]]))


def test_gradient_scores_from_data_match_autograd() -> None:
    model = _mlp()
    data = _tiny_data()
    scores = P.gradient_scores(model, data, batch_size=50)  # three uneven batches, averaged
    loss = nn.functional.cross_entropy(model(data.x), data.y)
    grads = torch.autograd.grad(loss, [model[1].weight, model[3].weight])
    torch.testing.assert_close(scores[model[1]], (model[1].weight * grads[0]).abs().detach())
    torch.testing.assert_close(scores[model[3]], (model[3].weight * grads[1]).abs().detach())


def test_synflow_hand_case_and_conservation() -> None:
    """W1 = [[1,-2],[3,4]], W2 = [[5,-6]], x = 1: h = |W1|1 = (3, 7), R = 5*3 + 6*7 = 57.

    score(W2_j) = |W2_j| h_j = (15, 42); score(W1_ij) = |W2_i| |W1_ij| = [[5,10],[18,24]];
    each layer's scores sum to R (conservation). The ReLU is inert on positive inputs.
    """
    w1, w2 = _linear([[1.0, -2.0], [3.0, 4.0]]), _linear([[5.0, -6.0]])
    net = nn.Sequential(w1, nn.ReLU(), w2)
    scores = P.synflow_scores(net, (1, 2))
    torch.testing.assert_close(scores[w1], torch.tensor([[5.0, 10.0], [18.0, 24.0]]))
    torch.testing.assert_close(scores[w2], torch.tensor([[15.0, 42.0]]))
    assert float(scores[w1].sum()) == pytest.approx(57.0) == float(scores[w2].sum())
    assert torch.equal(w1.weight, torch.tensor([[1.0, -2.0], [3.0, 4.0]]))  # original untouched


def test_synflow_handles_batchnorm_and_masks() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    net[1].running_mean.fill_(5.0)  # would kill the flow if not linearised
    P.apply_masks(net, {net[0]: torch.rand(4, 1, 3, 3) > 0.5})
    scores = P.synflow_scores(net, (1, 1, 6, 6))
    assert (scores[net[0]][net[0].weight_mask == 0] == 0).all()
    assert (scores[net[0]][net[0].weight_mask == 1] > 0).all()
    assert (scores[net[4]] > 0).all()
    assert float(net[1].running_mean[0]) == 5.0


def test_unknown_criterion_lists_allowed() -> None:
    with pytest.raises(ValueError, match="magnitude, obd, gradient, random, synflow"):
        P.compute_scores(_mlp(), "taylor")


# ----------------------------------------------------------------------------- masks
def _two_scales() -> tuple[nn.Sequential, nn.Linear, nn.Linear]:
    big = _linear([[10.0, 11.0, 12.0], [13.0, 14.0, 15.0]])
    small = _linear([[0.1, 0.2], [0.3, 0.4]])
    return nn.Sequential(big, small), big, small


def test_masks_exact_sparsity_global_vs_layerwise_and_collapse() -> None:
    net, big, small = _two_scales()
    scores = P.magnitude_scores(net)
    glob = P.masks_from_scores(scores, 0.4, "global")  # 10 weights, remove 4
    assert sum(int((~m).sum()) for m in glob.values()) == 4
    assert not glob[small].any() and glob[big].all()  # the small-scale layer goes wholesale
    assert P.collapsed_layers(glob, net) == ["1"]
    layer = P.masks_from_scores(scores, 0.5, "layerwise")
    assert int(layer[big].sum()) == 3 and int(layer[small].sum()) == 2
    assert torch.equal(layer[small], torch.tensor([[False, False], [True, True]]))
    assert P.collapsed_layers(layer, net) == []
    P.apply_masks(net, glob)
    assert P.collapsed_layers(net) == ["1"]
    assert P.layer_density(net) == {"0": 1.0, "1": 0.0}


def test_masks_ties_are_deterministic_and_exact() -> None:
    lin = _linear([[1.0, 1.0, 1.0, 1.0, 1.0]])
    mask = P.masks_from_scores(P.magnitude_scores(lin), 0.6)[lin]
    assert torch.equal(mask, torch.tensor([[True, True, False, False, False]]))


def test_apply_masks_zeroes_and_stays_zero_after_training() -> None:
    model, data = _mlp(), _tiny_data()
    masks = P.masks_from_scores(P.random_scores(model, seed=3), 0.75)
    P.apply_masks(model, masks)
    total = sum(m.numel() for m in masks.values())
    assert P.sparsity(model) == pytest.approx(round(0.75 * total) / total)
    fit(model, data, epochs=1, lr=0.1)
    for mod, mask in masks.items():
        assert (P.effective_weight(mod)[~mask] == 0).all()
        assert (P.effective_weight(mod)[mask] != 0).all()
    # a second mask combines with the first: pruned weights never come back
    P.apply_masks(model, {model[1]: torch.ones_like(model[1].weight, dtype=torch.bool)})
    assert (P.effective_weight(model[1])[~masks[model[1]]] == 0).all()
    P.make_permanent(model)
    assert not any(P.is_pruned(m) for m, _ in P.prunable(model))
    assert P.sparsity(model) == pytest.approx(round(0.75 * total) / total)


# ----------------------------------------------------------------------------- loops
def test_iterative_schedule_reaches_target() -> None:
    sched = P.iterative_schedule(0.9, 3)
    assert sched[-1] == pytest.approx(0.9)
    assert [1 - s for s in sched] == pytest.approx([0.1 ** (1 / 3), 0.1 ** (2 / 3), 0.1])
    model, data = _mlp(), _tiny_data()
    hist = P.prune_iterative(model, data, data, sparsity=0.9, rounds=3, finetune_epochs_per_round=1, lr=0.05)
    total = sum(m.weight.numel() for m, _ in P.prunable(model))
    assert [s for s, _ in hist] == pytest.approx([1 - round((1 - s) * total) / total for s in sched])
    assert hist[-1][0] == pytest.approx(0.9, abs=1 / total)
    assert all(0.0 <= a <= 1.0 for _, a in hist)


@pytest.mark.parametrize("criterion", P.CRITERIA)
def test_one_shot_every_criterion(criterion: str) -> None:
    model, data = _mlp(), _tiny_data()
    acc = P.prune_one_shot(model, data, data, sparsity=0.5, criterion=criterion, finetune_epochs=1)
    assert 0.0 <= acc <= 1.0
    assert P.sparsity(model) == pytest.approx(0.5, abs=0.01)


def test_synflow_prune_avoids_collapse_where_magnitude_collapses() -> None:
    """Layer 2 has a 10x smaller scale: global magnitude at 90% empties it, iterative SynFlow does not."""
    def make() -> nn.Sequential:
        net = _mlp(1)
        with torch.no_grad():
            net[3].weight.mul_(0.01)
        return net

    mag = P.prune_at_init(make(), 0.9, "magnitude")
    assert P.collapsed_layers(mag) == ["3"]
    syn = P.prune_at_init(make(), 0.9, "synflow", input_shape=(1, 1, 4, 4), iterations=10)
    assert P.collapsed_layers(syn) == []
    assert P.sparsity(syn) == pytest.approx(0.9, abs=0.01)


def test_lottery_init_reset_restores_initial_survivors() -> None:
    data = _tiny_data()
    torch.manual_seed(7)
    init = [m.weight.detach().clone() for m, _ in P.prunable(_plain_mlp())]  # what lottery_ticket draws
    seen = []

    def check(r: int, model: nn.Module) -> None:
        for (mod, _), w0 in zip(P.prunable(model), init):
            mask = mod.weight_mask.bool()
            torch.testing.assert_close(P.effective_weight(mod)[mask], w0[mask])
            assert (P.effective_weight(mod)[~mask] == 0).all()
        seen.append(r)

    hist = lottery_ticket(_plain_mlp, data, data, rounds=2, prune_per_round=0.2, epochs=1, seed=7,
                          reset="init", on_reset=check)
    assert seen == [1, 2]
    assert [h["sparsity"] for h in hist] == pytest.approx([0.0, 0.2, 0.36], abs=0.01)
    assert hist[-1]["remaining"] == pytest.approx(1 - hist[-1]["sparsity"])


def _plain_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 2))


def _weights_after_reset(reset: str, seed: int = 7, rewind_step: int = 2) -> list[torch.Tensor]:
    """The effective Linear weights (weight_orig * mask) right after round 1's reset."""
    seen: list[torch.Tensor] = []

    def grab(r: int, model: nn.Module) -> None:
        seen.extend(m.weight.detach().clone() for m in model.modules() if isinstance(m, nn.Linear))

    lottery_ticket(_plain_mlp, _tiny_data(), _tiny_data(), rounds=1, epochs=1, seed=seed, reset=reset,
                   rewind_step=rewind_step, batch_size=32, on_reset=grab)
    return seen


def _linear_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight.detach().clone() for m in model.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("reset", ["init", "rewind", "random"])
def test_lottery_resets_write_the_right_weights(reset) -> None:
    """Survivors take the initial values, the values after step k of round 0, or fresh random ones; the
    pruned 20% stay zero. The expected values are rebuilt independently from the same seeds."""
    seed, k = 7, 2
    got = _weights_after_reset(reset, seed, k)
    torch.manual_seed(seed)
    reference = _plain_mlp()
    initial = _linear_weights(reference)
    if reset == "init":
        expected = initial
    elif reset == "rewind":
        at_k: list[list[torch.Tensor]] = []
        fit(reference, _tiny_data(), epochs=1, lr=0.05, batch_size=32, seed=seed,
            on_step=lambda step, net: at_k.append(_linear_weights(net)) if step == k else None)
        expected = at_k[0]
    else:
        torch.manual_seed(seed + 1000)
        expected = _linear_weights(_plain_mlp())
    kept = [w != 0 for w in got]
    total = sum(w.numel() for w in got)
    assert sum(int((~m).sum()) for m in kept) == pytest.approx(0.2 * total, abs=1)
    for w, e, m in zip(got, expected, kept):
        torch.testing.assert_close(w[m], e[m])
    if reset != "init":
        assert not all(torch.equal(w[m], i[m]) for w, i, m in zip(got, initial, kept))


def test_lottery_rewind_and_random_resets() -> None:
    data = _tiny_data()
    rewind = lottery_ticket(_plain_mlp, data, data, rounds=1, epochs=1, reset="rewind", rewind_step=1,
                            batch_size=32)
    rand = lottery_ticket(_plain_mlp, data, data, rounds=1, epochs=1, reset="random", batch_size=32)
    assert len(rewind) == len(rand) == 2
    with pytest.raises(ValueError, match="rewind_step"):
        lottery_ticket(_plain_mlp, data, data, rounds=1, epochs=1, reset="rewind", rewind_step=10_000)
    with pytest.raises(ValueError, match="init, rewind, random"):
        lottery_ticket(_plain_mlp, data, data, rounds=1, epochs=1, reset="late")


def test_snapshot_survives_pruning() -> None:
    model = _plain_mlp()
    snap = snapshot_weights(model)
    P.apply_masks(model, P.masks_from_scores(P.magnitude_scores(model), 0.5))
    with torch.no_grad():
        model[1].weight_orig.add_(1.0)
    reset_weights(model, snap)
    torch.testing.assert_close(model[1].weight_orig, snap[(model[1], "weight")])


# ----------------------------------------------------------------------------- structured
def test_prune_channels_shrinks_and_keeps_output(tmp_path) -> None:
    torch.manual_seed(0)
    dense = lenet5_digits()
    x = torch.rand(2, 1, 8, 8)
    small = prune_channels(dense, x, 0.5)
    assert count_parameters(small) < 0.5 * count_parameters(dense)
    assert small(x).shape == dense(x).shape == (2, 10)
    assert small[0].out_channels == 8 and dense[0].out_channels == 16  # original untouched
    unstructured = P.prune_at_init(P.clone_model(dense), 0.5, "magnitude")
    rows = latency_comparison(dense, unstructured, small, (1, 1, 8, 8), threads=1, repeats=2, warmup=1,
                              workdir=tmp_path)
    by = {r["model"]: r for r in rows}
    assert by["unstructured"]["params"] == by["dense"]["params"]
    assert by["unstructured"]["macs"] == by["dense"]["macs"]
    assert by["unstructured"]["nonzero"] < 0.6 * by["dense"]["nonzero"]
    assert by["structured"]["params"] < by["dense"]["params"]
    assert by["structured"]["macs"] < by["dense"]["macs"]
    assert nonzero_parameters(unstructured) == by["unstructured"]["nonzero"]
    assert P.is_pruned(unstructured[0])  # latency_comparison folded masks on a copy only


def _wide_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))


def test_collapse_experiment_densities_add_up_to_the_target() -> None:
    from faceopt.compress.experiments import collapse_experiment

    rows = collapse_experiment(_tiny_data(), sparsities=(0.5, 0.99), synflow_iterations=5, make_model=_wide_mlp)
    assert [(r["criterion"], r["sparsity"]) for r in rows] == [
        (c, s) for s in (0.5, 0.99) for c in ("magnitude", "gradient", "synflow")]
    sizes = {"1": 16 * 64, "3": 64 * 64, "5": 64 * 2}
    for r in rows:
        density = {k[len("density["):-1]: v for k, v in r.items() if k.startswith("density[")}
        assert set(density) == set(sizes)
        kept = sum(density[k] * n for k, n in sizes.items()) / sum(sizes.values())
        assert kept == pytest.approx(1 - r["sparsity"], abs=2 / sum(sizes.values()))
        assert r["collapsed"] == [k for k, d in density.items() if d == 0.0]
    synflow_99 = next(r for r in rows if r["criterion"] == "synflow" and r["sparsity"] == 0.99)
    assert synflow_99["collapsed"] == []  # SynFlow's guarantee: no layer empties before the net runs out


def test_lottery_comparison_runs_every_reset_per_seed() -> None:
    from faceopt.compress.experiments import lottery_comparison

    data = _tiny_data()
    rows = lottery_comparison(data, data, seeds=(0, 1), rounds=2, epochs=1, lr=0.05, rewind_step=1,
                              make_model=_plain_mlp)
    assert len(rows) == 2 * 3 * 3
    for seed in (0, 1):
        for reset in ("init", "rewind", "random"):
            mine = [r for r in rows if (r["seed"], r["reset"]) == (seed, reset)]
            direct = lottery_ticket(_plain_mlp, data, data, rounds=2, epochs=1, lr=0.05, seed=seed, reset=reset,
                                    rewind_step=1)
            assert [{k: r[k] for k in d} for r, d in zip(mine, direct)] == direct
            assert [r["sparsity"] for r in mine] == pytest.approx([0.0, 0.2, 0.36], abs=0.01)
