"""write_report: report.json, and rendered from it report.html, report.md, the figures as PNG and the
tables as tidy CSVs, atomically; `render` does the same from a saved report.json."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.report import pages, plots
from quantdrop.report.data import ReportData, ResultsTable
from quantdrop.report.jsonout import load, report_dict, report_json, validate
from quantdrop.report.recommend import recommend
from quantdrop.tempfiles import sweep_stale
from quantdrop.util import atomic_write

CSV_NAMES = {"table1_sizes.csv", "table2_results.csv", "table2_summary.csv", "proxies.csv", "recommendations.csv"}


def _csv(header: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


_SIZES_HEADER = [
    "recipe",
    "size_bytes",
    "bpw",
    "device_set",
    "memory_total_bytes",
    "memory_per_device_bytes",
    "capacity_per_device_bytes",
    "fits",
]


def tidy_csvs(data: ReportData) -> dict[str, str]:
    """Machine-readable tables, one observation a row (raw numbers, no formatting)."""
    out: dict[str, str] = {}
    if data.sizes:
        out["table1_sizes.csv"] = _sizes_csv(data)
    if data.results:
        out["table2_results.csv"] = _results_csv(data.results)
        out["table2_summary.csv"] = _summary_csv(data.results)
    if data.proxies:
        fields = list(next(iter(data.proxies.values())).to_dict())
        out["proxies.csv"] = _csv(
            ["label", *fields], [[label, *r.to_dict().values()] for label, r in data.proxies.items()]
        )
    if data.recommendations:
        out["recommendations.csv"] = _csv(
            ["device_set", "recipe", "reason"], [[r.device_set, r.recipe or "", r.reason] for r in data.recommendations]
        )
    return out


def _sizes_csv(data: ReportData) -> str:
    """Table 1: one row per (recipe, device set); a recipe without placements gets one blank row."""
    devices = {d.name: d for d in data.device_sets}
    rows: list[list[object]] = []
    for s in data.sizes:
        head = [s.label, s.size_bytes, f"{s.bpw:.4f}"]
        rows += [
            [
                *head,
                name,
                p.total_bytes,
                p.per_device_bytes,
                devices[name].capacity_bytes if name in devices else "",
                int(p.fits),
            ]
            for name, p in s.placements.items()
        ] or [head + [""] * 5]
    return _csv(_SIZES_HEADER, rows)


def _results_csv(res: ResultsTable) -> str:
    """Table 2: one row per (benchmark, variant) with a score."""
    return _csv(
        ["benchmark", "label", "weight", "variant", "mean", "std", "n", "runs"],
        [
            [b.title, b.display, b.weight, c.label, cell.mean, _blank(cell.std), cell.n, cell.runs]
            for b in res.benchmarks
            for c in res.columns
            if (cell := c.cells.get(b.title)) is not None
        ],
    )


def _summary_csv(res: ResultsTable) -> str:
    """Table 2's summary: one row per variant (averages, the accuracy drop and its interval)."""
    return _csv(
        ["variant", "average", "weighted_avg", "accuracy_drop_pct", "drop_ci_low", "drop_ci_high", "significant"],
        [
            [
                c.label,
                _blank(c.average),
                _blank(c.weighted_avg),
                _blank(c.drop),
                _blank(c.drop_ci[0] if c.drop_ci else None),
                _blank(c.drop_ci[1] if c.drop_ci else None),
                "" if c.significant is None else int(c.significant),
            ]
            for c in res.columns
        ],
    )


def _blank(v: float | None) -> object:
    return "" if v is None else v


def write_report(out_dir: str | Path, data: ReportData) -> Path:
    """Write the report into out_dir and return the path of report.html: `data` becomes report.json's
    document, and everything else is rendered from that document (`write_document`)."""
    if data.recommendations is None:
        data = replace(data, recommendations=recommend(data))
    return write_document(out_dir, report_dict(data))


def render(path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Re-render a saved report.json (checked against its schema) into out_dir (default: its folder):
    the same report.md, report.html, figures and CSVs the study wrote; returns report.html's path."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as err:
        raise QuantdropError(f"cannot read {path}: {err}") from err
    validate(doc)
    return write_document(path.parent if out_dir is None else out_dir, doc)


def write_document(out_dir: str | Path, doc: dict[str, Any]) -> Path:
    """report.json, and report.md, report.html, figures/*.png and the CSVs rendered from it, atomically;
    files an earlier run left that this report has no data for are removed."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise QuantdropError(f"cannot create the report folder {out}: {err.strerror}") from err
    data = load(doc)
    figures = plots.figures(data)
    (out / "figures").mkdir(exist_ok=True)
    for folder in (out, out / "figures"):  # temporaries of a run killed with SIGKILL
        sweep_stale(folder)
    for name in plots.FIGURES:
        if name in figures:
            atomic_write(out / "figures" / f"{name}.png", figures[name])
        else:
            (out / "figures" / f"{name}.png").unlink(missing_ok=True)  # stale from an earlier run
    csvs = tidy_csvs(data)
    for name in CSV_NAMES:
        if name in csvs:
            atomic_write(out / name, csvs[name])
        else:
            (out / name).unlink(missing_ok=True)
    atomic_write(out / "report.json", report_json(doc))
    atomic_write(out / "report.md", pages.markdown(data, figures))
    atomic_write(out / "report.html", pages.html(data, figures, doc.get("generated", "")))
    return out / "report.html"
