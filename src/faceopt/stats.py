"""Comparing two sets of runs (seeds) honestly: is A better than B beyond the seed noise?"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Comparison:
    """Mean of A minus mean of B, its standard error, and whether it clears ``k`` standard errors."""

    mean_a: float
    mean_b: float
    diff: float
    stderr: float
    n_a: int
    n_b: int
    k: float = 2.0

    @property
    def significant(self) -> bool:
        """A and B differ by more than k standard errors (with one run each: any difference, flagged n=1)."""
        if self.stderr == 0.0:
            return self.diff != 0.0
        return abs(self.diff) > self.k * self.stderr

    @property
    def a_better(self) -> bool:
        return self.diff > 0 and self.significant

    def text(self, unit: str = "") -> str:
        if min(self.n_a, self.n_b) < 2:
            return (f"{self.mean_a:.4g}{unit} vs {self.mean_b:.4g}{unit}: difference {self.diff:+.3g}{unit} "
                    "(a single run: the seed noise is not estimated)")
        noise = "beyond" if self.significant else "within"
        return (f"{self.mean_a:.4g}{unit} vs {self.mean_b:.4g}{unit}: difference {self.diff:+.3g}{unit} "
                f"(standard error {self.stderr:.2g}, n={self.n_a}/{self.n_b}), {noise} the seed noise")


#: Tolerance when counting how many of ``count`` items a target rate allows (``0.29 * 100`` counts as 29).
RATE_TOLERANCE = 1e-9


def errors_allowed(rate: float, count: int) -> int:
    """``floor(rate * count)`` with :data:`RATE_TOLERANCE`: how many errors among ``count`` items a target rate
    allows (false accepts among impostors, attacks passed as bona fide, ...)."""
    return int(math.floor(rate * count + RATE_TOLERANCE))


def compare(a: Sequence[float], b: Sequence[float], k: float = 2.0) -> Comparison:
    """Welch-style comparison of two samples: stderr = sqrt(var_a/n_a + var_b/n_b) (sample variances)."""
    if not a or not b:
        raise ValueError("compare needs at least one value on each side")
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1) if len(a) > 1 else 0.0
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1) if len(b) > 1 else 0.0
    stderr = math.sqrt(var_a / len(a) + var_b / len(b))
    return Comparison(mean_a, mean_b, mean_a - mean_b, stderr, len(a), len(b), k)


def bootstrap_stderr(statistic: Callable[[np.ndarray], float], n_items: int, *, resamples: int = 200,
                     seed: int = 0) -> float:
    """Standard error of ``statistic`` by the bootstrap over ``n_items`` independent items (frames, pairs).

    ``statistic(indices)`` computes the quantity on the items ``indices`` (drawn with replacement,
    ``n_items`` of them); the standard error is the standard deviation of ``resamples`` such draws.
    """
    if n_items < 2 or resamples < 2:
        raise ValueError("the bootstrap needs at least 2 items and 2 resamples")
    rng = np.random.default_rng(seed)
    values = [float(statistic(rng.integers(0, n_items, n_items))) for _ in range(resamples)]
    return float(np.std(values, ddof=1))
