"""Fill ReportData from the other verbs' results: `quantdrop.plan.Plan`, `quantdrop.eval.results.Table`
and the proxies' `ProxyResult`s (what `quantdrop study` calls)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from quantdrop.proxy_result import ProxyResult
from quantdrop.report.data import (
    BenchmarkRow,
    Cell,
    DeviceSet,
    Evidence,
    Placement,
    Recommendation,
    ReportData,
    ResultsTable,
    SizeRow,
    VariantColumn,
)

if TYPE_CHECKING:
    from quantdrop.eval.results import Table
    from quantdrop.plan import Plan
    from quantdrop.stats import Interval


def from_plan(plan: Plan) -> tuple[list[DeviceSet], list[SizeRow]]:
    """Table 1 from a plan: one SizeRow per recipe, a Placement per device set."""
    devices: dict[str, DeviceSet] = {}
    rows = []
    for r in plan.recipes:
        placements = {}
        for fit in r.devices:
            devices.setdefault(fit.spec, DeviceSet(fit.spec, fit.count, fit.capacity_bytes))
            placements[fit.spec] = Placement(fit.total_bytes, fit.bytes_per_device, fit.fits)
        rows.append(SizeRow(r.recipe, r.size_bytes, r.bits_per_weight, placements))
    return list(devices.values()), rows


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _differs(diff: Interval | None) -> bool | None:
    return None if diff is None or math.isnan(diff.low) else diff.excludes_zero


def from_results(table: Table, level: float = 0.95) -> ResultsTable:
    """Table 2 from `quantdrop.eval.results.results_table`: the drop and its paired CI in percent.

    The store's paired bootstrap gives variant minus baseline in points on the weighted average; the
    relative drop's interval is that interval divided by the baseline's weighted average over the same
    benchmarks (those the variant shares with it, as the drop itself), negated. A
    drop is significant when the whole interval lies below zero (the variant is surely worse)."""
    benches = _bench_rows(table)
    columns = [_column(table, lab) for lab in table.labels]
    evidence, floors = _evidence(table)
    return ResultsTable(benches, columns, table.baseline, level, evidence, floors, table.target_drop)


def _bench_rows(table: Table) -> list[BenchmarkRow]:
    """One row per benchmark: its weight as the store gave it, else the paper's."""
    from quantdrop.stats import weight_of

    benches = []
    for key in table.benchmarks:
        given = [c.weight for (k, _), c in table.cells.items() if k == key and c.weight is not None]
        weight = given[0] if given else weight_of(key)
        benches.append(BenchmarkRow(key, weight, table.titles.get(key, key)))
    return benches


def _column(table: Table, lab: str) -> VariantColumn:
    """One variant's cells, averages, and drop with its interval (relative to the baseline's weighted average)."""
    cells = {
        key: Cell(
            c.mean,
            c.std if c.samples > 1 else None,
            c.n_items,
            c.samples,
            _differs(table.diffs.get((key, lab))),
            c.complete,
            _finite_pair(c.ci),
        )
        for key in table.benchmarks
        if (c := table.cells.get((key, lab))) is not None
    }
    drop = _finite(table.drop.get(lab))
    ci, significant = None, None
    diff = table.diffs.get(("weighted", lab))
    base_w = table.drop_base.get(lab)
    if diff is not None and base_w and not math.isnan(diff.low):
        # a drop is at most 100% (accuracy cannot go below 0)
        ci = (-100.0 * diff.high / base_w, min(100.0, -100.0 * diff.low / base_w))
        significant = diff.high < 0
    few = [e.too_few_items for (_, label), e in table.evidence.items() if label == lab]
    return VariantColumn(
        lab,
        cells,
        _finite(table.average.get(lab)),
        _finite(table.weighted.get(lab)),
        None if drop is None else 100.0 * drop,
        ci,
        significant,
        _differs(diff),
        bool(few) and all(few),
    )


def _finite_pair(i: Interval) -> tuple[float, float] | None:
    return None if math.isnan(i.low) else (i.low, i.high)


def _triple(i: Interval) -> tuple[float, float, float]:
    return (i.value, i.low, i.high)


def _evidence(table: Table) -> tuple[dict[tuple[str, str], Evidence], dict[str, tuple[float, float, float]]]:
    """The store's agreement and power (quantdrop.eval.evidence) keyed by benchmark title, as Table 2 is."""
    out, floors = {}, {}
    for (key, lab), e in table.evidence.items():
        out[key, lab] = Evidence(
            _triple(e.agreement.share),
            e.agreement.right_to_wrong,
            e.agreement.wrong_to_right,
            e.agreement.pairs,
            e.agreement.items,
            _finite(e.mde),
            e.too_few_items,
            e.plan,
            e.mode,
            e.full_size,
        )
        if not math.isnan(e.noise_floor.value):
            floors[key] = _triple(e.noise_floor)
    return out, floors


def report_data(
    model: str,
    *,
    plan: Plan | None = None,
    results: Table | None = None,
    proxies: Mapping[str, ProxyResult] | None = None,
    note: str = "",
    notes: Iterable[str] = (),
    reference_label: str = "reference",
    recommendations: list[Recommendation] | None = None,
    speed: Mapping[str, Any] | None = None,
    prefer: str = "quality",
) -> ReportData:
    """Everything the study has, as one ReportData (recommendations derived when not given)."""
    devices, sizes = from_plan(plan) if plan is not None else ([], [])
    res = from_results(results) if results is not None else None
    return ReportData(
        model=model,
        note=note,
        device_sets=devices,
        sizes=sizes,
        results=res,
        proxies=dict(proxies or {}),
        reference_label=reference_label,
        recommendations=recommendations,
        notes=[*notes, *(results.notes if results is not None else [])],
        prefer=prefer,
        **from_speed(speed or {}),
    )


def from_speed(results: Mapping[str, Any]) -> dict[str, Any]:
    """quantdrop.speed's SpeedResults -> the report's Speed per variant and the machine's name."""
    from quantdrop.report.data import Speed

    speeds, machine = {}, ""
    for label, r in results.items():
        pp, tg = r.pp, r.tg
        speeds[label] = Speed(
            pp.test if pp else "pp",
            pp.mean if pp else None,
            pp.std if pp else None,
            tg.test if tg else "tg",
            tg.mean if tg else None,
            tg.std if tg else None,
            "in-process" if r.kind == "gguf" else f"engine {r.source}",
        )
        if r.kind == "gguf" and not machine:
            m = r.machine
            gpus = ", ".join(m.get("gpus") or []) or "no GPU"
            machine = f"{m.get('cpu')}, {m.get('threads')} threads, {gpus}"
    return {"speed": speeds, "speed_machine": machine or "through each variant's engine"}
