"""Pseudo-labels: person boxes for ``vtest.avi`` made by us, since the video has no annotations.

OpenCV's pedestrian sample (768x576, 795 frames, 10 fps, fixed camera) comes without
boxes, and the only person detector we have, MediaPipe's BlazePose *detector*
(:mod:`faceopt.detection.blazepose`), was made for people who fill the frame: on whole
frames it finds almost nobody (people here are 30-150 px tall).  Run on a dense grid
of upscaled tiles it finds the people, but also the same static things in every
frame (a cloth on the grass, the tripod, the lamp, cones) and costs about 9 s a frame
on one CPU core.  The boxes are therefore made once, on the clean frames, by
combining two sources that fail differently:

1. **Motion blobs** (:func:`median_background`, :func:`foreground_mask`,
   :func:`motion_blobs`).  The background is the per-pixel temporal median of every
   ``background_step``-th frame (people keep moving, so the median is the empty
   scene).  A pixel is foreground when its largest colour-channel difference to
   that background, after a Gaussian blur, exceeds ``diff_threshold``.  An opening
   with a thin *vertical* element removes the red-and-white barrier tape that moves
   in the wind (a line a few pixels high) and pixel noise; an elliptic closing joins
   the parts of a body; connected components whose gap is covered by a known static
   occluder (the lamp post and its sign, :data:`VTEST_OCCLUDERS`) are joined; blobs
   need ``min_area`` pixels and ``min_height`` rows.  Blob boxes are tight around
   what moves, whole body included, but people walking together form one blob.
2. **Detector confirmation and splitting** (:func:`blob_crops`,
   :func:`detect_in_crops`, :func:`detect_people`, :func:`assign_and_split`).
   Around every blob the detector runs on square crops of side ``crop_scale`` times
   the blob height (so that a person fills the crop about the way the detector
   expects); wide blobs get more crops.  Detections (score >= ``score_threshold``)
   are merged over the frame by non-maximum suppression on the detector's own
   boxes.  In a wide blob the people found are then erased (replaced by the
   background) and the detector looks again, since it tends to report only the
   clearer person of a pair.  A detection belongs to the blob that holds its torso
   centre (mid-point of the hip and shoulder keypoints).  A blob with two or more
   plausible detections (distinct along x, similar size and height, score >=
   ``split_score``) is cut along x between neighbouring body axes at the column with
   the fewest foreground pixels; each part's bounding box, clipped to its
   detection's full-body square, is one person.  A blob with one detection is one
   person; a blob with none is kept when it is person-shaped (upright, at least
   ``min_unconfirmed_height`` rows) or group-sized, and dropped otherwise (debris,
   legs seen under the sign, the car leaving the car park).  A wide blob with at
   most one detection is cut at a clear valley of its column profile
   (:func:`valley_split`).

Everything is deterministic (median, fixed thresholds, one-thread inference by
default); the result is a ``dict`` from frame index to ``float32 [N, 4]`` boxes
``x1, y1, x2, y2`` in frame pixels (``x2 = x1 + width``).  :func:`save_annotations`
writes them as JSON with a header (atomically); :func:`load_annotations` reads and
checks them.  ``python -m faceopt.detection.pseudo_labels`` regenerates
``vtest_persons.json``, packaged in :mod:`faceopt.resources` (``src/faceopt/resources/annotations/``
in a checkout).

These are **pseudo-labels**, not ground truth: ``data/README.md`` says what was
checked by eye and lists the known error types (people walking or standing close
together boxed as one, people one behind the other merged into one tall box, split
boxes cut a few pixels off, a few people missed when hidden behind the sign).
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from faceopt.assets import ASSETS, asset_path, sha256_file
from faceopt.data.cdnet import read_video
from faceopt.detection import blazepose as bp
from faceopt.detection.blazepose import BlazePose
from faceopt.io import atomic_write_text
from faceopt.progress import progress
from faceopt.resources import resource_path

__all__ = [
    "KIND_CARRIED",
    "KIND_CONFIRMED",
    "KIND_SPLIT",
    "KIND_UNCONFIRMED",
    "KIND_VALLEY",
    "FORMAT",
    "FORMAT_VERSION",
    "PseudoLabelConfig",
    "PseudoLabelStats",
    "VTEST_CONFIG",
    "VTEST_OCCLUDERS",
    "annotation_header",
    "assign_and_split",
    "blob_crops",
    "default_annotation_path",
    "detect_in_crops",
    "detect_people",
    "foreground_mask",
    "load_annotations",
    "make_vtest_pseudo_labels",
    "median_background",
    "motion_blobs",
    "person_boxes",
    "read_frames",
    "save_annotations",
    "valley_split",
]

FORMAT = "faceopt-person-boxes"
FORMAT_VERSION = 1

#: vtest.avi's lamp post sign and the post itself (read off the median background):
#: people walking behind them fall apart into pieces above/below or left/right of them.
VTEST_OCCLUDERS: tuple[tuple[int, int, int, int], ...] = ((412, 202, 446, 245), (423, 40, 436, 395))


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Every parameter of the box maker (stored in the annotation header)."""

    background_step: int = 5
    """Median background over frames ``0, step, 2*step, ...``."""
    blur: int = 5
    """Side of the Gaussian blur on the difference image (odd; 0 or 1: none)."""
    diff_threshold: int = 30
    """Foreground: blurred max-channel absolute difference to the background above this (0..255)."""
    open_size: tuple[int, int] = (1, 7)
    """Opening element (width, height): a vertical bar removes horizontal lines thinner than its height."""
    close_size: tuple[int, int] = (7, 15)
    """Elliptic closing element (width, height) that joins the parts of one body."""
    min_area: int = 150
    """Smallest blob (foreground pixels after the morphology)."""
    min_height: int = 25
    """Smallest blob height in pixels."""
    min_piece_area: int = 40
    """Smallest component that may be joined to another across an occluder."""
    occluders: tuple[tuple[int, int, int, int], ...] = ()
    """Static things people walk behind, ``(x1, y1, x2, y2)`` in frame pixels: pieces of a blob
    that they cut apart are joined (:data:`VTEST_OCCLUDERS` for vtest.avi)."""
    occluder_margin: int = 4
    """Slack in pixels around each occluder."""
    score_threshold: float = 0.5
    """Detector score a detection needs (MediaPipe's default)."""
    nms_iou: float = 0.3
    """IoU of the detector boxes above which detections from overlapping crops are merged."""
    crop_scale: float = 2.0
    """Crop side = this times the blob height, clipped to ``[min_crop, max_crop]``."""
    min_crop: int = 96
    max_crop: int = 320
    min_split_distance: float = 0.3
    """Two detections in one blob whose torso centres are closer in x than this times the
    larger full-body radius are one person (the weaker one is dropped)."""
    split_score: float = 0.6
    """A second (third, ...) person in a blob needs at least this score ..."""
    max_radius_ratio: float = 1.5
    """... a full-body radius within this factor of the strongest detection's ..."""
    max_split_dy: float = 0.4
    """... and a torso centre at most this many of its radii above or below."""
    min_part_area: int = 80
    """A split part with fewer foreground pixels is dropped."""
    split_clip_scale: float = 1.1
    """A split part is cut to its detection's full-body square (hip centre +- this times the radius)."""
    wide_aspect: float = 0.55
    """Blobs with width/height at least this (probably several people) get crops on their outer
    quarters too and are searched again after erasing the people found."""
    erase_width: float = 0.3
    """Half-width of the erased column band, in full-body radii."""
    redetect_rounds: int = 2
    """At most this many re-detection passes per frame (0: none)."""
    min_unconfirmed_height: int = 28
    """A blob without a detection is kept only if it is at least this tall ..."""
    min_aspect: float = 1.8
    """... and its height/width is at least this (people are upright), or it is a group:"""
    min_group_height: int = 50
    """a blob without a detection at least this tall ..."""
    min_group_aspect: float = 0.8
    """... with height/width at least this is kept as one box (people standing together the
    detector does not find: a merged-group box is kept rather than a miss)."""
    valley_aspect: float = 0.6
    """A blob with at most one detection and width/height at least this is cut at a column valley ..."""
    valley_min_width: float = 0.2
    """... at least this many blob heights from either side ..."""
    valley_depth: float = 0.5
    """... whose column count is at most this times the smaller peak on either side ..."""
    valley_min_height: float = 0.6
    """... when both parts are at least this many blob heights tall (see :func:`valley_split`)."""
    carry_aspect: float = 0.35
    """A blob with at most one detection and width/height at least this may be cut between the
    previous frame's people (pairs one slightly behind the other are narrower than ``wide_aspect``)."""
    carry_inside: float = 0.6
    """A previous-frame box carries its person into a blob when this share of it lies inside
    the blob (widened by ``carry_margin`` pixels) ..."""
    carry_margin: int = 4
    carry_min_separation: float = 0.2
    """... and its centre is at least this many blob heights (along x) from the other carried ones."""
    threads: int = 1
    """``torch.set_num_threads`` during the run (restored afterwards)."""

    def __post_init__(self) -> None:
        if self.background_step < 1:
            raise ValueError(f"background_step must be >= 1, got {self.background_step}")
        if not 0 < self.diff_threshold < 255:
            raise ValueError(f"diff_threshold must be in 1..254, got {self.diff_threshold}")
        if self.min_crop < 16 or self.max_crop < self.min_crop:
            raise ValueError(f"need 16 <= min_crop <= max_crop, got {self.min_crop}, {self.max_crop}")
        if self.blur > 1 and self.blur % 2 == 0:
            raise ValueError(f"blur must be odd, got {self.blur}")
        if self.threads < 1 or self.redetect_rounds < 0:
            raise ValueError(f"need threads >= 1 and redetect_rounds >= 0, got {self.threads}, {self.redetect_rounds}")


#: The parameters used for the committed ``vtest_persons.json``.
VTEST_CONFIG = PseudoLabelConfig(occluders=VTEST_OCCLUDERS)


@dataclass
class PseudoLabelStats:
    """Counts from one run (written into the annotation header)."""

    frames: int = 0
    blobs: int = 0
    crops: int = 0
    detections: int = 0
    """Detections after NMS, anywhere in the frame."""
    detections_off_blob: int = 0
    """Detections whose torso centre lies in no blob (not used as boxes)."""
    blobs_confirmed: int = 0
    """Blobs holding exactly one detection."""
    blobs_split: int = 0
    """Blobs holding two or more detections (split into that many boxes)."""
    redetected: int = 0
    """Detections found only after erasing the people already found in a wide blob."""
    blobs_valley_split: int = 0
    """Blobs with at most one detection cut at a column valley (counted in confirmed/unconfirmed too)."""
    blobs_carried_split: int = 0
    """Wide blobs with at most one detection cut between the previous frame's people."""
    blobs_unconfirmed_kept: int = 0
    blobs_unconfirmed_dropped: int = 0
    boxes: int = 0
    frames_with_boxes: int = 0
    seconds: float = 0.0


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
    mask = np.where(diff > config.diff_threshold, 255, 0).astype(np.uint8)
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


# --------------------------------------------------------------------------- #
# Detector on crops around the blobs
# --------------------------------------------------------------------------- #
def blob_crops(blobs: np.ndarray, frame_shape: tuple[int, ...], config: PseudoLabelConfig = PseudoLabelConfig()
               ) -> list[tuple[int, int, int]]:
    """Square crops ``(x0, y0, side)`` around each blob, inside the frame; wide blobs get several.

    The side is ``crop_scale`` times the blob height (clipped to ``[min_crop, max_crop]``
    and to the frame); crops are centred on the blob, at most half a side apart along a
    long blob, and on the blob's outer quarters when it is wide (``wide_aspect``).
    """
    fh, fw = int(frame_shape[0]), int(frame_shape[1])
    crops: list[tuple[int, int, int]] = []
    for x1, y1, x2, y2 in np.asarray(blobs, dtype=np.float64).reshape(-1, 4):
        side = int(round(np.clip(config.crop_scale * (y2 - y1), config.min_crop, config.max_crop)))
        side = min(side, fw, fh)
        cy = (y1 + y2) / 2.0
        # centres along x, at most half a crop apart, covering the blob's width
        n = max(1, int(np.ceil((x2 - x1) / (side / 2.0))) - 1)
        centres = [(x1 + x2) / 2.0] if n == 1 else list(np.linspace(x1 + side / 4.0, x2 - side / 4.0, n))
        if (x2 - x1) >= config.wide_aspect * (y2 - y1):
            # probably several people: also centre a crop on each outer quarter
            centres += [x1 + (x2 - x1) / 4.0, x2 - (x2 - x1) / 4.0]
        for cx in centres:
            x0 = int(np.clip(round(cx - side / 2.0), 0, fw - side))
            y0 = int(np.clip(round(cy - side / 2.0), 0, fh - side))
            if (x0, y0, side) not in crops:
                crops.append((x0, y0, side))
    return crops


def detect_in_crops(detector: Any, frame: np.ndarray, crops: list[tuple[int, int, int]],
                    config: PseudoLabelConfig = PseudoLabelConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a :class:`~faceopt.detection.blazepose.BlazePose` on square crops of ``frame`` in one batch.

    Returns frame-pixel ``(detector boxes [N, 4], scores [N], keypoints [N, 4, 2])``
    after non-maximum suppression (IoU ``config.nms_iou`` on the detector boxes).
    """
    from torchvision.ops import nms


    if not crops:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, bp.NUM_KEYPOINTS, 2), np.float32)
    tensors, boxes, scores, kps = [], [], [], []
    for x0, y0, side in crops:
        t, _ = bp.preprocess(np.ascontiguousarray(frame[y0:y0 + side, x0:x0 + side]))
        tensors.append(t)
    with torch.inference_mode():
        reg, cls = detector(torch.cat(tensors).to(detector.anchors.device))
    for i, (x0, y0, side) in enumerate(crops):
        b, s, k = bp.postprocess(reg[i], cls[i], detector.anchors, None, score_threshold=config.score_threshold)
        f = side / float(bp.INPUT_SIZE)
        boxes.append(b * f + np.array([x0, y0, x0, y0], np.float32))
        kps.append(k * f + np.array([x0, y0], np.float32))
        scores.append(s)
    b_all = np.concatenate(boxes).astype(np.float32)
    s_all = np.concatenate(scores).astype(np.float32)
    k_all = np.concatenate(kps).astype(np.float32)
    if len(s_all) == 0:
        return b_all.reshape(0, 4), s_all, k_all.reshape(0, bp.NUM_KEYPOINTS, 2)
    keep = nms(torch.from_numpy(b_all), torch.from_numpy(s_all), config.nms_iou).numpy()
    return b_all[keep], s_all[keep], k_all[keep]


# --------------------------------------------------------------------------- #
# Blobs + detections -> person boxes
# --------------------------------------------------------------------------- #
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


def _torso_and_radius(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Torso centres ``[M, 2]`` (mid-point of hip and shoulder centres) and full-body radii ``[M]``."""
    kps = np.asarray(keypoints, np.float32).reshape(-1, 4, 2)
    return (kps[:, 0] + kps[:, 2]) / 2.0, np.linalg.norm(kps[:, 1] - kps[:, 0], axis=1)


def _owners(torso: np.ndarray, blobs: np.ndarray) -> np.ndarray:
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
    torso, radius = _torso_and_radius(keypoints)
    hips = np.asarray(keypoints, np.float32).reshape(-1, 4, 2)[:, 0]
    owner = _owners(torso, blobs)
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


def detect_people(frame: np.ndarray, background: np.ndarray, blobs: np.ndarray, labels: np.ndarray, detector: Any,
                  config: PseudoLabelConfig = PseudoLabelConfig(), stats: PseudoLabelStats | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Detections (``scores [M]``, ``keypoints [M, 4, 2]``) on crops around the blobs, with re-detection.

    After the first pass, in every *wide* blob (width/height >= ``config.wide_aspect``:
    probably several people) the people already found are erased -- their blob pixels
    within ``config.erase_width`` full-body radii of their body axis are replaced by the
    background -- and the detector runs again on that blob's crops, up to
    ``config.redetect_rounds`` times.  The detector tends to report only the clearer
    person of a pair; with that person gone it often finds the other.
    """
    st = stats if stats is not None else PseudoLabelStats()
    crops = blob_crops(blobs, frame.shape, config)
    st.crops += len(crops)
    _, scores, kps = detect_in_crops(detector, frame, crops, config)
    work: np.ndarray | None = None
    for _ in range(config.redetect_rounds):
        torso, radius = _torso_and_radius(kps)
        owner = _owners(torso, blobs)
        wide = [j for j, (x1, y1, x2, y2) in enumerate(blobs)
                if (x2 - x1) >= config.wide_aspect * (y2 - y1) and (owner == j).any()]
        if not wide:
            break
        if work is None:
            work = frame.copy()
        for j in wide:
            x1, y1, x2, y2 = (int(v) for v in blobs[j])
            region = labels[y1:y2, x1:x2] == j + 1
            cols = np.arange(x1, x2, dtype=np.float32)
            for d in np.nonzero(owner == j)[0]:
                near = np.abs(cols - torso[d, 0]) <= config.erase_width * float(radius[d])
                erase = region & near[None, :]
                work[y1:y2, x1:x2][erase] = background[y1:y2, x1:x2][erase]
        crops = blob_crops(blobs[wide], frame.shape, config)
        st.crops += len(crops)
        _, s2, k2 = detect_in_crops(detector, work, crops, config)
        t2, r2 = _torso_and_radius(k2)
        o2 = _owners(t2, blobs)
        new = [i for i in range(len(s2)) if o2[i] in wide
               and all(abs(t2[i, 0] - torso[d, 0]) >= config.min_split_distance * max(float(radius[d]), float(r2[i]))
                       for d in np.nonzero(owner == o2[i])[0])]
        if not new:
            break
        st.redetected += len(new)
        scores = np.concatenate([scores, s2[new]])
        kps = np.concatenate([kps, k2[new]])
    return scores, kps


def person_boxes(frame: np.ndarray, background: np.ndarray, detector: Any | None,
                 config: PseudoLabelConfig = PseudoLabelConfig(), stats: PseudoLabelStats | None = None,
                 *, previous: np.ndarray | None = None, debug: dict[str, Any] | None = None) -> np.ndarray:
    """Person boxes ``float32 [N, 4]`` (x1, y1, x2, y2) of one frame: blobs, confirmed/split by ``detector``.

    ``detector=None`` skips the detector: every person-shaped blob is a box (used by
    the tests and as the motion-only baseline).  ``previous``: the boxes of the
    previous frame (see :func:`assign_and_split`).  A ``debug`` dict receives the blobs,
    the detections and the kind of each box.
    """
    st = stats if stats is not None else PseudoLabelStats()
    mask = foreground_mask(frame, background, config)
    blobs, _, labels = motion_blobs(mask, config)
    st.blobs += len(blobs)
    if detector is not None and len(blobs):
        scores, kps = detect_people(frame, background, blobs, labels, detector, config, st)
    else:
        scores, kps = np.zeros(0, np.float32), np.zeros((0, 4, 2), np.float32)
    st.detections += len(scores)
    boxes, kinds = assign_and_split(blobs, labels, kps, scores, config, st, previous=previous)
    fh, fw = frame.shape[:2]
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, fw)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, fh)
    if debug is not None:
        debug.update(blobs=blobs, scores=scores, keypoints=kps, boxes=boxes, kinds=kinds)
    return boxes


def make_vtest_pseudo_labels(video_path: str | Path | None = None, *, detector: Any | None = "blazepose",
                             config: PseudoLabelConfig | None = None, show_progress: bool = True
                             ) -> tuple[dict[int, np.ndarray], PseudoLabelStats]:
    """Person boxes for every frame of a fixed-camera video (default: the cached ``vtest.avi``).

    Args:
        video_path: the video; ``None`` reads the verified ``vtest.avi`` asset.
        detector: ``"blazepose"`` builds :class:`~faceopt.detection.blazepose.BlazePose` from
            the cached ``blazepose_detection`` asset; pass a built one, or ``None`` for
            motion blobs only.
        config: the parameters (default :data:`VTEST_CONFIG`).
        show_progress: wrap the frames in :func:`faceopt.progress.progress`.

    Returns:
        ``({frame index: float32 [N, 4] x1, y1, x2, y2 in frame pixels}, stats)``,
        one entry per frame (``[0, 4]`` when nobody is there).
    """

    config = VTEST_CONFIG if config is None else config
    if video_path is None:

        video_path = asset_path("vtest.avi")
    if isinstance(detector, str):
        if detector != "blazepose":
            raise ValueError(f"detector must be 'blazepose', a BlazePose module or None, not {detector!r}")

        detector = BlazePose.from_tflite()
    if detector is not None:
        detector = detector.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    stats = PseudoLabelStats()
    t0 = time.perf_counter()
    try:
        background = median_background(video_path, config.background_step)
        frames = read_frames(video_path)
        cap = cv2.VideoCapture(str(video_path))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        cap.release()
        out: dict[int, np.ndarray] = {}
        for i, frame in enumerate(progress(frames, desc="pseudo-labels", total=total) if show_progress else frames):
            out[i] = person_boxes(frame, background, detector, config, stats, previous=out.get(i - 1))
    finally:
        torch.set_num_threads(threads)
    stats.frames = len(out)
    stats.boxes = int(sum(len(b) for b in out.values()))
    stats.frames_with_boxes = int(sum(len(b) > 0 for b in out.values()))
    stats.seconds = time.perf_counter() - t0
    return out, stats


# --------------------------------------------------------------------------- #
# The annotation file
# --------------------------------------------------------------------------- #
def default_annotation_path() -> Path:
    """The packaged ``annotations/vtest_persons.json`` of :mod:`faceopt.resources` (may not exist yet)."""

    return resource_path("annotations", "vtest_persons.json", must_exist=False)


def save_annotations(path: str | Path, boxes: Mapping[int, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write ``boxes`` (frame index -> ``[N, 4]`` x1, y1, x2, y2) and a header ``meta`` as JSON.

    The file is written to a temporary file in the same folder and moved into place
    with :func:`os.replace`, so a failure leaves either the old file or none, never a
    half-written one.  Coordinates are rounded to 0.01 px.

    Raises:
        ValueError: a frame's boxes are not ``[N, 4]`` finite numbers with ``x1 <= x2``, ``y1 <= y2``.
    """
    path = Path(path)
    frames: dict[str, list[list[float]]] = {}
    for idx in sorted(int(k) for k in boxes):
        b = np.asarray(boxes[idx], dtype=np.float64).reshape(-1, 4) if np.size(boxes[idx]) else np.zeros((0, 4))
        if not np.isfinite(b).all() or (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
            raise ValueError(f"frame {idx}: boxes must be finite x1, y1, x2, y2 with x1 <= x2 and y1 <= y2")
        frames[str(idx)] = [[round(float(v), 2) for v in row] for row in b]
    # header pretty-printed, then one frame per line (small, readable diffs)
    head = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "meta": dict(meta)}, indent=1,
                      ensure_ascii=False, allow_nan=False)
    body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in frames.items())
    text = head[:-2] + ',\n "frames": {\n' + body + ("\n }" if body else "}") + "\n}\n"
    return atomic_write_text(path, text)


def load_annotations(path: str | Path) -> tuple[dict[int, np.ndarray], dict[str, Any]]:
    """Read a file of :func:`save_annotations`: ``({frame: float32 [N, 4]}, meta)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the content is not such a file (the message names the file and what is wrong).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT!r} annotation file (missing or wrong 'format')")
    if doc.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {doc.get('version')!r}, this code reads {FORMAT_VERSION}")
    meta, frames = doc.get("meta"), doc.get("frames")
    if not isinstance(meta, dict) or not isinstance(frames, dict):
        raise ValueError(f"{path}: 'meta' and 'frames' must be JSON objects")
    out: dict[int, np.ndarray] = {}
    for key, rows in frames.items():
        try:
            idx = int(key)
        except ValueError:
            raise ValueError(f"{path}: frame key {key!r} is not an integer") from None
        if idx < 0 or str(idx) != key:
            raise ValueError(f"{path}: frame key {key!r} is not a non-negative integer")
        try:
            b = np.asarray(rows, dtype=np.float32).reshape(-1, 4) if rows != [] else np.zeros((0, 4), np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: frame {key}: boxes must be a list of [x1, y1, x2, y2]") from None
        if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) != 4 for r in rows):
            raise ValueError(f"{path}: frame {key}: boxes must be a list of [x1, y1, x2, y2]")
        if not np.isfinite(b).all() or (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
            raise ValueError(f"{path}: frame {key}: boxes must be finite with x1 <= x2 and y1 <= y2")
        out[idx] = b
    return dict(sorted(out.items())), meta


def annotation_header(video_path: str | Path, config: PseudoLabelConfig, stats: PseudoLabelStats,
                      video_sha256: str | None = None) -> dict[str, Any]:
    """The ``meta`` of the committed file: what, how, with which tools, on which video."""
    import torchvision


    vid = Path(video_path)
    cap = cv2.VideoCapture(str(vid))
    size = [int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))]
    cap.release()
    counts = {k: v for k, v in asdict(stats).items() if k != "seconds"}
    return {
        "kind": "pseudo-labels",
        "description": ("Person boxes made by us with a program, not by human annotators: pseudo-labels. "
                        "Motion blobs (median background, thresholded difference, morphology, connected "
                        "components) confirmed and split by the MediaPipe BlazePose person detector run on "
                        "upscaled crops around each blob. Checked by eye on sampled frames only."),
        "video": {"asset": "vtest.avi", "file": vid.name, "sha256": video_sha256 or sha256_file(vid),
                  "registry_sha256": ASSETS["vtest.avi"].sha256, "frames": stats.frames, "size": size},
        "box_format": "x1, y1, x2, y2 in frame pixels (x2 = x1 + width), float, one list per frame index",
        "method": "motion blobs + BlazePose crop detections (faceopt.detection.pseudo_labels)",
        "parameters": asdict(config),
        "detector": {"asset": "blazepose_detection", "package": ASSETS["blazepose_detection"].spec,
                     "sha256": ASSETS["blazepose_detection"].sha256},
        "tools": {"faceopt": _faceopt_version(), "opencv": cv2.__version__, "numpy": np.__version__,
                  "torch": torch.__version__, "torchvision": torchvision.__version__},
        "date": _dt.date.today().isoformat(),
        "command": "nice -n 10 python -m faceopt.detection.pseudo_labels",
        "counts": counts,
    }


def _faceopt_version() -> str:
    try:
        from importlib.metadata import version

        return version("faceopt")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """``python -m faceopt.detection.pseudo_labels [--out PATH] [--video PATH]``: regenerate the file."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=None, help="default: the cached vtest.avi asset")
    ap.add_argument("--out", type=Path, default=None, help="default: the packaged annotations/vtest_persons.json "
                    "(src/faceopt/resources/annotations/ in a checkout)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    config = replace(VTEST_CONFIG, threads=args.threads)
    video = args.video
    if video is None:

        video = asset_path("vtest.avi")
    boxes, stats = make_vtest_pseudo_labels(video, config=config)
    out = save_annotations(args.out or default_annotation_path(), boxes, annotation_header(video, config, stats))
    print(f"{stats.boxes} boxes on {stats.frames_with_boxes}/{stats.frames} frames "
          f"in {stats.seconds:.0f} s -> {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
