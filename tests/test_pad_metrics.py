"""ISO/IEC 30107-3 PAD metrics: hand-computed cases, the threshold convention, AUC, protocols and refusals."""
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from faceopt.antispoof.metrics import (
    APCER_TARGETS,
    bpcer_at_apcer,
    bpcer_at_apcer_points,
    det_curve_pad,
    leave_one_out_splits,
    mann_whitney_auc,
    pad_auc,
    pad_metrics,
)

# 4 bona fide, 6 attacks of two types
BONAFIDE = [0.1, 0.3, 0.5, 0.7]
ATTACKS = [0.2, 0.5, 0.9, 0.4, 0.45, 0.8]
TYPES = ["print", "print", "print", "replay", "replay", "replay"]


def test_pad_metrics_by_hand():
    m = pad_metrics(bonafide_scores=BONAFIDE, attack_scores=ATTACKS, attack_types=TYPES, threshold=0.5)
    # print: 0.2 < 0.5 is missed, 0.5 (= threshold) and 0.9 are caught -> 1/3
    # replay: 0.4 and 0.45 are missed, 0.8 caught -> 2/3
    assert m["apcer_per_type"] == pytest.approx({"print": 1 / 3, "replay": 2 / 3})
    assert m["apcer"] == pytest.approx(2 / 3)
    assert m["worst_type"] == "replay"
    # bona fide 0.5 (= threshold) and 0.7 are called attacks -> 2/4
    assert m["bpcer"] == pytest.approx(0.5)
    assert m["acer"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert m["attacks_per_type"] == {"print": 3, "replay": 3}
    assert (m["bonafide"], m["attacks"], m["threshold"]) == (4, 6, 0.5)


def test_score_equal_to_threshold_is_an_attack():
    m = pad_metrics([0.5], [0.5], [1], 0.5)
    assert m["bpcer"] == 1.0 and m["apcer"] == 0.0
    m = pad_metrics([0.5], [0.5], [1], np.nextafter(0.5, 1.0))
    assert m["bpcer"] == 0.0 and m["apcer"] == 1.0


def test_worst_type_tie_takes_the_first_sorted_and_keys_are_python_scalars():
    m = pad_metrics([0.1], [0.2, 0.9, 0.2, 0.9], np.array([7, 7, 3, 3]), 0.5)
    assert m["apcer_per_type"] == {3: 0.5, 7: 0.5}
    assert m["worst_type"] == 3
    assert all(type(k) is int for k in m["apcer_per_type"])


A = [0.30, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 0.99]
B = [0.20, 0.50, 0.55, 0.60, 0.70, 0.80, 0.90, 0.92, 0.94, 0.96]
BF = [0.10, 0.20, 0.45, 0.50, 0.55]


def test_bpcer_at_apcer_by_hand():
    types = ["A"] * 10 + ["B"] * 10
    # target 0.1 lets k = 1 attack of each type through: the 2nd smallest of A is 0.60, of B 0.50 -> T = 0.50
    r = bpcer_at_apcer(BF, A + B, types, 0.1)
    assert r["threshold"] == 0.50
    assert r["apcer_per_type"] == pytest.approx({"A": 0.1, "B": 0.1})
    assert r["apcer"] == pytest.approx(0.1) and r["apcer_target"] == 0.1
    assert r["bpcer"] == pytest.approx(2 / 5)  # 0.50 and 0.55 are called attacks
    assert r["ci_low"] is None and r["ci_high"] is None
    # target 0.2: k = 2, 3rd smallest of A 0.65, of B 0.55 -> T = 0.55, only 0.55 of the bona fide is an attack
    r = bpcer_at_apcer(BF, A + B, types, 0.2)
    assert r["threshold"] == 0.55 and r["bpcer"] == pytest.approx(1 / 5) and r["worst_type"] == "B"
    # target 1: every attack may pass; nothing bona fide is rejected
    r = bpcer_at_apcer(BF, A + B, types, 1.0)
    assert r["threshold"] == math.inf and r["bpcer"] == 0.0 and r["apcer"] == 1.0


def test_bpcer_at_apcer_is_the_least_strict_threshold_meeting_the_target():
    rng = np.random.default_rng(3)
    bona = rng.beta(2, 5, 300).round(2)
    attacks = rng.beta(5, 2, 400).round(2)  # rounded: many ties
    types = rng.integers(0, 4, 400)
    for target in (0.02, 0.05, 0.1, 0.3):
        r = bpcer_at_apcer(bona, attacks, types, target)
        at = pad_metrics(bona, attacks, types, r["threshold"])
        assert at["apcer"] <= target and at["bpcer"] == r["bpcer"]
        above = pad_metrics(bona, attacks, types, np.nextafter(r["threshold"], np.inf))
        assert above["apcer"] > target
        # brute force over every candidate threshold: the lowest BPCER under the constraint
        best = min(pad_metrics(bona, attacks, types, t)["bpcer"] for t in np.unique(np.r_[bona, attacks, 2.0])
                   if pad_metrics(bona, attacks, types, t)["apcer"] <= target)
        assert r["bpcer"] == best


def test_bpcer_at_apcer_refuses_unresolvable_targets():
    types = ["A"] * 10 + ["B"] * 5
    scores = A + B[:5]
    with pytest.raises(ValueError, match=r"below 1/5: attack type 'B' has only 5"):
        bpcer_at_apcer(BF, scores, types, 0.1)
    # 0.2 is resolvable: k = 2 for A (3rd smallest 0.65), k = 1 for B (2nd smallest 0.50) -> T = 0.50
    assert bpcer_at_apcer(BF, scores, types, 0.2)["threshold"] == 0.50
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="apcer_target must lie in"):
            bpcer_at_apcer(BF, scores, types, bad)


def test_bpcer_points_and_bootstrap():
    rng = np.random.default_rng(0)
    bona = rng.beta(2, 5, 200)
    attacks = rng.beta(5, 2, 300)
    types = np.repeat(["photo", "replay", "mask"], 100)
    points = bpcer_at_apcer_points(bona, attacks, types)
    assert tuple(points) == APCER_TARGETS == (0.01, 0.05)
    assert points[0.01]["bpcer"] >= points[0.05]["bpcer"]
    r = bpcer_at_apcer(bona, attacks, types, 0.05, ci=True, resamples=200, seed=1)
    assert r == bpcer_at_apcer(bona, attacks, types, 0.05, ci=True, resamples=200, seed=1)
    assert r["ci_low"] is not None and r["ci_high"] is not None
    assert 0.0 <= r["ci_low"] <= r["bpcer"] <= r["ci_high"] <= 1.0
    assert (r["confidence"], r["resamples"]) == (0.95, 200)
    with pytest.raises(ValueError, match="below 1/100"):
        bpcer_at_apcer_points(bona, attacks, types, targets=(0.005,))
    with pytest.raises(ValueError, match="resamples"):
        bpcer_at_apcer(bona, attacks, types, 0.05, ci=True, resamples=0)


def test_auc_known_value_and_agreement_with_sklearn():
    # pairs (attack, bona fide): (0.4, 0.1) win, (0.4, 0.4) tie = 1/2, (0.8, 0.1) win, (0.8, 0.4) win -> 3.5 / 4
    assert mann_whitney_auc([0.1, 0.4], [0.4, 0.8]) == 0.875
    assert pad_auc([0.1, 0.4], [0.4, 0.8]) == pytest.approx(0.875)
    assert pad_auc([0.1, 0.2], [0.8, 0.9]) == 1.0 and mann_whitney_auc([0.8, 0.9], [0.1, 0.2]) == 0.0
    rng = np.random.default_rng(7)
    for _ in range(5):
        b = rng.beta(2, 3, rng.integers(1, 200)).round(1)  # coarse: many ties
        a = rng.beta(3, 2, rng.integers(1, 200)).round(1)
        y = np.r_[np.zeros(b.size), np.ones(a.size)]
        expected = roc_auc_score(y, np.r_[b, a])
        assert pad_auc(b, a) == pytest.approx(expected, abs=1e-12)
        assert mann_whitney_auc(b, a) == pytest.approx(expected, abs=1e-12)


def test_det_curve_pad():
    apcer, bpcer, thr = det_curve_pad(BONAFIDE, ATTACKS, TYPES)
    assert np.all(np.diff(thr) > 0) and np.all(np.diff(apcer) >= 0) and np.all(np.diff(bpcer) <= 0)
    assert (apcer[0], bpcer[0]) == (0.0, 1.0) and (apcer[-1], bpcer[-1]) == (1.0, 0.0)
    for a, b, t in zip(apcer, bpcer, thr):
        m = pad_metrics(BONAFIDE, ATTACKS, TYPES, t)
        assert (a, b) == pytest.approx((m["apcer"], m["bpcer"]))


def test_leave_one_out_splits():
    types = [0, 3, 1, 0, 3, 2]
    splits = list(leave_one_out_splits(types))
    assert [t for t, _ in splits] == [1, 2, 3]
    masks = {t: m.tolist() for t, m in splits}
    assert masks[1] == [True, True, False, True, True, True]
    assert masks[3] == [True, False, True, True, False, True]
    named = dict(leave_one_out_splits(np.array(["live", "print", "replay", "print"]), bonafide="live"))
    assert named["print"].tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="at least two attack types"):
        leave_one_out_splits([0, 0, 1, 1])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        leave_one_out_splits([])


@pytest.mark.parametrize("bona, attacks, types, match", [
    ([], [0.5], [1], "bonafide_scores is empty"),
    ([0.5], [], [], "attack_scores is empty"),
    ([0.5, float("nan")], [0.5], [1], "NaN or infinite"),
    ([0.5], [math.inf], [1], "NaN or infinite"),
    ([0.5], [1.5], [1], r"attack probabilities in \[0, 1\]"),
    ([-2.0], [0.5], [1], r"attack probabilities in \[0, 1\]"),
    ([[0.2, 0.8]], [0.5], [1], "must be 1-D"),
    (["x"], [0.5], [1], "must be numbers"),
    ([0.5], [0.5, 0.6], [1], "one type per attack score"),
    ([0.5], [0.5], [float("nan")], "attack_types holds NaN"),
    ([0.5], [0.5, 0.6], np.array([1, "a"], dtype=object), "cannot be sorted"),
])
def test_bad_input(bona, attacks, types, match):
    with pytest.raises(ValueError, match=match):
        pad_metrics(bona, attacks, types, 0.5)


def test_bad_threshold():
    with pytest.raises(ValueError, match="threshold is NaN"):
        pad_metrics([0.1], [0.9], [1], float("nan"))
