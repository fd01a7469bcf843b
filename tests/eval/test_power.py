"""quantdrop.power against statsmodels' power functions on synthetic paired data, and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantdrop.power import items_needed, min_detectable_drop, paired_variance, plan_for, too_few_items

power_mod = pytest.importorskip("statsmodels.stats.power")


def _synthetic(n_items: int, n_samples: int, seed: int) -> np.ndarray:
    """Per-sample differences variant - baseline in {-1, 0, 1}: a variant that flips ~8% of answers."""
    rng = np.random.default_rng(seed)
    p_item = rng.beta(1, 3, size=(n_items, 1))  # items differ in how often they flip
    flip = rng.random((n_items, n_samples)) < 0.3 * p_item
    sign = np.where(rng.random((n_items, n_samples)) < 0.6, -1.0, 1.0)
    return np.where(flip, sign, 0.0)


@pytest.mark.parametrize("n_items", [30, 200, 2000])
def test_mde_is_statsmodels_one_sample_z_power_solved_for_the_effect(n_items):
    diffs = _synthetic(n_items, 1, n_items)
    v = paired_variance(diffs)
    sd = float(np.std(diffs.mean(axis=1), ddof=1))
    assert v.total == pytest.approx(sd**2)
    effect = power_mod.NormalIndPower().solve_power(effect_size=None, nobs1=n_items, alpha=0.05, power=0.8, ratio=0)
    # statsmodels also counts the far tail's (negligible) rejections: equal to 1e-4, not to the last digit
    assert min_detectable_drop(v) == pytest.approx(100 * effect * sd, rel=1e-4)
    # The paired t test (statsmodels' TTestPower on the differences) needs a little more: 3.4% at 30 items.
    t_effect = power_mod.TTestPower().solve_power(effect_size=None, nobs=n_items, alpha=0.05, power=0.8)
    t_mde = 100 * t_effect * sd
    assert t_mde * (1 - (0.04 if n_items < 100 else 0.01)) <= min_detectable_drop(v) <= t_mde


def test_items_needed_inverts_statsmodels_sample_size():
    v = paired_variance(_synthetic(500, 1, 7))
    target = 1.0  # points
    effect = (target / 100) / math.sqrt(v.total)
    n_sm = power_mod.NormalIndPower().solve_power(effect_size=effect, nobs1=None, alpha=0.05, power=0.8, ratio=0)
    assert items_needed(target, v, 1) == math.ceil(n_sm)


def test_samples_shrink_only_the_within_item_variance():
    diffs = _synthetic(400, 8, 3)
    v = paired_variance(diffs)
    assert v.samples == 8 and v.within > 0 and v.between >= 0
    # s_w^2 is the mean within-item variance; Var(mean) = s_b^2 + s_w^2 / k by construction
    assert v.at(8) == pytest.approx(max(v.total, v.within / 8))
    assert items_needed(1.0, v, 16) < items_needed(1.0, v, 1)
    plan = plan_for(1.0, v, full_size=14042)
    assert plan is not None and plan[0] <= 14042
    k = plan[1]
    assert k == 1 or items_needed(1.0, v, k - 1) > 14042  # the fewest samples that fit


def test_the_mde_is_detected_80_percent_of_the_time():
    """Simulation with known truth: a variant whose expected drop equals the MDE computed from its
    variance is called significant (two-sided z at 5%) in ~80% of 2,000 replications."""
    rng = np.random.default_rng(11)
    n, reps, sd = 400, 2000, 0.3
    v = paired_variance(rng.normal(0, sd, size=(n, 1)))
    drop = min_detectable_drop(v) / 100
    d = rng.normal(-drop, math.sqrt(v.total), size=(reps, n))
    z = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    assert 0.77 <= float(np.mean(np.abs(z) > 1.959964)) <= 0.83


def test_three_items_are_too_few_and_no_flip_is_not_zero_variance():
    v = paired_variance(np.zeros((3, 1)))
    mde = min_detectable_drop(v)
    assert 80 < mde < 100  # one flip in 3 items: only a huge drop would show
    assert too_few_items(v, mde)
    big = paired_variance(np.zeros((5000, 1)))
    assert min_detectable_drop(big) < 0.1 and not too_few_items(big, min_detectable_drop(big))
    assert math.isnan(min_detectable_drop(paired_variance(np.zeros((1, 1)))))
