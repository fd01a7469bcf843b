"""Answer agreement with the baseline, as pure functions (Dutta et al. 2024, "Accuracy is Not All You
Need", arXiv 2407.09141: the share of answers that flip tracks quantization damage better than accuracy,
whose flips right->wrong and wrong->right cancel out).

An answer is one (item, sample) pair's extracted answer and whether it was right. The runner seeds
sample k of item i with sha256(benchmark/item/k) for every variant, so the baseline's and a variant's
pair (i, k) saw the same prompt and the same seed: comparing them pair by pair is a paired design.
Items are the clusters (their samples are correlated): every interval here resamples whole items.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from quantdrop.stats import Interval

# (item id, sample) -> (answer key, correct). The key is the extracted answer, or "<status>" when none
# was extracted (two unextracted answers agree: both failed the same way).
Answers = Mapping[tuple[str, int], tuple[str, bool]]

NAN_INTERVAL = Interval(math.nan, math.nan, math.nan)


def answer_key(extracted: str | None, status: str) -> str:
    """The value compared between variants: the extracted answer, else the status in angle brackets."""
    return extracted.strip() if extracted is not None else f"<{status}>"


@dataclass(frozen=True)
class Agreement:
    """One variant against the baseline on one benchmark."""

    pairs: int  # (item, sample) pairs answered by both
    items: int  # items with at least one such pair
    share: Interval  # % of pairs whose answers are equal, CI clustered by item
    right_to_wrong: int
    wrong_to_right: int

    @property
    def flips(self) -> int:
        return self.right_to_wrong + self.wrong_to_right


def _cluster_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item (row): the sum of its values and how many it has (NaN: missing)."""
    present = ~np.isnan(values)
    sums, counts = np.where(present, values, 0.0).sum(axis=1), present.sum(axis=1)
    keep = counts > 0
    return sums[keep], counts[keep].astype(float)


def cluster_bootstrap_ci(
    values: Sequence[Sequence[float]] | np.ndarray, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    """The mean (%) of items x observations `values` (NaN: missing) with a percentile bootstrap CI that
    resamples items with all their observations (a cluster bootstrap; ratio of sums, so items with more
    observations weigh more, as they do in the point estimate)."""
    m = np.asarray(values, dtype=float)
    m = m[:, None] if m.ndim == 1 else m
    sums, counts = _cluster_sums(m)
    if not counts.size:
        return NAN_INTERVAL
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    step = max(1, 2_000_000 // counts.size)  # resamples drawn in chunks: bounded memory at 14k items
    for start in range(0, n_boot, step):
        idx = rng.integers(0, counts.size, size=(min(n_boot, start + step) - start, counts.size))
        boots[start : start + idx.shape[0]] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    alpha = (1.0 - level) / 2
    point = 100.0 * sums.sum() / counts.sum()
    return Interval(float(point), float(100 * np.quantile(boots, alpha)), float(100 * np.quantile(boots, 1 - alpha)))


def _by_item(pairs: Sequence[tuple[str, int]]) -> tuple[dict[str, int], int]:
    items: dict[str, int] = {}
    for item, _ in pairs:
        items.setdefault(item, len(items))
    return items, 1 + max((k for _, k in pairs), default=-1)


def agreement(baseline: Answers, variant: Answers, *, n_boot: int = 2000, seed: int = 0) -> Agreement:
    """How often the variant gives the baseline's answer to the same (item, sample), with flips counted."""
    pairs = sorted(set(baseline) & set(variant))
    items, width = _by_item(pairs)
    same = np.full((len(items), max(width, 1)), np.nan)
    r2w = w2r = 0
    for item, k in pairs:
        (b_answer, b_right), (v_answer, v_right) = baseline[item, k], variant[item, k]
        same[items[item], k] = float(b_answer == v_answer)
        r2w += b_right and not v_right
        w2r += v_right and not b_right
    share = cluster_bootstrap_ci(same, n_boot=n_boot, seed=seed) if pairs else NAN_INTERVAL
    return Agreement(len(pairs), len(items), share, int(r2w), int(w2r))


def self_agreement(answers: Answers, *, n_boot: int = 2000, seed: int = 0) -> Interval:
    """The noise floor: % of sample pairs (j < k) of the same item with equal answers, CI clustered by
    item. A variant cannot be expected to agree with the baseline more than the baseline agrees with
    itself across seeds. NaN when no item has two samples (one sample, or greedy scoring)."""
    per_item: dict[str, list[str]] = defaultdict(list)
    for (item, _), (answer, _) in sorted(answers.items()):
        per_item[item].append(answer)
    rows = []
    for got in per_item.values():
        if len(got) < 2:
            continue
        equal = [float(a == b) for j, a in enumerate(got) for b in got[j + 1 :]]
        rows.append(equal)
    if not rows:
        return NAN_INTERVAL
    m = np.full((len(rows), max(map(len, rows))), np.nan)
    for r, equal in enumerate(rows):
        m[r, : len(equal)] = equal
    return cluster_bootstrap_ci(m, n_boot=n_boot, seed=seed)
