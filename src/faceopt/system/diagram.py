"""Figures of the recognition system drawn with matplotlib (no image files shipped)."""
from __future__ import annotations

from dataclasses import dataclass

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
