"""report.json: the whole report's data in one versioned document (schema: report.schema.json next to
this file), for CI pipelines and other tools, and the one source report.md and report.html render from:
`write_report` dumps its `ReportData` with `report_dict`, and the renderers read that document back
through `load`. Percentages on a 0-100 scale, sizes in bytes, null for "no data".

Version 2 (added `generated`, `prefer`, a column's `weighted_differs`, the evidence's `mode` and
`full_size`). A field is only ever added within a version; renaming or removing one raises the version.
`load` reads version 1 too (the added fields take their defaults).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from quantdrop.errors import QuantdropError
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
    Speed,
    VariantColumn,
)

SCHEMA_ID = "quantdrop-report"
VERSION = 2
READS = (1, 2)  # versions `load` understands
LOGLIK_SUFFIX = "@loglik"  # quantdrop.eval.loglik.KEY_SUFFIX: a benchmark scored by log-likelihood
PAIR, TRIPLE = ("low", "high"), ("value", "low", "high")


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) report.json follows."""
    return json.loads(resources.files("quantdrop.report").joinpath("report.schema.json").read_text("utf-8"))


# -- ReportData -> document --------------------------------------------------------------------------
def _interval(t: tuple[float, ...] | None) -> dict[str, float] | None:
    if t is None:
        return None
    return dict(zip(TRIPLE if len(t) == 3 else PAIR, t, strict=True))


def _evidence(e: Evidence | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "agreement": _interval(e.agreement),
        "pairs": e.pairs,
        "items": e.items,
        "right_to_wrong": e.right_to_wrong,
        "wrong_to_right": e.wrong_to_right,
        "min_detectable_drop": e.mde,
        "too_few_items": e.too_few_items,
        "plan": None if e.plan is None else {"items": e.plan[0], "samples": e.plan[1]},
        "mode": e.mode,
        "full_size": e.full_size,
    }


def _cell(c: Cell, e: Evidence | None) -> dict[str, Any]:
    return {
        "mean": c.mean,
        "std": c.std,
        "ci": _interval(c.ci),
        "items": c.n,
        "samples": c.runs,
        "differs": c.differs,
        "complete": c.complete,
        "evidence": _evidence(e),
    }


def _column(col: VariantColumn, res: ResultsTable) -> dict[str, Any]:
    return {
        "label": col.label,
        "average": col.average,
        "weighted_average": col.weighted_avg,
        "drop": col.drop,
        "drop_ci": _interval(col.drop_ci),
        "significant": col.significant,
        "weighted_differs": col.weighted_differs,
        "too_few_items": col.too_few_items,
        "cells": {key: _cell(c, res.evidence.get((key, col.label))) for key, c in col.cells.items()},
    }


def _results(res: ResultsTable | None) -> dict[str, Any] | None:
    if res is None:
        return None
    benches = [
        {
            "key": b.title,
            "label": b.display,
            "weight": b.weight,
            "mode": "loglik" if b.title.endswith(LOGLIK_SUFFIX) else "generate",
            "noise_floor": _interval(res.noise_floor.get(b.title)),
        }
        for b in res.benchmarks
    ]
    return {
        "baseline": res.baseline,
        "ci_level": res.ci_level,
        "target_drop": res.target_drop,
        "benchmarks": benches,
        "columns": [_column(c, res) for c in res.columns],
    }


def report_dict(data: ReportData, generated: str | None = None) -> dict[str, Any]:
    """report.json's content (NaN already null); `generated`: the time stamp the pages show (now)."""
    from quantdrop.eval.results import json_safe

    doc = {
        "schema": SCHEMA_ID,
        "version": VERSION,
        "model": data.model,
        "note": data.note,
        "generated": generated or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "reference_label": data.reference_label,
        "device_sets": [asdict(d) for d in data.device_sets],
        "variants": [
            {
                "label": s.label,
                "size_bytes": s.size_bytes,
                "bpw": s.bpw,
                "placements": {k: asdict(p) for k, p in s.placements.items()},
            }
            for s in data.sizes
        ],
        "results": _results(data.results),
        "proxies": {label: r.to_dict() for label, r in data.proxies.items()},
        "recommendations": [asdict(r) for r in data.recommendations or []],
        "notes": list(data.notes),
        "speed": {label: asdict(s) for label, s in data.speed.items()},
        "speed_machine": data.speed_machine,
        "prefer": data.prefer,
    }
    return json_safe(doc)


def report_json(doc: dict[str, Any]) -> str:
    """The document as report.json's text."""
    return json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False) + "\n"


# -- document -> ReportData --------------------------------------------------------------------------
def _tuple(d: Mapping[str, Any] | None, keys: tuple[str, ...]) -> Any:
    """An interval back as a tuple; null bounds (NaN when written) back to NaN."""
    return None if d is None else tuple(math.nan if d.get(k) is None else float(d[k]) for k in keys)


def _load_evidence(e: Mapping[str, Any], mode: str) -> Evidence:
    plan = e["plan"]
    return Evidence(
        _tuple(e["agreement"], TRIPLE),
        e["right_to_wrong"],
        e["wrong_to_right"],
        e["pairs"],
        e["items"],
        e["min_detectable_drop"],
        e["too_few_items"],
        None if plan is None else (plan["items"], plan["samples"]),
        e.get("mode", mode),
        e.get("full_size", 0),
    )


def _load_cell(c: Mapping[str, Any]) -> Cell:
    mean = math.nan if c["mean"] is None else c["mean"]
    return Cell(mean, c["std"], c["items"], c["samples"], c["differs"], c["complete"], _tuple(c["ci"], PAIR))


def _load_column(c: Mapping[str, Any]) -> VariantColumn:
    return VariantColumn(
        c["label"],
        {k: _load_cell(cell) for k, cell in c["cells"].items()},
        c["average"],
        c["weighted_average"],
        c["drop"],
        _tuple(c["drop_ci"], PAIR),
        c["significant"],
        c.get("weighted_differs"),
        c["too_few_items"],
    )


def _load_results(r: Mapping[str, Any] | None) -> ResultsTable | None:
    if r is None:
        return None
    benches = [
        BenchmarkRow(b["key"], b["weight"], "" if b["label"] == b["key"] else b["label"]) for b in r["benchmarks"]
    ]
    modes = {b["key"]: b["mode"] for b in r["benchmarks"]}
    evidence = {
        (key, c["label"]): _load_evidence(cell["evidence"], modes.get(key, "generate"))
        for c in r["columns"]
        for key, cell in c["cells"].items()
        if cell["evidence"] is not None
    }
    floors = {b["key"]: _tuple(b["noise_floor"], TRIPLE) for b in r["benchmarks"] if b["noise_floor"]}
    return ResultsTable(
        benches,
        [_load_column(c) for c in r["columns"]],
        r["baseline"],
        r["ci_level"],
        evidence,
        floors,
        r["target_drop"],
    )


def _load_proxy(p: Mapping[str, Any]) -> ProxyResult:
    return ProxyResult(**{f.name: math.nan if p.get(f.name) is None else p[f.name] for f in fields(ProxyResult)})


def check_version(doc: Mapping[str, Any]) -> None:
    if not isinstance(doc, Mapping) or doc.get("schema") != SCHEMA_ID:
        raise QuantdropError('not a quantdrop report.json (its "schema" is not "quantdrop-report")')
    if doc.get("version") not in READS:
        raise QuantdropError(
            f"report.json version {doc.get('version')}; this quantdrop reads versions {', '.join(map(str, READS))}"
        )


def load(doc: Mapping[str, Any]) -> ReportData:
    """The document back as the ReportData it was written from (what the renderers read)."""
    check_version(doc)
    return ReportData(
        model=doc["model"],
        note=doc["note"],
        device_sets=[DeviceSet(**d) for d in doc["device_sets"]],
        sizes=[
            SizeRow(v["label"], v["size_bytes"], v["bpw"], {k: Placement(**p) for k, p in v["placements"].items()})
            for v in doc["variants"]
        ],
        results=_load_results(doc["results"]),
        proxies={label: _load_proxy(p) for label, p in doc["proxies"].items()},
        reference_label=doc["reference_label"],
        recommendations=[Recommendation(**r) for r in doc["recommendations"]],
        notes=list(doc["notes"]),
        speed={label: Speed(**s) for label, s in doc["speed"].items()},
        speed_machine=doc["speed_machine"],
        prefer=doc.get("prefer", "quality"),
    )


def validate(doc: Mapping[str, Any]) -> None:
    """QuantdropError unless `doc` follows report.schema.json (with jsonschema when it is installed,
    else its version and top-level sections only)."""
    check_version(doc)
    try:
        import jsonschema
    except ImportError:
        missing = [k for k in schema()["required"] if k not in doc] if doc.get("version") == VERSION else []
        if missing:
            raise QuantdropError(f"report.json lacks {', '.join(missing)}") from None
        return
    if doc.get("version") != VERSION:
        return  # an older version: its own schema is gone; `load` fills what it lacks
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(doc))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(top)"
        raise QuantdropError(f"report.json does not follow its schema at {where}: {error.message}")
