"""Turns the study's parts (plan, evaluation table, proxies) into the report's data, and a closing summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantdrop.report import (
    BenchmarkRow,
    Cell,
    DeviceSet,
    Placement,
    ReportData,
    ResultsTable,
    SizeRow,
    VariantColumn,
)
from quantdrop.report.tables import fmt_bytes

BASELINE = "reference"


def _sizes(plan: Any) -> tuple[list[DeviceSet], list[SizeRow]]:
    sets: dict[str, DeviceSet] = {}
    rows = []
    for r in plan.recipes:
        placements = {}
        for fit in r.devices:
            sets.setdefault(fit.spec, DeviceSet(fit.spec, fit.count, fit.capacity_bytes))
            placements[fit.spec] = Placement(fit.total_bytes, fit.bytes_per_device, fit.fits)
        rows.append(SizeRow(r.recipe, r.size_bytes, r.bits_per_weight, placements))
    return list(sets.values()), rows


def _results(table: Any) -> ResultsTable:
    rows = []
    for key in table.benchmarks:
        title = table.titles[key]
        first = next(table.cells[(key, lab)] for lab in table.labels if (key, lab) in table.cells)
        weight = first.weight if first.weight is not None else 1.0
        rows.append(BenchmarkRow(title=key, weight=weight, label=title))
    columns = []
    for lab in table.labels:
        cells = {}
        for key in table.benchmarks:
            r = table.cells.get((key, lab))
            if r is not None:
                cells[key] = Cell(mean=r.mean, std=r.std if r.samples > 1 else None, n=r.n_items, runs=r.samples)
        drop = drop_ci = significant = None
        if table.baseline and lab != table.baseline and lab in table.drop:
            drop = table.drop[lab] * 100
            diff = table.diffs.get(("weighted", lab))
            base = table.weighted.get(table.baseline)
            if diff is not None and base:
                drop_ci = (-diff.high / base * 100, -diff.low / base * 100)
                significant = diff.excludes_zero
        columns.append(VariantColumn(lab, cells, average=table.average.get(lab),
                                     weighted_avg=table.weighted.get(lab), drop=drop, drop_ci=drop_ci,
                                     significant=significant))
    return ResultsTable(benchmarks=rows, columns=columns, baseline=table.baseline)


def build_report_data(plan: Any, table: Any | None, proxies: dict[str, Any], *, note: str = "",
                      demo: bool = False, extra_notes: tuple[str, ...] = ()) -> ReportData:
    device_sets, sizes = _sizes(plan)
    notes = list(table.notes) if table is not None else []
    if demo:
        notes.append("Embedded demo: a small sample of each benchmark (first items, one sample, short answers) "
                     "on a 135M-parameter model; it shows the pipeline, not the paper's accuracy levels.")
    notes.append(f"Memory plan at a context of {plan.ctx} tokens x {plan.parallel} sequence(s), "
                 f"KV cache {plan.kv_type}, layout {plan.kv_layout}.")
    notes += extra_notes
    return ReportData(model=plan.model, note=note, device_sets=device_sets, sizes=sizes,
                      results=_results(table) if table is not None else None, proxies=dict(proxies),
                      reference_label=BASELINE, notes=notes)


def summary_text(data: ReportData, table: Any | None, report: Path) -> str:
    """The closing summary: sizes and fit, accuracy, proxies, recommendations."""
    lines = [f"quantdrop study: {data.model}"]
    if data.note:
        lines.append(f"note: {data.note}")
    lines.append("")
    head = f"{'variant':<12} {'size':>10} {'bpw':>5}" + "".join(f"  {d.name:>18}" for d in data.device_sets)
    lines.append(head)
    for row in data.sizes:
        fits = "".join(
            f"  {fmt_bytes(p.per_device_bytes) + ('/dev ok' if p.fits else '/dev NO'):>18}"
            for p in (row.placements.get(d.name) for d in data.device_sets) if p is not None)
        lines.append(f"{row.label:<12} {fmt_bytes(row.size_bytes):>10} {row.bpw:5.2f}{fits}")
    if table is not None:
        from quantdrop.eval.results import format_table

        lines += ["", format_table(table, "md").rstrip()]
    if data.proxies:
        lines += ["", f"{'variant':<12} {'PPL':>8} {'KL mean':>9} {'KL p99':>8} {'same top-1':>10}"]
        for label, p in data.proxies.items():
            lines.append(f"{label:<12} {p.ppl:8.3f} {p.kld_mean:9.5f} {p.kld_p99:8.4f} {p.same_top * 100:9.2f}%")
    from quantdrop.report import recommend

    lines.append("")
    for rec in data.recommendations or recommend(data):
        lines.append(f"{rec.device_set}: {rec.recipe or 'nothing fits'} - {rec.reason}")
    return "\n".join(lines)
