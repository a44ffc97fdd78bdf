"""Presentation-attack-detection (PAD) metrics of ISO/IEC 30107-3, and the benchmark conventions around them.

Scores are *attack probabilities* in [0, 1]: a presentation is classified as an attack when
``score >= T`` (a score equal to ``T`` is an attack) and as bona fide otherwise. With bona fide
scores ``b`` (N), and for every attack type (PAI species) ``s`` its attack scores ``a_s`` (N_s)::

    APCER_s(T) = (1/N_s) * #{i : a_s,i < T}      attacks of type s classified bona fide
    APCER(T)   = max_s APCER_s(T)                the worst type (ISO/IEC 30107-3's APCER of the subsystem)
    BPCER(T)   = (1/N)   * #{j : b_j >= T}       bona fide presentations classified as attacks
    ACER(T)    = (APCER(T) + BPCER(T)) / 2

ACER is not an ISO metric (the standard reports APCER and BPCER apart); it is the convention of the
OULU-NPU and CelebA-Spoof benchmarks and is given for comparison with them. The ISO operating points
BPCER20 and BPCER100 are the BPCER at APCER 5 % and 1 % (:data:`APCER_TARGETS`, :func:`bpcer_at_apcer`).

Thresholds for a target APCER follow the convention of
:func:`~faceopt.recognition.metrics.threshold_at_fmr`, mirrored because here the error side is
*below* the threshold: the least strict threshold that meets the target, i.e. the largest ``T`` with
``APCER_s(T) <= target`` for every type. For one type with ``k = floor(target * N_s)`` attacks allowed
through, that is its ``(k+1)``-th smallest attack score (attacks equal to ``T`` are caught), and over
all types the smallest of these. A target below ``1/N_s`` of the smallest type cannot be measured (its
APCER is either 0 or at least ``1/N_s``) and is refused, as :mod:`faceopt.recognition.nist` refuses
unresolvable false-match rates.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from typing import Any, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from faceopt.stats import RATE_TOLERANCE, errors_allowed

__all__ = [
    "APCER_TARGETS",
    "BpcerAtApcer",
    "PadMetrics",
    "bpcer_at_apcer",
    "bpcer_at_apcer_points",
    "det_curve_pad",
    "leave_one_out_splits",
    "mann_whitney_auc",
    "pad_auc",
    "pad_metrics",
]

#: APCER targets of the ISO operating points BPCER100 (APCER 1 %) and BPCER20 (APCER 5 %).
APCER_TARGETS: tuple[float, ...] = (0.01, 0.05)


class PadMetrics(TypedDict):
    """Result of :func:`pad_metrics`; attack types are the keys as given (numpy scalars made Python scalars)."""

    apcer: float  #: APCER of the worst attack type
    apcer_per_type: dict[Hashable, float]  #: APCER of every attack type
    bpcer: float
    acer: float  #: (apcer + bpcer) / 2
    worst_type: Hashable  #: the type whose APCER is ``apcer`` (the first in sorted order on a tie)
    attacks_per_type: dict[Hashable, int]  #: number of attack presentations of every type
    bonafide: int  #: number of bona fide presentations
    attacks: int  #: number of attack presentations
    threshold: float


class BpcerAtApcer(TypedDict):
    """Result of :func:`bpcer_at_apcer`; ``ci_low``/``ci_high`` are ``None`` unless ``ci=True``."""

    bpcer: float  #: BPCER at ``threshold``
    threshold: float  #: largest threshold whose worst-type APCER does not exceed ``apcer_target``
    apcer: float  #: worst-type APCER actually observed at ``threshold`` (``<= apcer_target``)
    apcer_target: float
    apcer_per_type: dict[Hashable, float]
    worst_type: Hashable
    attacks_per_type: dict[Hashable, int]
    bonafide: int
    attacks: int
    ci_low: float | None  #: percentile bootstrap interval of the BPCER
    ci_high: float | None
    confidence: float | None
    resamples: int | None


# --------------------------------------------------------------------------- input checks


def _scores(x: ArrayLike, name: str, what: str) -> NDArray[np.float64]:
    """``x`` as a 1-D float array of finite attack probabilities in [0, 1], at least one."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numbers (attack probabilities in [0, 1]): {e}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, one attack probability per presentation, got shape {a.shape}; "
                         "from a two-class softmax pass its attack column, e.g. probs[:, 1]")
    if a.size == 0:
        raise ValueError(f"{name} is empty: at least one {what} presentation is needed")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds {int(np.count_nonzero(~np.isfinite(a)))} NaN or infinite scores: "
                         "drop or rescore those presentations")
    if a.min() < 0.0 or a.max() > 1.0:
        raise ValueError(f"{name} must be attack probabilities in [0, 1], got values in [{a.min():g}, {a.max():g}]; "
                         "apply a sigmoid or softmax to logits first")
    return a


def _key(v: Any) -> Hashable:
    """A numpy scalar as the Python scalar (so results are JSON-friendly); anything else unchanged."""
    return v.item() if isinstance(v, np.generic) else v


class _Attacks:
    """Attack scores split by type: the sorted distinct types and, for each, its scores sorted ascending."""

    def __init__(self, attack_scores: ArrayLike, attack_types: ArrayLike) -> None:
        scores = _scores(attack_scores, "attack_scores", "attack")
        types = np.asarray(attack_types)
        if types.ndim != 1 or types.size != scores.size:
            raise ValueError(f"attack_types must be 1-D with one type per attack score ({scores.size}), "
                             f"got shape {types.shape}")
        if types.dtype.kind == "f" and np.isnan(types).any():
            raise ValueError("attack_types holds NaN: give every attack presentation its type")
        try:
            distinct, inverse = np.unique(types, return_inverse=True)
        except TypeError:
            raise ValueError("attack_types mixes kinds of values that cannot be sorted (e.g. numbers and "
                             "strings); use one kind, e.g. all names or all integer codes") from None
        inverse = inverse.ravel()
        self.scores = scores
        self.types: list[Hashable] = [_key(v) for v in distinct]
        self.groups: list[NDArray[np.float64]] = [np.sort(scores[inverse == k]) for k in range(len(self.types))]

    @property
    def counts(self) -> dict[Hashable, int]:
        return {t: int(g.size) for t, g in zip(self.types, self.groups)}

    def apcer_per_type(self, threshold: float) -> dict[Hashable, float]:
        return {t: _share_below(g, threshold) for t, g in zip(self.types, self.groups)}


def _share_below(sorted_scores: NDArray[np.float64], threshold: float) -> float:
    return float(np.searchsorted(sorted_scores, threshold, side="left") / sorted_scores.size)


def _threshold(threshold: float) -> float:
    t = float(threshold)
    if math.isnan(t):
        raise ValueError("threshold is NaN; pass a number (an attack probability, usually in [0, 1])")
    return t


def _worst(per_type: dict[Hashable, float]) -> tuple[Hashable, float]:
    """The type with the highest APCER (the first in sorted order on a tie) and that APCER."""
    worst = max(per_type, key=lambda t: per_type[t])
    return worst, per_type[worst]


def _bpcer(bonafide: NDArray[np.float64], threshold: float) -> float:
    return float(np.count_nonzero(bonafide >= threshold) / bonafide.size)


# --------------------------------------------------------------------------- metrics at a threshold


def pad_metrics(bonafide_scores: ArrayLike, attack_scores: ArrayLike, attack_types: ArrayLike,
                threshold: float) -> PadMetrics:
    """APCER (worst type), APCER per type, BPCER and ACER at ``threshold`` (ISO/IEC 30107-3).

    ``attack_types`` gives each attack score its type (names or integer codes, e.g. CelebA-Spoof's
    spoof types or :func:`faceopt.data.celeba_spoof.attack_family`). A score equal to ``threshold``
    is an attack. Raises ``ValueError`` on scores that are not finite probabilities in [0, 1], on
    lengths that do not match and when there is no bona fide or no attack presentation.
    """
    b = _scores(bonafide_scores, "bonafide_scores", "bona fide")
    attacks = _Attacks(attack_scores, attack_types)
    t = _threshold(threshold)
    per_type = attacks.apcer_per_type(t)
    worst, apcer = _worst(per_type)
    bpcer = _bpcer(b, t)
    return PadMetrics(apcer=apcer, apcer_per_type=per_type, bpcer=bpcer, acer=(apcer + bpcer) / 2.0,
                      worst_type=worst, attacks_per_type=attacks.counts, bonafide=int(b.size),
                      attacks=int(attacks.scores.size), threshold=t)


# --------------------------------------------------------------------------- BPCER at a target APCER


def _check_target(apcer_target: float, attacks: _Attacks) -> float:
    """Refuse a target outside (0, 1] or below ``1/N_s`` of the smallest attack type."""
    r = float(apcer_target)
    if math.isnan(r) or not 0.0 < r <= 1.0:
        raise ValueError(f"apcer_target must lie in (0, 1], e.g. 0.05, got {apcer_target!r}")
    counts = attacks.counts
    smallest = min(counts, key=lambda t: counts[t])
    n = counts[smallest]
    if errors_allowed(r, n) < 1:
        needed = math.ceil((1.0 - RATE_TOLERANCE) / r)
        raise ValueError(
            f"apcer_target={r:g} is below 1/{n}: attack type {smallest!r} has only {n} presentations, so its APCER "
            f"is either 0 or at least 1/{n} = {1.0 / n:.3g}. A target of {r:g} needs at least {needed} presentations "
            f"of every type; collect more, merge types (e.g. by attack_family), or raise apcer_target to at least "
            f"{1.0 / n:.3g}."
        )
    return r


def _threshold_at_apcer(groups: list[NDArray[np.float64]], target: float) -> float:
    """Largest ``T`` with ``APCER_s(T) <= target`` for every type; ``groups`` sorted ascending.

    For a type with ``k`` allowed misses that is its ``(k+1)``-th smallest score (ties at it are caught);
    ``+inf`` when every type may be missed entirely (``target == 1``).
    """
    t = math.inf
    for g in groups:
        k = errors_allowed(target, g.size)
        if k < g.size:
            t = min(t, float(g[k]))
    return t


def bpcer_at_apcer(
    bonafide_scores: ArrayLike,
    attack_scores: ArrayLike,
    attack_types: ArrayLike,
    apcer_target: float,
    *,
    ci: bool = False,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BpcerAtApcer:
    """BPCER at the least strict threshold whose worst-type APCER does not exceed ``apcer_target``.

    The threshold is the largest ``T`` with ``APCER_s(T) <= apcer_target`` for every attack type ``s``:
    an attack score (see the module docstring). ``apcer_target=0.05`` gives ISO's BPCER20, ``0.01``
    BPCER100. Raises ``ValueError`` when the target is below ``1/N_s`` of the smallest type.

    With ``ci=True`` a percentile bootstrap interval of the BPCER is added: every resample draws the
    bona fide scores, then each type's attack scores in sorted type order, uniformly with replacement
    within their group (``np.random.default_rng(seed)``; every type keeps its count, so the target stays
    resolvable), re-chooses the threshold and takes the ``(1-confidence)/2`` and ``(1+confidence)/2``
    quantiles of the resampled BPCERs.
    """
    b = _scores(bonafide_scores, "bonafide_scores", "bona fide")
    attacks = _Attacks(attack_scores, attack_types)
    target = _check_target(apcer_target, attacks)
    t = _threshold_at_apcer(attacks.groups, target)
    per_type = attacks.apcer_per_type(t)
    worst, apcer = _worst(per_type)
    ci_low: float | None = None
    ci_high: float | None = None
    if ci:
        if int(resamples) != resamples or resamples < 1:
            raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
        if math.isnan(confidence) or not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must lie in (0, 1), e.g. 0.95, got {confidence!r}")
        rng = np.random.default_rng(seed)
        samples = np.empty(int(resamples), dtype=np.float64)
        for r in range(int(resamples)):
            b_r = b[rng.integers(0, b.size, size=b.size)]
            groups_r = [np.sort(g[rng.integers(0, g.size, size=g.size)]) for g in attacks.groups]
            samples[r] = _bpcer(b_r, _threshold_at_apcer(groups_r, target))
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(samples, [tail, 1.0 - tail])
        ci_low, ci_high = float(low), float(high)
    return BpcerAtApcer(bpcer=_bpcer(b, t), threshold=t, apcer=apcer, apcer_target=target, apcer_per_type=per_type,
                        worst_type=worst, attacks_per_type=attacks.counts, bonafide=int(b.size),
                        attacks=int(attacks.scores.size), ci_low=ci_low, ci_high=ci_high,
                        confidence=float(confidence) if ci else None, resamples=int(resamples) if ci else None)


def bpcer_at_apcer_points(bonafide_scores: ArrayLike, attack_scores: ArrayLike, attack_types: ArrayLike,
                          targets: tuple[float, ...] = APCER_TARGETS, **kwargs: Any) -> dict[float, BpcerAtApcer]:
    """:func:`bpcer_at_apcer` at every APCER target, by default 1 % (BPCER100) and 5 % (BPCER20).

    ``kwargs`` go to :func:`bpcer_at_apcer` (``ci``, ``resamples``, ``seed``, ``confidence``). Every target
    must be resolvable: a target below ``1/N_s`` of the smallest type raises ``ValueError``.
    """
    return {float(t): bpcer_at_apcer(bonafide_scores, attack_scores, attack_types, t, **kwargs) for t in targets}


# --------------------------------------------------------------------------- curves and AUC


def det_curve_pad(bonafide_scores: ArrayLike, attack_scores: ArrayLike, attack_types: ArrayLike
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(apcer, bpcer, thresholds)``: worst-type APCER and BPCER at every distinct score, thresholds ascending.

    The last threshold lies one ulp above the highest score, where every presentation is called bona fide
    (BPCER 0); at the lowest score every presentation is an attack (APCER 0). APCER is non-decreasing and
    BPCER non-increasing along the arrays.
    """
    b = np.sort(_scores(bonafide_scores, "bonafide_scores", "bona fide"))
    attacks = _Attacks(attack_scores, attack_types)
    thresholds = np.unique(np.concatenate([b, attacks.scores]))
    thresholds = np.append(thresholds, np.nextafter(thresholds[-1], np.inf))
    apcer = np.max([np.searchsorted(g, thresholds, side="left") / g.size for g in attacks.groups], axis=0)
    bpcer = 1.0 - np.searchsorted(b, thresholds, side="left") / b.size
    return apcer.astype(np.float64), bpcer.astype(np.float64), thresholds


def pad_auc(bonafide_scores: ArrayLike, attack_scores: ArrayLike) -> float:
    """ROC AUC with attacks as the positive class, by :func:`sklearn.metrics.roc_auc_score`.

    The probability that a random attack scores above a random bona fide presentation, ties counting
    half; :func:`mann_whitney_auc` counts the same by hand.
    """
    from sklearn.metrics import roc_auc_score

    b = _scores(bonafide_scores, "bonafide_scores", "bona fide")
    a = _scores(attack_scores, "attack_scores", "attack")
    y = np.concatenate([np.zeros(b.size, dtype=np.int64), np.ones(a.size, dtype=np.int64)])
    return float(roc_auc_score(y, np.concatenate([b, a])))


def mann_whitney_auc(bonafide_scores: ArrayLike, attack_scores: ArrayLike) -> float:
    """``(#{a > b} + #{a == b} / 2) / (N_attack * N_bonafide)`` over all (attack, bona fide) pairs.

    The Mann-Whitney U statistic of the attack scores divided by the number of pairs, counted in
    integers with a sort (O(n log n)), so it is exact up to the final division.
    """
    b = np.sort(_scores(bonafide_scores, "bonafide_scores", "bona fide"))
    a = _scores(attack_scores, "attack_scores", "attack")
    below = np.searchsorted(b, a, side="left").astype(np.int64)
    tied = np.searchsorted(b, a, side="right").astype(np.int64) - below
    twice_u = int(2 * below.sum() + tied.sum())
    return twice_u / (2 * a.size * b.size)


# --------------------------------------------------------------------------- protocols


def leave_one_out_splits(attack_types: ArrayLike, bonafide: Hashable = 0) -> Iterator[tuple[Hashable, NDArray[np.bool_]]]:
    """``(held-out type, training mask)`` for every attack type of a training set, in sorted type order.

    ``attack_types`` holds one entry per training sample, ``bonafide`` marking the bona fide ones
    (0 for CelebA-Spoof's spoof types; pass e.g. ``"live"`` for names). The mask keeps every sample
    but those of the held-out type, so each model of a leave-one-attack-type-out protocol is trained on
    all bona fide samples and the other attack types, and tested on the type it never saw. Needs at
    least two attack types (else a training set without attacks would remain). Validated at the call,
    then the splits are yielded lazily.
    """
    types = np.asarray(attack_types)
    if types.ndim != 1 or types.size == 0:
        raise ValueError(f"attack_types must be a non-empty 1-D sequence, one type per sample, got shape {types.shape}")
    values = [_key(v) for v in types.tolist()]
    try:
        held_out = sorted({v for v in values if v != bonafide})  # type: ignore[type-var]
    except TypeError:
        raise ValueError("attack_types mixes kinds of values that cannot be sorted; use one kind") from None
    if len(held_out) < 2:
        raise ValueError(f"leave-one-attack-type-out needs at least two attack types besides bona fide ({bonafide!r}), "
                         f"found {held_out}; check the bonafide marker")
    column = np.array(values, dtype=object)
    return ((t, np.asarray(column != t, dtype=bool)) for t in held_out)
