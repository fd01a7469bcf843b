"""The paper's statistics, as pure functions (arXiv 2505.02390, Section 4.2 and Appendix A.2).

Scores are percentages (0-100) as in the paper's tables. A benchmark's result is a matrix of
per-item scores, one column per sample run ("sample k" = the k-th response to every item):
the paper reports the mean and the standard deviation of the per-run accuracies; we add a
bootstrap 95% CI over items, and a paired bootstrap for variant-minus-baseline differences.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from quantdrop.errors import QuantdropError

# The paper's benchmarks in its row order (Tables 2-5). Their weights (Appendix A.2, Table 8) are
# declared by the benchmark classes (quantdrop.eval.benchmarks); PAPER_WEIGHTS is derived from them.
PAPER_ORDER: tuple[str, ...] = (
    "aime2024",
    "math500",
    "gpqa",
    "mbpp",
    "mbppplus",
    "livecodebench",
    "mmlu",
    "cmmlu",
    "ceval",
)


def paper_weights() -> dict[str, float]:
    """The paper's benchmark -> weight, as the benchmark classes declare them."""
    from quantdrop.eval.benchmarks import get_benchmark

    return {key: float(get_benchmark(key).weight) for key in PAPER_ORDER}


def weight_of(name: str, default: float = 1.0) -> float:
    """A benchmark name's or table title's declared weight; `default` for one not registered (a
    store row written without its weight, a test's toy benchmark)."""
    from quantdrop.eval.benchmarks import declared_weight

    weight = declared_weight(benchmark_key(name))
    return default if weight is None else weight


def __getattr__(name: str) -> object:
    if name == "PAPER_WEIGHTS":  # derived on first use: it imports the benchmark modules
        return paper_weights()
    raise AttributeError(f"module 'quantdrop.stats' has no attribute {name!r}")


_ALIASES = {"aime": "aime2024", "math": "math500", "gpqadiamond": "gpqa", "lcb": "livecodebench"}


def benchmark_key(name: str) -> str:
    """Our key for a benchmark name or table title: "MATH 500", "MATH-500 (311/500)" -> "math500"."""
    base = re.sub(r"\s*\(.*\)\s*$", "", name).lower().replace("+", "plus")
    key = re.sub(r"[^a-z0-9]", "", base)
    return _ALIASES.get(key, key)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    value: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _matrix(scores: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Items x samples as floats; NaN marks a missing score (an error, or not run yet)."""
    m = np.asarray(scores, dtype=float)
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2:
        raise QuantdropError(f"scores must be items x samples, got shape {m.shape}")
    return m


def run_accuracies(scores: Sequence[Sequence[float]] | np.ndarray) -> list[float]:
    """Accuracy (%) of each sample run: column means over the items that have a score."""
    m = _matrix(scores)
    out = []
    for col in m.T:
        got = col[~np.isnan(col)]
        if got.size:
            out.append(float(100.0 * got.mean()))
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard deviation across sample runs, as the paper's "mean (±std)".

    The paper does not say which estimator it used; we use the population std (numpy's default,
    ddof=0), which is what a plain `np.std` over the per-run accuracies gives.
    """
    if not len(values):
        return math.nan, math.nan
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std())


def _item_means(m: np.ndarray) -> np.ndarray:
    """Each item's mean score over its available samples (NaN if it has none)."""
    counts = (~np.isnan(m)).sum(axis=1)
    sums = np.nansum(m, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _resampled_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `n_boot` resamples with replacement, drawn in chunks (MMLU: 14k items x 2000 resamples)."""
    out = np.empty(n_boot)
    step = max(1, 2_000_000 // max(values.size, 1))
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        out[start:stop] = values[rng.integers(0, values.size, size=(stop - start, values.size))].mean(axis=1)
    return out


def bootstrap_ci(
    scores: Sequence[Sequence[float]] | np.ndarray, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Accuracy (%) with a percentile bootstrap CI, resampling items (with all their samples)."""
    means = _item_means(_matrix(scores))
    means = means[~np.isnan(means)]
    if not means.size:
        return Interval(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    boots = 100.0 * _resampled_means(means, n_boot, rng)
    alpha = (1.0 - level) / 2
    return Interval(float(100.0 * means.mean()), float(np.quantile(boots, alpha)), float(np.quantile(boots, 1 - alpha)))


def average(scores: Mapping[str, float]) -> float:
    """The paper's "Average": the plain mean over the benchmarks present."""
    vals = [v for v in scores.values() if not math.isnan(v)]
    return float(sum(vals) / len(vals)) if vals else math.nan


def weights_for(names: Sequence[str], weights: Mapping[str, float] | None = None) -> list[float]:
    """The weight of each benchmark name; an unknown name is an error, not a silent weight of 1."""
    table = paper_weights() if weights is None else {benchmark_key(k): w for k, w in weights.items()}
    out = []
    for name in names:
        key = benchmark_key(name)
        if key not in table:
            raise QuantdropError(f"no weight for benchmark {name!r} (known: {', '.join(table)})")
        out.append(table[key])
    return out


def weighted_average(scores: Mapping[str, float], weights: Mapping[str, float] | None = None) -> float:
    """The paper's "Weighted avg.": sum(w * score) / sum(w) over the benchmarks present (Appendix A.2)."""
    present = {k: v for k, v in scores.items() if not math.isnan(v)}
    if not present:
        return math.nan
    ws = weights_for(list(present), weights)
    return float(sum(w * v for w, v in zip(ws, present.values(), strict=True)) / sum(ws))


def accuracy_drop(baseline: float, variant: float) -> float:
    """The paper's "Accuracy drop": max(0, (baseline - variant) / baseline), a fraction (0.0068 = 0.68%).

    Applied to weighted averages; a variant that beats the baseline shows 0, as in the paper.
    """
    if baseline <= 0 or math.isnan(baseline) or math.isnan(variant):
        return math.nan
    return max(0.0, (baseline - variant) / baseline)


def paired_bootstrap_diff(
    baseline: Mapping[str, Mapping[str, float]],
    variant: Mapping[str, Mapping[str, float]],
    *,
    weights: Mapping[str, float] | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Variant minus baseline (percentage points) with a paired bootstrap CI.

    Both arguments map benchmark -> {item id: the item's mean score in [0, 1]}. Items are paired
    by id (only items both sides scored count) and resampled together, independently per
    benchmark. One benchmark gives that benchmark's difference; several give the difference of
    the weighted averages (the paper's weights unless `weights` is given).
    """
    benches = [b for b in baseline if b in variant]
    if not benches:
        return Interval(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    ws = weights_for(benches, weights) if len(benches) > 1 else [1.0]
    point = 0.0
    boots = np.zeros(n_boot)
    used_weight = 0.0
    for bench, w in zip(benches, ws, strict=True):
        ids = [i for i in baseline[bench] if i in variant[bench]]
        if not ids:
            continue
        diff = np.array([variant[bench][i] - baseline[bench][i] for i in ids], dtype=float)
        point += w * 100.0 * diff.mean()
        boots += w * 100.0 * _resampled_means(diff, n_boot, rng)
        used_weight += w
    if not used_weight:
        return Interval(math.nan, math.nan, math.nan)
    alpha = (1.0 - level) / 2
    boots /= used_weight
    return Interval(point / used_weight, float(np.quantile(boots, alpha)), float(np.quantile(boots, 1 - alpha)))
