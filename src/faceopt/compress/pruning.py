"""Unstructured pruning (thesis section 1.2): saliency criteria, masks and the prune loop.

Every Linear and Conv2d weight is prunable. A pruned weight is held by
``torch.nn.utils.prune`` as ``weight_orig`` times a 0/1 buffer ``weight_mask``, so
training keeps pruned weights at zero (their gradient is masked) and masks of
successive rounds combine. The criteria are the ones the chapter discusses:

* ``magnitude`` -- |w|, the baseline of Figure 1.2 and of the lottery tickets;
* ``obd`` -- Optimal Brain Damage (LeCun et al. 1989): the loss change of deleting
  ``w_i`` to second order, ``0.5 * h_ii * w_i^2``, with the Hessian diagonal estimated
  by Hutchinson's method;
* ``gradient`` -- |w * dL/dw| (first-order Taylor, as SNIP at initialisation);
* ``random`` -- the control;
* ``synflow`` -- Synaptic Flow (Tanaka et al. 2020), data-free and conserving, which
  avoids the layer collapse that the other criteria suffer at initialisation.
"""
from __future__ import annotations

import copy
from functools import partial
from typing import Callable, Mapping

import torch
from torch import nn
from torch.nn.utils import prune

from faceopt.compress.training import evaluate, fit
from faceopt.data.digits import Split

CRITERIA = ("magnitude", "obd", "gradient", "random", "synflow")
SCOPES = ("global", "layerwise")

Scores = dict[nn.Module, torch.Tensor]
Masks = dict[nn.Module, torch.Tensor]
LossFn = Callable[[nn.Module], torch.Tensor]


# ----------------------------------------------------------------------------- bookkeeping
def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every Linear and Conv2d of ``model``, in module order."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def module_tensor(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """``module.<name>``: a weight, or the ``weight_orig`` / ``weight_mask`` of a pruned module."""
    t = getattr(module, name)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is a {type(t).__name__}, not a tensor")
    return t


def _names(model: nn.Module) -> dict[nn.Module, str]:
    return {m: name for name, m in model.named_modules()}


def is_pruned(module: nn.Module) -> bool:
    """Whether ``module.weight`` is reparametrised by ``torch.nn.utils.prune``."""
    return prune.is_pruned(module) and hasattr(module, "weight_mask")


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the forward pass uses: ``weight_orig * weight_mask`` when pruned.

    (``module.weight`` of a pruned module is only refreshed by a forward pass, so it is
    stale right after an optimiser step; this reads the current value.)
    """
    if is_pruned(module):
        return (module_tensor(module, "weight_orig") * module_tensor(module, "weight_mask")).detach()
    return module_tensor(module).detach()


def clone_model(model: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that also works on a pruned model.

    A pruned module's ``weight`` attribute is the product ``weight_orig * weight_mask``
    from the last forward pass, a non-leaf tensor that deepcopy refuses; it is replaced
    by a detached value first (the next forward pass recomputes it anyway).
    """
    with torch.no_grad():
        for m, _ in prunable(model):
            if is_pruned(m):
                setattr(m, "weight", (module_tensor(m, "weight_orig") * module_tensor(m, "weight_mask")).detach())
    return copy.deepcopy(model)


def current_masks(model: nn.Module) -> Masks:
    """The boolean keep-mask of every prunable weight (all True where not pruned)."""
    return {m: (module_tensor(m, "weight_mask").bool() if is_pruned(m) else torch.ones_like(module_tensor(m), dtype=torch.bool))
            for m, _ in prunable(model)}


def sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over all prunable (Linear/Conv2d) weights."""
    zeros = total = 0
    for m, _ in prunable(model):
        w = effective_weight(m)
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / max(total, 1)


_sparsity = sparsity  # the loop functions take a ``sparsity`` argument that shadows the function


def layer_density(model: nn.Module) -> dict[str, float]:
    """Fraction of non-zero weights in each prunable layer, by module name."""
    names = _names(model)
    return {names[m]: float((effective_weight(m) != 0).float().mean()) for m, _ in prunable(model)}


def collapsed_layers(obj: nn.Module | Mapping[nn.Module, torch.Tensor],
                     model: nn.Module | None = None) -> list[str]:
    """Layers with every weight pruned (Tanaka et al.'s *layer collapse*): the net is cut.

    ``obj`` is a model, or a masks dict (then names come from ``model`` if given, else
    ``"layer{i}"`` by position).
    """
    if isinstance(obj, nn.Module):
        return [name for name, d in layer_density(obj).items() if d == 0.0]
    names = _names(model) if model is not None else {}
    return [names.get(m, f"layer{i}") for i, (m, mask) in enumerate(obj.items()) if not bool(mask.any())]


# ----------------------------------------------------------------------------- scores
def magnitude_scores(model: nn.Module) -> Scores:
    """|w| of every prunable weight."""
    return {m: effective_weight(m).abs().clone() for m, _ in prunable(model)}


def random_scores(model: nn.Module, seed: int = 0) -> Scores:
    """Uniform random scores: random pruning, the control of every comparison."""
    gen = torch.Generator().manual_seed(seed)
    return {m: torch.rand(module_tensor(m).shape, generator=gen) for m, _ in prunable(model)}


def _batches(data: Split, batch_size: int | None, seed: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    n = len(data)
    bs = n if batch_size is None else batch_size
    order = torch.arange(n) if seed is None else torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [(data.x[order[i:i + bs]], data.y[order[i:i + bs]]) for i in range(0, n, bs)]


def _live_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weight tensors of the last forward pass (for pruned modules the masked product)."""
    return [module_tensor(m) for m, _ in prunable(model)]


class _EvalMode:
    """Context: model in eval mode (batch-norm uses running statistics), mode restored."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.was = model, model.training

    def __enter__(self) -> nn.Module:
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was)


def gradient_scores(model: nn.Module, data: Split | None = None, *, batch_size: int | None = 256,
                    loss_fn: LossFn | None = None) -> Scores:
    """|w * dL/dw|: the first-order estimate of the loss change when ``w`` is removed.

    ``L`` is the mean cross-entropy over ``data`` (gradients averaged over batches of
    ``batch_size``), or ``loss_fn(model)`` when given.
    """
    mods = [m for m, _ in prunable(model)]
    grads = [torch.zeros_like(module_tensor(m)) for m in mods]
    with _EvalMode(model):
        if loss_fn is not None:
            losses: list[tuple[Callable[[], torch.Tensor], float]] = [(lambda: loss_fn(model), 1.0)]
        else:
            if data is None:
                raise ValueError("gradient_scores needs data or loss_fn")

            def batch_loss(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
                return nn.functional.cross_entropy(model(xb), yb)

            losses = [(partial(batch_loss, xb, yb), len(yb) / len(data)) for xb, yb in _batches(data, batch_size, None)]
        for loss_of, weight in losses:
            loss = loss_of()
            for acc, g in zip(grads, torch.autograd.grad(loss, _live_weights(model))):
                acc += weight * g
    return {m: (effective_weight(m) * g).abs() for m, g in zip(mods, grads)}


def hutchinson_diagonal(loss_of: Callable[[], torch.Tensor], weights_of: Callable[[], list[torch.Tensor]],
                        *, samples: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Hessian diagonal by Hutchinson's estimator, ``diag(H) = E_z[z * (H z)]``.

    ``z`` has independent Rademacher (+-1) entries, so ``E[z_i z_j] = delta_ij`` and
    ``E[z * Hz]_i = sum_j H_ij E[z_i z_j] = H_ii``. ``Hz`` is a Hessian-vector product
    by double backpropagation: ``g = dL/dw`` with ``create_graph``, then ``d(g . z)/dw``.
    For a diagonal Hessian one sample is exact (``z_i^2 = 1``); off-diagonal terms add
    zero-mean noise that ``samples`` averages out. Each sample calls ``loss_of()``
    afresh, so it may draw a new mini-batch.
    """
    total: list[torch.Tensor] | None = None
    for _ in range(samples):
        loss = loss_of()
        weights = weights_of()
        grads = torch.autograd.grad(loss, weights, create_graph=True)
        zs = [torch.randint(0, 2, g.shape, generator=generator).to(g.dtype) * 2 - 1 for g in grads]
        gz = sum((g * z).sum() for g, z in zip(grads, zs))
        assert isinstance(gz, torch.Tensor)  # not the start value 0: there are weights
        hz = torch.autograd.grad(gz, weights, allow_unused=True)
        est = [z * (h if h is not None else torch.zeros_like(z)) for z, h in zip(zs, hz)]
        total = est if total is None else [t + e for t, e in zip(total, est)]
    assert total is not None
    return [t.detach() / samples for t in total]


def obd_scores(model: nn.Module, data: Split | None = None, *, samples: int = 16, batch_size: int | None = 256,
               seed: int = 0, loss_fn: LossFn | None = None) -> Scores:
    """Optimal Brain Damage saliency ``s_i = 0.5 * h_ii * w_i^2`` (LeCun, Denker, Solla 1989).

    At a minimum the gradient vanishes and, ignoring off-diagonal terms, deleting ``w_i``
    changes the loss by ``0.5 * h_ii * w_i^2``. OBD used a Gauss-Newton diagonal; here
    ``h_ii`` is the diagonal of the true Hessian of the training loss, estimated by
    :func:`hutchinson_diagonal` with ``samples`` Rademacher probes, each on a fresh
    random mini-batch of ``batch_size`` (cross-entropy), or on ``loss_fn(model)`` when
    given. Estimates are not clamped: a negative ``h_ii`` (possible away from a minimum
    or as estimator noise) predicts a loss decrease and ranks the weight first to go.
    """
    mods = [m for m, _ in prunable(model)]
    gen = torch.Generator().manual_seed(seed)
    if loss_fn is None:
        if data is None:
            raise ValueError("obd_scores needs data or loss_fn")
        bs = len(data) if batch_size is None else min(batch_size, len(data))

        def loss_of() -> torch.Tensor:
            idx = torch.randperm(len(data), generator=gen)[:bs]
            return nn.functional.cross_entropy(model(data.x[idx]), data.y[idx])
    else:
        def loss_of() -> torch.Tensor:
            return loss_fn(model)
    with _EvalMode(model):
        diag = hutchinson_diagonal(loss_of, lambda: _live_weights(model), samples=samples, generator=gen)
    return {m: 0.5 * h * effective_weight(m) ** 2 for m, h in zip(mods, diag)}


@torch.no_grad()
def _linearise(net: nn.Module) -> None:
    """Make ``net`` a positive network: every float parameter and buffer -> |value|.

    Batch-norm layers run in eval mode with running mean 0 and variance 1, i.e. as the
    positive per-channel affine map ``|gamma| x / sqrt(1 + eps) + |beta|``, so the flow
    does not depend on the data statistics. With non-negative weights and input every
    pre-activation is non-negative and ReLU-type activations act as the identity.
    """
    for mod in net.modules():
        if (isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.running_mean is not None
                and mod.running_var is not None):
            mod.running_mean.zero_()
            mod.running_var.fill_(1.0)
    for t in list(net.parameters()) + list(net.buffers()):
        if t.is_floating_point():
            t.abs_()


def synflow_scores(model: nn.Module, input_shape: tuple[int, ...]) -> Scores:
    """Synaptic-flow scores ``|dR/dw * w|`` (Tanaka, Kunin, Yamins, Ganguli 2020).

    On a copy of the model with every weight replaced by its absolute value (see
    :func:`_linearise`), in float64 and eval mode, ``R = sum(f(1))`` is the network output
    summed for an all-ones input: the total "synaptic flow" through all paths. The score
    of a weight is the flow through it. Scores are conserved: in a purely linear chain
    each layer's scores sum to ``R``, so no single layer is ranked wholesale below the
    rest -- the reason iterative SynFlow avoids layer collapse. No data is used.
    """
    net = clone_model(model).double().eval()
    _linearise(net)
    shape = (1, *tuple(input_shape)[1:]) if len(input_shape) > 1 else tuple(input_shape)
    x = torch.ones(shape, dtype=torch.float64)
    r = net(x).sum()
    grads = torch.autograd.grad(r, _live_weights(net))
    orig = [m for m, _ in prunable(model)]
    return {m: (g * effective_weight(mc)).abs().float()
            for m, mc, g in zip(orig, [mc for mc, _ in prunable(net)], grads)}


# ----------------------------------------------------------------------------- masks
def _k_keep(n: int, sparsity: float) -> int:
    return int(round((1.0 - sparsity) * n))


def _top_mask(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the ``k`` largest entries; among ties at the threshold the lower index is kept.

    O(n) via ``kthvalue`` instead of a full sort: everything above the k-th largest value
    is kept, then the first equal-valued entries fill the count exactly.
    """
    n = flat.numel()
    if k >= n:
        return torch.ones(n, dtype=torch.bool)
    if k <= 0:
        return torch.zeros(n, dtype=torch.bool)
    thr = torch.kthvalue(flat, n - k + 1).values
    keep = flat > thr
    need = k - int(keep.sum())
    ties = torch.nonzero(flat == thr).flatten()[:need]
    keep[ties] = True
    return keep


def masks_from_scores(scores: Mapping[nn.Module, torch.Tensor], sparsity: float,
                      scope: str = "global") -> Masks:
    """Keep-masks that keep the highest scores and remove exactly ``round(sparsity * n)``.

    ``global`` ranks all weights together (layers end up with different sparsities and
    may collapse); ``layerwise`` removes the fraction ``sparsity`` of every layer.
    Ties are broken deterministically: the earlier layer / lower flat index is kept.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    mods = list(scores)
    if scope == "layerwise":
        return {m: _top_mask(scores[m].flatten(), _k_keep(scores[m].numel(), sparsity)).view_as(scores[m])
                for m in mods}
    flat = torch.cat([scores[m].flatten().double() for m in mods])
    keep = _top_mask(flat, _k_keep(flat.numel(), sparsity))
    out, i = {}, 0
    for m in mods:
        n = scores[m].numel()
        out[m] = keep[i:i + n].view_as(scores[m])
        i += n
    return out


def apply_masks(model: nn.Module, masks: Mapping[nn.Module, torch.Tensor]) -> nn.Module:
    """Prune ``model`` in place; a new mask is ANDed with any earlier mask of the module.

    The first mask of a module goes through ``prune.custom_from_mask``. Later ones are
    multiplied into the existing ``weight_mask`` buffer -- the same result as the
    ``PruningContainer`` that ``custom_from_mask`` would stack, without keeping every
    round's mask alive (100 SynFlow rounds would otherwise hold 100 masks per layer).
    """
    with torch.no_grad():
        for m, mask in masks.items():
            if is_pruned(m):
                weight_mask = module_tensor(m, "weight_mask")
                weight_mask.mul_(mask.to(weight_mask.dtype))
                setattr(m, "weight", (module_tensor(m, "weight_orig") * weight_mask).detach())
            else:
                prune.custom_from_mask(m, "weight", mask.to(module_tensor(m).dtype))
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold masks into plain weights (``prune.remove``): zeros stay, the reparametrisation goes."""
    for m, _ in prunable(model):
        if is_pruned(m):
            prune.remove(m, "weight")
    return model


def _respect_masks(model: nn.Module, scores: Scores) -> Scores:
    """Scores of already pruned weights -> -inf, so a new mask never revives them."""
    out = {}
    for m, s in scores.items():
        s = s.double().clone()
        if is_pruned(m):
            s[module_tensor(m, "weight_mask") == 0] = float("-inf")
        out[m] = s
    return out


# ----------------------------------------------------------------------------- the prune loop
def compute_scores(model: nn.Module, criterion: str, data: Split | None = None, *,
                   input_shape: tuple[int, ...] | None = None, seed: int = 0) -> Scores:
    """Scores of ``criterion`` (one of :data:`CRITERIA`); ValueError on an unknown name."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; allowed: {', '.join(CRITERIA)}")
    if criterion == "magnitude":
        return magnitude_scores(model)
    if criterion == "random":
        return random_scores(model, seed)
    if criterion == "synflow":
        if input_shape is None:
            if data is None:
                raise ValueError("synflow needs input_shape or data")
            input_shape = (1, *data.x.shape[1:])
        return synflow_scores(model, input_shape)
    if data is None:
        raise ValueError(f"criterion {criterion!r} needs data")
    if criterion == "gradient":
        return gradient_scores(model, data)
    return obd_scores(model, data, seed=seed)


def prune_step(model: nn.Module, target_sparsity: float, criterion: str, data: Split | None = None, *,
               scope: str = "global", input_shape: tuple[int, ...] | None = None, seed: int = 0) -> nn.Module:
    """Score, then mask so that the model's total sparsity becomes ``target_sparsity``.

    Already pruned weights are ranked last, so they stay pruned and the new mask adds
    exactly the missing zeros (``global``; ``layerwise`` per layer).
    """
    scores = _respect_masks(model, compute_scores(model, criterion, data, input_shape=input_shape, seed=seed))
    return apply_masks(model, masks_from_scores(scores, target_sparsity, scope))


def iterative_schedule(sparsity: float, rounds: int) -> list[float]:
    """Sparsity after round k = 1 - (1 - s)^(k / rounds): the same fraction of survivors each round."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    return [1.0 - (1.0 - sparsity) ** (k / rounds) for k in range(1, rounds + 1)]


def prune_one_shot(model: nn.Module, train: Split, test: Split, *, sparsity: float, criterion: str = "magnitude",
                   scope: str = "global", finetune_epochs: int = 5, lr: float = 0.05, seed: int = 0,
                   pretrain_epochs: int = 0) -> float:
    """Train (``pretrain_epochs``, 0 for an already trained model), score, remove, fine-tune; test accuracy.

    Prunes ``model`` in place (OBD's algorithm done once).
    """
    if pretrain_epochs:
        fit(model, train, epochs=pretrain_epochs, lr=lr, seed=seed)
    prune_step(model, sparsity, criterion, train, scope=scope, seed=seed)
    if finetune_epochs:
        fit(model, train, epochs=finetune_epochs, lr=lr, seed=seed + 1)
    return evaluate(model, test)


def prune_iterative(model: nn.Module, train: Split, test: Split, *, sparsity: float, rounds: int,
                    criterion: str = "magnitude", scope: str = "global", finetune_epochs_per_round: int = 2,
                    lr: float = 0.05, seed: int = 0, pretrain_epochs: int = 0) -> list[tuple[float, float]]:
    """Iterative pruning: per round prune to 1-(1-s)^(k/rounds), fine-tune, evaluate.

    Returns ``(sparsity, accuracy)`` after every round; prunes ``model`` in place.
    """
    if pretrain_epochs:
        fit(model, train, epochs=pretrain_epochs, lr=lr, seed=seed)
    out = []
    for k, target in enumerate(iterative_schedule(sparsity, rounds), start=1):
        prune_step(model, target, criterion, train, scope=scope, seed=seed + k)
        if finetune_epochs_per_round:
            fit(model, train, epochs=finetune_epochs_per_round, lr=lr, seed=seed + k)
        out.append((_sparsity(model), evaluate(model, test)))
    return out


# ----------------------------------------------------------------------------- pruning at initialisation
def synflow_prune(model: nn.Module, sparsity: float, input_shape: tuple[int, ...],
                  iterations: int = 100) -> nn.Module:
    """Iterative SynFlow at initialisation (Tanaka et al. Algorithm 1), in place.

    ``iterations`` rounds of score-and-prune on the exponential schedule
    ``1 - (1 - s)^(k / iterations)``, global scope; scores are recomputed each round,
    which is what makes the method avoid layer collapse.
    """
    for target in iterative_schedule(sparsity, iterations):
        prune_step(model, target, "synflow", input_shape=input_shape)
    return model


def prune_at_init(model: nn.Module, sparsity: float, criterion: str, data: Split | None = None,
                  input_shape: tuple[int, ...] | None = None, *, scope: str = "global",
                  iterations: int = 100, seed: int = 0) -> nn.Module:
    """One-shot global pruning of an untrained model (``synflow`` runs iteratively), in place.

    The layer-collapse experiment: at high sparsity global ``magnitude``/``gradient``
    empty whole layers, iterative ``synflow`` does not.
    """
    if criterion == "synflow":
        if input_shape is None:
            if data is None:
                raise ValueError("synflow needs input_shape or data")
            input_shape = (1, *data.x.shape[1:])
        return synflow_prune(model, sparsity, input_shape, iterations)
    return prune_step(model, sparsity, criterion, data, scope=scope, input_shape=input_shape, seed=seed)
