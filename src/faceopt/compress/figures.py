"""The figures and small tables of thesis Chapter 1's survey (page 02) that read better as plots."""
from __future__ import annotations

import re
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders the numbers inside names by value: "ReLU 4" before "ReLU 10"."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text)))


def calibration_table(rows: list[dict]) -> pd.DataFrame:
    """Activation error per bit width and activation (rows, in natural order) and range method (columns)."""
    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    pivot = table.pivot_table(index=["bits", "activation"], columns="ranges", values="error")
    order = sorted(pivot.index, key=lambda k: (-k[0], natural_key(k[1])))
    return pivot.reindex(order)


def quantisation_errors(errors: pd.DataFrame) -> plt.Figure:
    """Relative error against bit width: weights per-tensor vs per-channel, ReLU outputs symmetric vs
    asymmetric; one thin line per tensor, the mean over tensors bold (``errors``: the rows of
    :func:`faceopt.compress.experiments.weight_and_activation_errors`)."""
    panels = (("weight", "weights", ("per-tensor", "per-channel")),
              ("activation", "ReLU outputs", ("symmetric", "asymmetric")))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (kind, title, names) in zip(axes, panels):
        part = errors[errors.kind == kind]
        for column, name, color in (("coarse", names[0], "C3"), ("fine", names[1], "C0")):
            for _, one in part.groupby("tensor"):
                ax.plot(one["bits"], one[column], color=color, alpha=0.25, lw=1)
            mean = part.groupby("bits")[column].mean()
            ax.plot(mean.index, mean.values, "o-", color=color, lw=2.5, label=f"{name} (mean over tensors)")
        ax.set(yscale="log", xlabel="bits", title=f"{title}: relative error", xticks=sorted(part["bits"].unique()))
        ax.legend()
    axes[0].set_ylabel(r"$\|x - \hat x\|^2 / \|x\|^2$")
    fig.tight_layout()
    return fig


def accuracy_against_bits(pq: pd.DataFrame) -> plt.Figure:
    """Test accuracy of the float network, PTQ and QAT against bit width, mean ± sd over seeds
    (``pq``: the rows of :func:`faceopt.compress.experiments.ptq_vs_qat_fair`)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    stats = pq.groupby("bits")[["float", "PTQ", "QAT"]].agg(["mean", "std"]).sort_index()
    for column, color, marker in (("float", "grey", "s"), ("PTQ", "C3", "o"), ("QAT", "C0", "^")):
        ax.errorbar(stats.index, stats[(column, "mean")], yerr=stats[(column, "std")].fillna(0.0), color=color,
                    marker=marker, capsize=3, label=column, ls="--" if column == "float" else "-")
    ax.set(xlabel="bits", ylabel="test accuracy", xticks=list(stats.index),
           title="Post-training quantisation against quantisation-aware training")
    ax.legend()
    fig.tight_layout()
    return fig
