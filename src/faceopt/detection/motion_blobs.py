"""Motion blobs of a fixed camera: median background, thresholded difference, morphology, components.

The first of the two sources of :mod:`faceopt.detection.pseudo_labels`: blob boxes are tight
around what moves, whole bodies included, but people walking together form one blob.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from faceopt.data.cdnet import read_video
from faceopt.detection.pseudo_label_config import PseudoLabelConfig


# --------------------------------------------------------------------------- #
# Video and background
# --------------------------------------------------------------------------- #
def read_frames(video_path: str | Path) -> Iterator[np.ndarray]:
    """The frames of a video, in order, as BGR ``uint8 HxWx3`` (:func:`faceopt.data.cdnet.read_video`:
    ``FileNotFoundError`` for no file, ``ValueError`` for a file OpenCV cannot read)."""
    return read_video(video_path)


def median_background(video_path: str | Path, step: int = 5) -> np.ndarray:
    """Per-pixel median of frames ``0, step, 2*step, ...``: the empty scene when people keep moving."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    sample = [f for i, f in enumerate(read_frames(video_path)) if i % step == 0]
    if not sample:
        raise ValueError(f"the video {video_path} has no frames")
    stack = np.stack(sample)
    out = np.empty(stack.shape[1:], np.uint8)
    for r in range(0, stack.shape[1], 64):  # row bands keep np.median's float copy small
        out[r:r + 64] = np.round(np.median(stack[:, r:r + 64], axis=0)).astype(np.uint8)
    return out


def foreground_mask(frame: np.ndarray, background: np.ndarray, config: PseudoLabelConfig = PseudoLabelConfig()
                    ) -> np.ndarray:
    """``uint8 HxW`` mask (0 or 255) of what differs from ``background`` after the morphology."""
    if frame.shape != background.shape:
        raise ValueError(f"frame {frame.shape} and background {background.shape} differ in shape")
    diff = cv2.absdiff(frame, background).max(axis=2)
    if config.blur > 1:
        diff = cv2.GaussianBlur(diff, (config.blur, config.blur), 0)
    mask: np.ndarray = np.where(diff > config.diff_threshold, 255, 0).astype(np.uint8)
    ow, oh = config.open_size
    if ow * oh > 1:
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (ow, oh)))
    cw, ch = config.close_size
    if cw * ch > 1:
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (cw, ch)))
    return mask


def _bridged_by_occluder(a: np.ndarray, b: np.ndarray, occluders: np.ndarray, margin: float) -> bool:
    """Whether boxes ``a`` and ``b`` are two visible pieces of one thing behind an occluder.

    Either one lies above the other, they share at least half the narrower width, and
    the gap between them -- the rows between them times the columns they share -- lies
    inside an occluder (the sign); or they lie side by side, share at least half the
    lower height, and the gap -- the columns between them times the rows they share --
    lies inside an occluder (the pole).  Occluders are widened by ``margin`` pixels.
    """
    for o in occluders:
        ox1, oy1, ox2, oy2 = o[0] - margin, o[1] - margin, o[2] + margin, o[3] + margin
        top, bottom = (a, b) if a[1] <= b[1] else (b, a)
        overlap_x = min(top[2], bottom[2]) - max(top[0], bottom[0])
        if (overlap_x >= 0.5 * min(top[2] - top[0], bottom[2] - bottom[0]) and bottom[1] >= top[3] - margin
                and top[3] >= oy1 and bottom[1] <= oy2
                and max(top[0], bottom[0]) >= ox1 and min(top[2], bottom[2]) <= ox2):
            return True
        left, right = (a, b) if a[0] <= b[0] else (b, a)
        overlap_y = min(left[3], right[3]) - max(left[1], right[1])
        if (overlap_y >= 0.5 * min(left[3] - left[1], right[3] - right[1]) and right[0] >= left[2] - margin
                and left[2] >= ox1 and right[0] <= ox2
                and max(left[1], right[1]) >= oy1 and min(left[3], right[3]) <= oy2):
            return True
    return False


def motion_blobs(mask: np.ndarray, config: PseudoLabelConfig = PseudoLabelConfig()
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components of ``mask``, pieces cut apart by a known occluder joined, large enough ones kept.

    Components of at least ``config.min_piece_area`` pixels whose gap is covered by one
    of ``config.occluders`` (see :func:`_bridged_by_occluder`) form one blob; blobs
    need ``config.min_area`` pixels and ``config.min_height`` rows (box height).

    Returns ``(boxes float32 [N, 4] x1, y1, x2, y2, areas int [N], labels int32 HxW)``;
    ``labels`` numbers the kept blobs ``1..N`` in the order of ``boxes`` (0: background
    or a dropped component).
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    comp_boxes = np.stack([x, y, x + stats[:, cv2.CC_STAT_WIDTH], y + stats[:, cv2.CC_STAT_HEIGHT]], axis=1)
    pieces = [j for j in range(1, n) if stats[j, cv2.CC_STAT_AREA] >= config.min_piece_area]
    parent = {j: j for j in pieces}

    def find(j: int) -> int:
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        return j

    occluders = np.asarray(config.occluders, np.float64).reshape(-1, 4)
    if len(occluders):
        for ia, a in enumerate(pieces):
            for b in pieces[ia + 1:]:
                if _bridged_by_occluder(comp_boxes[a], comp_boxes[b], occluders, config.occluder_margin):
                    parent[find(b)] = find(a)
    groups: dict[int, list[int]] = {}
    for j in pieces:
        groups.setdefault(find(j), []).append(j)
    lut = np.zeros(n, np.int32)
    boxes, areas = [], []
    for members in sorted(groups.values()):
        bb = comp_boxes[members]
        box = [bb[:, 0].min(), bb[:, 1].min(), bb[:, 2].max(), bb[:, 3].max()]
        area = int(stats[members, cv2.CC_STAT_AREA].sum())
        if area >= config.min_area and box[3] - box[1] >= config.min_height:
            boxes.append(box)
            areas.append(area)
            lut[members] = len(boxes)
    return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(areas, np.int64), lut[labels])
