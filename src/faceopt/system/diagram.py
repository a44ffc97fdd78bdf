"""Figures of the recognition system drawn with matplotlib (no image files shipped)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


@dataclass(frozen=True)
class Stage:
    title: str
    detail: str
    network: bool


PIPELINE = (
    Stage("frame", "camera image\nany resolution", False),
    Stage("1. detector", "single-shot CNN\nboxes + 5 landmarks", True),
    Stage("2. alignment", "similarity warp to\n112x112 template", False),
    Stage("3. embedder", "CNN -> 512-d vector\n(the costly part)", True),
    Stage("gallery", "cosine similarity\nto enrolled people", False),
)


def draw_pipeline(ax: plt.Axes | None = None, stages: tuple[Stage, ...] = PIPELINE) -> plt.Axes:
    """Boxes and arrows for detect -> align -> embed -> match; networks are shaded."""
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 2.6))
    width, gap = 1.8, 0.5
    for i, stage in enumerate(stages):
        x = i * (width + gap)
        colour = "#cfe3f6" if stage.network else "#f2f2f2"
        ax.add_patch(FancyBboxPatch((x, 0), width, 1.4, boxstyle="round,pad=0.05", fc=colour, ec="#333333"))
        ax.text(x + width / 2, 1.05, stage.title, ha="center", va="center", fontsize=11, weight="bold")
        ax.text(x + width / 2, 0.45, stage.detail, ha="center", va="center", fontsize=9)
        if i:
            ax.add_patch(FancyArrowPatch((x - gap + 0.05, 0.7), (x - 0.05, 0.7), arrowstyle="-|>",
                                         mutation_scale=14, color="#333333"))
    ax.set_xlim(-0.2, len(stages) * (width + gap) - gap + 0.2)
    ax.set_ylim(-0.2, 1.6)
    ax.set_axis_off()
    return ax


def label_points(ax: plt.Axes, points: Sequence[tuple[float, float, str]], *, fontsize: float = 8) -> list[Any]:
    """Label each ``(x, y, text)`` point beside it, trying four sides in turn so that no two labels overlap.

    A small stand-in for adjustText: each label is drawn, its rendered box measured, and the
    first side (lower right, upper right, lower left, upper left) where it overlaps no label
    placed before is kept.
    """
    fig = ax.figure
    fig.canvas.draw()  # lays the figure out, so that label boxes can be measured
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    sides = (((5, -11), "left"), ((5, 5), "left"), ((-5, -11), "right"), ((-5, 5), "right"))
    placed: list[Any] = []
    boxes: list[Any] = []
    for x, y, text in sorted(points, key=lambda p: (p[0], p[1])):
        label = None
        for offset, ha in sides:
            if label is not None:
                label.remove()
            label = ax.annotate(text, (x, y), xytext=offset, textcoords="offset points", ha=ha, fontsize=fontsize)
            box = label.get_window_extent(renderer).expanded(1.05, 1.15)
            if not any(box.overlaps(b) for b in boxes):
                break
        assert label is not None
        placed.append(label)
        boxes.append(label.get_window_extent(renderer))
    return placed


def work_against_latency(rows: Sequence[Mapping[str, Any]], label_runtime: str) -> plt.Figure:
    """Log-log scatter of MACs against latency, one marker per runtime, each model labelled once.

    ``rows``: dicts with ``model``, ``GMACs``, ``runtime`` and ``latency (ms)``; labels sit at the
    points of ``label_runtime``. The legend stands outside the axes, clear of the points.
    """
    import pandas as pd
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(9, 5))
    sns.scatterplot(data=pd.DataFrame(list(rows)), x="GMACs", y="latency (ms)", hue="runtime", style="runtime", s=70, ax=ax)
    ax.set(xscale="log", yscale="log", title="Work against latency, batch 1, 112x112")
    ax.legend(title="runtime", loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    label_points(ax, [(r["GMACs"], r["latency (ms)"], r["model"]) for r in rows if r["runtime"] == label_runtime])
    return fig
