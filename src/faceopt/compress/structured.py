"""Structured channel pruning, and why it, not unstructured sparsity, speeds up inference.

Unstructured pruning zeroes single weights: the tensors keep their shapes and a dense
GEMM/convolution kernel does exactly the same work. Structured pruning removes whole
output channels (with the matching input channels of every consumer and the batch-norm
entries between them), so the tensors really shrink. ``torch_pruning`` (Fang et al.
2023, DepGraph) finds those coupled groups by tracing the model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from faceopt.compress.pruning import clone_model, is_pruned, make_permanent, prunable
from faceopt.models.profile import count_macs, count_parameters
from faceopt.system.cost import ort_latency, torch_latency
from faceopt.system.onnx_export import export_onnx


def _last_layer(model: nn.Module) -> nn.Module:
    """The final Linear/Conv2d in module order: the classifier or embedding layer."""
    layers = [m for m, _ in prunable(model)]
    if not layers:
        raise ValueError("model has no Linear or Conv2d layer")
    return layers[-1]


def prune_channels(model: nn.Module, example_input: torch.Tensor, ratio: float, *,
                   ignored_layers: Iterable[nn.Module | str] | None = None, p: int = 1) -> nn.Module:
    """A copy of ``model`` with a fraction ``ratio`` of the channels of every prunable group removed.

    Channel groups are ranked by the L``p`` norm of their weights
    (``tp.importance.GroupMagnitudeImportance(p)``) and pruned uniformly with
    ``tp.pruner.MetaPruner``. ``ignored_layers`` (modules of ``model`` or their names)
    keep their output channels; by default the last Linear/Conv2d, so the number of
    classes / the embedding size does not change. ``model`` itself is not modified.
    """
    import torch_pruning as tp

    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    if any(is_pruned(m) for m, _ in prunable(model)):
        raise ValueError("model carries unstructured pruning masks; call make_permanent on a copy first")
    names = {m: n for n, m in model.named_modules()}
    ignored = list(ignored_layers) if ignored_layers is not None else [_last_layer(model)]
    ignored_names = [x if isinstance(x, str) else names[x] for x in ignored]
    net = clone_model(model)
    mods = dict(net.named_modules())
    was_training = net.training
    net.eval()
    pruner = tp.pruner.MetaPruner(
        net, example_input, importance=tp.importance.GroupMagnitudeImportance(p=p),
        pruning_ratio=ratio, ignored_layers=[mods[n] for n in ignored_names])
    pruner.step()
    net.train(was_training)
    return net


def nonzero_parameters(model: nn.Module) -> int:
    """Number of non-zero trainable parameter elements (masks folded in)."""
    total = 0
    for mod in model.modules():
        for name, p in mod.named_parameters(recurse=False):
            if name.endswith("_orig") and hasattr(mod, name[:-5] + "_mask"):
                p = p * getattr(mod, name[:-5] + "_mask")
            total += int((p != 0).sum())
    return total


def latency_comparison(dense: nn.Module, unstructured: nn.Module, structured: nn.Module,
                       input_shape: tuple[int, ...], *, threads: int = 1, repeats: int = 50, warmup: int = 10,
                       workdir: Path | str) -> list[dict[str, float | str | int]]:
    """Size and CPU latency (PyTorch eager and onnxruntime) of the three variants.

    The unstructured model is copied and its masks made permanent (zeros in dense
    tensors) before timing and export. Rows: ``model``, ``params`` (tensor elements),
    ``nonzero``, ``macs`` (of the dense kernels that run), ``torch_ms``, ``ort_ms``
    (medians) and ``torch_log_se``, ``ort_log_se`` (standard errors of their logs).
    Expected: unstructured keeps params, MACs and latency of the dense model
    although ``nonzero`` drops; structured lowers all of them.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, float | str | int]] = []
    for label, net in (("dense", dense), ("unstructured", unstructured), ("structured", structured)):
        net = make_permanent(clone_model(net)).eval()
        path = export_onnx(net, workdir / f"{label}.onnx", input_shape)
        rows.append({
            "model": label,
            "params": count_parameters(net),
            "nonzero": nonzero_parameters(net),
            "macs": count_macs(net, input_shape),
        })
        for runtime, stats in (
            ("torch", torch_latency(net, threads=threads, repeats=repeats, warmup=warmup, input_shape=input_shape)),
            ("ort", ort_latency(path, threads=threads, repeats=repeats, warmup=warmup, input_shape=input_shape)),
        ):
            rows[-1].update({f"{runtime}_ms": stats.median_ms, f"{runtime}_log_se": stats.log_stderr})
    return rows
