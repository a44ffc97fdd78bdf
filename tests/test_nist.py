"""Hand-computed checks for faceopt.recognition.nist (thesis Chapter 4: NIST 1:1, 1:N and the door phone)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import det_curve as sk_det_curve  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from faceopt.recognition.metrics import fnmr_at_fmr  # noqa: E402
from faceopt.recognition.nist import (  # noqa: E402
    det_points,
    det_summary,
    doorphone_tar_at_far,
    doorphone_visit_scores,
    fmr_fnmr_at_threshold,
    fnir_at_fpir,
    fnir_fpir_at_threshold,
    fnmr_at_fmr_with_ci,
    identification_scores,
    plot_det,
    plot_det_summaries,
)

GENUINE = [0.9, 0.8, 0.3]
IMPOSTOR = [0.1, 0.2, 0.85, 0.4]  # descending: 0.85, 0.4, 0.2, 0.1
ABOVE_04 = float(np.nextafter(0.4, np.inf))  # one ulp above 0.4
ABOVE_06 = float(np.nextafter(0.6, np.inf))


# --------------------------------------------------------------------------- 1:1


def test_rates_at_threshold_accept_score_equal_to_threshold() -> None:
    # T = 0.4: impostors >= 0.4 are 0.85, 0.4 -> FMR 2/4; genuine >= 0.4 are 0.9, 0.8 -> FNMR 1/3
    assert fmr_fnmr_at_threshold(GENUINE, IMPOSTOR, 0.4) == pytest.approx((0.5, 1 / 3))
    # T = 0.8: impostor 0.85 -> FMR 1/4; genuine 0.9 and 0.8 (tie, accepted) -> FNMR 1/3
    assert fmr_fnmr_at_threshold(GENUINE, IMPOSTOR, 0.8) == pytest.approx((0.25, 1 / 3))
    # T = one ulp above 0.8: the genuine 0.8 is now rejected -> FNMR 2/3
    assert fmr_fnmr_at_threshold(GENUINE, IMPOSTOR, float(np.nextafter(0.8, np.inf))) == pytest.approx((0.25, 2 / 3))


def test_fnmr_point_value_and_threshold() -> None:
    # FMR 1/4 with M = 4: k = 1 impostor (0.85) may pass, T is one ulp above the 2nd largest, 0.4.
    # Genuine 0.3 is rejected -> FNMR 1/3; observed FMR = 1/4.
    r = fnmr_at_fmr_with_ci(GENUINE, IMPOSTOR, 0.25, resamples=50)
    assert r["threshold"] == ABOVE_04
    assert r["fnmr"] == pytest.approx(1 / 3)
    assert r["fmr"] == pytest.approx(0.25)
    assert (r["genuine"], r["impostor"], r["resamples"]) == (3, 4, 50)


def test_fnmr_ties_at_threshold() -> None:
    # Genuine 0.4 equals the impostor just below T -> rejected; genuine exactly at T (0.4 + 1 ulp) -> accepted.
    r = fnmr_at_fmr_with_ci([0.4, ABOVE_04], IMPOSTOR, 0.25, resamples=10)
    assert r["fnmr"] == pytest.approx(0.5)
    # Tied impostors: [0.7, 0.4, 0.4, 0.1] at FMR 0.5 allows k = 2, but accepting one 0.4 accepts both
    # (3/4 > 0.5), so T is above 0.4 and only 0.7 passes: observed FMR 1/4.
    r = fnmr_at_fmr_with_ci([0.5, 0.45, 0.4], [0.4, 0.4, 0.7, 0.1], 0.5, resamples=10)
    assert r["threshold"] == ABOVE_04
    assert r["fmr"] == pytest.approx(0.25)
    assert r["fnmr"] == pytest.approx(1 / 3)  # 0.4 rejected


def test_fmr_below_one_over_m_is_refused() -> None:
    # M = 4: 1/M = 0.25. FMR 0.2 needs ceil(1/0.2) = 5 impostor scores, FMR 1e-6 needs 1,000,000.
    with pytest.raises(ValueError, match=r"needs at least 5 impostor scores"):
        fnmr_at_fmr_with_ci(GENUINE, IMPOSTOR, 0.2)
    with pytest.raises(ValueError, match=r"needs at least 1000000 impostor scores"):
        fnmr_at_fmr_with_ci(GENUINE, IMPOSTOR, 1e-6)
    with pytest.raises(ValueError, match=r"fmr must lie in \(0, 1\]"):
        fnmr_at_fmr_with_ci(GENUINE, IMPOSTOR, 0.0)


def test_bad_bootstrap_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="resamples"):
        fnmr_at_fmr_with_ci(GENUINE, IMPOSTOR, 0.25, resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        fnmr_at_fmr_with_ci(GENUINE, IMPOSTOR, 0.25, confidence=1.0)


def _scores(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.6, 0.12, 200), rng.normal(0.2, 0.1, 400)


def test_bootstrap_interval_contains_point_and_is_deterministic() -> None:
    u, v = _scores()
    a = fnmr_at_fmr_with_ci(u, v, 0.01, resamples=300, seed=7)
    b = fnmr_at_fmr_with_ci(u, v, 0.01, resamples=300, seed=7)
    c = fnmr_at_fmr_with_ci(u, v, 0.01, resamples=300, seed=8)
    assert a == b
    assert (a["ci_low"], a["ci_high"]) != (c["ci_low"], c["ci_high"])
    assert a["fnmr"] == pytest.approx(fnmr_at_fmr(u, v, 0.01))
    assert 0.0 <= a["ci_low"] <= a["fnmr"] <= a["ci_high"] <= 1.0
    assert a["ci_low"] < a["ci_high"]
    narrow = fnmr_at_fmr_with_ci(u, v, 0.01, resamples=300, seed=7, confidence=0.5)
    assert a["ci_low"] <= narrow["ci_low"] <= narrow["ci_high"] <= a["ci_high"]


def test_bootstrap_equals_resampling_by_definition() -> None:
    # The fast resampling must equal fnmr_at_fmr on each resample drawn as documented.
    u, v = _scores(2)
    u, v = np.round(u, 2), np.round(v, 2)  # many ties
    r = fnmr_at_fmr_with_ci(u, v, 0.05, resamples=200, seed=3, confidence=0.9)
    rng = np.random.default_rng(3)
    ref = []
    for _ in range(200):
        gi = rng.integers(0, u.size, size=u.size)
        vi = rng.integers(0, v.size, size=v.size)
        ref.append(fnmr_at_fmr(u[gi], v[vi], 0.05))
    low, high = np.quantile(ref, [0.05, 0.95])
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((low, high), abs=1e-12)


def test_bootstrap_of_separated_scores_is_zero() -> None:
    # All genuine above all impostors: every resample has FNMR 0.
    r = fnmr_at_fmr_with_ci([0.9, 0.95, 0.99], [0.1, 0.2, 0.3, 0.4], 0.25, resamples=100)
    assert (r["fnmr"], r["ci_low"], r["ci_high"]) == (0.0, 0.0, 0.0)


# --------------------------------------------------------------------------- DET and scikit-learn


def test_det_points_by_hand() -> None:
    # distinct scores 0.1 0.2 0.3 0.4 0.8 0.85 0.9; at T: FMR = #imp >= T / 4, FNMR = #gen < T / 3
    fmr, fnmr, thr = det_points(GENUINE, IMPOSTOR)
    np.testing.assert_allclose(thr, [0.1, 0.2, 0.3, 0.4, 0.8, 0.85, 0.9])
    np.testing.assert_allclose(fmr, [4 / 4, 3 / 4, 2 / 4, 2 / 4, 1 / 4, 1 / 4, 0])
    np.testing.assert_allclose(fnmr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])


@pytest.mark.parametrize("decimals", [None, 2])
def test_det_points_agree_with_sklearn(decimals: int | None) -> None:
    u, v = _scores(4)
    if decimals is not None:
        u, v = np.round(u, decimals), np.round(v, decimals)  # ties across and within classes
    fmr, fnmr, thr = det_points(u, v)
    y = np.r_[np.ones(u.size), np.zeros(v.size)]  # genuine = positive class
    s = np.r_[u, v]
    sk_fpr, sk_fnr, sk_thr = sk_det_curve(y, s)
    finite = np.isfinite(sk_thr)
    idx = np.searchsorted(thr, sk_thr[finite])
    np.testing.assert_array_equal(thr[idx], sk_thr[finite])
    np.testing.assert_allclose(fmr[idx], sk_fpr[finite], atol=1e-12)
    np.testing.assert_allclose(fnmr[idx], sk_fnr[finite], atol=1e-12)
    roc_fpr, roc_tpr, roc_thr = roc_curve(y, s, drop_intermediate=False)
    finite = np.isfinite(roc_thr)
    idx = np.searchsorted(thr, roc_thr[finite])
    np.testing.assert_array_equal(thr[idx], roc_thr[finite])
    np.testing.assert_allclose(fmr[idx], roc_fpr[finite], atol=1e-12)
    np.testing.assert_allclose(1.0 - fnmr[idx], roc_tpr[finite], atol=1e-12)
    assert idx.size == thr.size  # roc_curve keeps every distinct score


def test_det_summary_by_hand() -> None:
    # M = 4 impostors: targets 1/4 .. 1 on a log grid; at FMR <= 1/4 only 0.85 is accepted (T just above 0.4),
    # genuine 0.3 is missed: FNMR 1/3; at FMR <= 1/2 T is just above 0.2 and every genuine passes
    d = det_summary(GENUINE, IMPOSTOR, points=3)
    np.testing.assert_allclose(d["fmr"], [0.25, 0.5, 1.0])
    np.testing.assert_allclose(d["fnmr"], [1 / 3, 0.0, 0.0])


def test_det_summary_points_lie_on_the_det_curve() -> None:
    u, v = _scores(5)
    d = det_summary(u, v, points=25)
    for target, miss in zip(d["fmr"], d["fnmr"]):
        assert miss == pytest.approx(fnmr_at_fmr(u, v, target))
    assert d["fmr"][0] == pytest.approx(1 / v.size) and d["fmr"][-1] == 1.0
    assert np.all(np.diff(d["fnmr"]) <= 0)  # FNMR falls as the allowed FMR grows
    with pytest.raises(ValueError, match="points"):
        det_summary(u, v, points=1)


# --------------------------------------------------------------------------- 1:N

# Gallery: residents 1, 2 and two distractors (-1). Probes: 1 and 2 are mated, 9 is not enrolled.
S = [[0.8, 0.1, 0.3, 0.2],  # probe 1: mate 0.8 > best non-mate 0.3 -> rank 1
     [0.2, 0.5, 0.6, 0.1],  # probe 2: mate 0.5 < distractor 0.6 -> rank-1 miss
     [0.4, 0.3, 0.7, 0.2]]  # probe 9: non-mated, top score 0.7
PROBES = [1, 2, 9]
GALLERY = [1, 2, -1, -1]


def test_identification_scores_split_3x4() -> None:
    split = identification_scores(S, PROBES, GALLERY)
    np.testing.assert_allclose(split.mated_scores, [0.8, 0.5])
    np.testing.assert_array_equal(split.mated_at_rank1, [True, False])
    np.testing.assert_allclose(split.nonmated_top_scores, [0.7])


def test_fnir_fpir_at_threshold_3x4() -> None:
    split = identification_scores(S, PROBES, GALLERY)
    # T = 0.7: probe 1 found (rank 1, 0.8 >= 0.7), probe 2 missed -> FNIR 1/2; 0.7 >= 0.7 (tie) -> FPIR 1
    assert fnir_fpir_at_threshold(*split, threshold=0.7) == pytest.approx((0.5, 1.0))
    # T = 0.75: FNIR 1/2, FPIR 0. T = 0.85: probe 1 below T too -> FNIR 1.
    assert fnir_fpir_at_threshold(*split, threshold=0.75) == pytest.approx((0.5, 0.0))
    assert fnir_fpir_at_threshold(*split, threshold=0.85) == pytest.approx((1.0, 0.0))
    # FPIR 1 with one non-mated search: T = -inf, only the rank-1 miss remains -> FNIR 1/2
    r = fnir_at_fpir(*split, fpir=1.0)
    assert (r["fnir"], r["fpir"], r["threshold"]) == (0.5, 1.0, -np.inf)
    assert (r["mated"], r["nonmated"], r["rank1_misses"]) == (2, 1, 1)
    with pytest.raises(ValueError, match=r"needs at least 2 non-mated searches"):
        fnir_at_fpir(*split, fpir=0.5)


def test_rank_ties_distractors_and_unknown_probes() -> None:
    scores = [[0.6, 0.6, 0.1],  # probe 1: mate 0.6 ties resident 2 -> not rank 1
              [0.2, 0.7, 0.9],  # probe 2: mates in columns 1 and 3 (two photos), best 0.9 > 0.2 -> rank 1
              [0.3, 0.4, 0.5]]  # probe -1 (unknown visitor): no mate, even though distractors are labelled -1
    split = identification_scores(scores, [1, 2, -1], [1, 2, 2])
    np.testing.assert_allclose(split.mated_scores, [0.6, 0.9])
    np.testing.assert_array_equal(split.mated_at_rank1, [False, True])
    np.testing.assert_allclose(split.nonmated_top_scores, [0.5])
    split = identification_scores([[0.9, 0.2]], [-1], [-1, 3])
    assert split.mated_scores.size == 0
    np.testing.assert_allclose(split.nonmated_top_scores, [0.9])
    split = identification_scores([[0.9, 0.2]], ["bob"], ["bob", "ann"], distractor_label="?")
    np.testing.assert_array_equal(split.mated_at_rank1, [True])


def test_fnir_at_fpir_chooses_threshold_from_nonmated_tops() -> None:
    mated = [0.8, 0.65, 0.55, 0.9]
    rank1 = [True, True, True, False]
    nonmated = [0.7, 0.3, 0.5, 0.6]  # descending 0.7, 0.6, 0.5, 0.3
    # FPIR 1/4: k = 1, T one ulp above 0.6: found 0.8, 0.65; missed 0.55 (score) and 0.9 (rank) -> FNIR 2/4
    r = fnir_at_fpir(mated, rank1, nonmated, 0.25)
    assert (r["threshold"], r["fnir"], r["fpir"]) == (ABOVE_06, 0.5, 0.25)
    # FPIR 1/2: k = 2, T one ulp above 0.5: 0.55 found now -> FNIR 1/4
    r = fnir_at_fpir(mated, rank1, nonmated, 0.5)
    assert (r["threshold"], r["fnir"], r["fpir"]) == (float(np.nextafter(0.5, np.inf)), 0.25, 0.5)
    with pytest.raises(ValueError, match=r"fpir=0.2 is below 1/4.*needs at least 5 non-mated searches"):
        fnir_at_fpir(mated, rank1, nonmated, 0.2)


def test_identification_input_errors() -> None:
    with pytest.raises(ValueError, match="probe_labels has 2 labels but scores has 3"):
        identification_scores(S, [1, 2], GALLERY)
    with pytest.raises(ValueError, match="2-D"):
        identification_scores([0.1, 0.2], [1, 2], [1])
    with pytest.raises(ValueError, match="no non-mated searches"):
        fnir_at_fpir([0.5], [True], [], 0.5)
    with pytest.raises(ValueError, match="differ in length"):
        fnir_at_fpir([0.5, 0.6], [True], [0.1], 1.0)


# --------------------------------------------------------------------------- door phone

# Gallery of 3 profiles. Negative visits: frames x gallery.
NEGATIVE = [
    [[0.2, 0.5, 0.1],
     [0.3, 0.4, 0.6]],  # max 0.6;  per-profile means 0.25, 0.45, 0.35 -> 0.45
    [[0.7, 0.2, 0.1]],  # max 0.7;  mean 0.7
    [[0.1, 0.2, 0.3],
     [0.2, 0.1, 0.4],
     [0.3, 0.3, 0.2]],  # max 0.4;  per-profile means 0.2, 0.2, 0.3 -> 0.3
]
# Positive visits: frame scores against the resident's own profile.
POSITIVE = [
    [0.5, 0.9],       # max 0.9,  mean 0.7
    [0.6, 0.2],       # max 0.6,  mean 0.4
    [0.3, 0.65, 0.1],  # max 0.65, mean 0.35
    [0.1, 0.2],       # max 0.2,  mean 0.15
]


def test_doorphone_visit_scores() -> None:
    u, v = doorphone_visit_scores(POSITIVE, NEGATIVE)
    np.testing.assert_allclose(u, [0.9, 0.6, 0.65, 0.2])
    np.testing.assert_allclose(v, [0.6, 0.7, 0.4])
    u, v = doorphone_visit_scores(POSITIVE, NEGATIVE, aggregate="mean")
    np.testing.assert_allclose(u, [0.7, 0.4, 0.35, 0.15])
    # per profile first, then the best profile (not the mean of per-frame bests, 0.55 and 1/3)
    np.testing.assert_allclose(v, [0.45, 0.7, 0.3])


def test_doorphone_tar_best_frame() -> None:
    # FAR 1/3 over 3 negative visits: k = 1 (0.7 may pass); T one ulp above 0.6.
    # Positive 0.9 and 0.65 accepted; 0.6 (= the 2nd negative, below T) and 0.2 rejected -> TAR 2/4.
    r = doorphone_tar_at_far(POSITIVE, NEGATIVE, far=1 / 3)
    assert r["threshold"] == ABOVE_06
    assert (r["tar"], r["accepted"], r["far"]) == (0.5, 2, pytest.approx(1 / 3))
    assert (r["positive_visits"], r["negative_visits"], r["aggregate"]) == (4, 3, "max")
    assert (r["ci_low"], r["ci_high"]) == (None, None)
    # FAR 2/3: k = 2, T one ulp above 0.4: 0.9, 0.6, 0.65 accepted -> TAR 3/4
    r = doorphone_tar_at_far(POSITIVE, NEGATIVE, far=2 / 3)
    assert (r["threshold"], r["tar"], r["far"]) == (float(np.nextafter(0.4, np.inf)), 0.75, pytest.approx(2 / 3))


def test_doorphone_tar_mean_frames() -> None:
    # v = 0.45, 0.7, 0.3; FAR 1/3 -> T one ulp above 0.45; u = 0.7, 0.4, 0.35, 0.15 -> only 0.7: TAR 1/4
    r = doorphone_tar_at_far(POSITIVE, NEGATIVE, far=1 / 3, aggregate="mean")
    assert r["threshold"] == float(np.nextafter(0.45, np.inf))
    assert r["tar"] == 0.25


def test_doorphone_accepts_score_equal_to_threshold() -> None:
    r = doorphone_tar_at_far([[ABOVE_06], [0.6]], NEGATIVE, far=1 / 3)
    assert r["tar"] == 0.5  # the visit at exactly T is accepted, the one at 0.6 is not


def test_doorphone_refusals() -> None:
    # 3 negative visits cannot measure FAR 10%: that needs 10 negative visits
    with pytest.raises(ValueError, match=r"needs at least 10 negative visits"):
        doorphone_tar_at_far(POSITIVE, NEGATIVE)
    with pytest.raises(ValueError, match="aggregate must be 'max' or 'mean'"):
        doorphone_tar_at_far(POSITIVE, NEGATIVE, far=1 / 3, aggregate="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative visit 0 must be a non-empty 2-D array"):
        doorphone_tar_at_far(POSITIVE, [[0.1, 0.2]], far=1.0)
    with pytest.raises(ValueError, match="different sizes"):
        doorphone_tar_at_far(POSITIVE, [[[0.1, 0.2]], [[0.1, 0.2, 0.3]]], far=1.0)
    with pytest.raises(ValueError, match="positive visit 1 .*without frames"):
        doorphone_tar_at_far([[0.5], []], NEGATIVE, far=1 / 3)


def test_doorphone_bootstrap_over_visits() -> None:
    rng = np.random.default_rng(5)
    positive = [rng.normal(0.6, 0.15, rng.integers(1, 6)) for _ in range(40)]
    negative = [rng.normal(0.2, 0.1, (rng.integers(1, 6), 12)) for _ in range(60)]
    a = doorphone_tar_at_far(positive, negative, ci=True, resamples=300, seed=1)
    b = doorphone_tar_at_far(positive, negative, ci=True, resamples=300, seed=1)
    assert a == b
    assert a["ci_low"] is not None and a["ci_high"] is not None
    assert 0.0 <= a["ci_low"] <= a["tar"] <= a["ci_high"] <= 1.0
    assert a["ci_low"] < a["ci_high"]
    # TAR is 1 - FNMR of the visit scores: same interval as fnmr_at_fmr_with_ci, mirrored
    u, v = doorphone_visit_scores(positive, negative)
    f = fnmr_at_fmr_with_ci(u, v, 0.10, resamples=300, seed=1)
    assert a["tar"] == pytest.approx(1 - f["fnmr"])
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((1 - f["ci_high"], 1 - f["ci_low"]), abs=1e-12)


# --------------------------------------------------------------------------- plot


def test_plot_det_returns_log_log_figure() -> None:
    u, v = _scores(6)
    fig = plot_det({"student": (u, v), "teacher": (u + 0.05, v)}, at_fmr=[0.01], points={"thesis": (0.01, 0.05)},
                   title="DET")
    try:
        assert isinstance(fig, Figure)
        (ax,) = fig.axes
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        assert "FMR" in ax.get_xlabel() and "FNMR" in ax.get_ylabel()
        legend = ax.get_legend()
        assert legend is not None
        assert [t.get_text() for t in legend.get_texts()] == ["student", "teacher", "thesis"]
        fig.canvas.draw()
    finally:
        plt.close(fig)


def test_plot_det_draws_on_given_axes() -> None:
    fig, (left, right) = plt.subplots(1, 2)
    try:
        assert plot_det({"a": (GENUINE, IMPOSTOR)}, ax=right) is fig
        assert right.get_xscale() == "log" and left.get_xscale() == "linear"
        with pytest.raises(ValueError, match="needs at least 5 impostor scores"):
            plot_det({"a": (GENUINE, IMPOSTOR)}, ax=left, at_fmr=[0.2])
    finally:
        plt.close(fig)


def test_plot_det_summaries_log_log() -> None:
    u, v = _scores(6)
    fig = plot_det_summaries({"student": det_summary(u, v), "teacher": det_summary(u + 0.05, v)},
                             points={"thesis": (0.01, 0.05)}, title="DET")
    try:
        (ax,) = fig.axes
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        legend = ax.get_legend()
        assert legend is not None
        assert [t.get_text() for t in legend.get_texts()] == ["student", "teacher", "thesis"]
        fig.canvas.draw()
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        plot_det_summaries({})
