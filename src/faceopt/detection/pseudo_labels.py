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
checks them.  ``faceopt pseudo-labels --preset vtest`` regenerates
``vtest_persons.json``, packaged in :mod:`faceopt.resources` (``src/faceopt/resources/annotations/``
in a checkout).

These are **pseudo-labels**, not ground truth: ``data/README.md`` says what was
checked by eye and lists the known error types (people walking or standing close
together boxed as one, people one behind the other merged into one tall box, split
boxes cut a few pixels off, a few people missed when hidden behind the sign).
"""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torchvision
from torchvision.ops import nms

from faceopt.assets import ASSETS, asset_path, sha256_file
from faceopt.data.person_boxes import FORMAT, FORMAT_VERSION, default_annotation_path, load_annotations, save_annotations
from faceopt.detection import blazepose as bp
from faceopt.detection.blazepose import BlazePose
from faceopt.detection.blob_split import (
    KIND_CARRIED,
    KIND_CONFIRMED,
    KIND_SPLIT,
    KIND_UNCONFIRMED,
    KIND_VALLEY,
    assign_and_split,
    blob_owners,
    torso_and_radius,
    valley_split,
)
from faceopt.detection.motion_blobs import foreground_mask, median_background, motion_blobs, read_frames
from faceopt.detection.pseudo_label_config import PRESETS, VTEST_CONFIG, VTEST_OCCLUDERS, PseudoLabelConfig, PseudoLabelStats
from faceopt.progress import progress

__all__ = [
    "KIND_CARRIED",
    "KIND_CONFIRMED",
    "KIND_SPLIT",
    "KIND_UNCONFIRMED",
    "KIND_VALLEY",
    "FORMAT",
    "FORMAT_VERSION",
    "PseudoLabelConfig",
    "PRESETS",
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
        torso, radius = torso_and_radius(kps)
        owner = blob_owners(torso, blobs)
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
        t2, r2 = torso_and_radius(k2)
        o2 = blob_owners(t2, blobs)
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



def annotation_header(video_path: str | Path, config: PseudoLabelConfig, stats: PseudoLabelStats,
                      video_sha256: str | None = None) -> dict[str, Any]:
    """The ``meta`` of the committed file: what, how, with which tools, on which video."""
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
        "command": "nice -n 10 faceopt pseudo-labels --preset vtest",
        "counts": counts,
    }


def _faceopt_version() -> str:
    try:
        from importlib.metadata import version

        return version("faceopt")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "unknown"



def main(argv: list[str] | None = None) -> int:
    """``faceopt pseudo-labels [--preset vtest] [--out PATH] [--video PATH]``: regenerate the annotation file."""
    import argparse

    ap = argparse.ArgumentParser(prog="faceopt pseudo-labels", description=main.__doc__)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="vtest", help="the parameters (default: vtest)")
    ap.add_argument("--video", type=Path, default=None, help="default: the cached vtest.avi asset")
    ap.add_argument("--out", type=Path, default=None, help="default: the packaged annotations/vtest_persons.json "
                    "(src/faceopt/resources/annotations/ in a checkout)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    config = replace(PRESETS[args.preset], threads=args.threads)
    video = asset_path("vtest.avi") if args.video is None else args.video
    boxes, stats = make_vtest_pseudo_labels(video, config=config)
    out = save_annotations(args.out or default_annotation_path(), boxes, annotation_header(video, config, stats))
    print(f"{stats.boxes} boxes on {stats.frames_with_boxes}/{stats.frames} frames "
          f"in {stats.seconds:.0f} s -> {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
