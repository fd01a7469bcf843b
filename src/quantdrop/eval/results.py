"""`quantdrop results`: the paper's table from an evaluation store.

Rows are benchmarks (the paper's order), then Average, Weighted avg. and Accuracy drop; columns
are labels; cells "mean (±std)" across sample runs, as in arXiv 2505.02390 Tables 2-5. With a
baseline, a cell whose paired-bootstrap 95% CI of the difference excludes zero is marked, so the
table says which drops are real.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantdrop.errors import QuantdropError
from quantdrop.eval.store import Store
from quantdrop.stats import (
    PAPER_ORDER,
    Interval,
    accuracy_drop,
    average,
    benchmark_key,
    bootstrap_ci,
    mean_std,
    paired_bootstrap_diff,
    run_accuracies,
    weight_of,
    weighted_average,
)
from quantdrop.util import comma_list

FORMATS = ("md", "csv", "json")


@dataclass
class BenchResult:
    """One label's result on one benchmark, from the store (percentages)."""

    label: str
    benchmark: str
    title: str  # the table label, marked partial: "MATH-500 (311/500)"
    n_items: int
    samples: int
    runs: list[float]  # accuracy of each sample run
    mean: float
    std: float
    ci: Interval
    counts: dict[str, int]  # correct, wrong, unextracted, error, truncated, capped (cut: too long), pending
    loaded_from: str = ""
    weight: float | None = None
    item_means: dict[str, float] = field(default_factory=dict, repr=False)  # for paired comparisons

    @property
    def complete(self) -> bool:
        return self.counts.get("pending", 0) == 0 and self.counts.get("error", 0) == 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("item_means")
        return d


def summarize(store: Store, run_id: int) -> BenchResult:
    """A run's statistics: per-sample-run accuracy, mean ± std, bootstrap CI and counts."""
    run = next(r for r in store.runs() if r.id == run_id)
    samples = int(run.protocol.get("samples", 1))
    ids = store.item_ids(run_id)
    index = {item: k for k, item in enumerate(ids)}
    matrix = np.full((len(ids), samples), np.nan)
    counts: Counter[str] = Counter()
    for row in store.rows(run_id):
        if row.item_id not in index or row.sample >= samples:
            continue
        counts[row.status or "unscored"] += 1
        counts["truncated"] += row.completion.truncated
        counts["capped"] += row.completion.capped
        if row.status in ("correct", "wrong", "unextracted") and row.value is not None:
            matrix[index[row.item_id], row.sample] = row.value
    counts["pending"] = len(ids) * samples - sum(counts[s] for s in ("correct", "wrong", "unextracted", "error"))
    runs = run_accuracies(matrix)
    mean, std = mean_std(runs)
    scored = ~np.isnan(matrix)
    item_means = {item: float(np.nanmean(matrix[k])) for item, k in index.items() if scored[k].any()}
    return BenchResult(
        label=run.label,
        benchmark=run.benchmark,
        title=run.table_label,
        n_items=len(ids),
        samples=samples,
        runs=runs,
        mean=mean,
        std=std,
        ci=bootstrap_ci(matrix),
        counts={
            k: int(counts[k]) for k in ("correct", "wrong", "unextracted", "error", "truncated", "capped", "pending")
        },
        loaded_from=run.loaded_from,
        weight=run.weight,
        item_means=item_means,
    )


@dataclass
class Table:
    labels: list[str]
    benchmarks: list[str]  # keys, in the paper's order
    titles: dict[str, str]
    cells: dict[tuple[str, str], BenchResult]  # (benchmark, label)
    average: dict[str, float]
    weighted: dict[str, float]
    baseline: str | None = None
    drop: dict[str, float] = field(default_factory=dict)  # fraction, of the weighted averages
    # the drop's denominator: the baseline's weighted average over the benchmarks each label shares with it
    drop_base: dict[str, float] = field(default_factory=dict)
    diffs: dict[tuple[str, str], Interval] = field(default_factory=dict)  # (benchmark | "weighted", label)
    notes: list[str] = field(default_factory=list)
    evidence: dict[tuple[str, str], Any] = field(default_factory=dict)  # (benchmark, label) -> eval.evidence.Evidence
    target_drop: float | None = None


def _weights(results: list[BenchResult]) -> dict[str, float]:
    """Each benchmark's weight in the averages; a benchmark also scored by log-likelihood counts once
    (its generative run), its `@loglik` row is shown and compared but not averaged a second time."""
    weights = {r.benchmark: r.weight if r.weight is not None else weight_of(r.benchmark) for r in results}
    return {k: 0.0 if _scored_twice(k, weights) else w for k, w in weights.items()}


def _scored_twice(key: str, keys: Any) -> bool:
    name, sep, mode = key.partition("@")
    return bool(sep) and mode == "loglik" and name in keys


def results_table(
    store: str | Path, baseline: str | None = None, labels: list[str] | None = None, *, target_drop: float | None = None
) -> Table:
    """The paper's table for the labels in `store` (all, in the order first evaluated, by default); with a
    baseline, each difference's evidence (agreement, power; with `target_drop` points, the items and
    samples a benchmark needs to detect that drop)."""
    with Store(store, readonly=True) as db:
        runs = db.runs()
        labels = _chosen_labels(store, [r.label for r in runs], labels, baseline)
        results = [summarize(db, r.id) for r in runs if r.label in labels]
    keys = _paper_order(results)
    cells = {(r.benchmark, r.label): r for r in results}
    weights = _weights(results)
    table = Table(labels=labels, benchmarks=keys, titles={}, cells=cells, average={}, weighted={}, baseline=baseline)
    for key in keys:
        titles = list(dict.fromkeys(cells[(key, lab)].title for lab in labels if (key, lab) in cells))
        table.titles[key] = titles[0] if len(titles) == 1 else f"{titles[0].split(' (')[0]} (item counts differ)"
    for lab in labels:
        # a benchmark of weight 0 (e.g. C-Eval's unscored test split) is shown but not averaged
        scores = {k: cells[(k, lab)].mean for k in keys if (k, lab) in cells and weights[k] != 0}
        table.average[lab] = average(scores)
        table.weighted[lab] = weighted_average(scores, weights)
    if baseline:
        from quantdrop.eval.evidence import evidence_table

        _compare(table, weights)
        table.evidence = evidence_table(store, baseline, labels, target_drop=target_drop)
        table.target_drop = target_drop
    elif target_drop is not None:
        raise QuantdropError("--target-drop needs --baseline: the items needed come from paired differences")
    table.notes += [note for lab in labels if (note := _outcome_note(lab, keys, cells))]
    return table


def _chosen_labels(
    store: str | Path, run_labels: list[str], labels: str | list[str] | None, baseline: str | None
) -> list[str]:
    """The labels asked for (all, in the order first evaluated, by default), the baseline first if missing."""
    known = list(dict.fromkeys(run_labels))
    if not known:
        raise QuantdropError(f"{store} holds no evaluation runs yet")
    if isinstance(labels, str):
        labels = comma_list(labels)
    labels = list(labels or known)
    for name in [*labels, *([baseline] if baseline else [])]:
        if name not in known:
            raise QuantdropError(f"no label {name!r} in {store} (labels: {', '.join(known)})")
    if baseline and baseline not in labels:
        labels.insert(0, baseline)
    return labels


def _paper_order(results: list[BenchResult]) -> list[str]:
    """The benchmarks in the paper's order, then the others in the order first evaluated."""
    keys = list(dict.fromkeys(r.benchmark for r in results))
    rank = {k: i for i, k in enumerate(PAPER_ORDER)}
    first = {k: i for i, k in enumerate(keys)}
    keys.sort(key=lambda k: (rank.get(benchmark_key(k), len(rank)), first[k]))
    return keys


def _outcome_note(lab: str, keys: list[str], cells: dict[tuple[str, str], BenchResult]) -> str:
    """What a label's answers were besides right or wrong (errors, truncated, ...), or "" when nothing."""
    bad: Counter[str] = Counter()
    for k in keys:
        if (k, lab) in cells:
            bad.update({c: n for c, n in cells[(k, lab)].counts.items() if c != "correct" and c != "wrong" and n})
    return f"{lab}: " + ", ".join(f"{n} {c}" for c, n in sorted(bad.items())) if bad else ""


def _compare(table: Table, weights: dict[str, float]) -> None:
    """Accuracy drop and paired-bootstrap differences of each label against the baseline,
    over the benchmarks both have."""
    base = table.baseline
    for lab in table.labels:
        if lab == base:
            continue
        shared = [k for k in table.benchmarks if (k, base) in table.cells and (k, lab) in table.cells]
        common = [k for k in shared if weights[k] != 0]
        for k in shared:
            if _scored_twice(k, weights):  # shown with its own paired CI, not in the average
                table.diffs[(k, lab)] = paired_bootstrap_diff(
                    {k: table.cells[(k, base)].item_means}, {k: table.cells[(k, lab)].item_means}
                )
        if not common:
            continue
        b = weighted_average({k: table.cells[(k, base)].mean for k in common}, weights)
        v = weighted_average({k: table.cells[(k, lab)].mean for k in common}, weights)
        table.drop[lab] = accuracy_drop(b, v)
        table.drop_base[lab] = b
        for k in common:
            table.diffs[(k, lab)] = paired_bootstrap_diff(
                {k: table.cells[(k, base)].item_means}, {k: table.cells[(k, lab)].item_means}
            )
        table.diffs[("weighted", lab)] = paired_bootstrap_diff(
            {k: table.cells[(k, base)].item_means for k in common},
            {k: table.cells[(k, lab)].item_means for k in common},
            weights={k: weights[k] for k in common},
        )
        if len(common) < sum(weights[k] != 0 for k in table.benchmarks):
            table.notes.append(f"{lab}: accuracy drop over the {len(common)} benchmarks it shares with {base}")


# -- formatting -------------------------------------------------------------------------------
def format_markdown(table: Table) -> str:
    """Table 2 as the report shows it (`report.tables.table2`: one renderer, one legend), then the notes."""
    from quantdrop.report.sources import from_results
    from quantdrop.report.tables import evidence_table, table2

    data = from_results(table)
    grids = [g for g in (table2(data), evidence_table(data)) if g]
    text = "\n".join(g.markdown(pad=True) for g in grids)
    return text + "".join(f"\n{n}." for n in table.notes)


def table_dict(table: Table) -> dict[str, Any]:
    return {
        "labels": table.labels,
        "baseline": table.baseline,
        "benchmarks": [
            {
                "benchmark": k,
                "title": table.titles[k],
                "results": {lab: table.cells[(k, lab)].to_dict() for lab in table.labels if (k, lab) in table.cells},
                "diff_vs_baseline": {
                    lab: asdict(table.diffs[(k, lab)]) for lab in table.labels if (k, lab) in table.diffs
                },
            }
            for k in table.benchmarks
        ],
        "average": table.average,
        "weighted_average": table.weighted,
        "accuracy_drop": table.drop,
        "weighted_diff_vs_baseline": {
            lab: asdict(table.diffs[("weighted", lab)]) for lab in table.labels if ("weighted", lab) in table.diffs
        },
        "evidence": [_evidence_dict(k, lab, e) for (k, lab), e in table.evidence.items()],
        "target_drop": table.target_drop,
        "notes": table.notes,
    }


def _evidence_dict(benchmark: str, label: str, e: Any) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "label": label,
        "baseline": e.baseline,
        "mode": e.mode,
        "agreement": asdict(e.agreement.share),
        "pairs": e.agreement.pairs,
        "items": e.agreement.items,
        "right_to_wrong": e.agreement.right_to_wrong,
        "wrong_to_right": e.agreement.wrong_to_right,
        "noise_floor": asdict(e.noise_floor),
        "min_detectable_drop": e.mde,
        "too_few_items": e.too_few_items,
        "plan": None if e.plan is None else {"items": e.plan[0], "samples": e.plan[1]},
    }


_CSV_COLUMNS = [
    "row",
    "label",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "n_items",
    "samples",
    "errors",
    "truncated",
    "unextracted",
    "pending",
    "diff",
    "diff_low",
    "diff_high",
]


def format_csv(table: Table) -> str:
    """Long format: one line per (row, label) with the numbers a spreadsheet wants."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(_CSV_COLUMNS)
    for k in table.benchmarks:
        for lab in table.labels:
            r = table.cells.get((k, lab))
            if r is not None:
                w.writerow(_csv_cell_row(table.titles[k], lab, r, table.diffs.get((k, lab))))
    for lab in table.labels:
        w.writerows(_csv_summary_rows(table, lab))
    return out.getvalue()


def _csv_diff(d: Interval | None) -> tuple[str, str, str]:
    """The difference to the baseline and its interval, blank without one."""
    return (_f(d.value), _f(d.low), _f(d.high)) if d else ("", "", "")


def _csv_cell_row(title: str, lab: str, r: BenchResult, d: Interval | None) -> list[Any]:
    return [
        title,
        lab,
        _f(r.mean),
        _f(r.std),
        _f(r.ci.low),
        _f(r.ci.high),
        r.n_items,
        r.samples,
        r.counts["error"],
        r.counts["truncated"],
        r.counts["unextracted"],
        r.counts["pending"],
        *_csv_diff(d),
    ]


def _csv_summary_rows(table: Table, lab: str) -> list[list[Any]]:
    """One label's Average, Weighted avg. and (with a baseline) Accuracy drop rows."""
    rows = [
        ["Average", lab, _f(table.average[lab]), *[""] * 12],
        ["Weighted avg.", lab, _f(table.weighted[lab]), *[""] * 9, *_csv_diff(table.diffs.get(("weighted", lab)))],
    ]
    if lab in table.drop:
        rows.append(["Accuracy drop", lab, _f(100 * table.drop[lab]), *[""] * 12])
    return rows


def _f(x: float) -> str:
    return "" if x is None or math.isnan(x) else f"{x:.4f}"


def format_table(table: Table, fmt: str = "md") -> str:
    if fmt == "md":
        return format_markdown(table)
    if fmt == "csv":
        return format_csv(table)
    if fmt == "json":
        return json.dumps(json_safe(table_dict(table)), indent=2, allow_nan=False)
    raise QuantdropError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")


def json_safe(x: Any) -> Any:
    """NaN (no data) becomes null: strict JSON has no NaN."""
    if isinstance(x, float):
        return None if math.isnan(x) else x
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    return x
