"""Neural architecture search on a small DARTS-style cell space (thesis section 1.5).

The space
    A network is a stem (conv3x3-BN), one stage of ``cells_per_stage`` normal cells at the
    input resolution, a fixed (not searched) reduction (ReLU-conv3x3 stride 2-BN, doubling
    the cell width), a second stage of normal cells, global average pooling and a linear
    classifier. Only the normal cell is searched and all normal cells share it (DARTS shares
    one cell per type; our reduction is fixed, as in NAS-Bench-201's residual reductions).
    A cell (Liu et al., 2019, "DARTS: Differentiable Architecture Search", ICLR) has two
    input nodes (the outputs of the two previous layers, each brought to the cell width by
    a 1x1 ReLU-conv-BN, or a factorised reduction when it has twice the resolution) and
    ``nodes`` intermediate nodes; the discrete cell makes each intermediate node the sum of
    two operations applied to two *different* earlier nodes; the cell's output concatenates
    the intermediate nodes. The candidate operations are :data:`PRIMITIVES`.

DARTS
    The supernet mixes *every* edge (each earlier node to each intermediate node):
    ``o_bar(x) = sum_k softmax(alpha)_k o_k(x)`` (:class:`MixedOp`). Weights are trained on one
    half of the training split and ``alpha`` on the other half, alternately (the bilevel
    problem): first order (xi = 0) or second order (one unrolled SGD step, the mixed
    second derivative by a central finite difference, as in the paper;
    :func:`unrolled_alpha_gradient`). The discrete cell keeps, for each node, the two
    incoming edges whose best non-``none`` operation weighs most, with that operation
    (:func:`derive_genotype`).

The skip-connection collapse and its remedy
    Long DARTS searches drift towards parameter-free operations, skip connections above
    all (Chen et al., 2019, "Progressive Differentiable Architecture Search", ICCV, P-DARTS;
    Liang et al., 2019, "DARTS+"). The remedy applied here is P-DARTS's *search space
    regularisation*: operation-level dropout after every skip connection during the search,
    its rate decaying over the epochs (:func:`skip_dropout_rate`), and at most ``M = 2`` skip
    connections in the final cell (the weakest skip is struck out and the cell derived
    again, :func:`derive_genotype` with ``max_skip``). Chosen because it keeps the search
    budget fixed (so search costs compare at a known budget, unlike DARTS+'s early stop)
    and its cap is a deterministic rule a test can check. P-DARTS's progressive deepening
    of the supernet is not used.

Discrete search
    Regularised (aging) evolution (Real et al., 2019, "Regularized Evolution for Image
    Classifier Architecture Search", AAAI): tournament selection of the best of ``sample``
    random members, a child that differs from its parent in exactly one gene (one edge's
    operation or one edge's input), the oldest member removed. The thesis's crossover of half
    genomes is an option. Random search samples cells uniformly. Both score a candidate by a
    short training on the search-training half and its accuracy on the search-validation
    half; the test split is never seen by any search.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from faceopt.compress.training import evaluate, fit
from faceopt.data.digits import Split
from faceopt.models.profile import count_parameters

#: Candidate operations on every edge, in the column order of ``alpha``.
PRIMITIVES: tuple[str, ...] = ("none", "skip_connect", "conv_3x3", "sep_conv_3x3", "max_pool_3x3", "avg_pool_3x3")
#: Operations a discrete cell may use (``none`` only exists inside the supernet).
DISCRETE_OPS: tuple[str, ...] = PRIMITIVES[1:]
SKIP = "skip_connect"


# ----------------------------------------------------------------------------- operations
def _bn(channels: int, affine: bool) -> nn.BatchNorm2d:
    # The supernet normalises with batch statistics only (affine=False, no running averages, as
    # in the DARTS search): architecture weights, not BN scales, must carry the operations' strength.
    return nn.BatchNorm2d(channels, affine=affine, track_running_stats=affine)


class Zero(nn.Module):
    """The ``none`` operation: zeros of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, batch norm (DARTS's ordering)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, padding: int, affine: bool, stride: int = 1) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), _bn(c_out, affine))


class SepConv(nn.Sequential):
    """Two stacked separable 3x3 convolutions (DARTS's ``sep_conv_3x3``)."""

    def __init__(self, channels: int, affine: bool) -> None:
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [nn.ReLU(), nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False),
                       nn.Conv2d(channels, channels, 1, bias=False), _bn(channels, affine)]
        super().__init__(*layers)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset strided 1x1 convolutions (for an input node at twice the resolution)."""

    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU()
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = _bn(c_out, affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(x[:, :, 1:, 1:])], dim=1))


def make_op(name: str, channels: int, affine: bool = True) -> nn.Module:
    """The operation ``name`` of :data:`PRIMITIVES` at stride 1 on ``channels`` channels."""
    if name == "none":
        return Zero()
    if name == SKIP:
        return nn.Identity()
    if name == "conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, affine)
    if name == "sep_conv_3x3":
        return SepConv(channels, affine)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    raise ValueError(f"unknown operation {name!r}; expected one of {', '.join(PRIMITIVES)}")


# ----------------------------------------------------------------------------- genotype
def edge_list(nodes: int) -> list[tuple[int, int]]:
    """(source, target) of every supernet edge, in the row order of ``alpha``: node ids 0 and 1 are the
    cell's inputs, 2 .. nodes+1 its intermediate nodes."""
    if nodes < 1:
        raise ValueError(f"a cell needs at least one intermediate node, got {nodes}")
    return [(i, j + 2) for j in range(nodes) for i in range(j + 2)]


@dataclass(frozen=True)
class Genotype:
    """A discrete normal cell: for each intermediate node, two ``(operation, input node)`` pairs.

    ``normal[2 * j]`` and ``normal[2 * j + 1]`` feed intermediate node ``j + 2``; input ids are
    0 and 1 (the cell's inputs) or earlier intermediate nodes, and a node's two inputs differ.
    Hashable, and JSON-serialisable with :meth:`to_json`.
    """

    normal: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        try:
            genes = tuple((str(op), int(src)) for op, src in self.normal)
            exact = all(isinstance(src, (int, np.integer)) and not isinstance(src, bool) for _, src in self.normal)
        except (TypeError, ValueError):
            raise ValueError(f"a genotype is a sequence of (operation, input) pairs, got {self.normal!r}") from None
        if not exact:
            raise ValueError(f"input nodes must be integers, got {self.normal!r}")
        if not genes or len(genes) % 2:
            raise ValueError(f"a genotype needs two (operation, input) pairs per node, got {len(genes)} pairs")
        for k, (op, src) in enumerate(genes):
            node = k // 2 + 2
            if op not in DISCRETE_OPS:
                raise ValueError(f"edge {k}: operation {op!r} is not one of {', '.join(DISCRETE_OPS)}")
            if not 0 <= src < node:
                raise ValueError(f"edge {k}: node {node} can only read nodes 0..{node - 1}, got input {src}")
        for k in range(0, len(genes), 2):
            if genes[k][1] == genes[k + 1][1]:
                raise ValueError(f"node {k // 2 + 2} reads node {genes[k][1]} twice; its two inputs must differ")
        object.__setattr__(self, "normal", genes)

    @property
    def nodes(self) -> int:
        return len(self.normal) // 2

    @property
    def skip_count(self) -> int:
        return sum(op == SKIP for op, _ in self.normal)

    def edges(self) -> list[tuple[int, int, str]]:
        """(source node, target node, operation) of every edge, for drawing the cell."""
        return [(src, k // 2 + 2, op) for k, (op, src) in enumerate(self.normal)]

    def to_dict(self) -> dict[str, Any]:
        return {"normal": [[op, src] for op, src in self.normal]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        if not isinstance(data, dict) or "normal" not in data:
            raise ValueError(f"expected a mapping with key 'normal', got {data!r}")
        return cls(tuple((op, src) for op, src in data["normal"]))

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        return cls.from_dict(json.loads(text))

    def __str__(self) -> str:
        return " | ".join(f"n{j + 2}: {self.normal[2 * j][0]}({self.normal[2 * j][1]}) + "
                          f"{self.normal[2 * j + 1][0]}({self.normal[2 * j + 1][1]})" for j in range(self.nodes))


# ----------------------------------------------------------------------------- cells and networks
class MixedOp(nn.Module):
    """``sum_k w_k o_k(x)`` over :data:`PRIMITIVES`; ``skip_dropout`` is P-DARTS's dropout after the skip connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        ops = []
        for name in PRIMITIVES:
            op = make_op(name, channels, affine=False)
            if "pool" in name:  # DARTS normalises the pools' outputs in the supernet
                op = nn.Sequential(op, _bn(channels, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)
        self.skip_dropout = 0.0

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if weights.shape != (len(self.ops),):
            raise ValueError(f"MixedOp needs {len(self.ops)} weights, got shape {tuple(weights.shape)}")
        # ``none`` adds w * 0: skipping it changes neither the sum nor any gradient (d/dw_none = <g, 0> = 0;
        # alpha_none still gets its gradient through the softmax of the other weights).
        ys = []
        for name, op in zip(PRIMITIVES[1:], self.ops[1:]):
            y = op(x)
            if name == SKIP and self.skip_dropout > 0:
                y = F.dropout(y, self.skip_dropout, self.training)
            ys.append(y)
        return torch.tensordot(weights[1:], torch.stack(ys), dims=1)


def _preprocess(c_pp: int, c_p: int, channels: int, reduction_prev: bool, affine: bool) -> tuple[nn.Module, nn.Module]:
    pre0 = FactorizedReduce(c_pp, channels, affine) if reduction_prev else ReLUConvBN(c_pp, channels, 1, 0, affine)
    return pre0, ReLUConvBN(c_p, channels, 1, 0, affine)


class SearchCell(nn.Module):
    """The supernet's cell: every intermediate node sums mixed operations on all earlier nodes."""

    def __init__(self, nodes: int, c_pp: int, c_p: int, channels: int, reduction_prev: bool) -> None:
        super().__init__()
        self.nodes = nodes
        self.pre0, self.pre1 = _preprocess(c_pp, c_p, channels, reduction_prev, affine=False)
        self.edges = nn.ModuleList(MixedOp(channels) for _ in edge_list(nodes))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for _ in range(self.nodes):
            total: torch.Tensor | None = None
            for h in list(states):
                y = self.edges[e](h, weights[e])
                total = y if total is None else total + y
                e += 1
            assert total is not None
            states.append(total)
        return torch.cat(states[2:], dim=1)


class Cell(nn.Module):
    """A discrete cell built from a :class:`Genotype`."""

    def __init__(self, genotype: Genotype, c_pp: int, c_p: int, channels: int, reduction_prev: bool) -> None:
        super().__init__()
        self.genotype = genotype
        self.pre0, self.pre1 = _preprocess(c_pp, c_p, channels, reduction_prev, affine=True)
        self.ops = nn.ModuleList(make_op(op, channels) for op, _ in genotype.normal)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for j in range(self.genotype.nodes):
            (_, a), (_, b) = self.genotype.normal[2 * j], self.genotype.normal[2 * j + 1]
            states.append(self.ops[2 * j](states[a]) + self.ops[2 * j + 1](states[b]))
        return torch.cat(states[2:], dim=1)


class _Backbone(nn.Module):
    """Stem, a stage of normal cells, a fixed reduction, a stage of normal cells at twice the width, classifier."""

    def __init__(self, make_cell: Callable[[int, int, int, bool], nn.Module], *, channels: int, nodes: int,
                 cells_per_stage: int, num_classes: int, in_channels: int, affine: bool, stem_multiplier: int = 2) -> None:
        super().__init__()
        if channels < 1 or cells_per_stage < 1 or num_classes < 2 or in_channels < 1:
            raise ValueError(f"need channels, cells_per_stage, in_channels >= 1 and num_classes >= 2, got "
                             f"{channels}, {cells_per_stage}, {in_channels}, {num_classes}")
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, 1, 1, bias=False), _bn(c_stem, affine))
        self.layers = nn.ModuleList()
        self.is_cell: list[bool] = []
        c_pp, c_p, width, reduction_prev = c_stem, c_stem, channels, False
        for stage in range(2):
            if stage == 1:
                width *= 2
                self.layers.append(ReLUConvBN(c_p, width, 3, 1, affine, stride=2))
                self.is_cell.append(False)
                c_pp, c_p, reduction_prev = c_p, width, True
            for _ in range(cells_per_stage):
                self.layers.append(make_cell(c_pp, c_p, width, reduction_prev))
                self.is_cell.append(True)
                c_pp, c_p, reduction_prev = c_p, nodes * width, False
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def _cell(self, cell: nn.Module, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        return cell(s0, s1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for layer, is_cell in zip(self.layers, self.is_cell):
            s0, s1 = s1, (self._cell(layer, s0, s1) if is_cell else layer(s1))
        return self.classifier(self.pool(s1).flatten(1))


class DiscreteNetwork(_Backbone):
    """The network of a discrete cell (every normal cell is ``genotype``)."""

    def __init__(self, genotype: Genotype, *, channels: int = 8, cells_per_stage: int = 1, num_classes: int = 10,
                 in_channels: int = 1) -> None:
        super().__init__(lambda c_pp, c_p, c, red: Cell(genotype, c_pp, c_p, c, red), channels=channels,
                         nodes=genotype.nodes, cells_per_stage=cells_per_stage, num_classes=num_classes,
                         in_channels=in_channels, affine=True)
        self.genotype = genotype


class SearchNetwork(_Backbone):
    """The DARTS supernet; ``alpha`` [edges, operations] is shared by all normal cells."""

    def __init__(self, *, channels: int = 8, nodes: int = 3, cells_per_stage: int = 1, num_classes: int = 10,
                 in_channels: int = 1) -> None:
        super().__init__(lambda c_pp, c_p, c, red: SearchCell(nodes, c_pp, c_p, c, red), channels=channels,
                         nodes=nodes, cells_per_stage=cells_per_stage, num_classes=num_classes,
                         in_channels=in_channels, affine=False)
        self.nodes = nodes
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(edge_list(nodes)), len(PRIMITIVES)))

    def _cell(self, cell: nn.Module, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        return cell(s0, s1, F.softmax(self.alpha, dim=-1))

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter but ``alpha``."""
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def set_skip_dropout(self, rate: float) -> None:
        for module in self.modules():
            if isinstance(module, MixedOp):
                module.skip_dropout = rate

    def genotype(self, max_skip: int | None = None) -> Genotype:
        return derive_genotype(F.softmax(self.alpha.detach(), dim=-1), max_skip=max_skip)


def network_parameters(genotype: Genotype, *, channels: int = 8, cells_per_stage: int = 1, num_classes: int = 10) -> int:
    """Trainable parameters of the :class:`DiscreteNetwork` of ``genotype``."""
    return count_parameters(DiscreteNetwork(genotype, channels=channels, cells_per_stage=cells_per_stage,
                                            num_classes=num_classes))


# ----------------------------------------------------------------------------- deriving a cell
def derive_genotype(weights: torch.Tensor | np.ndarray, *, max_skip: int | None = None) -> Genotype:
    """DARTS's discrete cell from operation weights [edges, len(PRIMITIVES)] (softmax of ``alpha``).

    For each intermediate node the two incoming edges with the largest non-``none`` weight are kept,
    each with its best non-``none`` operation (ties: the earlier edge, the earlier operation). With
    ``max_skip`` (P-DARTS's M), while the cell has more skip connections than that, the kept skip with
    the smallest weight is struck out (its weight set to -inf) and the cell derived again.
    """
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64)).clone()
    if w.ndim != 2 or w.shape[1] != len(PRIMITIVES):
        raise ValueError(f"weights must have shape [edges, {len(PRIMITIVES)}], got {tuple(w.shape)}")
    nodes = 0
    while len(edge_list(nodes + 1)) < w.shape[0]:
        nodes += 1
    nodes += 1
    if len(edge_list(nodes)) != w.shape[0]:
        raise ValueError(f"{w.shape[0]} edges is not the edge count of any cell (2+3+...+(n+1))")
    if not torch.isfinite(w).all():
        raise ValueError("weights must be finite")
    if max_skip is not None and max_skip < 0:
        raise ValueError(f"max_skip must be >= 0 or None, got {max_skip}")
    skip = PRIMITIVES.index(SKIP)
    while True:
        genes, kept = [], []
        start = 0
        for j in range(nodes):
            rows = w[start:start + j + 2, 1:]
            best_w, best_op = rows.max(dim=1)
            order = sorted(range(j + 2), key=lambda i: (-float(best_w[i]), i))[:2]
            for i in sorted(order):
                genes.append((DISCRETE_OPS[int(best_op[i])], i))
                kept.append(start + i)
            start += j + 2
        genotype = Genotype(tuple(genes))
        if max_skip is None or genotype.skip_count <= max_skip:
            return genotype
        skips = [e for e, (op, _) in zip(kept, genotype.normal) if op == SKIP]
        weakest = min(skips, key=lambda e: (float(w[e, skip]), -e))
        w[weakest, skip] = -math.inf


# ----------------------------------------------------------------------------- DARTS gradients
def finite_difference_hvp(loss: Callable[[], torch.Tensor], weights: Sequence[torch.Tensor],
                          alphas: Sequence[torch.Tensor], vector: Sequence[torch.Tensor], r: float = 0.01) -> list[torch.Tensor]:
    """``grad^2_{alpha, w} L . v`` by DARTS's central difference:
    ``[grad_alpha L(w + eps v) - grad_alpha L(w - eps v)] / (2 eps)`` with ``eps = r / ||v||``.

    ``loss()`` evaluates L at the current values of ``weights`` (moved in place and restored).
    """
    norm = torch.sqrt(sum((v.detach() ** 2).sum() for v in vector))  # type: ignore[arg-type]
    if not torch.isfinite(norm) or float(norm) == 0.0:
        return [torch.zeros_like(a) for a in alphas]
    eps = r / float(norm)
    saved = [w.detach().clone() for w in weights]
    grads = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for w, w0, v in zip(weights, saved, vector):
                w.copy_(w0 + sign * eps * v)
        grads.append(torch.autograd.grad(loss(), list(alphas), allow_unused=True))
    with torch.no_grad():
        for w, w0 in zip(weights, saved):
            w.copy_(w0)
    return [(torch.zeros_like(a) if gp is None else (gp - gm) / (2 * eps))
            for a, gp, gm in zip(alphas, grads[0], grads[1])]


def unrolled_alpha_gradient(train_loss: Callable[[], torch.Tensor], val_loss: Callable[[], torch.Tensor],
                            weights: Sequence[torch.Tensor], alphas: Sequence[torch.Tensor], *, xi: float,
                            momentum: float = 0.0, momentum_buffers: Sequence[torch.Tensor | None] | None = None,
                            weight_decay: float = 0.0, r: float = 0.01) -> list[torch.Tensor]:
    """DARTS's second-order architecture gradient (eq. 7-8 of Liu et al., 2019).

    ``grad_alpha L_val(w', alpha) - xi * grad^2_{alpha, w} L_train(w, alpha) . grad_w' L_val(w', alpha)``
    with the virtual step ``w' = w - xi (momentum * m + grad_w L_train(w, alpha) + weight_decay * w)``
    (``m`` the optimiser's momentum buffers, as in the authors' code); the mixed derivative by
    :func:`finite_difference_hvp`. ``xi = 0`` gives the first-order gradient. The three evaluations
    of ``train_loss`` see the same random state (the same dropout masks). Weights are restored.
    """
    weights, alphas = list(weights), list(alphas)
    rng = torch.get_rng_state()

    def train_at_same_masks() -> torch.Tensor:
        torch.set_rng_state(rng)
        return train_loss()

    saved = [w.detach().clone() for w in weights]
    buffers = list(momentum_buffers) if momentum_buffers is not None else [None] * len(weights)
    if xi != 0.0:
        g_train = torch.autograd.grad(train_at_same_masks(), weights, allow_unused=True)
        with torch.no_grad():
            for w, g, m in zip(weights, g_train, buffers):
                step = w * weight_decay
                if g is not None:
                    step = step + g
                if m is not None:
                    step = step + momentum * m
                w.sub_(xi * step)
    if xi == 0.0:
        grads = torch.autograd.grad(val_loss(), alphas, allow_unused=True)
        return [torch.zeros_like(a) if g is None else g for a, g in zip(alphas, grads)]
    grads = torch.autograd.grad(val_loss(), alphas + weights, allow_unused=True)
    d_alpha = [torch.zeros_like(a) if g is None else g for a, g in zip(alphas, grads[:len(alphas)])]
    vector = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads[len(alphas):])]
    with torch.no_grad():
        for w, s in zip(weights, saved):
            w.copy_(s)
    hvp = finite_difference_hvp(train_at_same_masks, weights, alphas, vector, r)
    return [d - xi * h for d, h in zip(d_alpha, hvp)]


def skip_dropout_rate(epoch: int, epochs: int, initial: float, *, warmup: int = 0, decay: float = 0.2) -> float:
    """P-DARTS's schedule of the dropout after skip connections: during the ``warmup`` epochs (weights only)
    ``initial * (epochs - epoch - 1) / epochs``, then ``initial * exp(-decay * (epoch - warmup))``."""
    if not 0.0 <= initial < 1.0:
        raise ValueError(f"the skip dropout rate must be in [0, 1), got {initial}")
    if epoch < warmup:
        return initial * (epochs - epoch - 1) / epochs
    return initial * math.exp(-decay * (epoch - warmup))


# ----------------------------------------------------------------------------- cost
@dataclass
class Stopwatch:
    """Wall seconds (``time.perf_counter``) and CPU seconds of this process, all threads (``time.process_time``)."""

    wall0: float = field(default_factory=time.perf_counter)
    cpu0: float = field(default_factory=time.process_time)

    @property
    def wall(self) -> float:
        return time.perf_counter() - self.wall0

    @property
    def cpu(self) -> float:
        return time.process_time() - self.cpu0


# ----------------------------------------------------------------------------- DARTS search
@dataclass(frozen=True)
class DartsConfig:
    """One DARTS search. Optimisers as in Liu et al. (weights: SGD, momentum 0.9, cosine rate, gradient
    clipping at 5; alpha: Adam with betas (0.5, 0.999)); ``skip_dropout`` > 0 and ``max_skip`` give
    the P-DARTS remedy; ``warmup_epochs`` train the weights only."""

    epochs: int = 20
    order: int = 1
    channels: int = 8
    nodes: int = 3
    cells_per_stage: int = 1
    batch_size: int = 64
    w_lr: float = 0.05
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-3
    alpha_weight_decay: float = 1e-3
    warmup_epochs: int = 0
    skip_dropout: float = 0.0
    skip_dropout_decay: float = 0.2
    max_skip: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.order not in (1, 2):
            raise ValueError(f"order must be 1 (first order, xi = 0) or 2 (second order), got {self.order}")
        if self.epochs < 1 or self.batch_size < 1 or not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"need epochs >= 1, batch_size >= 1 and 0 <= warmup_epochs <= epochs, got "
                             f"{self.epochs}, {self.batch_size}, {self.warmup_epochs}")
        if not 0.0 <= self.skip_dropout < 1.0:
            raise ValueError(f"skip_dropout must be in [0, 1), got {self.skip_dropout}")
        if self.max_skip is not None and self.max_skip < 0:
            raise ValueError(f"max_skip must be >= 0 or None, got {self.max_skip}")

    @property
    def remedy(self) -> bool:
        return self.skip_dropout > 0 or self.max_skip is not None


@dataclass
class DartsResult:
    """What a DARTS search found and cost; ``alpha_history[step, edge, op]`` is softmax(alpha) after each step."""

    config: DartsConfig
    genotype: Genotype
    genotype_uncapped: Genotype
    alpha_history: np.ndarray
    epoch_genotypes: list[Genotype]
    skip_counts: list[int]
    skip_counts_capped: list[int]
    supernet_loss: list[float]
    supernet_val_accuracy: list[float]
    wall_seconds: float
    cpu_seconds: float
    edges: list[tuple[int, int]]


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=gen)
    return list(order.split(batch_size))


def darts_search(train: Split, val: Split, config: DartsConfig,
                 on_epoch: Callable[[int, Genotype], None] | None = None) -> DartsResult:
    """Search a cell by DARTS: weights on ``train``, ``alpha`` on ``val`` (two halves of the training split).

    Each step first updates ``alpha`` on a validation batch (after ``warmup_epochs``), then the weights on
    a training batch. Deterministic for ``config.seed`` on a given machine.
    """
    if len(train) == 0 or len(val) == 0:
        raise ValueError("DARTS needs non-empty training and validation halves")
    clock = Stopwatch()
    torch.manual_seed(config.seed)
    model = SearchNetwork(channels=config.channels, nodes=config.nodes, cells_per_stage=config.cells_per_stage,
                          num_classes=int(max(int(train.y.max()), int(val.y.max())) + 1), in_channels=train.x.shape[1])
    weights = model.weight_parameters()
    w_opt = torch.optim.SGD(weights, lr=config.w_lr, momentum=config.w_momentum, weight_decay=config.w_weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, config.epochs, eta_min=config.w_lr_min)
    a_opt = torch.optim.Adam([model.alpha], lr=config.alpha_lr, betas=(0.5, 0.999),
                             weight_decay=config.alpha_weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    history: list[np.ndarray] = []
    epoch_genotypes: list[Genotype] = []
    skips: list[int] = []
    skips_capped: list[int] = []
    losses: list[float] = []
    val_accs: list[float] = []
    model.train()
    for epoch in range(config.epochs):
        lr = float(sched.get_last_lr()[0])
        model.set_skip_dropout(skip_dropout_rate(epoch, config.epochs, config.skip_dropout,
                                                 warmup=config.warmup_epochs, decay=config.skip_dropout_decay))
        train_batches = _batches(len(train), config.batch_size, gen)
        val_batches = _batches(len(val), config.batch_size, gen)
        total, count = 0.0, 0
        for step, idx in enumerate(train_batches):
            xt, yt = train.x[idx], train.y[idx]
            if epoch >= config.warmup_epochs:
                vdx = val_batches[step % len(val_batches)]
                xv, yv = val.x[vdx], val.y[vdx]
                buffers = [w_opt.state[p].get("momentum_buffer") if p in w_opt.state else None for p in weights]
                (g_alpha,) = unrolled_alpha_gradient(
                    lambda: F.cross_entropy(model(xt), yt), lambda: F.cross_entropy(model(xv), yv), weights,
                    [model.alpha], xi=lr if config.order == 2 else 0.0, momentum=config.w_momentum,
                    momentum_buffers=buffers, weight_decay=config.w_weight_decay)
                a_opt.zero_grad(set_to_none=True)
                model.alpha.grad = g_alpha
                a_opt.step()
            loss = F.cross_entropy(model(xt), yt)
            grads = torch.autograd.grad(loss, weights)
            for p, g in zip(weights, grads):
                p.grad = g
            nn.utils.clip_grad_norm_(weights, config.grad_clip)
            w_opt.step()
            w_opt.zero_grad(set_to_none=True)
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            history.append(F.softmax(model.alpha.detach(), dim=-1).numpy().copy())
        sched.step()
        losses.append(total / count)
        model.eval()  # no skip dropout; the supernet's batch norms use batch statistics in both modes
        with torch.no_grad():
            correct = sum(int((model(val.x[i:i + 256]).argmax(1) == val.y[i:i + 256]).sum())
                          for i in range(0, len(val), 256))
        model.train()
        val_accs.append(correct / len(val))
        derived = model.genotype()
        epoch_genotypes.append(derived)
        skips.append(derived.skip_count)
        skips_capped.append(model.genotype(config.max_skip).skip_count)
        if on_epoch is not None:
            on_epoch(epoch, derived)
    final = model.genotype(config.max_skip)
    return DartsResult(config=config, genotype=final, genotype_uncapped=model.genotype(), alpha_history=np.stack(history),
                       epoch_genotypes=epoch_genotypes, skip_counts=skips, skip_counts_capped=skips_capped,
                       supernet_loss=losses, supernet_val_accuracy=val_accs, wall_seconds=clock.wall,
                       cpu_seconds=clock.cpu, edges=edge_list(config.nodes))


# ----------------------------------------------------------------------------- training a discrete cell
@dataclass(frozen=True)
class TrainBudget:
    """How a discrete cell is trained: by a candidate's short proxy training, or by the final retraining."""

    epochs: int
    lr: float = 0.05
    batch_size: int = 64
    weight_decay: float = 3e-4
    channels: int = 8
    cells_per_stage: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"need epochs >= 1, batch_size >= 1 and lr > 0, got {self.epochs}, {self.batch_size}, {self.lr}")


def train_genotype(genotype: Genotype, train: Split, score: Split, budget: TrainBudget, *, seed: int) -> tuple[float, int]:
    """Train the network of ``genotype`` from scratch on ``train`` (:func:`~faceopt.compress.training.fit`);
    return its accuracy on ``score`` after the last epoch and its parameter count."""
    torch.manual_seed(seed)
    model = DiscreteNetwork(genotype, channels=budget.channels, cells_per_stage=budget.cells_per_stage,
                            num_classes=int(train.y.max()) + 1, in_channels=train.x.shape[1])
    fit(model, train, epochs=budget.epochs, lr=budget.lr, batch_size=budget.batch_size,
        weight_decay=budget.weight_decay, seed=seed)
    return evaluate(model, score), count_parameters(model)


# ----------------------------------------------------------------------------- discrete search
def random_genotype(nodes: int, rng: random.Random) -> Genotype:
    """A cell drawn uniformly: each node reads two different earlier nodes, each edge any discrete operation."""
    genes = []
    for j in range(nodes):
        for src in sorted(rng.sample(range(j + 2), 2)):
            genes.append((rng.choice(DISCRETE_OPS), src))
    return Genotype(tuple(genes))


def mutate(genotype: Genotype, rng: random.Random) -> Genotype:
    """Real et al.'s mutation: one edge gets a different operation, or a different input (one its node does
    not read already); exactly one gene changes. An edge whose node has no other input to read (node 2)
    gets an operation mutation."""
    ops = [op for op, _ in genotype.normal]
    srcs = [src for _, src in genotype.normal]
    k = rng.randrange(len(ops))
    inputs = [i for i in range(k // 2 + 2) if i not in (srcs[k], srcs[k ^ 1])]
    if inputs and rng.random() < 0.5:
        srcs[k] = rng.choice(inputs)
    else:
        ops[k] = rng.choice([op for op in DISCRETE_OPS if op != ops[k]])
    return Genotype(tuple(zip(ops, srcs)))


def crossover(a: Genotype, b: Genotype) -> Genotype:
    """The thesis's crossover of half genomes: the first half of the nodes (rounded up) from ``a``, the rest from ``b``."""
    if a.nodes != b.nodes:
        raise ValueError(f"crossover needs cells with the same number of nodes, got {a.nodes} and {b.nodes}")
    cut = 2 * math.ceil(a.nodes / 2)
    return Genotype(a.normal[:cut] + b.normal[cut:])


@dataclass(frozen=True)
class Candidate:
    """One trained candidate: its index in the search, cell, score, and the search's cumulative cost after it."""

    index: int
    genotype: Genotype
    accuracy: float
    wall_seconds: float
    cpu_seconds: float
    parent: int | None = None


@dataclass
class SearchTrace:
    """Every candidate of a discrete search in the order trained; ``removed`` lists aging's removals."""

    method: str
    candidates: list[Candidate]
    population: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    @property
    def best(self) -> Candidate:
        """The candidate with the highest validation accuracy (the earliest among ties)."""
        return max(self.candidates, key=lambda c: (c.accuracy, -c.index))

    @property
    def wall_seconds(self) -> float:
        return self.candidates[-1].wall_seconds

    @property
    def cpu_seconds(self) -> float:
        return self.candidates[-1].cpu_seconds

    def best_so_far(self) -> list[float]:
        """Best validation accuracy after each candidate (the accuracy-against-cost curve)."""
        out, best = [], -math.inf
        for c in self.candidates:
            best = max(best, c.accuracy)
            out.append(best)
        return out


Evaluator = Callable[[Genotype, int], float]
"""Scores a cell; the int is the candidate's index (its training seed)."""


def _score(evaluator: Evaluator, genotype: Genotype, index: int, clock: Stopwatch, parent: int | None = None) -> Candidate:
    acc = float(evaluator(genotype, index))
    return Candidate(index, genotype, acc, clock.wall, clock.cpu, parent)


def random_search(evaluator: Evaluator, *, nodes: int, candidates: int, seed: int = 0) -> SearchTrace:
    """Random search: ``candidates`` uniformly drawn cells, each scored by ``evaluator``."""
    if candidates < 1:
        raise ValueError(f"random search needs at least one candidate, got {candidates}")
    rng = random.Random(seed)
    clock = Stopwatch()
    return SearchTrace("random", [_score(evaluator, random_genotype(nodes, rng), i, clock) for i in range(candidates)])


def regularized_evolution(evaluator: Evaluator, *, nodes: int, candidates: int, population_size: int, sample_size: int,
                          crossover_halves: bool = False, seed: int = 0) -> SearchTrace:
    """Aging evolution (Real et al., 2019) with ``candidates`` trained cells in all.

    ``population_size`` random cells start the population; then each cycle samples ``sample_size``
    members, the best becomes the parent (with ``crossover_halves``, the parent is the
    :func:`crossover` of the sample's two best), the child is its :func:`mutate`, joins the population,
    and the oldest member is removed.
    """
    if not 2 <= sample_size <= population_size <= candidates:
        raise ValueError(f"need 2 <= sample_size <= population_size <= candidates, got {sample_size}, "
                         f"{population_size}, {candidates}")
    rng = random.Random(seed)
    clock = Stopwatch()
    trace = SearchTrace("evolution", [])
    population: deque[Candidate] = deque()
    for i in range(population_size):
        child = _score(evaluator, random_genotype(nodes, rng), i, clock)
        trace.candidates.append(child)
        population.append(child)
    for i in range(population_size, candidates):
        sample = sorted(rng.sample(list(population), sample_size), key=lambda c: (-c.accuracy, c.index))
        parent = sample[0]
        base = crossover(sample[0].genotype, sample[1].genotype) if crossover_halves else parent.genotype
        child = _score(evaluator, mutate(base, rng), i, clock, parent.index)
        trace.candidates.append(child)
        population.append(child)
        trace.removed.append(population.popleft().index)
    trace.population = [c.index for c in population]
    return trace


def candidate_evaluator(train: Split, val: Split, budget: TrainBudget, *, seed: int = 0) -> Evaluator:
    """Scores a cell by training it for ``budget`` on ``train`` and measuring accuracy on ``val``
    (the candidate with index i trains from seed ``1000 * seed + i``)."""
    def score(genotype: Genotype, index: int) -> float:
        return train_genotype(genotype, train, val, budget, seed=1000 * seed + index)[0]
    return score

