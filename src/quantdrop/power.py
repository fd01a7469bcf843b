"""Statistical power of a paired variant-minus-baseline comparison, as pure functions.

The test is the paired one on per-item differences d_i = variant_i - baseline_i (each item's mean score
over its samples, in [0, 1]), two-sided at level alpha. Its minimal detectable difference at power
1 - beta is (z_{1-alpha/2} + z_{1-beta}) * sd(d) / sqrt(n): the normal approximation, which is what
statsmodels' `NormalIndPower(ratio=0)` (one-sample z test) solves; the t test's (`TTestPower`) is 3.4%
larger at 30 items and under 1% larger from 200 on (tests/eval/test_power.py checks both).

The variance of d_i has a between-item part and a within-item (sampling) part that shrinks with the
number of samples k: Var(d_i) = s_b^2 + s_w^2 / k (a one-way random-effects decomposition: s_w^2 from
the spread of each item's per-sample differences, s_b^2 the rest). That is what lets a study say how
many items *and* samples a target drop needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

ALPHA = 0.05
POWER = 0.80
MIN_ITEMS = 10  # below this the normal approximation (and any bootstrap) says nothing: "too few items"
MAX_USEFUL_MDE = 25.0  # points: a test that could only see a drop this large is reported as "too few items"


def z_sum(alpha: float = ALPHA, power: float = POWER) -> float:
    """z_{1-alpha/2} + z_{power}: 1.96 + 0.84 = 2.80 at the defaults."""
    normal = NormalDist()
    return normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)


@dataclass(frozen=True)
class PairedVariance:
    """The variance parts of per-item paired differences (in fraction units, scores in [0, 1])."""

    items: int
    samples: int  # samples per item actually paired (the most any item has)
    total: float  # Var(d_i) of the item means as observed (ddof=1)
    within: float  # s_w^2: per-sample variance inside an item (NaN with one sample: not separable)
    between: float  # s_b^2 = max(0, total - within / samples); = total with one sample

    def at(self, samples: int) -> float:
        """Var(d_i) with `samples` samples per item."""
        within = 0.0 if math.isnan(self.within) else self.within
        return self.between + within / max(samples, 1)


def paired_variance(diffs: np.ndarray) -> PairedVariance:
    """The variance parts from items x samples per-sample differences (variant - baseline; NaN missing)."""
    m = np.asarray(diffs, dtype=float)
    m = m[:, None] if m.ndim == 1 else m
    m = m[(~np.isnan(m)).any(axis=1)]
    n = m.shape[0]
    counts = (~np.isnan(m)).sum(axis=1)
    k = int(counts.max()) if n else 0
    if n < 2:
        return PairedVariance(n, k, math.nan, math.nan, math.nan)
    means = np.nanmean(m, axis=1)
    total = float(np.var(means, ddof=1))
    multi = counts >= 2
    if not multi.any():
        return PairedVariance(n, k, total, math.nan, total)
    within = float(np.mean(np.nanvar(m[multi], axis=1, ddof=1)))
    return PairedVariance(n, k, total, within, max(0.0, total - within / k))


def _floored(var: float, items: int, samples: int) -> float:
    """The variance, but never below that of one flipped (item, sample) pair among items x samples:
    no flip observed in 3 items is not evidence of a zero-variance difference."""
    one_flip = 1.0 / (items * max(samples, 1) ** 2)
    return max(var, one_flip) if not math.isnan(var) else math.nan


def min_detectable_drop(v: PairedVariance, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest difference (percentage points) the paired test detects with `power`, from the
    observed variance, items and samples (NaN with fewer than 2 items)."""
    if v.items < 2 or math.isnan(v.total):
        return math.nan
    return 100.0 * z_sum(alpha, power) * math.sqrt(_floored(v.total, v.items, v.samples) / v.items)


def too_few_items(v: PairedVariance, mde: float) -> bool:
    """Whether a difference over these items can say nothing useful (report that, not a bare drop)."""
    return v.items < MIN_ITEMS or math.isnan(mde) or mde >= MAX_USEFUL_MDE


def items_needed(
    target_points: float, v: PairedVariance, samples: int, *, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Items needed to detect a `target_points` drop with `samples` samples per item (None: unknown)."""
    if target_points <= 0 or v.items < 2 or math.isnan(v.total):
        return None
    var = _floored(v.at(samples), v.items, v.samples)
    return max(2, math.ceil(var * (z_sum(alpha, power) * 100.0 / target_points) ** 2))


def plan_for(
    target_points: float,
    v: PairedVariance,
    full_size: int,
    *,
    max_samples: int = 64,
    alpha: float = ALPHA,
    power: float = POWER,
) -> tuple[int, int] | None:
    """The cheapest (items, samples) that detects `target_points` within the benchmark's `full_size`
    items: the fewest samples whose item count fits, else None (not reachable on this benchmark).
    Extra samples only help when the observed difference has within-item variance."""
    sample_range = range(1, max_samples + 1) if not math.isnan(v.within) and v.within > 0 else (1,)
    for k in sample_range:
        n = items_needed(target_points, v, k, alpha=alpha, power=power)
        if n is not None and n <= full_size:
            return n, k
    return None
