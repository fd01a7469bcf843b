"""report.json: the whole report's data in one versioned document (schema: report.schema.json next to
this file), written by `write_report` from the same `ReportData` that report.md and report.html render,
for CI pipelines and other tools. Percentages on a 0-100 scale, sizes in bytes, null for "no data".

Version 1. A field is only ever added within a version; renaming or removing one raises the version.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from typing import Any

from quantdrop.report.data import Cell, Evidence, ReportData, ResultsTable, VariantColumn

SCHEMA_ID = "quantdrop-report"
VERSION = 1
LOGLIK_SUFFIX = "@loglik"  # quantdrop.eval.loglik.KEY_SUFFIX: a benchmark scored by log-likelihood


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) report.json follows."""
    return json.loads(resources.files("quantdrop.report").joinpath("report.schema.json").read_text("utf-8"))


def _interval(t: tuple[float, ...] | None) -> dict[str, float] | None:
    if t is None:
        return None
    return dict(zip(("value", "low", "high") if len(t) == 3 else ("low", "high"), t, strict=True))


def _evidence(e: Evidence | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"agreement": _interval(e.agreement), "pairs": e.pairs, "items": e.items,
            "right_to_wrong": e.right_to_wrong, "wrong_to_right": e.wrong_to_right,
            "min_detectable_drop": e.mde, "too_few_items": e.too_few_items,
            "plan": None if e.plan is None else {"items": e.plan[0], "samples": e.plan[1]}}


def _cell(c: Cell, e: Evidence | None) -> dict[str, Any]:
    return {"mean": c.mean, "std": c.std, "ci": _interval(c.ci), "items": c.n, "samples": c.runs,
            "differs": c.differs, "complete": c.complete, "evidence": _evidence(e)}


def _column(col: VariantColumn, res: ResultsTable) -> dict[str, Any]:
    return {"label": col.label, "average": col.average, "weighted_average": col.weighted_avg,
            "drop": col.drop, "drop_ci": _interval(col.drop_ci), "significant": col.significant,
            "too_few_items": col.too_few_items,
            "cells": {key: _cell(c, res.evidence.get((key, col.label))) for key, c in col.cells.items()}}


def _results(res: ResultsTable | None) -> dict[str, Any] | None:
    if res is None:
        return None
    benches = [{"key": b.title, "label": b.display, "weight": b.weight,
                "mode": "loglik" if b.title.endswith(LOGLIK_SUFFIX) else "generate",
                "noise_floor": _interval(res.noise_floor.get(b.title))} for b in res.benchmarks]
    return {"baseline": res.baseline, "ci_level": res.ci_level, "target_drop": res.target_drop,
            "benchmarks": benches, "columns": [_column(c, res) for c in res.columns]}


def report_dict(data: ReportData) -> dict[str, Any]:
    """report.json's content (NaN already null)."""
    from quantdrop.eval.results import json_safe

    doc = {
        "schema": SCHEMA_ID, "version": VERSION, "model": data.model, "note": data.note,
        "reference_label": data.reference_label,
        "device_sets": [asdict(d) for d in data.device_sets],
        "variants": [{"label": s.label, "size_bytes": s.size_bytes, "bpw": s.bpw,
                      "placements": {k: asdict(p) for k, p in s.placements.items()}} for s in data.sizes],
        "results": _results(data.results),
        "proxies": {label: r.to_dict() for label, r in data.proxies.items()},
        "recommendations": [asdict(r) for r in data.recommendations or []],
        "notes": list(data.notes),
        "speed": {label: asdict(s) for label, s in data.speed.items()},
        "speed_machine": data.speed_machine,
    }
    return json_safe(doc)


def report_json(data: ReportData) -> str:
    return json.dumps(report_dict(data), indent=1, allow_nan=False, ensure_ascii=False) + "\n"
