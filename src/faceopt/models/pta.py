"""Post-Train Adaptive (PTA) MobileNetV2: one trained network, a compute budget chosen at run time.

Khabarlak (2022, arXiv 2207.13410) proposes the PTA block, a drop-in replacement for
MobileNetV2's inverted residual that holds several branches of different computational
cost; which branch runs is chosen on demand after training, so one model serves several
device tiers, and training samples block configurations, which costs less wall-clock time
than training one model per tier. Only the abstract is public (no code), so this module
is **our reading** of it:

* A :class:`PTABlock` holds ``K`` branches. Each branch is a complete inverted residual
  (1x1 expansion, ReLU6; depthwise ``k x k`` with the block's stride, ReLU6; linear 1x1
  projection) described by a :class:`BranchSpec` ``(expansion, kernel)``. All branches map
  the block's input shape to its output shape, so any one of them can stand in for the
  others. Each branch has its own batch norms, hence its own statistics.
* The residual connection is kept exactly where MobileNetV2 has it (stride 1 and equal
  input and output channels), for every branch.
* Only the *active* branch runs in ``forward`` (in training and in inference), so switching
  branches really changes the compute and the latency, not just the result.
* A *configuration* is a tuple with one branch index per PTA block. The presets ``"max"``,
  ``"min"`` and ``"mid"`` pick, per block, the most expensive, the cheapest and the middle
  branch by multiply-accumulates (for an even ``K``, "mid" is the ``(K - 1) // 2``-th most
  expensive).
* :class:`PTAMobileNetV2` follows MobileNetV2's layout (torchvision's, which is our
  ``faceopt.models.mobilenetv2``): the same stem, settings table, head and classifier.
  The first inverted residual (``t = 1``: no expansion layer, already the cheapest form)
  stays a fixed block; the other 16 become PTA blocks whose branches replace the table's
  ``t = 6``. With the default branches ``(6, 3), (3, 3), (1, 3)`` the "max" configuration
  *is* MobileNetV2: its extracted subnet loads into torchvision's ``mobilenet_v2`` with a
  strict ``load_state_dict``.
* Training (:func:`train_step_sampled`) draws one configuration per step uniformly per
  block, or, with the *sandwich rule* of slimmable networks and BigNAS, accumulates the
  gradients of the max, the min and ``n_random`` random configurations before one
  optimiser step (BigNAS's in-place distillation is not included). A step costs one
  subnet's forward and backward, on average cheaper than the max model's.
* Batch-norm statistics accumulated while configurations change are a mixture over
  configurations: the shared layers after the first PTA block, and a branch whose input
  comes from varying upstream branches, see different distributions per configuration.
  As in slimmable networks and Once-for-All, :func:`recalibrate_bn` re-estimates them for
  one configuration after training.
* Run-time switching happens in PyTorch with :meth:`PTAMobileNetV2.set_config`. For
  deployment, :func:`extract_subnet` copies out a plain static network with only the chosen
  branches (export it with ``faceopt.system.onnx_export.export_onnx``); a device keeps one
  such file per tier (or the PTA weights and switches in PyTorch).
"""
from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.ops.misc import Conv2dNormActivation

from faceopt.models.profile import count_macs, count_parameters

Config = tuple[int, ...]
PRESETS: tuple[str, ...] = ("max", "mid", "min")

# MobileNetV2's settings table (Sandler et al. 2018; torchvision's default): expansion t, channels c,
# repeats n, first stride s. PTA blocks replace the table's t by their branches (see the module docstring).
MOBILENETV2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


@dataclass(frozen=True)
class BranchSpec:
    """One branch of a PTA block: the inverted residual's expansion ratio and depthwise kernel size."""

    expansion: int
    kernel: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.expansion, int) or self.expansion < 1:
            raise ValueError(f"expansion must be a positive integer, got {self.expansion!r}")
        if not isinstance(self.kernel, int) or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd integer, got {self.kernel!r}")


# The max branch is MobileNetV2's own (t = 6, 3x3), so the "max" configuration is MobileNetV2.
DEFAULT_BRANCHES: tuple[BranchSpec, ...] = (BranchSpec(6, 3), BranchSpec(3, 3), BranchSpec(1, 3))
# A variant that also varies the receptive field; its "max" (6, 5x5) is heavier than MobileNetV2.
KERNEL_BRANCHES: tuple[BranchSpec, ...] = (BranchSpec(6, 5), BranchSpec(6, 3), BranchSpec(3, 3), BranchSpec(1, 3))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never below 90 % of ``value`` (MobileNet's rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class InvertedResidualK(nn.Module):
    """MobileNetV2's inverted residual with any odd depthwise kernel.

    Module names and order equal torchvision's ``InvertedResidual`` (``conv.0.0`` expansion conv,
    ..., last ``conv.N`` batch norm), so for ``kernel=3`` the two load each other's state dicts.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int, kernel: int = 3) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        BranchSpec(expansion, kernel)  # validates
        self.in_channels, self.out_channels, self.stride = in_ch, out_ch, stride
        self.expansion, self.kernel = expansion, kernel
        self.hidden = int(round(in_ch * expansion))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(Conv2dNormActivation(in_ch, self.hidden, kernel_size=1, activation_layer=nn.ReLU6))
        layers += [
            Conv2dNormActivation(self.hidden, self.hidden, kernel_size=kernel, stride=stride, groups=self.hidden,
                                 activation_layer=nn.ReLU6),
            nn.Conv2d(self.hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def macs_per_output_pixel(self) -> int:
        """Multiply-accumulates per output pixel: expansion (at the input resolution), depthwise, projection."""
        expand = self.in_channels * self.hidden * self.stride**2 if self.expansion != 1 else 0
        return expand + self.hidden * self.kernel**2 + self.hidden * self.out_channels

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class PTABlock(nn.Module):
    """A Post-Train Adaptive block: ``K`` inverted-residual branches with one shape; only ``active`` runs.

    The residual is decided per branch by the same rule as MobileNetV2 (stride 1 and
    ``in_ch == out_ch``), so it is the same for every branch of a block.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, branches: Sequence[BranchSpec]) -> None:
        super().__init__()
        specs = tuple(branches)
        if not specs:
            raise ValueError("a PTA block needs at least one branch")
        if not all(isinstance(s, BranchSpec) for s in specs):
            raise ValueError(f"branches must be BranchSpec instances, got {specs!r}")
        if len(set(specs)) != len(specs):
            raise ValueError(f"duplicate branches in {specs!r}")
        self.specs = specs
        self.in_channels, self.out_channels, self.stride = in_ch, out_ch, stride
        self.branches = nn.ModuleList(InvertedResidualK(in_ch, out_ch, stride, s.expansion, s.kernel) for s in specs)
        self.use_res_connect = stride == 1 and in_ch == out_ch
        costs = [b.macs_per_output_pixel() for b in self._branch_list()]
        #: branch indices from the most to the least expensive (stable for ties)
        self.by_cost: tuple[int, ...] = tuple(sorted(range(len(specs)), key=lambda i: -costs[i]))
        self._active = 0

    def _branch_list(self) -> list[InvertedResidualK]:
        return [b for b in self.branches if isinstance(b, InvertedResidualK)]

    def __len__(self) -> int:
        return len(self.specs)

    @property
    def active(self) -> int:
        """Index of the branch that ``forward`` runs."""
        return self._active

    @active.setter
    def active(self, index: int) -> None:
        self._active = self._check_index(index)

    def _check_index(self, index: object) -> int:
        try:
            i = operator.index(index)  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(f"a branch index must be an integer, got {index!r}") from None
        if isinstance(index, bool) or not 0 <= i < len(self.specs):
            raise ValueError(f"branch index {index!r} is out of range for a block with {len(self.specs)} branches")
        return i

    def preset(self, name: str) -> int:
        """The branch index of preset ``name`` ("max", "mid" or "min") by multiply-accumulates."""
        if name == "max":
            return self.by_cost[0]
        if name == "min":
            return self.by_cost[-1]
        if name == "mid":
            return self.by_cost[(len(self.by_cost) - 1) // 2]
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")

    def branch(self, index: int | None = None) -> InvertedResidualK:
        """Branch ``index`` (default: the active one)."""
        b = self.branches[self.active if index is None else self._check_index(index)]
        assert isinstance(b, InvertedResidualK)
        return b

    def forward(self, x: Tensor) -> Tensor:
        return self.branch()(x)

    def extra_repr(self) -> str:
        return f"active={self._active}, branches={[(s.expansion, s.kernel) for s in self.specs]}"


def pta_blocks(model: nn.Module) -> list[PTABlock]:
    """The PTA blocks of ``model`` in registration order (``model`` itself if it is one)."""
    return [m for m in model.modules() if isinstance(m, PTABlock)]


def _resolve_config(blocks: Sequence[PTABlock], config: Sequence[int] | str) -> Config:
    """Validate ``config`` (a preset name or one branch index per block) against ``blocks``."""
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown preset {config!r}; allowed: {', '.join(PRESETS)}")
        return tuple(b.preset(config) for b in blocks)
    try:
        entries = tuple(config)
    except TypeError:
        raise ValueError(f"a configuration is a preset name or a sequence of branch indices, got {config!r}") from None
    if len(entries) != len(blocks):
        raise ValueError(f"the configuration has {len(entries)} entries but the model has {len(blocks)} PTA blocks")
    out = []
    for k, (block, index) in enumerate(zip(blocks, entries)):
        try:
            out.append(block._check_index(index))
        except ValueError as exc:
            raise ValueError(f"configuration entry {k}: {exc}") from None
    return tuple(out)


def apply_config(model: nn.Module, config: Sequence[int] | str) -> Config:
    """Set every PTA block of ``model`` to ``config`` (validated first, so a bad one changes nothing)."""
    blocks = pta_blocks(model)
    resolved = _resolve_config(blocks, config)
    for block, index in zip(blocks, resolved):
        block.active = index
    return resolved


def current_config(model: nn.Module) -> Config:
    """The active branch index of every PTA block of ``model``."""
    return tuple(b.active for b in pta_blocks(model))


def _init_weights(model: nn.Module) -> None:
    """torchvision's MobileNetV2 initialisation: Kaiming (fan out) convolutions, unit BN, small linear."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class _MobileNetV2Body(nn.Module):
    """``features`` -> global average pool -> ``classifier``, torchvision's MobileNetV2 forward."""

    features: nn.Sequential
    classifier: nn.Sequential
    in_channels: int
    input_size: int

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


class StaticMobileNetV2(_MobileNetV2Body):
    """A plain MobileNetV2-layout network (what :func:`extract_subnet` returns); nothing to switch."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, in_channels: int, input_size: int) -> None:
        super().__init__()
        self.features, self.classifier = features, classifier
        self.in_channels, self.input_size = in_channels, input_size


class PTAMobileNetV2(_MobileNetV2Body):
    """MobileNetV2 whose inverted residuals (all but the first, ``t = 1``) are PTA blocks.

    ``input_size`` is the side of the square input the model is meant for; the network
    itself accepts any size (global pooling) and the value only sets the default of
    :func:`flops_and_params`. ``features`` is laid out like torchvision's: ``features[0]``
    stem, ``features[1]`` the fixed first block, ``features[2:18]`` the PTA blocks,
    ``features[18]`` the 1x1 head convolution.
    """

    def __init__(self, num_classes: int = 2, width: float = 1.0, input_size: int = 112,
                 branches: Sequence[BranchSpec] = DEFAULT_BRANCHES, in_channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        if num_classes < 1 or width <= 0 or input_size < 1 or in_channels < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"need positive num_classes, width, input_size, in_channels and 0 <= dropout < 1; got "
                             f"{num_classes!r}, {width!r}, {input_size!r}, {in_channels!r}, {dropout!r}")
        self.num_classes, self.width, self.input_size, self.in_channels = num_classes, width, input_size, in_channels
        self.branch_specs = tuple(branches)
        channels = make_divisible(STEM_CHANNELS * width)
        self.last_channel = make_divisible(LAST_CHANNELS * max(1.0, width))
        layers: list[nn.Module] = [Conv2dNormActivation(in_channels, channels, stride=2, activation_layer=nn.ReLU6)]
        for t, c, n, s in MOBILENETV2_SETTING:
            out = make_divisible(c * width)
            for i in range(n):
                stride = s if i == 0 else 1
                if len(layers) == 1:  # the first, t = 1 block stays fixed
                    layers.append(InvertedResidualK(channels, out, stride, t, 3))
                else:
                    layers.append(PTABlock(channels, out, stride, self.branch_specs))
                channels = out
        layers.append(Conv2dNormActivation(channels, self.last_channel, kernel_size=1, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        _init_weights(self)

    @property
    def blocks(self) -> list[PTABlock]:
        """The PTA blocks, in the order of a configuration tuple."""
        return pta_blocks(self)

    def configurations(self) -> int:
        """How many configurations there are (the product of the blocks' branch counts)."""
        return math.prod(len(b) for b in self.blocks)

    @property
    def config(self) -> Config:
        """The active configuration: one branch index per PTA block."""
        return current_config(self)

    def set_config(self, config: Sequence[int] | str) -> Config:
        """Activate ``config`` (branch indices, or "max", "mid", "min"); return it as a tuple.

        Raises ``ValueError`` for a wrong length, an index out of range or an unknown preset.
        """
        return apply_config(self, config)

    def resolve(self, config: Sequence[int] | str) -> Config:
        """``config`` validated and as a tuple of indices, without activating it."""
        return _resolve_config(self.blocks, config)

    def sample_config(self, generator: torch.Generator | None = None) -> Config:
        """A configuration drawn uniformly and independently per block (not activated)."""
        return tuple(int(torch.randint(len(b), (1,), generator=generator)) for b in self.blocks)

    def sandwich_configs(self, generator: torch.Generator | None = None, n_random: int = 2) -> list[Config]:
        """The sandwich rule's set for one step: max, min, then ``n_random`` sampled configurations."""
        if n_random < 0:
            raise ValueError(f"n_random must be >= 0, got {n_random!r}")
        return [self.resolve("max"), self.resolve("min")] + [self.sample_config(generator) for _ in range(n_random)]

    def specs(self, config: Sequence[int] | str | None = None) -> tuple[BranchSpec, ...]:
        """The branch spec each block runs under ``config`` (default: the active one)."""
        resolved = self.config if config is None else self.resolve(config)
        return tuple(b.specs[i] for b, i in zip(self.blocks, resolved))


def _replace_blocks(module: nn.Module, config: Config) -> None:
    """In place: every PTA block below ``module`` becomes its chosen branch, in registration order."""
    remaining = list(config)

    def visit(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, PTABlock):
                setattr(parent, name, child.branch(remaining.pop(0)))
            else:
                visit(child)

    visit(module)


def extract_subnet(model: nn.Module, config: Sequence[int] | str | None = None) -> nn.Module:
    """A static deep copy of ``model`` with only the branches of ``config`` (default: the active one).

    Its outputs equal the PTA model's under ``config``; it shares no tensors with ``model``
    and keeps its training/eval mode. A :class:`PTAMobileNetV2` gives a
    :class:`StaticMobileNetV2` (for the max configuration of the default branches, a state
    dict that torchvision's ``mobilenet_v2`` loads strictly); a bare :class:`PTABlock` gives
    an :class:`InvertedResidualK`; any other module is copied with its PTA blocks replaced.
    """
    resolved = current_config(model) if config is None else _resolve_config(pta_blocks(model), config)
    if isinstance(model, PTABlock):
        return copy.deepcopy(model.branch(resolved[0]))
    if isinstance(model, PTAMobileNetV2):
        features = copy.deepcopy(model.features)
        _replace_blocks(features, resolved)
        subnet: nn.Module = StaticMobileNetV2(features, copy.deepcopy(model.classifier), model.in_channels,
                                              model.input_size)
    else:
        subnet = copy.deepcopy(model)
        _replace_blocks(subnet, resolved)
    return subnet.train(model.training)


@dataclass(frozen=True)
class PTACost:
    """Compute of one configuration: MACs and FLOPs (2 x MACs) of a forward pass, and parameters.

    ``params`` counts the parameters the forward pass uses (the extracted subnet's);
    ``params_stored`` all parameters the module holds (every branch).
    """

    config: Config
    input_shape: tuple[int, ...]
    macs: int
    params: int
    params_stored: int

    @property
    def flops(self) -> int:
        return 2 * self.macs


def flops_and_params(model: nn.Module, input_size: int | tuple[int, ...] | None = None,
                     config: Sequence[int] | str | None = None) -> PTACost:
    """MACs/FLOPs (via ``faceopt.models.profile.count_macs``) and parameters of ``model`` under ``config``.

    ``input_size``: a side (square input of the model's ``in_channels``, batch 1), a full
    shape, or ``None`` for the model's ``input_size`` attribute (112 if it has none).
    ``config`` defaults to the active one; the model's own configuration is restored after.
    """
    if input_size is None:
        input_size = int(getattr(model, "input_size", 112))
    shape = (1, int(getattr(model, "in_channels", 3)), input_size, input_size) if isinstance(input_size, int) \
        else tuple(input_size)
    before = current_config(model)
    resolved = before if config is None else apply_config(model, config)
    try:
        macs = count_macs(model, shape)
    finally:
        apply_config(model, before)
    params = count_parameters(extract_subnet(model, resolved)) if before else count_parameters(model)
    return PTACost(resolved, shape, macs, params, count_parameters(model))


def _batchnorms_to_recalibrate(model: nn.Module, include_shared: bool) -> list[nn.modules.batchnorm._BatchNorm]:
    """Batch norms of the active branches, plus (``include_shared``) those outside PTA blocks after the first one."""
    norms: list[nn.modules.batchnorm._BatchNorm] = []
    inside: set[int] = set()
    seen_block = False
    for m in model.modules():
        if isinstance(m, PTABlock):
            seen_block = True
            inside.update(id(x) for x in m.modules())
            norms += [x for x in m.branch().modules() if isinstance(x, nn.modules.batchnorm._BatchNorm)]
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and include_shared and seen_block and id(m) not in inside:
            norms.append(m)
    return norms


def _batches(data: Tensor | Iterable[Tensor | Sequence[Tensor]], batches: int | None) -> Iterable[Tensor]:
    if isinstance(data, Tensor):
        yield from data.chunk(batches or 1)
        return
    for k, item in enumerate(data):
        if batches is not None and k >= batches:
            return
        yield item if isinstance(item, Tensor) else item[0]


def recalibrate_bn(model: nn.Module, config: Sequence[int] | str | None,
                   data: Tensor | Iterable[Tensor | Sequence[Tensor]], batches: int | None = None, *,
                   include_shared: bool = True) -> nn.Module:
    """Re-estimate batch-norm statistics for one configuration; return ``model`` in eval mode with it active.

    Resets the running statistics of the active branches' batch norms and, with
    ``include_shared``, of the batch norms outside PTA blocks that come after the first one
    in registration order (in :class:`PTAMobileNetV2`, the head convolution's), then feeds
    the data without gradients with exactly those layers in train mode and ``momentum=None``
    (a cumulative average: running mean = mean of the batch means, running var = mean of
    the unbiased batch variances). Everything else stays in eval mode, so no other
    statistic changes and dropout is off. As in slimmable networks and Once-for-All, a
    recalibrated layer normalises with batch statistics during the pass.

    ``data``: a tensor (split into ``batches`` chunks, default one) or an iterable of
    tensors or ``(inputs, ...)`` tuples (the first ``batches`` items, default all).
    ``config=None`` keeps the active configuration.
    """
    if batches is not None and batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches!r}")
    if config is not None:
        apply_config(model, config)
    norms = _batchnorms_to_recalibrate(model, include_shared)
    saved = [(m, m.momentum) for m in norms]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    seen = 0
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        with torch.no_grad():
            for x in _batches(data, batches):
                model(x.to(device))
                seen += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    if seen == 0:
        raise ValueError("recalibrate_bn got no batches")
    return model


@dataclass(frozen=True)
class SampledStep:
    """What one :func:`train_step_sampled` did: the mean loss over its configurations and the configurations."""

    loss: float
    configs: tuple[Config, ...]


def train_step_sampled(model: PTAMobileNetV2, batch: Sequence[Tensor],
                       loss_fn: Callable[[Tensor, Tensor], Tensor], optimizer: torch.optim.Optimizer,
                       generator: torch.Generator | None = None, sandwich: bool = False,
                       n_random: int = 2) -> SampledStep:
    """One optimiser step on ``batch = (inputs, targets)`` with sampled configurations.

    Without ``sandwich``: one configuration drawn uniformly per block. With ``sandwich``:
    max, min and ``n_random`` random configurations, whose gradients are summed (as in
    slimmable networks) before the single step. Gradients are reset with ``set_to_none``,
    so branches that did not run get no update, not even weight decay, from common
    optimisers. The model's configuration before the call is restored.
    """
    inputs, targets = batch[0], batch[1]
    device = next(model.parameters()).device
    inputs, targets = inputs.to(device), targets.to(device)
    configs = model.sandwich_configs(generator, n_random) if sandwich else [model.sample_config(generator)]
    before = model.config
    model.train()
    optimizer.zero_grad(set_to_none=True)
    losses = []
    try:
        for config in configs:
            model.set_config(config)
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            losses.append(float(loss.detach()))
        optimizer.step()
    finally:
        model.set_config(before)
    return SampledStep(sum(losses) / len(losses), tuple(configs))


__all__ = [
    "DEFAULT_BRANCHES", "KERNEL_BRANCHES", "MOBILENETV2_SETTING", "PRESETS", "BranchSpec", "Config", "InvertedResidualK",
    "PTABlock", "PTACost", "PTAMobileNetV2", "SampledStep", "StaticMobileNetV2", "apply_config", "current_config",
    "extract_subnet", "flops_and_params", "make_divisible", "pta_blocks", "recalibrate_bn", "train_step_sampled",
]
