"""Detection quality with the maintained COCO evaluator (pycocotools).

One class, boxes in pixels as ``x1, y1, x2, y2``. The chapters report AP at a
single IoU threshold (0.5 in the thesis), computed exactly as COCO does it:
greedy matching by score, 101-point interpolated precision.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Sequence

import numpy as np

from faceopt.stats import bootstrap_stderr

Boxes = np.ndarray  # float[N, 4], x1, y1, x2, y2 in pixels


def _as_boxes(boxes, where: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: boxes contain NaN or infinity")
    if (arr[:, 2] < arr[:, 0]).any() or (arr[:, 3] < arr[:, 1]).any():
        raise ValueError(f"{where}: boxes must be x1, y1, x2, y2 with x2 >= x1 and y2 >= y1")
    return arr


def mean_average_precision(
    pred: Sequence[tuple[Boxes, np.ndarray]],
    gt: Sequence[Boxes],
    iou: float = 0.5,
    *,
    max_detections: int = 100,
) -> float:
    """COCO-style average precision of one class at IoU threshold ``iou``.

    ``pred``: per frame, (boxes float[N,4], scores float[N]); ``gt``: per frame, boxes
    float[M,4]. Frames with no ground truth count: their detections are false positives.
    Raises ValueError when the lists differ in length or no frame has ground truth.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(pred) != len(gt):
        raise ValueError(f"pred has {len(pred)} frames but gt has {len(gt)}")
    if not 0.0 < iou < 1.0:
        raise ValueError(f"iou must be in (0, 1), got {iou}")
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    detections: list[dict[str, Any]] = []
    for frame, ((boxes, scores), truth) in enumerate(zip(pred, gt)):
        images.append({"id": frame, "width": 1, "height": 1})
        for b in _as_boxes(truth, f"gt[{frame}]"):
            w, h = b[2] - b[0], b[3] - b[1]
            annotations.append({"id": len(annotations) + 1, "image_id": frame, "category_id": 1,
                                "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0})
        boxes = _as_boxes(boxes, f"pred[{frame}]")
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"pred[{frame}]: {len(boxes)} boxes but {len(scores)} scores")
        for b, s in zip(boxes, scores):
            detections.append({"image_id": frame, "category_id": 1,
                               "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": float(s)})
    if not annotations:
        raise ValueError("no ground-truth boxes in any frame: average precision is undefined")
    if not detections:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "object"}]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.iouThrs = np.array([iou])
        ev.params.maxDets = [max_detections]
        ev.params.areaRng = [[0.0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, 0, 0, 0]  # [iou, recall, class, area, maxdets]
    valid = precision[precision > -1]
    return float(valid.mean()) if len(valid) else 0.0


def map_difference_stderr(pred_a: Sequence[tuple[Boxes, np.ndarray]], pred_b: Sequence[tuple[Boxes, np.ndarray]],
                          gt: Sequence[Boxes], *, iou: float = 0.5, resamples: int = 200, seed: int = 0) -> float:
    """Bootstrap standard error (over frames) of mAP(``pred_a``) - mAP(``pred_b``) on the same frames."""

    if not (len(pred_a) == len(pred_b) == len(gt)):
        raise ValueError(f"pred_a, pred_b and gt must cover the same frames ({len(pred_a)}, {len(pred_b)}, {len(gt)})")

    def difference(idx: np.ndarray) -> float:
        g = [gt[i] for i in idx]
        return (mean_average_precision([pred_a[i] for i in idx], g, iou)
                - mean_average_precision([pred_b[i] for i in idx], g, iou))

    return bootstrap_stderr(difference, len(gt), resamples=resamples, seed=seed)
