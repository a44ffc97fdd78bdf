"""Verification and identification metrics (NIST FMR/FNMR, LFW-style accuracy, rank-1).

Scores are cosine similarities: higher means "same person". A pair is *accepted*
when ``score >= T``, so with genuine scores ``u`` (N) and impostor scores ``v`` (M)::

    FMR(T)  = (1/M) * #{j : v_j >= T}
    FNMR(T) = 1 - (1/N) * #{i : u_i >= T}
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "accuracy_at_threshold",
    "det_curve",
    "fnmr_at_fmr",
    "rank1_identification",
    "tar_at_far",
    "threshold_at_fmr",
    "verification_accuracy",
]


def _scores(x: ArrayLike, name: str) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{name} scores are empty")
    if np.isnan(a).any():
        raise ValueError(f"{name} scores contain NaN")
    return a


def _check_rate(rate: float, name: str) -> float:
    r = float(rate)
    if not (0.0 < r <= 1.0) or math.isnan(r):
        raise ValueError(f"{name} must lie in (0, 1], got {rate!r}")
    return r


def threshold_at_fmr(impostor: ArrayLike, fmr: float) -> float:
    """Smallest threshold ``T`` with ``FMR(T) <= fmr``.

    With ``k = floor(fmr * M)`` impostors allowed to be accepted, ``FMR(T) <= fmr``
    iff ``T > v_(k+1)`` (the (k+1)-th largest impostor score), because impostors
    equal to ``T`` are accepted. Hence ``T = np.nextafter(v_(k+1), +inf)``; ties at
    ``v_(k+1)`` are all rejected. If ``k >= M`` (``fmr == 1``) every threshold
    qualifies and ``-inf`` is returned. ``fmr * M`` is rounded with a 1e-9 tolerance
    so that e.g. ``0.29 * 100`` counts as 29.
    """
    v = _scores(impostor, "impostor")
    r = _check_rate(fmr, "fmr")
    k = int(math.floor(r * v.size + 1e-9))
    if k >= v.size:
        return -math.inf
    v_desc = np.sort(v)[::-1]
    return float(np.nextafter(v_desc[k], np.inf))


def fnmr_at_fmr(genuine: ArrayLike, impostor: ArrayLike, fmr: float) -> float:
    """FNMR at the smallest threshold whose FMR does not exceed ``fmr`` (see :func:`threshold_at_fmr`)."""
    u = _scores(genuine, "genuine")
    t = threshold_at_fmr(impostor, fmr)
    return float(1.0 - np.count_nonzero(u >= t) / u.size)


def tar_at_far(genuine: ArrayLike, impostor: ArrayLike, far: float) -> float:
    """True accept rate ``1 - FNMR`` at the operating point ``FMR <= far``."""
    return 1.0 - fnmr_at_fmr(genuine, impostor, far)


def det_curve(
    genuine: ArrayLike, impostor: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(fmr, fnmr, thresholds)`` evaluated at every distinct score, thresholds ascending.

    FMR is non-increasing and FNMR non-decreasing along the arrays.
    """
    u = np.sort(_scores(genuine, "genuine"))
    v = np.sort(_scores(impostor, "impostor"))
    thr = np.unique(np.concatenate([u, v]))
    # number of scores >= t  ==  size - number of scores < t
    fmr = (v.size - np.searchsorted(v, thr, side="left")) / v.size
    fnmr = np.searchsorted(u, thr, side="left") / u.size
    return fmr.astype(np.float64), fnmr.astype(np.float64), thr


def _pairs(scores: ArrayLike, issame: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    s = _scores(scores, "pair")
    y = np.asarray(issame).ravel()
    if y.shape != s.shape:
        raise ValueError(f"scores ({s.size}) and issame ({y.size}) differ in length")
    return s, y.astype(bool)


def accuracy_at_threshold(scores: ArrayLike, issame: ArrayLike, threshold: float) -> float:
    """Fraction of pairs classified correctly when ``score >= threshold`` means "same"."""
    s, y = _pairs(scores, issame)
    return float(np.mean((s >= threshold) == y))


def _best_threshold(s: NDArray[np.float64], y: NDArray[np.bool_]) -> float:
    """Threshold with the best accuracy on ``(s, y)``; candidates are ``-inf``,
    midpoints between consecutive distinct scores, and ``+inf``; ties -> smallest."""
    u = np.unique(s)
    cands = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2.0, [np.inf]])
    accs = np.mean((s[None, :] >= cands[:, None]) == y[None, :], axis=1)
    return float(cands[int(np.argmax(accs))])


def verification_accuracy(
    scores: ArrayLike, issame: ArrayLike, folds: int = 10
) -> tuple[float, float]:
    """LFW/insightface k-fold verification accuracy ``(mean, std)``.

    Pairs are split into ``folds`` consecutive, unshuffled folds (as sklearn
    ``KFold(n_splits=folds, shuffle=False)``: the first ``n % folds`` folds get one
    extra pair). For each fold the threshold maximising accuracy on the other folds
    is applied to the held-out fold. ``std`` is the population std (``np.std``).
    """
    s, y = _pairs(scores, issame)
    if folds < 2 or folds > s.size:
        raise ValueError(f"folds must be in [2, {s.size}], got {folds}")
    idx = np.arange(s.size)
    accs = []
    for test in np.array_split(idx, folds):
        train = np.setdiff1d(idx, test, assume_unique=True)
        t = _best_threshold(s[train], y[train])
        accs.append(np.mean((s[test] >= t) == y[test]))
    a = np.asarray(accs)
    return float(a.mean()), float(a.std())


def _l2n(x: ArrayLike, name: str) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.maximum(n, 1e-12)


def rank1_identification(
    probe_emb: ArrayLike,
    probe_labels: ArrayLike,
    gallery_emb: ArrayLike,
    gallery_labels: ArrayLike,
) -> float:
    """Closed-set rank-1 rate: fraction of probes whose most cosine-similar gallery
    item has the probe's label. Gallery distractors carry label -1 and never match;
    probes without a mate in the gallery count as misses."""
    p = _l2n(probe_emb, "probe_emb")
    g = _l2n(gallery_emb, "gallery_emb")
    pl = np.asarray(probe_labels).ravel()
    gl = np.asarray(gallery_labels).ravel()
    if p.shape[1] != g.shape[1]:
        raise ValueError(f"embedding sizes differ: {p.shape[1]} vs {g.shape[1]}")
    if pl.size != p.shape[0] or gl.size != g.shape[0]:
        raise ValueError("label count does not match embedding count")
    if np.any(pl == -1):
        raise ValueError("probe labels must not be -1 (reserved for distractors)")
    nearest = np.argmax(p @ g.T, axis=1)
    return float(np.mean(gl[nearest] == pl))
