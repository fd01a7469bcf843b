"""Choose one type per tensor: min total predicted loss subject to total bytes <= budget.

A multiple-choice knapsack, solved by Lagrangian relaxation (each tensor independently minimises
loss + lambda x bytes; lambda bisected to the smallest value whose choice fits) followed by a greedy
repair that spends the remaining slack on the upgrades with the best loss saved per byte. Every
returned solution is feasible. The Lagrangian dual value max_lambda [sum_i min_t (loss + lambda bytes)
- lambda budget] is a lower bound on the optimum, so `gap` = loss - bound bounds the distance to the
exact optimum; it is at most one tensor's upgrade step, tiny next to the total on real models (the
tests check it against brute force). Exact DP over byte buckets would cost O(tensors x buckets) and
still round bytes; this is O(tensors x types x 60).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantdrop.errors import QuantdropError

_NEVER = 1e30


@dataclass(frozen=True)
class Item:
    """One decision: a tensor and its options (type names, bytes, predicted loss), any order."""

    name: str
    types: tuple[str, ...]
    nbytes: tuple[int, ...]
    loss: tuple[float, ...]


@dataclass(frozen=True)
class Solution:
    choice: dict[str, str]  # tensor -> type name
    nbytes: int
    loss: float
    bound: float  # Lagrangian lower bound on the optimal loss

    @property
    def gap(self) -> float:
        """Absolute optimality gap (loss - lower bound), >= 0."""
        return max(0.0, self.loss - self.bound)


def _matrices(items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    k = max(len(i.types) for i in items)
    size = np.full((len(items), k), _NEVER)  # padding: finite (so 0 x size is 0), never chosen (loss inf)
    loss = np.full((len(items), k), np.inf)
    for r, it in enumerate(items):
        size[r, : len(it.types)] = it.nbytes
        loss[r, : len(it.types)] = it.loss
    return size, loss


def _pick(size: np.ndarray, loss: np.ndarray, lam: float) -> np.ndarray:
    """Per row the option minimising loss + lam x bytes (ties: fewer bytes)."""
    score = loss + lam * size
    best = score.min(axis=1, keepdims=True)
    tied = np.where(score <= best * (1 + 1e-12) + 1e-300, size, np.inf)
    return tied.argmin(axis=1)


def minimum_bytes(items: list[Item]) -> int:
    return sum(min(i.nbytes) for i in items)


def solve(items: list[Item], budget: int) -> Solution:
    """The mix of least predicted loss within `budget` bytes (a one-line error below the minimum)."""
    if not items:
        return Solution({}, 0, 0.0, 0.0)
    least = minimum_bytes(items)
    if least > budget:
        raise QuantdropError(
            f"budget {budget} bytes is below the smallest possible mix of these tensors ({least} bytes)"
        )
    size, loss = _matrices(items)
    rows = np.arange(len(items))
    scale = float(np.nanmax(np.where(np.isfinite(loss), loss, 0.0))) / max(1.0, float(size.min()))
    lo, hi = 0.0, max(scale, 1e-30)
    pick = _pick(size, loss, lo)
    bound = -np.inf
    if size[rows, pick].sum() > budget:
        while size[rows, _pick(size, loss, hi)].sum() > budget:
            hi *= 4
        for _ in range(60):
            mid = (lo + hi) / 2
            p = _pick(size, loss, mid)
            bound = max(bound, float((loss[rows, p] + mid * size[rows, p]).sum() - mid * budget))
            if size[rows, p].sum() > budget:
                lo = mid
            else:
                hi = mid
        pick = _pick(size, loss, hi)
        bound = max(bound, float((loss[rows, pick] + hi * size[rows, pick]).sum() - hi * budget))
    else:
        bound = float(loss[rows, pick].sum())
    pick = _repair(size, loss, pick, budget)
    choice = {it.name: it.types[int(j)] for it, j in zip(items, pick, strict=True)}
    total = float(loss[rows, pick].sum())
    return Solution(choice, int(size[rows, pick].sum()), total, min(bound, total))


def _repair(size: np.ndarray, loss: np.ndarray, pick: np.ndarray, budget: int) -> np.ndarray:
    """Greedy fill: while slack remains, take the upgrade saving the most loss per extra byte."""
    rows = np.arange(len(pick))
    pick = pick.copy()
    slack = budget - size[rows, pick].sum()
    while slack > 0:
        d_size = size - size[rows, pick][:, None]
        d_loss = loss[rows, pick][:, None] - loss
        ok = (d_size > 0) & (d_size <= slack) & (d_loss > 0)
        if not ok.any():
            break
        ratio = np.where(ok, d_loss / np.where(ok, d_size, 1), -np.inf)
        r, j = np.unravel_index(int(ratio.argmax()), ratio.shape)
        slack -= d_size[r, j]
        pick[r] = j
    return pick
