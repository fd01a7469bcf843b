"""The study's report data (plan, evaluation table, proxies, its notes) and its closing summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantdrop.report import ReportData, recommend
from quantdrop.report.sources import report_data
from quantdrop.study import BASELINE
from quantdrop.util import fmt_bytes


def build_report_data(
    plan: Any,
    table: Any | None,
    proxies: dict[str, Any],
    *,
    note: str = "",
    demo: bool = False,
    extra_notes: tuple[str, ...] = (),
    speed: dict[str, Any] | None = None,
    prefer: str = "quality",
) -> ReportData:
    """The report's data (report.sources does the mapping), with the study's own notes."""
    notes = []
    if demo:
        notes.append(
            "Embedded demo: a small sample of each benchmark (first items, one sample, short answers) "
            "on a 135M-parameter model; it shows the pipeline, not the paper's accuracy levels. "
            "MMLU is scored by log-likelihood on 150 items instead (lm-evaluation-harness's "
            "mmlu_continuation, acc_norm), so that agreement and power rest on enough items to say something."
        )
    notes.append(
        f"Memory plan at a context of {plan.ctx} tokens x {plan.parallel} sequence(s), "
        f"KV cache {plan.kv_type}, layout {plan.kv_layout}."
    )
    return report_data(
        plan.model,
        plan=plan,
        results=table,
        proxies=proxies,
        note=note,
        notes=[*notes, *extra_notes],
        reference_label=BASELINE,
        speed=speed,
        prefer=prefer,
    )


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
            for p in (row.placements.get(d.name) for d in data.device_sets)
            if p is not None
        )
        lines.append(f"{row.label:<12} {fmt_bytes(row.size_bytes):>10} {row.bpw:5.2f}{fits}")
    if table is not None:
        from quantdrop.eval.results import format_table

        lines += ["", format_table(table, "md").rstrip()]
    if data.proxies:
        lines += ["", f"{'variant':<12} {'PPL':>8} {'KL mean':>9} {'KL p99':>8} {'same top-1':>10}"]
        for label, p in data.proxies.items():
            lines.append(f"{label:<12} {p.ppl:8.3f} {p.kld_mean:9.5f} {p.kld_p99:8.4f} {p.same_top * 100:9.2f}%")
    lines.append("")
    for rec in data.recommendations or recommend(data):
        lines.append(rec.line())
    return "\n".join(lines)
