"""The experiments of the compression chapter, sized by one preset per scale.

Each function runs one comparison over several seeds and returns plain rows
(list of dicts) that the chapter turns into tables and figures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from faceopt.compress.int8 import DEFAULT_CONFIGS, compare_int8
from faceopt.compress.lottery import lottery_ticket
from faceopt.compress.pruning import (
    apply_masks,
    clone_model,
    collapsed_layers,
    layer_density,
    magnitude_scores,
    masks_from_scores,
    module_tensor,
    prunable,
    prune_at_init,
    prune_iterative,
    prune_one_shot,
    sparsity,
)
from faceopt.compress.qat import ptq, qat
from faceopt.compress.quantization import (
    activation_error_sym_vs_asym,
    affine_params,
    quantization_error,
    static_range,
    weight_error_per_tensor_vs_per_channel,
)
from faceopt.compress.structured import latency_comparison, prune_channels
from faceopt.compress.training import evaluate, fit
from faceopt.data.digits import Split, load_digits_split
from faceopt.models import get_model
from faceopt.models.lenet import lenet300_100
from faceopt.models.profile import count_parameters, settle_batchnorm
from faceopt.progress import progress


@dataclass(frozen=True)
class CompressPreset:
    """Sizes of every experiment of the chapter at one scale."""

    seeds: tuple[int, ...]
    lr: float
    dense_epochs: int
    finetune_epochs: int
    sparsities: tuple[float, ...]
    criteria: tuple[str, ...]
    iterative_target: float
    iterative_rounds: int
    lth_rounds: int
    lth_epochs: int
    rewind_step: int
    collapse_sparsities: tuple[float, ...]
    synflow_iterations: int
    latency_repeats: int
    latency_warmup: int
    structured_ratio: float
    quant_bits: tuple[int, ...]
    qat_bits: tuple[int, ...]
    qat_epochs: int
    int8_repeats: int
    int8_warmup: int
    int8_calib: int
    int8_eval: int
    int8_train_epochs: int
    int8_configs: tuple[str, ...]
    int8_threads: tuple[int, ...]
    int8_batches: tuple[int, ...]


PRESETS: dict[str, CompressPreset] = {
    "smoke": CompressPreset(
        seeds=(0,), lr=0.05, dense_epochs=10, finetune_epochs=3, sparsities=(0.5, 0.9, 0.98),
        criteria=("magnitude", "obd", "gradient", "random"), iterative_target=0.98, iterative_rounds=3,
        lth_rounds=8, lth_epochs=5, rewind_step=20, collapse_sparsities=(0.9, 0.99, 0.999),
        synflow_iterations=20, latency_repeats=5, latency_warmup=2, structured_ratio=0.5,
        quant_bits=(8, 6, 4), qat_bits=(8, 4, 2), qat_epochs=3, int8_repeats=5, int8_warmup=2, int8_calib=16, int8_eval=16,
        int8_train_epochs=0, int8_configs=("ort static QDQ U8S8 (plain)", "ort static QDQ U8S8 reduce_range"),
        int8_threads=(2,), int8_batches=(1,),
    ),
    "full": CompressPreset(
        seeds=(0, 1, 2, 3, 4), lr=0.05, dense_epochs=20, finetune_epochs=5,
        sparsities=(0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99), criteria=("magnitude", "obd", "gradient", "random"),
        iterative_target=0.98, iterative_rounds=5, lth_rounds=12, lth_epochs=10, rewind_step=20,
        collapse_sparsities=(0.9, 0.97, 0.99, 0.997, 0.999), synflow_iterations=100, latency_repeats=30,
        latency_warmup=5, structured_ratio=0.5, quant_bits=(8, 6, 4), qat_bits=(8, 6, 4, 3, 2), qat_epochs=5,
        int8_repeats=40, int8_warmup=8, int8_calib=64, int8_eval=128, int8_train_epochs=2,
        int8_configs=("ort dynamic (ConvInteger)", "ort static QDQ U8S8 (plain)", "ort static QDQ U8U8",
                      "ort static QDQ U8S8 reduce_range", "ort static QOperator U8S8 reduce_range",
                      "torch.ao FX x86"),
        int8_threads=(2, 1), int8_batches=(1, 8),
    ),
}


def train_dense(make_model: Callable[[], nn.Module], train: Split, test: Split, *, epochs: int, lr: float,
                seed: int) -> tuple[nn.Module, float]:
    """A dense network trained from seed ``seed``; returns it and its test accuracy."""
    torch.manual_seed(seed)
    model = make_model()
    fit(model, train, epochs=epochs, lr=lr, seed=seed)
    return model, evaluate(model, test)


def criteria_sweep(dense: dict[int, nn.Module], train: Split, test: Split, *, criteria: Iterable[str],
                   scopes: Iterable[str] = ("global", "layerwise"), sparsities: Iterable[float],
                   finetune_epochs: int, lr: float) -> list[dict]:
    """One-shot pruning of each trained network by every criterion, scope and sparsity, then fine-tuning."""
    jobs = [(seed, c, s, p) for seed in dense for c in criteria for s in scopes for p in sparsities]
    rows = []
    for seed, criterion, scope, target in progress(jobs, desc="criteria"):
        model = clone_model(dense[seed])
        acc = prune_one_shot(model, train, test, sparsity=target, criterion=criterion, scope=scope,
                             finetune_epochs=finetune_epochs, lr=lr, seed=seed)
        rows.append({"seed": seed, "criterion": criterion, "scope": scope, "sparsity": target,
                     "measured_sparsity": sparsity(model), "accuracy": acc})
    return rows


def oneshot_vs_iterative(dense: dict[int, nn.Module], train: Split, test: Split, *, target: float, rounds: int,
                         epochs_per_round: int, lr: float) -> list[dict]:
    """Same sparsity, same fine-tuning budget: prune once and fine-tune ``rounds * epochs_per_round`` epochs,
    or prune in ``rounds`` steps with ``epochs_per_round`` epochs after each."""
    rows = []
    for seed, net in progress(list(dense.items()), desc="one-shot vs iterative"):
        once = clone_model(net)
        acc_once = prune_one_shot(once, train, test, sparsity=target, criterion="magnitude",
                                  finetune_epochs=rounds * epochs_per_round, lr=lr, seed=seed)
        steps = prune_iterative(clone_model(net), train, test, sparsity=target, rounds=rounds,
                                criterion="magnitude", finetune_epochs_per_round=epochs_per_round, lr=lr, seed=seed)
        rows.append({"seed": seed, "one_shot": acc_once, "iterative": steps[-1][1],
                     "sparsity": steps[-1][0], "iterative_curve": steps})
    return rows


def lottery_comparison(train: Split, test: Split, *, seeds: Iterable[int], rounds: int, epochs: int, lr: float,
                       rewind_step: int, make_model: Callable[[], nn.Module] = lenet300_100) -> list[dict]:
    """Iterative magnitude pruning with reset to init, rewind to step k, or random re-initialisation."""
    rows = []
    jobs = [(seed, reset) for seed in seeds for reset in ("init", "rewind", "random")]
    for seed, reset in progress(jobs, desc="lottery tickets"):
        for r in lottery_ticket(make_model, train, test, rounds=rounds, epochs=epochs, lr=lr, seed=seed,
                                reset=reset, rewind_step=rewind_step):
            rows.append({"seed": seed, "reset": reset, **r})
    return rows


def collapse_experiment(train: Split, *, sparsities: Iterable[float], synflow_iterations: int, seed: int = 0,
                        make_model: Callable[[], nn.Module] = lenet300_100) -> list[dict]:
    """Prune an untrained network at extreme sparsity by magnitude, gradient and SynFlow; per-layer density."""
    rows = []
    jobs = [(s, c) for s in sparsities for c in ("magnitude", "gradient", "synflow")]
    for target, criterion in progress(jobs, desc="pruning at init"):
        torch.manual_seed(seed)
        model = make_model()
        prune_at_init(model, target, criterion, train, input_shape=(1, *train.x.shape[1:]),
                      iterations=synflow_iterations, seed=seed)
        density = layer_density(model)
        rows.append({"criterion": criterion, "sparsity": target, "collapsed": collapsed_layers(model),
                     **{f"density[{k}]": v for k, v in density.items()}})
    return rows


# ----------------------------------------------------------------------------- quantisation
def relu_activations(model: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of every ReLU of a Sequential model on ``x`` (the post-ReLU activations)."""
    acts = {}
    with torch.no_grad():
        h = x
        for name, layer in model.named_children():
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                acts[name] = h.clone()
    return acts


def weight_and_activation_errors(model: nn.Sequential, x: torch.Tensor, bits_list: Iterable[int]) -> list[dict]:
    """Relative quantisation error of each layer's weight (per-tensor vs per-channel, symmetric)
    and of each post-ReLU activation (symmetric vs asymmetric, per-tensor min-max)."""

    names = {m: n for n, m in model.named_modules()}
    rows = []
    for bits in bits_list:
        for module, _ in prunable(model):
            e = weight_error_per_tensor_vs_per_channel(module_tensor(module).detach(), bits, kind="relative")
            rows.append({"bits": bits, "tensor": f"weight {names[module]}", "kind": "weight",
                         "coarse": e["per_tensor"], "fine": e["per_channel"]})
        for name, act in relu_activations(model, x).items():
            e = activation_error_sym_vs_asym(act, bits, kind="relative")
            rows.append({"bits": bits, "tensor": f"ReLU {name}", "kind": "activation",
                         "coarse": e["symmetric"], "fine": e["asymmetric"]})
    return rows


def calibration_errors(model: nn.Sequential, calib: torch.Tensor, evaluation: torch.Tensor,
                       bits_list: Iterable[int], batch_size: int = 64) -> list[dict]:
    """Quantisation error on held-out post-ReLU activations for static ranges calibrated by
    min-max, percentile and entropy, and for dynamic ranges (min-max of each batch)."""

    calib_acts = relu_activations(model, calib)
    eval_acts = relu_activations(model, evaluation)
    rows = []
    for bits in bits_list:
        for name, acts in eval_acts.items():
            batches = list(calib_acts[name].split(batch_size))
            for method in ("minmax", "percentile", "entropy"):
                kwargs = {"bits": bits} if method == "entropy" else {}
                lo, hi = static_range(batches, method, **kwargs)
                params = affine_params(lo, hi, bits)
                rows.append({"bits": bits, "activation": f"ReLU {name}", "ranges": f"static {method}",
                             "upper": hi, "error": quantization_error(acts, params, "relative")})
            errs = []
            for batch in acts.split(batch_size):
                params = affine_params(float(batch.min()), float(batch.max()), bits)
                errs.append(quantization_error(batch, params, "mse") * batch.numel())
            rows.append({"bits": bits, "activation": f"ReLU {name}", "ranges": "dynamic (per batch)",
                         "upper": float("nan"), "error": sum(errs) / float(acts.pow(2).sum())})
    return rows


def ptq_vs_qat_fair(make_model: Callable[[], nn.Module], train: Split, test: Split, *, seeds: Iterable[int],
                    bits_list: Iterable[int], float_epochs: int, qat_epochs: int, lr: float) -> list[dict]:
    """PTQ against QAT with the same training budget.

    QAT fine-tunes the float model for ``qat_epochs`` at lr/10 with fake quantisation;
    PTQ quantises a float model that was fine-tuned for the same epochs at the same rate
    without it, so QAT gets no extra training the PTQ model lacks.
    """

    rows = []
    jobs = list(seeds)
    for seed in progress(jobs, desc="PTQ vs QAT"):
        torch.manual_seed(seed)
        base = make_model()
        fit(base, train, epochs=float_epochs, lr=lr, seed=seed)
        longer = clone_model(base)
        fit(longer, train, epochs=qat_epochs, lr=lr / 10, seed=seed + 1)
        float_acc = evaluate(longer, test)
        for bits in bits_list:
            ptq_acc = evaluate(ptq(longer, train, bits), test)
            qat_acc = evaluate(qat(base, train, bits, epochs=qat_epochs, lr=lr / 10, seed=seed + 1), test)
            rows.append({"seed": seed, "bits": bits, "float": float_acc, "PTQ": ptq_acc, "QAT": qat_acc})
    return rows


def structured_vs_unstructured(model_name: str, *, ratio: float, repeats: int, warmup: int, threads: int = 2,
                               input_shape: tuple[int, ...] = (1, 3, 112, 112)) -> list[dict]:
    """Dense, structured (``ratio`` of the channels removed) and unstructured (the same fraction of
    parameters zeroed by global magnitude) versions of a zoo model, timed in one run."""
    import tempfile


    torch.manual_seed(0)
    dense = settle_batchnorm(get_model(model_name))
    example = torch.randn(*input_shape)
    structured = prune_channels(dense, example, ratio).eval()
    removed = 1.0 - count_parameters(structured) / count_parameters(dense)
    unstructured = clone_model(dense)
    apply_masks(unstructured, masks_from_scores(magnitude_scores(unstructured), removed, scope="global"))
    with tempfile.TemporaryDirectory() as tmp:
        rows = latency_comparison(dense, unstructured, structured, input_shape, threads=threads, repeats=repeats,
                                  warmup=warmup, workdir=tmp)
    for row in rows:
        row["fraction of weights removed"] = 1.0 - int(row["nonzero"]) / int(rows[0]["nonzero"])
    return rows


def train_digit_embedder(model_name: str, *, epochs: int, lr: float = 0.05, seed: int = 0, size: int = 112,
                         batch_size: int = 32) -> tuple[nn.Module, nn.Module, Split, Split]:
    """A zoo embedder plus a linear head trained on the digits upscaled to ``size`` x ``size`` RGB.

    With ``epochs=0`` the embedder keeps random weights (batch norm settled), which is
    enough for latency but not for accuracy or embedding agreement.
    """

    train, test = load_digits_split(seed=0, size=size, channels=3)
    torch.manual_seed(seed)
    embedder = get_model(model_name)
    head = nn.Linear(embedder(torch.zeros(2, 3, size, size)).shape[1], 10)
    if epochs:
        fit(nn.Sequential(embedder, head), train, epochs=epochs, lr=lr, seed=seed, batch_size=batch_size)
    else:
        settle_batchnorm(embedder, input_size=(3, size, size))
    return embedder.eval(), head.eval(), train, test


def int8_deployment(model_name: str, preset: CompressPreset, *, seed: int = 0) -> tuple[list[dict], float]:
    """FP32 against the preset's INT8 configurations, in one run; returns rows and the FP32 test accuracy."""
    import tempfile


    embedder, head, train, test = train_digit_embedder(model_name, epochs=preset.int8_train_epochs, seed=seed)
    configs = [c for c in DEFAULT_CONFIGS if c.name in preset.int8_configs]
    fp32_acc = evaluate(nn.Sequential(embedder, head), test) if preset.int8_train_epochs else float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        rows = compare_int8(embedder, configs=configs, calib_inputs=train.x[:preset.int8_calib].numpy(),
                            eval_inputs=test.x[:preset.int8_eval].numpy(), threads=list(preset.int8_threads),
                            repeats=preset.int8_repeats, warmup=preset.int8_warmup, workdir=tmp,
                            batch_sizes=preset.int8_batches,
                            labels=test.y[:preset.int8_eval].numpy() if preset.int8_train_epochs else None,
                            head=head if preset.int8_train_epochs else None)
    return rows, fp32_acc
