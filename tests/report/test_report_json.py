"""report.json: written next to report.md/html from the same ReportData, valid against its versioned schema
(checked with jsonschema, a validator nobody here wrote), and carrying the evidence."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest

from quantdrop.eval.results import results_table
from quantdrop.report import report_data, write_report
from quantdrop.report.jsonout import VERSION, report_dict, schema
from tests.report.paper import illustrative_proxies
from tests.report.test_one_table2 import _store

jsonschema = pytest.importorskip("jsonschema")


def _validate(doc: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.Draft202012Validator(schema()).validate(doc)


def test_the_paper_report_json_validates_and_has_every_section(paper_data, tmp_path: Path) -> None:
    data = replace(paper_data, proxies=illustrative_proxies())
    write_report(tmp_path, data)
    doc = json.loads((tmp_path / "report.json").read_text())
    _validate(doc)
    assert (doc["schema"], doc["version"]) == ("quantdrop-report", VERSION)
    assert [v["label"] for v in doc["variants"]] == [s.label for s in data.sizes]
    assert doc["recommendations"] and doc["proxies"]["Q4_K_M"]["kld_mean"] == pytest.approx(0.012)
    col = doc["results"]["columns"][1]
    assert set(col) >= {"drop", "drop_ci", "significant", "too_few_items", "cells"}


def test_a_store_report_json_carries_agreement_and_power(tmp_path: Path) -> None:
    table = results_table(_store(tmp_path), baseline="FP8", target_drop=1.0)
    doc = report_dict(report_data("m", results=table))
    _validate(doc)
    q2 = next(c for c in doc["results"]["columns"] if c["label"] == "Q2")
    mmlu = q2["cells"]["mmlu"]
    assert mmlu["evidence"]["agreement"]["value"] == 0.0  # every answer changed: 8 of 8 flipped
    assert mmlu["evidence"]["right_to_wrong"] == 8 and mmlu["differs"] is True
    assert doc["results"]["target_drop"] == 1.0 and doc["results"]["benchmarks"][0]["mode"] == "generate"


def test_the_schema_rejects_what_it_does_not_describe(paper_data) -> None:
    doc = report_dict(paper_data)
    for broken in ({"version": VERSION + 1}, {"results": {"columns": []}}, {"extra": 1}):
        bad = copy.deepcopy(doc) | broken
        with pytest.raises(jsonschema.ValidationError):
            _validate(bad)


def test_speed_goes_into_table_1_and_report_json(paper_data, tmp_path: Path) -> None:
    from quantdrop.report.sources import from_speed
    from quantdrop.speed import SpeedResult, Throughput

    machine = {"cpu": "Test CPU", "threads": 2, "gpus": []}
    results = {
        s.label: SpeedResult(
            s.label,
            f"{s.label}.gguf",
            "gguf",
            machine,
            {},
            pp=Throughput("pp512", [100.0 + i, 102.0 + i]),
            tg=Throughput("tg128", [10.0 + i, 10.0 + i]),
        )
        for i, s in enumerate(paper_data.sizes[1:])
    }
    data = replace(paper_data, **from_speed(results))
    write_report(tmp_path, data)
    doc = json.loads((tmp_path / "report.json").read_text())
    _validate(doc)
    second = paper_data.sizes[1].label
    assert doc["speed"][second]["pp"] == pytest.approx(101.0) and doc["speed_machine"].startswith("Test CPU")
    md = (tmp_path / "report.md").read_text()
    row = next(line for line in md.splitlines() if "Speed pp512" in line)
    assert "Test CPU, 2 threads, no GPU" in row and "101.0 ± 1.4" in row
    assert "–" in row  # the first variant was not measured
