"""Page 05's figures: aligned crops, the similarity matrix, time per frame size, the tiers' accuracy against latency."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

__all__ = ["photos_and_crops", "similarity_heatmap", "resolution_bars", "tier_scatter"]


def photos_and_crops(photos: Mapping[str, np.ndarray], crops: Mapping[str, np.ndarray],
                     landmarks: Mapping[str, np.ndarray]) -> Figure:
    """Each photo with its five landmarks (top) and its aligned crop (bottom)."""
    fig, axes = plt.subplots(2, len(photos), figsize=(2.6 * len(photos), 5.6),
                             gridspec_kw={"height_ratios": [2, 1]}, squeeze=False)
    for k, name in enumerate(photos):
        axes[0, k].imshow(cv2.cvtColor(photos[name], cv2.COLOR_BGR2RGB))
        axes[0, k].scatter(*landmarks[name].T, s=12, c="#ff3b30")
        axes[0, k].set_title(name, fontsize=9)
        axes[1, k].imshow(cv2.cvtColor(crops[name], cv2.COLOR_BGR2RGB))
        axes[1, k].set_title(f"aligned {crops[name].shape[1]}x{crops[name].shape[0]}", fontsize=9)
        for ax in axes[:, k]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def similarity_heatmap(matrix: pd.DataFrame, threshold: float) -> Figure:
    """Cosine similarities of every pair of photos; cells at or above ``threshold`` are framed."""
    fig, ax = plt.subplots(figsize=(4.8, 4))
    sns.heatmap(matrix, annot=True, fmt=".3f", cmap="viridis", vmin=0.7, vmax=1.0, square=True, ax=ax,
                cbar_kws={"label": "cosine"})
    for i in range(len(matrix)):
        for j in range(len(matrix)):
            if i != j and matrix.iat[i, j] >= threshold:
                ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, edgecolor="white", lw=2))
    ax.set_title(f"dlib ResNet descriptors (framed: >= {threshold:.3f}, same person)", fontsize=9)
    fig.tight_layout()
    return fig


def resolution_bars(rows: Sequence[Mapping[str, Any]], thesis_ms: float) -> Figure:
    """Stacked detection and align+embed time per frame size, with the thesis's constant time as a line."""
    frames = [r["frame"] for r in rows]
    detect = np.array([r["detect_ms"] for r in rows])
    rest = np.array([r["align_embed_ms"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(frames, detect, label="detect (one 128x128 letterbox)")
    ax.bar(frames, rest, bottom=detect, label="align from the original + embed")
    ax.axhline(thesis_ms, color="k", ls="--", lw=1, label=f"thesis: {thesis_ms:g} ms at every size (Xeon E5-2630 v4)")
    ax.set_ylabel("ms per frame (one face)")
    ax.set_xlabel("frame (rows x columns)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(0, max(thesis_ms, float((detect + rest).max())) * 1.35)
    fig.tight_layout()
    return fig


def tier_scatter(table: pd.DataFrame) -> Figure:
    """INT8 AgeDB-like accuracy against INT8 latency per candidate, labelled with its tier."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, row in table.iterrows():
        ax.scatter(row["INT8 ms"], row["INT8 AgeDB-like %"], s=30 + 60 * row["params (M)"])
        label = f"{name} ({row['tier']})" if row["tier"] else str(name)
        ax.annotate(label, (row["INT8 ms"], row["INT8 AgeDB-like %"]), textcoords="offset points", xytext=(6, 4),
                    fontsize=8)
    ax.set_xlabel("INT8 latency, ms (onnxruntime, 1 thread, this machine)")
    ax.set_ylabel("INT8 AgeDB-like accuracy, %")
    ax.margins(x=0.25, y=0.2)
    fig.tight_layout()
    return fig
