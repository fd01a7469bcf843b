"""The evidence behind each variant-minus-baseline difference, from an evaluation store: answer agreement
(quantdrop.agreement), the baseline's own agreement across samples (the noise floor) and the power of the
paired comparison (quantdrop.power). Computation only; the tables render it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantdrop.agreement import Agreement, Answers, agreement, answer_key, self_agreement
from quantdrop.errors import QuantdropError
from quantdrop.eval.store import Run, Store
from quantdrop.power import PairedVariance, min_detectable_drop, paired_variance, plan_for, too_few_items
from quantdrop.stats import Interval


@dataclass(frozen=True)
class Evidence:
    """One label against the baseline on one benchmark."""

    benchmark: str
    label: str
    baseline: str
    mode: str  # "generate" (the paper's protocol) or "loglik"
    agreement: Agreement
    noise_floor: Interval  # the baseline's agreement with itself across samples (NaN: one sample)
    variance: PairedVariance
    mde: float  # minimal detectable drop, percentage points (alpha 0.05, 80% power)
    too_few_items: bool
    full_size: int
    plan: tuple[int, int] | None = None  # (items, samples) to detect the target drop; None: not reachable
    target_drop: float | None = None


def run_mode(run: Run) -> str:
    return str(run.protocol.get("mode", "generate"))


def read_answers(store: Store, run_id: int) -> Answers:
    """A run's scored answers, keyed by (item, sample), for agreement."""
    return {
        (item, k): (answer_key(extracted, status), status == "correct")
        for item, k, status, extracted in store.answers(run_id)
    }


def _diffs(baseline: Answers, variant: Answers) -> np.ndarray:
    """Items x samples of variant-minus-baseline correctness on the pairs both answered (NaN: missing)."""
    pairs = sorted(set(baseline) & set(variant))
    rows: dict[str, int] = {}
    for item, _ in pairs:
        rows.setdefault(item, len(rows))
    m = np.full((len(rows), 1 + max((k for _, k in pairs), default=0)), np.nan)
    for item, k in pairs:
        m[rows[item], k] = float(variant[item, k][1]) - float(baseline[item, k][1])
    return m


def compare(
    baseline: Answers, variant: Answers, *, full_size: int, target_drop: float | None = None
) -> tuple[Agreement, PairedVariance, float, bool, tuple[int, int] | None]:
    """Agreement, variance parts, minimal detectable drop, "too few items" and the plan for a target drop."""
    agree = agreement(baseline, variant)
    var = paired_variance(_diffs(baseline, variant))
    mde = min_detectable_drop(var)
    plan = plan_for(target_drop, var, full_size) if target_drop else None
    return agree, var, mde, too_few_items(var, mde), plan


def evidence_table(
    store: str | Path, baseline: str, labels: list[str] | None = None, *, target_drop: float | None = None
) -> dict[tuple[str, str], Evidence]:
    """(benchmark, label) -> Evidence for every label (but the baseline) that shares a benchmark with it."""
    if target_drop is not None and not (0 < target_drop <= 100):
        raise QuantdropError(f"--target-drop must be in (0, 100] percentage points, got {target_drop}")
    with Store(store, create=False) as db:
        runs = db.runs()
        base_runs = {r.benchmark: r for r in runs if r.label == baseline}
        if not base_runs:
            raise QuantdropError(f"baseline {baseline!r} has no runs in {store}")
        out: dict[tuple[str, str], Evidence] = {}
        floors: dict[str, tuple[Answers, Interval]] = {}
        for run in runs:
            base = base_runs.get(run.benchmark)
            if run.label == baseline or base is None or (labels and run.label not in labels):
                continue
            if run_mode(run) != run_mode(base):
                continue  # a loglik run is never compared with a generative one
            if run.benchmark not in floors:
                answers = read_answers(db, base.id)
                floors[run.benchmark] = (answers, self_agreement(answers))
            base_answers, floor = floors[run.benchmark]
            agree, var, mde, few, plan = compare(
                base_answers, read_answers(db, run.id), full_size=run.full_size, target_drop=target_drop
            )
            out[run.benchmark, run.label] = Evidence(
                run.benchmark,
                run.label,
                baseline,
                run_mode(run),
                agree,
                floor,
                var,
                mde,
                few,
                run.full_size,
                plan,
                target_drop,
            )
        return out


def describe_power(ev: Evidence) -> str:
    """One phrase for a difference's power: "too few items (3)" or "could have detected >= 2.8 points"."""
    if ev.too_few_items:
        return f"too few items ({ev.variance.items})"
    return f"could have detected >= {ev.mde:.1f} points" if not math.isnan(ev.mde) else "no paired items"
