"""The figures of the architecture-search half of page 07 (thesis section 1.5), drawn from a
:class:`faceopt.compress.nas_experiments.NASResult`."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from faceopt.compress.nas import PRIMITIVES
from faceopt.compress.nas_experiments import NASResult, alpha_frame, collapse_frame, cost_frame, draw_cell

__all__ = ["alpha_evolution", "skip_counts", "accuracy_against_cost", "cells"]


def alpha_evolution(result: NASResult, search: str) -> plt.Figure:
    """softmax(alpha) of every operation over the search steps, one panel per edge of the cell."""
    frame = alpha_frame(result, search)
    edges = list(dict.fromkeys(frame["edge"]))
    cols = 3
    rows = int(np.ceil(len(edges) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.3 * rows), sharex=True, sharey=True, squeeze=False)
    colours = {op: plt.get_cmap("tab10")(i) for i, op in enumerate(PRIMITIVES)}
    for ax, edge in zip(axes.flat, edges):
        part = frame[frame["edge"] == edge]
        for op in PRIMITIVES:
            line = part[part["operation"] == op]
            ax.plot(line["step"], line["weight"], color=colours[op], lw=1.2, label=op)
        ax.set_title(f"edge {edge}", fontsize=9)
    for ax in axes.flat[len(edges):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("search step")
    for ax in axes[:, 0]:
        ax.set_ylabel("softmax(alpha)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.legend(handles, labels, loc="upper center", ncol=len(PRIMITIVES), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.97))
    fig.suptitle(search, y=1.0)
    return fig


def skip_counts(result: NASResult, runs: Sequence[str] = ("collapse: vanilla", "collapse: P-DARTS")) -> plt.Figure:
    """Skip connections and parameter-free operations in the cell derived after each search epoch."""
    frame = collapse_frame(result)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5), sharex=True)
    for run in runs:
        part = frame[frame["run"] == run]
        left.plot(part["epoch"], part["skip connections"], marker=".", label=run)
        right.plot(part["epoch"], part["parameter-free ops"], marker=".", label=run)
    left.set_ylabel("skip connections in the cell")
    right.set_ylabel("parameter-free operations (of 6)")
    for ax in (left, right):
        ax.set_xlabel("search epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_against_cost(result: NASResult) -> plt.Figure:
    """Best validation accuracy found so far against the search's CPU seconds (evolution and random search,
    each candidate a dot), and each DARTS search's cell at its cost (its proxy-trained accuracy)."""
    frame = cost_frame(result)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method in ("evolution", "random"):
        part = frame[frame["method"] == method]
        line, = ax.step(part["cpu_seconds"], part["best so far"], where="post", label=f"{method}: best so far")
        ax.plot(part["cpu_seconds"], part["accuracy"], ".", color=line.get_color(), alpha=0.35)
    darts = frame[~frame["method"].isin(["evolution", "random"])]
    for (_, row), marker in zip(darts.iterrows(), "os^D"):
        ax.plot(row["cpu_seconds"], row["accuracy"], marker, color="black", fillstyle="none", ms=8, label=row["method"])
    ax.set_xlabel("search cost (CPU seconds)")
    ax.set_ylabel("validation accuracy (short proxy training)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cells(result: NASResult, names: Sequence[str] | None = None) -> plt.Figure:
    """The searched and hand-designed cells, drawn side by side."""
    names = list(names or [result.primary, "evolution best", result.baseline])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        draw_cell(result.cells[name], ax)
        ax.set_title(f"{name}\n{result.parameters[name]:,} parameters", fontsize=9)
    fig.tight_layout()
    return fig
