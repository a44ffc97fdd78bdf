"""Figures of page 08: the attack species on synthetic and real faces, and the results of both experiments."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from faceopt.data.spoof_attacks import ATTACK_TYPES, BONAFIDE, AttackConfig, apply_attack, bonafide_nuisance

__all__ = ["attack_rows", "attack_gallery", "method_comparison", "pareto"]


def attack_rows(faces_bgr: Mapping[str, np.ndarray], config: AttackConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """One row per face (uint8 RGB): the live capture, then each species of :data:`ATTACK_TYPES` of it."""
    rows = {}
    for k, (label, face) in enumerate(faces_bgr.items()):
        shots = [bonafide_nuisance(face, np.random.default_rng([seed, k, 0]), config)]
        shots += [apply_attack(face, a, np.random.default_rng([seed, k, i + 1]), config) for i, a in enumerate(ATTACK_TYPES)]
        rows[label] = np.stack([s[:, :, ::-1] for s in shots])
    return rows


def attack_gallery(rows: Mapping[str, np.ndarray], *, scale: float = 1.6) -> Figure:
    """The rows of :func:`attack_rows` with the species named above the columns."""
    names = [BONAFIDE, *ATTACK_TYPES]
    fig, axes = plt.subplots(len(rows), len(names), figsize=(scale * len(names), scale * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c, name in enumerate(names):
            ax = axes[r, c]
            ax.imshow(images[c])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("live" if name == BONAFIDE else name, fontsize=10)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def method_comparison(table: pd.DataFrame, *, value: str = "acer", ax: Axes | None = None,
                      order: Sequence[str] | None = None, title: str = "") -> Axes:
    """Mean and standard deviation over seeds of ``value`` (a rate, shown in percent) per protocol (x) and
    method (hue); ``table`` has one row per (protocol, method, seed)."""
    ax = ax or plt.subplots(figsize=(9, 4))[1]
    methods = list(order or dict.fromkeys(table["method"]))
    protocols = list(dict.fromkeys(table["protocol"]))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        sub = table[table["method"] == m].groupby("protocol", sort=False)[value].agg(["mean", "std"]).reindex(protocols)
        x = np.arange(len(protocols)) + (i - (len(methods) - 1) / 2) * width
        ax.bar(x, 100 * sub["mean"], width, yerr=100 * sub["std"].fillna(0), capsize=2, label=m)
    ax.set_xticks(np.arange(len(protocols)), protocols)
    ax.set_ylabel(f"{value.upper()} % (mean ± sd over seeds)")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=min(5, len(methods)))
    return ax


def pareto(points: pd.DataFrame, *, x: str = "latency_ms", y: str = "acer", group: str = "family",
           label: str = "name", ax: Axes | None = None, title: str = "") -> Axes:
    """Error (``y``, a rate shown in percent) against cost (``x``) for each ``group`` of models, each point
    labelled, each group's points joined in order of cost."""
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    for (name, sub), marker in zip(points.groupby(group, sort=False), "osD^v"):
        sub = sub.sort_values(x)
        ax.plot(sub[x], 100 * sub[y], marker=marker, label=str(name))
        for _, row in sub.iterrows():
            ax.annotate(str(row[label]), (row[x], 100 * row[y]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(f"{y.upper()} %")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
