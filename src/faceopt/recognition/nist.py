"""NIST-style verification (1:1) and identification (1:N) metrics, and the door-phone protocol of thesis Chapter 4.

Conventions are those of :mod:`faceopt.recognition.metrics`: scores are similarities and a
comparison is *accepted* when ``score >= T`` (a score equal to ``T`` is accepted). Thresholds
for a target false-match rate come from :func:`~faceopt.recognition.metrics.threshold_at_fmr`:
the smallest ``T`` whose observed rate does not exceed the target, i.e. ``T`` lies one ulp
above the ``(k+1)``-th largest impostor score, ``k = floor(target * M)``.

1:1 verification (NIST FRVT 1:1), genuine scores ``u`` (N), impostor scores ``v`` (M)::

    FMR(T)  = (1/M) * #{j : v_j >= T}
    FNMR(T) = 1 - (1/N) * #{i : u_i >= T}

1:N identification with distractors (NIST FRVT 1:N, rank 1). A *mated* search has its
identity enrolled in the gallery, a *non-mated* one has not::

    FNIR(T) = (1/N_mated) * #{mated searches whose mate is not returned at rank 1 with score >= T}
    FPIR(T) = (1/N_non-mated) * #{non-mated searches whose top gallery score is >= T}

A target rate below ``1/M`` (``M`` = number of impostor scores, non-mated searches or negative
visits) cannot be measured: the observed rate can only be 0 or at least ``1/M``. The functions
of this module refuse such a target instead of silently reporting the FNMR at FMR = 0.
"""
from __future__ import annotations

import itertools
import math
from typing import Literal, Mapping, NamedTuple, Sequence, TypedDict

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from faceopt.recognition.metrics import det_curve, threshold_at_fmr
from faceopt.stats import RATE_TOLERANCE, errors_allowed

__all__ = [
    "DoorphoneResult",
    "FnirResult",
    "FnmrResult",
    "IdentificationScores",
    "det_points",
    "det_summary",
    "doorphone_tar_at_far",
    "doorphone_visit_scores",
    "fmr_fnmr_at_threshold",
    "fnir_at_fpir",
    "fnir_fpir_at_threshold",
    "fnmr_at_fmr_with_ci",
    "identification_scores",
    "plot_det",
    "plot_det_summaries",
]


Aggregate = Literal["max", "mean"]


class FnmrResult(TypedDict):
    """Result of :func:`fnmr_at_fmr_with_ci`."""

    fnmr: float  #: FNMR at ``threshold``
    threshold: float  #: smallest threshold whose FMR does not exceed ``fmr_target``
    fmr: float  #: FMR actually observed at ``threshold`` (``<= fmr_target``)
    fmr_target: float
    ci_low: float  #: lower end of the percentile bootstrap interval of the FNMR
    ci_high: float  #: upper end of the percentile bootstrap interval of the FNMR
    confidence: float
    resamples: int
    genuine: int  #: number of genuine scores N
    impostor: int  #: number of impostor scores M


class FnirResult(TypedDict):
    """Result of :func:`fnir_at_fpir`."""

    fnir: float  #: FNIR at ``threshold``
    threshold: float  #: smallest threshold whose FPIR does not exceed ``fpir_target``
    fpir: float  #: FPIR actually observed at ``threshold`` (``<= fpir_target``)
    fpir_target: float
    mated: int  #: number of mated searches
    nonmated: int  #: number of non-mated searches
    rank1_misses: int  #: mated searches whose mate is not at rank 1, whatever the threshold


class DoorphoneResult(TypedDict):
    """Result of :func:`doorphone_tar_at_far`; ``ci_low``/``ci_high`` are ``None`` unless ``ci=True``."""

    tar: float  #: share of positive visits accepted at ``threshold``
    threshold: float  #: smallest threshold whose FAR over the negative visits does not exceed ``far_target``
    far: float  #: FAR actually observed at ``threshold`` (``<= far_target``)
    far_target: float
    accepted: int  #: positive visits accepted
    positive_visits: int
    negative_visits: int
    aggregate: str
    ci_low: float | None
    ci_high: float | None


class IdentificationScores(NamedTuple):
    """1:N search results split by :func:`identification_scores`; ``fnir_at_fpir(*split, fpir=...)`` takes them."""

    mated_scores: NDArray[np.float64]  #: per mated search, the best score of an enrolled mate
    mated_at_rank1: NDArray[np.bool_]  #: per mated search, whether that mate is the rank-1 candidate
    nonmated_top_scores: NDArray[np.float64]  #: per non-mated search, the top score over the whole gallery


# --------------------------------------------------------------------------- input checks
# metrics.py has checks of the same shape; they stay there unchanged because its source keys the cached
# MarginDistillation runs (recognition.experiments.RUN_CODE), and these name the fix in their messages.


def _score_vector(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """``x`` as a flat float array; refuses empty input and NaN."""
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{name} is empty: at least one score is needed")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN: drop or rescore those comparisons")
    return a


def _rate_in_unit_interval(rate: float, name: str) -> float:
    r = float(rate)
    if math.isnan(r) or not 0.0 < r <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {rate!r}")
    return r


def _require_resolvable_rate(rate: float, count: int, name: str, what: str) -> float:
    """Refuse a target rate below ``1/count``: with ``count`` negatives it cannot be observed."""
    r = _rate_in_unit_interval(rate, name)
    if errors_allowed(r, count) < 1:
        needed = math.ceil((1.0 - RATE_TOLERANCE) / r)
        raise ValueError(
            f"{name}={r:g} is below 1/{count}: with {count} {what} the observed rate is either 0 or at least "
            f"1/{count} = {1.0 / count:.3g}. A target of {r:g} needs at least {needed} {what}; "
            f"collect more or raise {name} to at least {1.0 / count:.3g}."
        )
    return r


def _check_bootstrap(resamples: int, confidence: float) -> None:
    if int(resamples) != resamples or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if math.isnan(confidence) or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), e.g. 0.95, got {confidence!r}")


def _share_at_or_above(scores: NDArray[np.float64], threshold: float) -> float:
    return float(np.count_nonzero(scores >= threshold) / scores.size)


# --------------------------------------------------------------------------- 1:1 verification


def fmr_fnmr_at_threshold(genuine: ArrayLike, impostor: ArrayLike, threshold: float) -> tuple[float, float]:
    """``(FMR(T), FNMR(T))`` at a given threshold ``T``; a score equal to ``T`` is accepted."""
    u = _score_vector(genuine, "genuine")
    v = _score_vector(impostor, "impostor")
    return _share_at_or_above(v, threshold), 1.0 - _share_at_or_above(u, threshold)


def _bootstrap_fnmr(
    u: NDArray[np.float64], v: NDArray[np.float64], fmr: float, resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """FNMR at target ``fmr`` on ``resamples`` bootstrap resamples of ``(u, v)``.

    Each resample draws ``N`` genuine indices and then ``M`` impostor indices uniformly with
    replacement and is evaluated exactly as ``fnmr_at_fmr(u[gi], v[vi], fmr)``. Instead of sorting
    each resample, the ``(k+1)``-th largest resampled impostor score is found through the
    rank of each impostor in ``v`` sorted descending (``np.partition``, O(M) per resample).
    """
    n, m = u.size, v.size
    k = errors_allowed(fmr, m)
    order = np.argsort(-v, kind="stable")
    v_desc = v[order]
    rank_of = np.empty(m, dtype=np.int64)
    rank_of[order] = np.arange(m)
    fnmr = np.empty(resamples, dtype=np.float64)
    for b in range(resamples):
        gi = rng.integers(0, n, size=n)
        vi = rng.integers(0, m, size=m)
        if k >= m:
            threshold = -math.inf
        else:
            threshold = float(np.nextafter(v_desc[np.partition(rank_of[vi], k)[k]], np.inf))
        fnmr[b] = 1.0 - _share_at_or_above(u[gi], threshold)
    return fnmr


def _percentile_interval(samples: NDArray[np.float64], confidence: float) -> tuple[float, float]:
    """Percentile bootstrap interval: the ``(1-c)/2`` and ``(1+c)/2`` quantiles (linear interpolation)."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def fnmr_at_fmr_with_ci(
    genuine: ArrayLike,
    impostor: ArrayLike,
    fmr: float,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> FnmrResult:
    """FNMR at the operating point ``FMR <= fmr`` (NIST FRVT 1:1) with a percentile bootstrap interval.

    The threshold is :func:`~faceopt.recognition.metrics.threshold_at_fmr`; the point value equals
    :func:`~faceopt.recognition.metrics.fnmr_at_fmr`. The interval resamples genuine and impostor
    scores independently with replacement (``np.random.default_rng(seed)``; per resample first the
    genuine indices, then the impostor indices), re-chooses the threshold on every resample and
    takes the ``(1-confidence)/2`` and ``(1+confidence)/2`` quantiles of the resampled FNMRs.

    Raises ``ValueError`` when ``fmr < 1/M``: e.g. FMR 1e-6 needs at least 1,000,000 impostor scores.
    """
    u = _score_vector(genuine, "genuine")
    v = _score_vector(impostor, "impostor")
    target = _require_resolvable_rate(fmr, v.size, "fmr", "impostor scores")
    _check_bootstrap(resamples, confidence)
    threshold = threshold_at_fmr(v, target)
    observed_fmr, fnmr = fmr_fnmr_at_threshold(u, v, threshold)
    samples = _bootstrap_fnmr(u, v, target, int(resamples), np.random.default_rng(seed))
    low, high = _percentile_interval(samples, confidence)
    return FnmrResult(fnmr=fnmr, threshold=threshold, fmr=observed_fmr, fmr_target=target, ci_low=low, ci_high=high,
                      confidence=float(confidence), resamples=int(resamples), genuine=u.size, impostor=v.size)


def det_points(
    genuine: ArrayLike, impostor: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(fmr, fnmr, thresholds)`` of a DET curve, one point per distinct score, thresholds ascending.

    The same points as :func:`~faceopt.recognition.metrics.det_curve`. At every finite threshold
    they agree with ``sklearn.metrics.det_curve(y, s)`` for ``y = 1`` on genuine and ``0`` on
    impostor scores: scikit-learn's ``fpr`` is the FMR and its ``fnr`` the FNMR, as it also
    predicts the positive class for ``score >= threshold``. scikit-learn trims the points before
    the last ``fnr = 0`` and after the first ``fpr = 0`` and may add ``threshold = inf``.
    """
    return det_curve(genuine, impostor)


def det_summary(genuine: ArrayLike, impostor: ArrayLike, points: int = 40) -> dict[str, list[float]]:
    """A DET curve thinned to ``points`` FMR targets spaced evenly in log from ``1/M`` to 1, each with the
    FNMR at ``FMR <= target`` (the operating point a table would report), for storing a curve in a run record.

    Every point is exact, not interpolated: it is ``fmr_fnmr_at_threshold`` at ``threshold_at_fmr(v, target)``.
    """
    v = _score_vector(impostor, "impostor")
    u = _score_vector(genuine, "genuine")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    targets = np.unique(np.logspace(math.log10(1.0 / v.size), 0.0, points))
    fmr, fnmr = [], []
    for target in targets:
        _, miss = fmr_fnmr_at_threshold(u, v, threshold_at_fmr(v, float(target)))
        fmr.append(float(target))
        fnmr.append(float(miss))
    return {"fmr": fmr, "fnmr": fnmr}


# --------------------------------------------------------------------------- 1:N identification


def _score_matrix(scores: ArrayLike) -> NDArray[np.float64]:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or 0 in s.shape:
        raise ValueError(f"scores must be a non-empty 2-D array probes x gallery, got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN: drop or rescore those comparisons")
    return s


def _labels(labels: ArrayLike, count: int, name: str, axis: str) -> NDArray[np.generic]:
    a = np.asarray(labels).ravel()
    if a.size != count:
        raise ValueError(f"{name} has {a.size} labels but scores has {count} {axis}")
    return a


def identification_scores(
    scores: ArrayLike, probe_labels: ArrayLike, gallery_labels: ArrayLike, *, distractor_label: object = -1
) -> IdentificationScores:
    """Split a 1:N score matrix ``[P, G]`` into mated and non-mated search results.

    A gallery entry whose label is ``distractor_label`` is a distractor: it is never anyone's mate
    (not even of a probe that carries the same label). A probe is *mated* when some non-distractor
    gallery entry has its label, else *non-mated*. For a mated probe the mate's score is the best
    score over its mate entries, and the mate is at rank 1 when that score is strictly higher than
    every non-mate score: a tie with a non-mate is a rank-1 miss (the system cannot tell them apart,
    and the result does not depend on the gallery order). For a non-mated probe the result is its
    top score over the whole gallery.
    """
    s = _score_matrix(scores)
    pl = _labels(probe_labels, s.shape[0], "probe_labels", "rows (probes)")
    gl = _labels(gallery_labels, s.shape[1], "gallery_labels", "columns (gallery entries)")
    enrolled = gl != distractor_label
    is_mate = (pl[:, None] == gl[None, :]) & enrolled[None, :]
    mated = is_mate.any(axis=1)
    best_mate = np.where(is_mate, s, -np.inf).max(axis=1)
    best_nonmate = np.where(is_mate, -np.inf, s).max(axis=1)
    return IdentificationScores(mated_scores=best_mate[mated], mated_at_rank1=(best_mate > best_nonmate)[mated],
                                nonmated_top_scores=s[~mated].max(axis=1))


def _mated_results(mated_scores: ArrayLike, mated_at_rank1: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    scores = _score_vector(mated_scores, "mated_scores (no mated searches: FNIR needs probes whose identity is enrolled)")
    rank1 = np.asarray(mated_at_rank1, dtype=bool).ravel()
    if rank1.size != scores.size:
        raise ValueError(f"mated_scores ({scores.size}) and mated_at_rank1 ({rank1.size}) differ in length")
    return scores, rank1


def _nonmated_results(nonmated_top_scores: ArrayLike) -> NDArray[np.float64]:
    return _score_vector(nonmated_top_scores,
                         "nonmated_top_scores (no non-mated searches: FPIR needs probes whose identity is not enrolled)")


def _fnir(scores: NDArray[np.float64], rank1: NDArray[np.bool_], threshold: float) -> float:
    found = rank1 & (scores >= threshold)
    return 1.0 - float(np.count_nonzero(found) / scores.size)


def fnir_fpir_at_threshold(
    mated_scores: ArrayLike, mated_at_rank1: ArrayLike, nonmated_top_scores: ArrayLike, threshold: float
) -> tuple[float, float]:
    """``(FNIR(T), FPIR(T))`` at rank 1 for a given threshold ``T``; a score equal to ``T`` is returned.

    FNIR: share of mated searches whose mate is not at rank 1 or scores below ``T``.
    FPIR: share of non-mated searches whose top score is ``>= T``. Inputs as :class:`IdentificationScores`.
    """
    scores, rank1 = _mated_results(mated_scores, mated_at_rank1)
    top = _nonmated_results(nonmated_top_scores)
    return _fnir(scores, rank1, threshold), _share_at_or_above(top, threshold)


def fnir_at_fpir(
    mated_scores: ArrayLike, mated_at_rank1: ArrayLike, nonmated_top_scores: ArrayLike, fpir: float
) -> FnirResult:
    """Rank-1 FNIR at the smallest threshold whose FPIR does not exceed ``fpir`` (NIST FRVT 1:N).

    The threshold is chosen from the non-mated top scores exactly as
    :func:`~faceopt.recognition.metrics.threshold_at_fmr` chooses it from impostor scores.
    Typical use: ``fnir_at_fpir(*identification_scores(S, probe_labels, gallery_labels), fpir=0.01)``.
    Raises ``ValueError`` when ``fpir`` is below ``1 / (number of non-mated searches)``.
    """
    scores, rank1 = _mated_results(mated_scores, mated_at_rank1)
    top = _nonmated_results(nonmated_top_scores)
    target = _require_resolvable_rate(fpir, top.size, "fpir", "non-mated searches")
    threshold = threshold_at_fmr(top, target)
    return FnirResult(fnir=_fnir(scores, rank1, threshold), threshold=threshold,
                      fpir=_share_at_or_above(top, threshold), fpir_target=target, mated=scores.size,
                      nonmated=top.size, rank1_misses=int(np.count_nonzero(~rank1)))


# --------------------------------------------------------------------------- door phone (thesis Tables 13, 14)


def _aggregate_frames(frame_scores: NDArray[np.float64], aggregate: Aggregate) -> NDArray[np.float64] | np.float64:
    """Aggregate over the frame axis (axis 0): the best frame (``"max"``) or the mean frame score (``"mean"``)."""
    if aggregate == "max":
        return frame_scores.max(axis=0)
    if aggregate == "mean":
        return frame_scores.mean(axis=0)
    raise ValueError(f"aggregate must be 'max' or 'mean', got {aggregate!r}")


def _positive_visit_score(frames: ArrayLike, index: int, aggregate: Aggregate) -> float:
    f = np.asarray(frames, dtype=np.float64)
    if f.ndim > 1:
        raise ValueError(f"positive visit {index} must be 1-D (one score per frame against the resident's own "
                         f"profile), got shape {f.shape}")
    f = _score_vector(f, f"positive visit {index} (a visit without frames: drop it or give it the score -inf)")
    return float(_aggregate_frames(f, aggregate))


def _negative_visit_score(frames: ArrayLike, index: int, aggregate: Aggregate) -> tuple[float, int]:
    f = np.asarray(frames, dtype=np.float64)
    if f.ndim != 2 or 0 in f.shape:
        raise ValueError(f"negative visit {index} must be a non-empty 2-D array frames x gallery, got shape {f.shape}; "
                         "a single frame is shape (1, gallery)")
    if np.isnan(f).any():
        raise ValueError(f"negative visit {index} contains NaN: drop or rescore those frames")
    return float(np.max(_aggregate_frames(f, aggregate))), f.shape[1]


def doorphone_visit_scores(
    positive_visits: Sequence[ArrayLike], negative_visits: Sequence[ArrayLike], *, aggregate: Aggregate = "max"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-visit scores ``(u, v)`` of the door-phone protocol.

    A visit's score against one gallery profile aggregates its frame scores against that profile:
    with ``aggregate="max"`` (default) the best frame counts, with ``"mean"`` the mean over frames.

    * positive visit ``i`` (a resident at the door): frame scores against the resident's OWN
      profile, shape ``(frames,)``; ``u_i`` = their aggregate.
    * negative visit ``j`` (a non-resident): frame scores against every gallery entry (residents'
      lab photos and distractors), shape ``(frames, gallery)``; ``v_j`` = the highest per-profile
      aggregate over the gallery. With ``"max"`` that is the highest score of the visit.
    """
    if len(positive_visits) == 0 or len(negative_visits) == 0:
        raise ValueError(f"need positive and negative visits, got {len(positive_visits)} positive and "
                         f"{len(negative_visits)} negative")
    u = np.array([_positive_visit_score(frames, i, aggregate) for i, frames in enumerate(positive_visits)])
    negatives = [_negative_visit_score(frames, j, aggregate) for j, frames in enumerate(negative_visits)]
    gallery_sizes = sorted({size for _, size in negatives})
    if len(gallery_sizes) > 1:
        raise ValueError(f"negative visits are scored against galleries of different sizes {gallery_sizes}: "
                         "score every negative visit against the same gallery")
    return u.astype(np.float64), np.array([score for score, _ in negatives], dtype=np.float64)


def doorphone_tar_at_far(
    positive_visits: Sequence[ArrayLike],
    negative_visits: Sequence[ArrayLike],
    *,
    far: float = 0.10,
    aggregate: Aggregate = "max",
    ci: bool = False,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> DoorphoneResult:
    """Door-phone TAR at ``FAR <= far`` (thesis Tables 13, 14).

    The gallery holds one lab photo of each resident plus distractors (photos of random people).
    Visit scores come from :func:`doorphone_visit_scores` (a visit's score is its best frame by
    default, ``aggregate="mean"`` averages the frames). The threshold ``T`` is the smallest one
    with FAR = share of negative visits with ``v_j >= T`` not above ``far``; TAR is the share of
    positive visits with ``u_i >= T``. Scores are not checked for rank 1: a resident whose visit
    resembles another profile more than his own still counts as accepted when ``u_i >= T``.

    With ``ci=True`` a percentile bootstrap interval of the TAR is added, resampling positive and
    negative visits independently (as :func:`fnmr_at_fmr_with_ci`, the threshold re-chosen each time).
    Raises ``ValueError`` when ``far`` is below ``1 / (number of negative visits)``.
    """
    u, v = doorphone_visit_scores(positive_visits, negative_visits, aggregate=aggregate)
    target = _require_resolvable_rate(far, v.size, "far", "negative visits")
    threshold = threshold_at_fmr(v, target)
    ci_low: float | None = None
    ci_high: float | None = None
    if ci:
        _check_bootstrap(resamples, confidence)
        samples = 1.0 - _bootstrap_fnmr(u, v, target, int(resamples), np.random.default_rng(seed))
        ci_low, ci_high = _percentile_interval(samples, confidence)
    accepted = int(np.count_nonzero(u >= threshold))
    return DoorphoneResult(tar=accepted / u.size, threshold=threshold, far=_share_at_or_above(v, threshold),
                           far_target=target, accepted=accepted, positive_visits=u.size, negative_visits=v.size,
                           aggregate=aggregate, ci_low=ci_low, ci_high=ci_high)


# --------------------------------------------------------------------------- DET plot


def _operating_point(genuine: ArrayLike, impostor: ArrayLike, fmr: float) -> float:
    """FNMR at ``FMR <= fmr``, refusing a target below ``1/M``."""
    v = _score_vector(impostor, "impostor")
    target = _require_resolvable_rate(fmr, v.size, "fmr", "impostor scores")
    return fmr_fnmr_at_threshold(genuine, v, threshold_at_fmr(v, target))[1]


def plot_det(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    ax: Axes | None = None,
    *,
    at_fmr: Sequence[float] = (),
    points: Mapping[str, tuple[float, float]] | None = None,
    title: str | None = None,
) -> Figure:
    """Draw DET curves, FMR on x and FNMR on y, both on log axes, and return the figure.

    ``curves`` maps a legend label to ``(genuine, impostor)`` scores. For every target in ``at_fmr``
    each curve's operating point ``(target, FNMR at FMR <= target)`` is marked and labelled, as the
    thesis tables report it. ``points`` adds reference operating points ``label -> (fmr, fnmr)``,
    e.g. ``{"thesis Table 8": (1e-6, 0.0274)}``. Points with a zero rate cannot be drawn on log axes
    and are left out.
    """
    if not curves:
        raise ValueError("curves is empty: pass {label: (genuine, impostor)}")
    ax = _det_axes(ax)
    for label, (genuine, impostor) in curves.items():
        fmr, fnmr, _ = det_points(genuine, impostor)
        drawable = (fmr > 0) & (fnmr > 0)
        (line,) = ax.plot(fmr[drawable], fnmr[drawable], label=label, lw=1.5)
        for target in at_fmr:
            fnmr_at_target = _operating_point(genuine, impostor, target)
            ax.plot([target], [fnmr_at_target], "o", color=line.get_color(), ms=5)
            if fnmr_at_target > 0:
                ax.annotate(f"{fnmr_at_target:.3g}", (target, fnmr_at_target), textcoords="offset points",
                            xytext=(4, 4), fontsize=8, color=line.get_color())
    return _finish_det(ax, points, title)


def _det_axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 4.5))
    ax.set_xscale("log", nonpositive="mask")
    ax.set_yscale("log", nonpositive="mask")
    return ax


def _finish_det(ax: Axes, points: Mapping[str, tuple[float, float]] | None, title: str | None) -> Figure:
    """Reference points (a marker each), labels, grid, legend and title of a DET plot; its figure."""
    for (label, (fmr_point, fnmr_point)), marker in zip((points or {}).items(), itertools.cycle("x+^sv")):
        ax.plot([fmr_point], [fnmr_point], marker, color="black", ms=7, mew=1.5, label=label, fillstyle="none")
    ax.set_xlabel("FMR (false match rate)")
    ax.set_ylabel("FNMR (false non-match rate)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title is not None:
        ax.set_title(title)
    fig = ax.get_figure(root=True)
    if fig is None:
        raise ValueError("ax is not attached to a figure: create it with plt.subplots()")
    return fig


def plot_det_summaries(
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    ax: Axes | None = None,
    *,
    points: Mapping[str, tuple[float, float]] | None = None,
    title: str | None = None,
) -> Figure:
    """Draw stored DET summaries (:func:`det_summary`: ``{"fmr": [...], "fnmr": [...]}``) on log-log axes,
    FMR on x and FNMR on y, as :func:`plot_det` draws curves from scores; ``points`` adds reference
    operating points ``label -> (fmr, fnmr)``. Zero rates cannot be drawn on log axes and are left out."""
    if not curves:
        raise ValueError("curves is empty: pass {label: det_summary(...)}")
    ax = _det_axes(ax)
    for label, curve in curves.items():
        fmr, fnmr = np.asarray(curve["fmr"], dtype=float), np.asarray(curve["fnmr"], dtype=float)
        keep = (fmr > 0) & (fnmr > 0)
        ax.step(fmr[keep], fnmr[keep], where="post", label=label, lw=1.5)
    return _finish_det(ax, points, title)
