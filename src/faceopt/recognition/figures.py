"""The figures of thesis Chapters 3 and 4 (pages 04 and 06): embeddings on the circle, teacher margins, every
seed; page 06's capture conditions and door-phone frames."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from faceopt.recognition.hypersphere import PlanarRun, angles

#: The panels of :func:`planar_circles`: run name -> title.
PLANAR_TITLES = {"no_margin": "teacher's net, no margin (m = 0)", "teacher": "teacher (ArcFace, m = 0.5)",
                 "arcface": "student, ArcFace alone", "margin_distillation": "student, MarginDistillation"}


def planar_circles(planar: PlanarRun) -> plt.Figure:
    """One polar panel per run of :data:`PLANAR_TITLES`: each embedding at its angle (coloured by
    identity, jittered in radius so that points do not hide each other) and each class centre as a line."""
    fig, axes = plt.subplots(1, len(PLANAR_TITLES), figsize=(15, 4.2), subplot_kw={"projection": "polar"})
    palette = sns.color_palette("tab10", planar.centres["teacher"].shape[0])
    for ax, (name, title) in zip(axes, PLANAR_TITLES.items()):
        th = angles(planar.embeddings[name])
        r = 1.0 + 0.12 * np.random.default_rng(0).random(len(th))
        ax.scatter(th, r, c=[palette[k] for k in planar.labels], s=10, alpha=0.8)
        for k, c in enumerate(angles(planar.centres[name])):
            ax.plot([c, c], [0, 1.25], color=palette[k], lw=2)
        ax.set_ylim(0, 1.3)
        ax.set_yticklabels([])
        ax.set_title(title, pad=12)
    fig.tight_layout()
    return fig


def margin_histograms(hist: Mapping[str, Any]) -> plt.Figure:
    """The teacher's cosines ``a_i`` to the true centre and the margins ``m_i`` they give
    (a teacher record's ``margins``: counts and bin edges of each)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, key, color, xlabel in ((axes[0], "a", "tab:blue", r"teacher cosine $a_i$ to the true centre"),
                                   (axes[1], "m", "tab:orange", r"margin $m_i$")):
        edges = np.asarray(hist[f"{key}_edges"])
        ax.bar(edges[:-1], hist[f"{key}_counts"], width=np.diff(edges), align="edge", color=color, alpha=0.85)
        ax.set(xlabel=xlabel, ylabel="images")
    fig.tight_layout()
    return fig


def seed_points(seeds: pd.DataFrame, teacher: Mapping[str, float], order: Sequence[str]) -> plt.Figure:
    """One panel per metric: every seed as a point, mean ± sd as a bar, the teacher as a dashed line.

    ``seeds``: :func:`faceopt.recognition.tables.seed_frame`; ``teacher``: metric name -> value;
    ``order``: the method labels top to bottom.
    """
    names = list(dict.fromkeys(seeds["metric"]))
    fig, axes = plt.subplots(1, len(names), figsize=(13, 4.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        d = seeds[seeds.metric == name]
        sns.pointplot(data=d, x="value", y="method", order=order, errorbar="sd", linestyle="none", color="black",
                      markers="|", markersize=14, err_kws={"linewidth": 1}, ax=ax)
        sns.stripplot(data=d, x="value", y="method", order=order, color="tab:blue", alpha=0.7, size=5, jitter=0.15,
                      ax=ax)
        ax.axvline(teacher[name], color="tab:red", ls="--", lw=1, label="teacher")
        ax.set(title=name, xlabel="%", ylabel="")
    axes[0, 0].legend(loc="lower left")
    fig.tight_layout()
    return fig


def protocol_examples(size: int = 112, *, per_row: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """Example images of page 06's protocols, uint8 RGB ``[per_row, size, size, 3]`` per row: the three
    NIST-like capture conditions (one image of each of ``per_row`` identities) and the frames of one
    resident's door-phone visit in each setting (the same resident, walk and seed: only the light and the
    codec differ)."""
    from faceopt.data.conditions import CONDITIONS, condition_faces, render_condition
    from faceopt.data.doorphone_visits import doorphone_protocol

    rows: dict[str, np.ndarray] = {}
    for name in CONDITIONS:
        x, _ = render_condition(condition_faces(name, per_row, 1, seed=seed, workers=1), size)
        rows[f"{name}-like"] = x.permute(0, 2, 3, 1).numpy()
    for condition, compression in (("day", "weak"), ("day", "strong"), ("night", "weak")):
        protocol = doorphone_protocol(1, 1, 1, 0, condition=condition, compression=compression,  # type: ignore[arg-type]
                                      size=size, seed=seed, workers=1)
        frames = protocol.positive[0].frames
        pick = np.linspace(0, len(frames) - 1, per_row).round().astype(int)
        rows[f"door phone {condition}, {compression} H.264"] = frames[pick][..., ::-1]  # BGR -> RGB
    return rows


def example_grid(rows: Mapping[str, np.ndarray]) -> plt.Figure:
    """A grid of example images, one labelled row per entry of ``rows`` (uint8 RGB ``[N, H, W, 3]``)."""
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n, 1.4 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c])
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig
