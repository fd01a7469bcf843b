"""write_report: report.html, report.md, the figures as PNG, and the tables as tidy CSVs, atomically."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

from quantdrop.errors import QuantdropError
from quantdrop.report import htmlpage, plots, tables
from quantdrop.report.data import ReportData
from quantdrop.report.jsonout import report_json
from quantdrop.report.recommend import recommend
from quantdrop.tempfiles import sweep_stale
from quantdrop.util import atomic_write

FIGURE_CAPTIONS = {
    "quality-vs-size": ("Quality against size. Red: the Pareto front (no other variant is both smaller and "
                        "better). Dashed lines: the largest model each device set holds, its memory less the "
                        "KV cache and buffers of Table 1."),
    "benchmark-bars": "Accuracy per benchmark; error bars: std over sampling runs.",
}
CSV_NAMES = {"table1_sizes.csv", "table2_results.csv", "table2_summary.csv", "proxies.csv",
             "recommendations.csv"}


def _csv(header: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def tidy_csvs(data: ReportData) -> dict[str, str]:
    """Machine-readable tables, one observation a row (raw numbers, no formatting)."""
    out: dict[str, str] = {}
    if data.sizes:
        devices = {d.name: d for d in data.device_sets}
        rows: list[list[object]] = []
        for s in data.sizes:
            head = [s.label, s.size_bytes, f"{s.bpw:.4f}"]
            rows += [[*head, name, p.total_bytes, p.per_device_bytes,
                      devices[name].capacity_bytes if name in devices else "", int(p.fits)]
                     for name, p in s.placements.items()] or [head + [""] * 5]
        out["table1_sizes.csv"] = _csv(["recipe", "size_bytes", "bpw", "device_set", "memory_total_bytes",
                                        "memory_per_device_bytes", "capacity_per_device_bytes", "fits"], rows)
    if data.results:
        res = data.results
        out["table2_results.csv"] = _csv(
            ["benchmark", "label", "weight", "variant", "mean", "std", "n", "runs"],
            [[b.title, b.display, b.weight, c.label, cell.mean, _blank(cell.std), cell.n, cell.runs]
             for b in res.benchmarks for c in res.columns if (cell := c.cells.get(b.title)) is not None])
        out["table2_summary.csv"] = _csv(
            ["variant", "average", "weighted_avg", "accuracy_drop_pct", "drop_ci_low", "drop_ci_high",
             "significant"],
            [[c.label, _blank(c.average), _blank(c.weighted_avg), _blank(c.drop),
              _blank(c.drop_ci[0] if c.drop_ci else None), _blank(c.drop_ci[1] if c.drop_ci else None),
              "" if c.significant is None else int(c.significant)] for c in res.columns])
    if data.proxies:
        fields = list(next(iter(data.proxies.values())).to_dict())
        out["proxies.csv"] = _csv(["label", *fields], [[label, *r.to_dict().values()]
                                                     for label, r in data.proxies.items()])
    if data.recommendations:
        out["recommendations.csv"] = _csv(
            ["device_set", "recipe", "reason"],
            [[r.device_set, r.recipe or "", r.reason] for r in data.recommendations])
    return out


def _blank(v: float | None) -> object:
    return "" if v is None else v


def write_report(out_dir: str | Path, data: ReportData) -> Path:
    """Write the report into out_dir and return the path of report.html."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise QuantdropError(f"cannot create the report folder {out}: {err.strerror}") from err
    if data.recommendations is None:
        data = replace(data, recommendations=recommend(data))
    recs = tables.recommendations_table(data.recommendations or [])
    t1, t2, tp = tables.sizes_table(data), tables.results_table(data), tables.proxies_table(data)
    te = tables.evidence_table(data.results) if data.results is not None else None
    figures = [(name, png) for name, png in (("quality-vs-size", plots.quality_vs_size(data)),
                                             ("benchmark-bars", plots.benchmark_bars(data))) if png]
    (out / "figures").mkdir(exist_ok=True)
    for folder in (out, out / "figures"):  # temporaries of a run killed with SIGKILL
        sweep_stale(folder)
    for name, png in figures:
        atomic_write(out / "figures" / f"{name}.png", png)
    for name in set(FIGURE_CAPTIONS) - {name for name, _ in figures}:
        (out / "figures" / f"{name}.png").unlink(missing_ok=True)  # stale from an earlier run
    csvs = tidy_csvs(data)
    for name, text in csvs.items():
        atomic_write(out / name, text)
    for name in CSV_NAMES - set(csvs):
        (out / name).unlink(missing_ok=True)  # stale from an earlier run

    md = [f"# quantdrop report: {data.model}", ""]
    if data.note:
        md += [f"_{data.note}_", ""]
    for heading, table in (("Recommendations", recs), ("Size and memory", t1), ("Accuracy", t2),
                           ("Evidence", te), ("Quality proxies", tp)):
        if table:
            md += [f"## {heading}", "", table.markdown()]
    if figures:
        md += ["## Figures", ""]
        md += [f"![{FIGURE_CAPTIONS[name]}](figures/{name}.png)\n\n*{FIGURE_CAPTIONS[name]}*\n"
               for name, _ in figures]
    if data.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in data.notes] + [""]
    atomic_write(out / "report.md", "\n".join(md))
    atomic_write(out / "report.json", report_json(data))  # the same data, versioned (report/jsonout.py)

    figs = {name: (name, png, FIGURE_CAPTIONS[name]) for name, png in figures}
    sections: list[tuple[str, list]] = [
        ("Recommendations", [recs] if recs else []),
        ("Size and memory", [t for t in (t1,) if t]),
        ("Accuracy", [t for t in (t2,) if t] + [figs[n] for n in ("benchmark-bars",) if n in figs]),
        ("Evidence", [t for t in (te,) if t]),
        ("Quality proxies", [t for t in (tp,) if t]),
        ("Quality against size", [figs[n] for n in ("quality-vs-size",) if n in figs]),
    ]
    atomic_write(out / "report.html", htmlpage.page(data.model, data.note, sections, data.notes))
    return out / "report.html"
