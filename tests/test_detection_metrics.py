"""COCO-style AP@IoU on small cases computed by hand."""
from __future__ import annotations

import numpy as np
import pytest

from faceopt.detection.metrics import mean_average_precision

BOX = [10.0, 10.0, 50.0, 50.0]


def _ap101(precisions_at_recall):
    """101-point interpolated AP from a list of (recall, precision) points of a ranked list."""
    recall = np.array([r for r, _ in precisions_at_recall])
    precision = np.array([p for _, p in precisions_at_recall])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    total = 0.0
    for t in np.linspace(0, 1, 101):
        idx = np.searchsorted(recall, t, side="left")
        total += precision[idx] if idx < len(precision) else 0.0
    return total / 101


def test_perfect_detections_give_one():
    gt = [np.array([BOX]), np.array([BOX, [60, 60, 90, 90]])]
    pred = [(np.array([BOX]), np.array([0.9])), (np.array([BOX, [60, 60, 90, 90]]), np.array([0.8, 0.7]))]
    assert mean_average_precision(pred, gt) == pytest.approx(1.0)


def test_ranked_false_positive_matches_hand_computation():
    # two frames, one object each; ranked detections: TP(0.9), FP(0.8), TP(0.7)
    gt = [np.array([BOX]), np.array([BOX])]
    pred = [
        (np.array([BOX, [200, 200, 240, 240]]), np.array([0.9, 0.8])),
        (np.array([BOX]), np.array([0.7])),
    ]
    expected = _ap101([(0.5, 1.0), (0.5, 0.5), (1.0, 2 / 3)])
    assert mean_average_precision(pred, gt) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)


def test_iou_threshold_decides_a_match():
    # a box shifted by 10 px: IoU = 30*40 / (2*40*40 - 30*40) = 1200 / 2000 = 0.6
    shifted = [20.0, 10.0, 60.0, 50.0]
    gt = [np.array([BOX])]
    pred = [(np.array([shifted]), np.array([0.9]))]
    assert mean_average_precision(pred, gt, iou=0.5) == pytest.approx(1.0)
    assert mean_average_precision(pred, gt, iou=0.7) == pytest.approx(0.0)


def test_detections_on_empty_frames_are_false_positives():
    gt = [np.array([BOX]), np.zeros((0, 4))]
    pred = [(np.array([BOX]), np.array([0.5])), (np.array([BOX]), np.array([0.9]))]
    # ranked: FP(0.9), TP(0.5): precision 1/2 at recall 1
    assert mean_average_precision(pred, gt) == pytest.approx(0.5)


def test_no_predictions_and_bad_input():
    gt = [np.array([BOX])]
    assert mean_average_precision([(np.zeros((0, 4)), np.zeros(0))], gt) == 0.0
    with pytest.raises(ValueError, match="frames"):
        mean_average_precision([], gt)
    with pytest.raises(ValueError, match="no ground-truth"):
        mean_average_precision([(np.array([BOX]), np.array([1.0]))], [np.zeros((0, 4))])
    with pytest.raises(ValueError, match="x2 >= x1"):
        mean_average_precision([(np.array([[50, 50, 10, 10]]), np.array([1.0]))], gt)
    with pytest.raises(ValueError, match="scores"):
        mean_average_precision([(np.array([BOX]), np.array([1.0, 0.5]))], gt)
