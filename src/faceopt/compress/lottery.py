"""Lottery tickets: iterative magnitude pruning with weight resetting (thesis Figures 1.3, 1.4).

Frankle & Carbin (2019): train, remove the smallest-magnitude fraction of the surviving
weights, reset the survivors to their *initial* values, retrain; repeat. Frankle et al.
(2019, "Stabilizing the lottery ticket hypothesis") reset instead to the values at an
early training step ``k`` ("rewinding"). The control re-initialises the survivors
randomly; the mask is kept in every variant.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from faceopt.compress.pruning import _respect_masks, apply_masks, magnitude_scores, masks_from_scores, sparsity
from faceopt.compress.training import evaluate, fit
from faceopt.data.digits import Split

RESETS = ("init", "rewind", "random")

Snapshot = dict[tuple[nn.Module, str], torch.Tensor]


def snapshot_weights(model: nn.Module) -> Snapshot:
    """Copies of every parameter, keyed by (module, name) so they survive pruning's renaming.

    For a pruned module the stored ``weight`` is ``weight_orig`` (the unmasked value).
    """
    out: Snapshot = {}
    for mod in model.modules():
        for name, p in mod.named_parameters(recurse=False):
            key = name[:-5] if name.endswith("_orig") else name
            out[(mod, key)] = p.detach().clone()
    return out


@torch.no_grad()
def reset_weights(model: nn.Module, snapshot: Snapshot) -> nn.Module:
    """Write ``snapshot`` back into ``model``'s parameters (into ``weight_orig`` when pruned).

    Masks are untouched, so pruned weights stay zero and survivors take the saved values.
    """
    for (mod, name), value in snapshot.items():
        target = getattr(mod, name + "_orig") if hasattr(mod, name + "_orig") else getattr(mod, name)
        target.copy_(value)
        if hasattr(mod, name + "_mask"):
            setattr(mod, name, (target * getattr(mod, name + "_mask")).detach())
    return model


def _transfer(snapshot_of: nn.Module, model: nn.Module) -> Snapshot:
    """A snapshot of ``snapshot_of`` (same architecture) keyed by the modules of ``model``."""
    src = snapshot_weights(snapshot_of)
    mods = dict(model.named_modules())
    names = {m: n for n, m in snapshot_of.named_modules()}
    return {(mods[names[m]], k): v for (m, k), v in src.items()}


def lottery_ticket(make_model: Callable[[], nn.Module], train: Split, test: Split, *, rounds: int,
                   prune_per_round: float = 0.2, epochs: int = 10, lr: float = 0.05, seed: int = 0,
                   reset: str = "init", rewind_step: int = 20, scope: str = "global", batch_size: int = 64,
                   on_reset: Callable[[int, nn.Module], None] | None = None) -> list[dict[str, float]]:
    """Iterative magnitude pruning with resetting; accuracy after every round.

    Round 0 trains the dense network (``make_model()`` after ``torch.manual_seed(seed)``);
    each of the ``rounds`` further rounds removes ``prune_per_round`` of the surviving
    weights by magnitude (``scope`` global or layerwise), resets the survivors (``reset``:
    ``init`` to their initial values, ``rewind`` to their values after optimiser step
    ``rewind_step`` of round 0, ``random`` to a fresh random initialisation), calls
    ``on_reset(round, model)`` and retrains for ``epochs`` with the same data order.
    Returns dicts with ``round``, ``sparsity``, ``remaining`` (1 - sparsity), ``accuracy``.
    """
    if reset not in RESETS:
        raise ValueError(f"unknown reset {reset!r}; allowed: {', '.join(RESETS)}")
    if not 0.0 < prune_per_round < 1.0:
        raise ValueError(f"prune_per_round must be in (0, 1), got {prune_per_round}")
    torch.manual_seed(seed)
    model = make_model()
    initial = snapshot_weights(model)
    rewound: dict[str, Snapshot] = {}

    def capture(step: int, net: nn.Module) -> None:
        if step == rewind_step:
            rewound["k"] = snapshot_weights(net)

    fit(model, train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
        on_step=capture if reset == "rewind" else None)
    if reset == "rewind" and "k" not in rewound:
        raise ValueError(f"rewind_step={rewind_step} exceeds the training steps of {epochs} epochs")
    history = [{"round": 0, "sparsity": sparsity(model), "remaining": 1.0 - sparsity(model),
                "accuracy": evaluate(model, test)}]
    for r in range(1, rounds + 1):
        target = 1.0 - (1.0 - prune_per_round) ** r
        scores = _respect_masks(model, magnitude_scores(model))
        apply_masks(model, masks_from_scores(scores, target, scope))
        if reset == "init":
            reset_weights(model, initial)
        elif reset == "rewind":
            reset_weights(model, rewound["k"])
        else:
            torch.manual_seed(seed + 1000 * r)
            reset_weights(model, _transfer(make_model(), model))
        if on_reset is not None:
            on_reset(r, model)
        fit(model, train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
        s = sparsity(model)
        history.append({"round": r, "sparsity": s, "remaining": 1.0 - s, "accuracy": evaluate(model, test)})
    return history
