"""Hand-computed checks for faceopt.recognition.metrics."""
from __future__ import annotations

import numpy as np
import pytest

from faceopt.recognition.metrics import (
    accuracy_at_threshold,
    det_curve,
    fnmr_at_fmr,
    rank1_identification,
    tar_at_far,
    threshold_at_fmr,
    verification_accuracy,
)

G = [0.9, 0.8, 0.3]
IMPOSTOR = [0.1, 0.2, 0.85, 0.4]


def test_fnmr_one_impostor_allowed() -> None:
    # fmr 0.25 of M=4 -> k=1 impostor may pass (0.85); T just above 0.4
    assert threshold_at_fmr(IMPOSTOR, 0.25) == np.nextafter(0.4, np.inf)
    assert fnmr_at_fmr(G, IMPOSTOR, 0.25) == pytest.approx(1 / 3)  # 0.3 rejected
    assert tar_at_far(G, IMPOSTOR, 0.25) == pytest.approx(2 / 3)


def test_fnmr_no_impostor_allowed() -> None:
    # fmr 0.2 -> k=floor(0.8)=0: T just above 0.85, only 0.9 accepted
    assert threshold_at_fmr(IMPOSTOR, 0.2) == np.nextafter(0.85, np.inf)
    assert fnmr_at_fmr(G, IMPOSTOR, 0.2) == pytest.approx(2 / 3)


def test_fmr_one_accepts_everything() -> None:
    assert threshold_at_fmr(IMPOSTOR, 1.0) == -np.inf
    assert fnmr_at_fmr(G, IMPOSTOR, 1.0) == 0.0


def test_ties_at_threshold_are_rejected() -> None:
    # two impostors tied at 0.5, k=1: T must exceed 0.5, genuine 0.5 rejected
    imp = [0.5, 0.5, 0.1, 0.0]
    assert fnmr_at_fmr([0.5, 0.6], imp, 0.25) == pytest.approx(0.5)
    # genuine exactly equal to T is accepted (H(0) = 1)
    t = threshold_at_fmr(imp, 0.25)
    assert fnmr_at_fmr([t], imp, 0.25) == 0.0


def test_float_rounding_of_k() -> None:
    imp = np.arange(100) / 100.0  # 0.29*100 = 28.999999999999996 -> still k=29
    assert threshold_at_fmr(imp, 0.29) == np.nextafter(0.70, np.inf)


def test_perfect_separation_zero_fnmr() -> None:
    assert fnmr_at_fmr([0.7, 0.8, 0.95], [0.1, 0.2, 0.3], 1e-3) == 0.0


@pytest.mark.parametrize(
    "g, i, r",
    [([], [0.1], 0.1), ([0.1], [], 0.1), ([np.nan], [0.1], 0.1), ([0.1], [np.nan], 0.1),
     ([0.1], [0.2], 0.0), ([0.1], [0.2], 1.5), ([0.1], [0.2], -0.1), ([0.1], [0.2], np.nan)],
)
def test_invalid_inputs(g: list, i: list, r: float) -> None:
    with pytest.raises(ValueError):
        fnmr_at_fmr(g, i, r)


def test_det_curve() -> None:
    fmr, fnmr, thr = det_curve(G, IMPOSTOR)
    np.testing.assert_allclose(thr, [0.1, 0.2, 0.3, 0.4, 0.8, 0.85, 0.9])
    np.testing.assert_allclose(fmr, [1, 0.75, 0.5, 0.5, 0.25, 0.25, 0])
    np.testing.assert_allclose(fnmr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_accuracy_at_threshold() -> None:
    s = [0.9, 0.5, 0.4, 0.1]
    y = [True, True, False, False]
    assert accuracy_at_threshold(s, y, 0.5) == 1.0
    assert accuracy_at_threshold(s, y, 0.6) == 0.75


def test_verification_perfect() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.5
    s = np.where(y, 0.6 + 0.3 * rng.random(200), 0.4 * rng.random(200))
    mean, std = verification_accuracy(s, y)
    assert mean == 1.0 and std == 0.0


def test_verification_threshold_from_training_folds() -> None:
    # folds of 2 (same, diff). Folds 0-8: (0.8, 0.2); fold 9: (0.3, 0.1).
    # Testing fold 9, train data {0.2, 0.8} -> T = 0.5 -> 0.3 rejected: 50%.
    # (Choosing on fold 9 itself would give 100%.) Other folds: T = 0.25 -> 100%.
    s = [0.8, 0.2] * 9 + [0.3, 0.1]
    y = [True, False] * 10
    mean, std = verification_accuracy(s, y, folds=10)
    assert mean == pytest.approx(0.95)
    assert std == pytest.approx(0.15)


def test_verification_uneven_folds_like_kfold() -> None:
    # 11 pairs, 10 folds: first fold has 2 pairs (indices 0, 1), as sklearn KFold
    s = [0.3, 0.1] + [0.8, 0.2] * 4 + [0.8]
    y = [True, False] + [True, False] * 4 + [True]
    mean, _ = verification_accuracy(s, y, folds=10)
    # fold 0 -> trained T=0.5 -> 1/2 correct; others perfect with T=0.25
    assert mean == pytest.approx((0.5 + 9) / 10)


def test_verification_bad_folds() -> None:
    with pytest.raises(ValueError):
        verification_accuracy([0.1, 0.2], [True, False], folds=10)


def test_rank1_identification_with_distractors() -> None:
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.71]])
    glabels = [0, 1, -1]
    probes = np.array([[2.0, 0.1], [0.1, 3.0], [0.6, 0.8]])
    plabels = [0, 1, 1]  # third probe is closest to the distractor -> miss
    assert rank1_identification(probes, plabels, gallery, glabels) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        rank1_identification(probes, [0, 1, -1], gallery, glabels)
