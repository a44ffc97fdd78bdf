"""Figures of the detection chapter: frames with boxes and the motion maps beside them."""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import matplotlib.pyplot as plt
import numpy as np


def draw_boxes(frame: np.ndarray, boxes: np.ndarray, colour: tuple[int, int, int], thickness: int = 3) -> np.ndarray:
    """A copy of a BGR frame with boxes [N, 4] drawn."""
    out = frame.copy()
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=float).reshape(-1, 4):
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), colour, thickness)
    return out


def motion_strip(frames: Sequence[np.ndarray], diffs: Sequence[np.ndarray | None], kept: Sequence[np.ndarray],
                 dropped: Sequence[np.ndarray], gt: Sequence[np.ndarray], titles: Sequence[str], *,
                 panel_width: float = 3.2) -> plt.Figure:
    """Top row: frames with ground truth (white), kept (green) and dropped (red) boxes; bottom: Diff maps.
    ``panel_width``: inches per frame (the height follows the frames' aspect)."""
    n = len(frames)
    with_maps = any(d is not None for d in diffs)
    row = panel_width * frames[0].shape[0] / frames[0].shape[1] + 0.4
    fig, axes = plt.subplots(2 if with_maps else 1, n, figsize=(panel_width * n, 2 * row if with_maps else row),
                             squeeze=False)
    im = None
    for i in range(n):
        img = draw_boxes(frames[i], gt[i], (255, 255, 255), 5)
        img = draw_boxes(img, dropped[i], (0, 0, 255))
        img = draw_boxes(img, kept[i], (0, 200, 0))
        axes[0, i].imshow(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        axes[0, i].set_title(titles[i], fontsize=9)
        if with_maps and diffs[i] is not None:
            im = axes[1, i].imshow(diffs[i], vmin=0, vmax=1, cmap="magma")
            axes[1, i].set_title("Diff = 1 - cos", fontsize=9)
        for ax in axes[:, i]:
            ax.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8)
    return fig


def grid_heatmaps(grid: Any, title: str) -> plt.Figure:
    """Figure 2.4: heatmaps of mAP and of modelled ms per frame over layer m and threshold
    (``grid``: the DataFrame of :func:`faceopt.detection.experiments.gate_grid`)."""
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, value, cmap, label in ((axes[0], "mAP", "viridis", "mAP@0.5"),
                                   (axes[1], "ms per frame", "rocket_r", "modelled ms per frame")):
        sns.heatmap(grid.pivot(index="layer", columns="threshold", values=value), ax=ax, cmap=cmap,
                    cbar_kws={"label": label}, yticklabels=True)
        ax.tick_params(axis="y", labelrotation=0, labelsize=9)  # layer numbers side by side overprint
    axes[0].set_title(f"{title}: mAP over layer m and threshold (Fig. 2.4)")
    axes[1].set_title("mean frame time over m and threshold")
    fig.tight_layout()
    return fig


def gate_versus_pixel(study: Any, gate_title: str, pixel_title: str, *, time_panel: bool = False) -> plt.Figure:
    """Figure 2.5 (and 2.6 with ``time_panel``) from a :class:`~faceopt.detection.experiments.SceneStudy`:
    the feature-map gate's tuning mAP against lambda at the chosen layer, the pixel gate's against
    its threshold (same y-axis, the thesis's largest threshold marked), and the modelled time."""
    layer, _ = study.chosen_setting
    ours, pixel = study.grid[study.grid.layer == layer], study.pixel
    fig, axes = plt.subplots(1, 3 if time_panel else 2, figsize=(16 if time_panel else 12, 4))
    axes[0].plot(ours["threshold"], ours["mAP"], "o-", label=f"AmphibianDetector, m={layer}")
    axes[0].set(xlabel="threshold lambda", ylabel="mAP@0.5 (tuning frames)", title=gate_title)
    axes[1].plot(pixel["threshold"], pixel["mAP"], "-", color="C1", label="pixel L2 baseline")
    axes[1].axvline(2500, color="C1", ls=":", lw=1, label="the thesis's largest threshold")
    axes[1].set(xlabel="threshold (squared L2)", title=pixel_title)
    axes[1].sharey(axes[0])
    for ax in axes[:2]:
        ax.axhline(study.map_alone_tuning, color="grey", ls="--", label="detector alone")
    if time_panel:
        axes[2].plot(ours["threshold"], ours["ms per frame"], "o-", label=f"AmphibianDetector, m={layer}")
        axes[2].axhline(1e3 * study.times.detector_alone, color="grey", ls="--", label="detector alone")
        axes[2].set(xlabel="threshold lambda", ylabel="ms per frame", title="modelled ms per frame (Fig. 2.6)")
        axes[2].set_ylim(bottom=0)  # from zero: a few percent must look like a few percent
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    return fig


def time_and_speedup(at_layer: Any, times: Any, chosen_layer: int, layers: Sequence[int]) -> plt.Figure:
    """Left: modelled ms per frame against lambda at the chosen layer, from zero, with the detector alone;
    right: the speed-up over the detector alone against the share of static frames for each layer in
    ``layers`` (each once; the chosen one marked). ``at_layer``: the grid's rows of the chosen layer;
    ``times``: :class:`~faceopt.detection.experiments.StageTimes`."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    axes[0].plot(at_layer["threshold"], at_layer["ms per frame"], "o-", label=f"AmphibianDetector, m={chosen_layer}")
    axes[0].axhline(1e3 * times.detector_alone, color="grey", ls="--", label="detector alone")
    axes[0].set(xlabel="threshold lambda", ylabel="ms per frame", title="Mean frame time (modelled from stages)")
    axes[0].set_ylim(bottom=0)
    shares = np.linspace(0, 1, 11)
    for m in sorted(set(layers)):
        axes[1].plot(shares, [times.detector_alone / times.frame_time(m, s) for s in shares],
                     label=f"m={m}" + (" (chosen)" if m == chosen_layer else ""))
    axes[1].axhline(1.0, color="grey", ls="--", lw=1)
    axes[1].set(xlabel="share of static frames", ylabel="speed-up over the detector alone",
                title="Where the gain comes from")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    return fig
