"""Budgets and the knapsack solver: parsing, brute-force optimality, the minimum, DeepSeek-R1's speed."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from quantdrop.errors import QuantdropError
from quantdrop.tune.budget import byte_budget, fit_devices, parse_budget
from quantdrop.tune.solve import Item, solve

R1 = Path(__file__).parents[1] / "fixtures" / "configs" / "deepseek-r1.json"


@pytest.mark.parametrize(
    "text,kind,value",
    [
        ("281G", "bytes", 281 * 2**30),
        ("3.2GiB", "bytes", round(3.2 * 2**30)),
        ("300GB", "bytes", 300 * 10**9),
        ("500M", "bytes", 500 * 2**20),
        ("123456", "bytes", 123456),
        ("3.6bpw", "bpw", 3.6),
        ("8x910B-64G", "devices", 0.0),
        ("1xRTX4090-24G", "devices", 0.0),
    ],
)
def test_parse_budget(text: str, kind: str, value: float) -> None:
    b = parse_budget(text)
    assert (b.kind, b.value) == (kind, value)


@pytest.mark.parametrize("text", ["8xNOPE-99", "abc", "0G", "40bpw", "8xH100-80G,8x910B-64G"])
def test_bad_budget_is_one_clear_error(text: str) -> None:
    with pytest.raises(QuantdropError) as err:
        parse_budget(text)
    assert "\n" not in str(err.value)


def test_bpw_budget_counts_all_parameters() -> None:
    assert byte_budget(parse_budget("4bpw"), 1000) == 500


def _random_items(rng: np.random.Generator, n: int, k: int) -> list[Item]:
    items = []
    for i in range(n):
        size = np.sort(rng.integers(10, 200, size=k))
        loss = np.sort(rng.random(k) * 100)[::-1]  # more bytes, less loss (with random shapes)
        items.append(
            Item(f"t{i}", tuple(f"q{j}" for j in range(k)), tuple(int(s) for s in size), tuple(float(x) for x in loss))
        )
    return items


def _exact(items: list[Item], budget: int) -> float:
    best = np.inf
    for combo in itertools.product(*(range(len(it.types)) for it in items)):
        if sum(it.nbytes[j] for it, j in zip(items, combo, strict=True)) <= budget:
            best = min(best, sum(it.loss[j] for it, j in zip(items, combo, strict=True)))
    return float(best)


@pytest.mark.parametrize("seed", range(12))
def test_solver_is_feasible_and_within_its_gap_of_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items = _random_items(rng, 6, 4)
    lo = sum(min(i.nbytes) for i in items)
    hi = sum(max(i.nbytes) for i in items)
    budget = int(rng.integers(lo, hi + 1))
    sol = solve(items, budget)
    exact = _exact(items, budget)
    assert sol.nbytes <= budget
    assert sol.loss >= exact - 1e-9
    assert sol.bound <= exact + 1e-9  # a true lower bound
    assert sol.loss - exact <= sol.gap + 1e-9


def test_below_the_minimum_names_the_minimum() -> None:
    items = [Item("a", ("x", "y"), (10, 20), (5.0, 1.0)), Item("b", ("x", "y"), (30, 40), (5.0, 1.0))]
    with pytest.raises(QuantdropError, match=r"\(40 bytes\)"):
        solve(items, 39)
    assert solve(items, 40).choice == {"a": "x", "b": "x"}
    assert solve(items, 1000).choice == {"a": "y", "b": "y"}


def test_fit_devices_bisects_to_the_largest_fitting_budget() -> None:
    calls = []

    def attempt(b: int) -> tuple[bool, int]:
        calls.append(b)
        return b <= 7_000, b

    fit = fit_devices(attempt, 1_000, 10_000)
    assert fit.budget_bytes <= 7_000 and fit.budget_bytes > 7_000 - 10_000 / 2**13
    with pytest.raises(QuantdropError, match="smallest mix"):
        fit_devices(lambda b: (False, b), 1_000, 10_000)


def test_deepseek_r1_solves_in_under_two_seconds() -> None:
    from quantdrop.inventory import load as load_model
    from quantdrop.tune.command import DEFAULT_TYPES, _candidates, _items, parse_types
    from quantdrop.tune.sensitivity import prior_sensitivity

    inv = load_model(R1)
    cands = _candidates(inv, parse_types(DEFAULT_TYPES), False)
    items = _items(inv, cands, prior_sensitivity(inv, cands), {})
    assert len(items) == 725  # of 1086 tensors: the rest (norms, routers, biases) stay F32
    t0 = time.perf_counter()
    sol = solve(items, 300 * 2**30)
    assert time.perf_counter() - t0 < 2.0
    assert sol.nbytes <= 300 * 2**30 and sol.gap <= 1e-2 * sol.loss  # measured: 0.2%


def test_shipped_priors_lose_more_with_fewer_bits() -> None:
    from quantdrop.tune.sensitivity import CLASSES, load_priors

    pri = load_priors()
    rel = pri["relative_error"]
    ladder = [rel[q] for q in ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0")]
    assert ladder == sorted(ladder, reverse=True) and ladder[-1] > 0
    assert rel["Q4_0"] > rel["Q5_0"] > rel["Q8_0"]
    assert set(pri["class_factor"]) == set(CLASSES) and pri["derived_from"]
