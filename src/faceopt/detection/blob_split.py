"""Motion blobs and person detections -> one box per person (:mod:`faceopt.detection.pseudo_labels`).

A detection belongs to the blob that holds its torso centre; a blob with several plausible
detections is cut between their body axes at the emptiest column (:func:`assign_and_split`);
a wide blob with at most one detection is cut at a clear valley of its column profile
(:func:`valley_split`) or between the previous frame's people.
"""
from __future__ import annotations

import numpy as np

from faceopt.detection.pseudo_label_config import PseudoLabelConfig, PseudoLabelStats

KIND_CONFIRMED, KIND_SPLIT, KIND_UNCONFIRMED, KIND_VALLEY, KIND_CARRIED = (
    "confirmed", "split", "unconfirmed", "valley", "carried")


def valley_split(region: np.ndarray, config: PseudoLabelConfig = PseudoLabelConfig(), depth: int = 2
                 ) -> list[np.ndarray] | None:
    """Cut a wide blob (``bool HxW``, its own box) at the deepest valley of its column profile.

    People side by side leave a gap, or a thin link of arms or bags, between them: a
    column with few foreground pixels.  The deepest column at least
    ``valley_min_width`` blob heights from both sides is a cut when its (3-column mean)
    count is at most ``valley_depth`` times the smaller of the highest columns on either
    side and both parts are at least ``valley_min_height`` blob heights tall.  Parts
    that are still wide are cut again (``depth`` levels).  Returns the parts' boxes
    ``[x1, y1, x2, y2]`` in ``region`` pixels, or ``None`` when there is no such valley.
    """
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return None
    h = float(ys.max() + 1 - ys.min())
    cols = np.convolve(region.sum(axis=0).astype(np.float64), np.ones(3) / 3.0, mode="same")
    lo = int(np.ceil(config.valley_min_width * h))
    hi = region.shape[1] - lo
    if hi <= lo:
        return None
    k = lo + int(np.argmin(cols[lo:hi]))
    if cols[k] > config.valley_depth * min(cols[:k].max(), cols[k + 1:].max()):
        return None
    parts: list[np.ndarray] = []
    for x0, sub in ((0, region[:, :k]), (k, region[:, k:])):
        py, px = np.nonzero(sub)
        if len(py) == 0 or py.max() + 1 - py.min() < config.valley_min_height * h:
            return None
        box = np.array([px.min() + x0, py.min(), px.max() + 1 + x0, py.max() + 1], np.float32)
        inner = valley_split(sub, config, depth - 1) if depth > 1 and (box[2] - box[0]) >= \
            config.valley_aspect * (box[3] - box[1]) else None
        parts.extend([b + np.array([x0, 0, x0, 0], np.float32) for b in inner] if inner else [box])
    return parts


def torso_and_radius(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Torso centres ``[M, 2]`` (mid-point of hip and shoulder centres) and full-body radii ``[M]``."""
    kps = np.asarray(keypoints, np.float32).reshape(-1, 4, 2)
    return (kps[:, 0] + kps[:, 2]) / 2.0, np.linalg.norm(kps[:, 1] - kps[:, 0], axis=1)


def blob_owners(torso: np.ndarray, blobs: np.ndarray) -> np.ndarray:
    """Index of the blob whose box holds each torso centre (the first one), -1 for none."""
    owner = np.full(len(torso), -1)
    for j, (x1, y1, x2, y2) in enumerate(np.asarray(blobs).reshape(-1, 4)):
        inside = (torso[:, 0] >= x1) & (torso[:, 0] < x2) & (torso[:, 1] >= y1) & (torso[:, 1] < y2)
        owner[inside & (owner < 0)] = j
    return owner


def _same_or_implausible(d: int, mine: list[int], torso: np.ndarray, radius: np.ndarray, scores: np.ndarray,
                         config: PseudoLabelConfig) -> bool:
    """Whether detection ``d`` adds nobody to the blob's accepted detections ``mine`` (strongest first).

    It is the same person as an accepted one when their torso centres are closer in x
    than ``min_split_distance`` times the larger radius; it is implausible as a second
    person when its score is below ``split_score``, its full-body radius is more than
    ``max_radius_ratio`` times off the strongest one's (people side by side have about
    the same size), or its torso is more than ``max_split_dy`` radii above or below.
    """
    if any(abs(torso[d, 0] - torso[e, 0]) < config.min_split_distance * max(float(radius[d]), float(radius[e]), 1.0)
           for e in mine):
        return True
    if not mine:
        return False
    a = mine[0]
    ratio = max(float(radius[d]), 1.0) / max(float(radius[a]), 1.0)
    return bool(scores[d] < config.split_score or not 1.0 / config.max_radius_ratio <= ratio <= config.max_radius_ratio
                or abs(torso[d, 1] - torso[a, 1]) > config.max_split_dy * max(float(radius[a]), 1.0))


def _people_in_blob(j: int, owner: np.ndarray, torso: np.ndarray, radius: np.ndarray, scores: np.ndarray,
                    config: PseudoLabelConfig) -> list[int]:
    """Detections of blob ``j`` that are distinct people, strongest first."""
    mine: list[int] = []
    for d in np.argsort(-np.asarray(scores, np.float32), kind="stable"):
        if owner[d] == j and not _same_or_implausible(int(d), mine, torso, radius, scores, config):
            mine.append(int(d))
    return mine


def _columns_to_people(region: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Which person (index into ``axes``) owns each column of a blob (``bool HxW``, its own box).

    Between two neighbouring body axes the cut is the column with the fewest foreground
    pixels (3-column mean) in the middle half of the span between them -- the gap between
    two people when there is one, else about half-way.
    """
    width = region.shape[1]
    order = np.argsort(axes, kind="stable")
    cols = np.convolve(region.sum(axis=0).astype(np.float64), np.ones(3) / 3.0, mode="same")
    owner = np.full(width, int(order[-1]), np.int64)
    start = 0
    for a, b in zip(order[:-1], order[1:]):
        lo, hi = float(axes[a]), float(axes[b])
        c0 = int(np.clip(np.ceil(lo + 0.25 * (hi - lo)), 0, width - 1))
        c1 = int(np.clip(np.floor(hi - 0.25 * (hi - lo)), c0, width - 1))
        cut = c0 + int(np.argmin(cols[c0:c1 + 1]))
        cut = max(cut, start)
        owner[start:cut] = int(a)
        start = cut
    return owner


def _carried_axes(blob: np.ndarray, previous: np.ndarray, config: PseudoLabelConfig) -> np.ndarray:
    """x centres of the previous frame's boxes that lie (mostly) inside ``blob``, at least
    ``carry_min_separation`` blob heights apart (people one above the other count once)."""
    x1, y1, x2, y2 = (float(v) for v in blob)
    m = float(config.carry_margin)
    prev = np.asarray(previous, np.float32).reshape(-1, 4)
    ix = np.clip(np.minimum(prev[:, 2], x2 + m) - np.maximum(prev[:, 0], x1 - m), 0, None)
    iy = np.clip(np.minimum(prev[:, 3], y2 + m) - np.maximum(prev[:, 1], y1 - m), 0, None)
    area = np.maximum((prev[:, 2] - prev[:, 0]) * (prev[:, 3] - prev[:, 1]), 1.0)
    inside = prev[ix * iy >= config.carry_inside * area]
    axes: list[float] = []
    for cx in sorted(((inside[:, 0] + inside[:, 2]) / 2.0).tolist()):
        if not axes or cx - axes[-1] >= config.carry_min_separation * (y2 - y1):
            axes.append(cx)
    return np.asarray(axes, np.float32)


def _parts_by_columns(region: np.ndarray, axes: np.ndarray, config: PseudoLabelConfig) -> list[np.ndarray] | None:
    """Boxes (region pixels) of the parts of ``region`` owned by each axis (:func:`_columns_to_people`),
    or ``None`` when a part is smaller than ``min_part_area`` or lower than ``valley_min_height`` blob heights."""
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return None
    h = float(ys.max() + 1 - ys.min())
    owner = _columns_to_people(region, axes)[xs]
    parts = []
    for p in range(len(axes)):
        sel = owner == p
        if sel.sum() < config.min_part_area or ys[sel].max() + 1 - ys[sel].min() < config.valley_min_height * h:
            return None
        parts.append(np.array([xs[sel].min(), ys[sel].min(), xs[sel].max() + 1, ys[sel].max() + 1], np.float32))
    return parts


def assign_and_split(blobs: np.ndarray, labels: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                     config: PseudoLabelConfig = PseudoLabelConfig(), stats: PseudoLabelStats | None = None,
                     previous: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Person boxes ``float32 [N, 4]`` and their kinds from the blobs and the detections (see the module doc).

    ``keypoints`` are BlazePose's ``[M, 4, 2]`` frame-pixel keypoints (0 hip centre,
    1 full-body scale point, 2 shoulder centre), ``scores`` their ``[M]`` scores;
    ``labels`` the blob label image of :func:`motion_blobs`.  Pass no detections
    (``M = 0``) to keep only person-shaped blobs.  Kinds: ``"confirmed"`` (a blob with
    one detection), ``"split"`` (a part of a blob with several), ``"unconfirmed"`` (a
    person-shaped blob without a detection), ``"carried"`` (a part of a wide blob with at
    most one detection, cut between the centres of the ``previous`` frame's boxes that lie
    in it: a pair split in one frame stays split while the detector sees only one of
    them) and ``"valley"`` (a part of a wide blob cut at a column valley, :func:`valley_split`).
    """
    st = stats if stats is not None else PseudoLabelStats()
    blobs = np.asarray(blobs, np.float32).reshape(-1, 4)
    torso, radius = torso_and_radius(keypoints)
    hips = np.asarray(keypoints, np.float32).reshape(-1, 4, 2)[:, 0]
    owner = blob_owners(torso, blobs)
    st.detections_off_blob += int((owner < 0).sum())
    out: list[list[float]] = []
    kinds: list[str] = []
    for j, (x1, y1, x2, y2) in enumerate(blobs):
        mine = _people_in_blob(j, owner, torso, radius, scores, config)
        h, w = y2 - y1, x2 - x1
        if len(mine) <= 1:
            kind = KIND_CONFIRMED if mine else KIND_UNCONFIRMED
            if not mine and not ((h >= config.min_unconfirmed_height and h >= config.min_aspect * w)
                                 or (h >= config.min_group_height and h >= config.min_group_aspect * w)):
                st.blobs_unconfirmed_dropped += 1
                continue
            parts = None
            iy1, iy2, ix1, ix2 = int(y1), int(y2), int(x1), int(x2)
            region = labels[iy1:iy2, ix1:ix2] == j + 1
            if previous is not None and len(previous) and w >= config.carry_aspect * h:
                axes = _carried_axes(blobs[j], previous, config)
                if mine and len(axes) >= 2:  # the detection's axis replaces the nearest carried one
                    axes[int(np.argmin(np.abs(axes - torso[mine[0], 0])))] = torso[mine[0], 0]
                if len(axes) >= 2:
                    parts = _parts_by_columns(region, axes - ix1, config)
                    if parts is not None:
                        st.blobs_carried_split += 1
                        kind = KIND_CARRIED
            if parts is None and w >= config.valley_aspect * h:
                parts = valley_split(region, config)
                if parts is not None:
                    st.blobs_valley_split += 1
                    kind = KIND_VALLEY
            if parts is None:
                parts = [np.array([0, 0, w, h], np.float32)]
            if mine:
                st.blobs_confirmed += 1
            else:
                st.blobs_unconfirmed_kept += 1
            for b in parts:
                out.append([float(x1 + b[0]), float(y1 + b[1]), float(x1 + b[2]), float(y1 + b[3])])
                kinds.append(kind)
            continue
        st.blobs_split += 1
        iy1, iy2, ix1, ix2 = int(y1), int(y2), int(x1), int(x2)
        ys, xs = np.nonzero(labels[iy1:iy2, ix1:ix2] == j + 1)
        ys, xs = ys + iy1, xs + ix1
        nearest = _columns_to_people(labels[iy1:iy2, ix1:ix2] == j + 1, torso[mine, 0] - ix1)[xs - ix1]
        for p, d in enumerate(mine):
            # a part never reaches beyond its detection's full-body square (legs of a person in front)
            r = config.split_clip_scale * float(radius[d])
            cx, cy = hips[d]
            sel = (nearest == p) & (ys >= cy - r) & (ys <= cy + r) & (xs >= cx - r) & (xs <= cx + r)
            if sel.sum() >= config.min_part_area:
                out.append([float(xs[sel].min()), float(ys[sel].min()), float(xs[sel].max()) + 1.0,
                            float(ys[sel].max()) + 1.0])
                kinds.append(KIND_SPLIT)
    return np.asarray(out, np.float32).reshape(-1, 4), kinds
