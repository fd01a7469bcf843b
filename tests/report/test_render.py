"""report.md and report.html are rendered from report.json: a saved report.json renders to the same pages
the study wrote, every value they show comes from the document, and every accuracy drop carries its
interval or the "too few items" mark."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.eval.results import results_table
from quantdrop.eval.store import Store
from quantdrop.report import recommend, render, render_html, render_markdown, report_data, tables, write_report
from quantdrop.report.jsonout import load, report_dict, validate
from tests.eval.test_results import write_run
from tests.report.paper import illustrative_proxies, illustrative_speed, paper_sizes


def _store(tmp_path: Path) -> Path:
    """FP8 the baseline; Q4 nearly the same, Q2 surely worse, Q8 with 3 items: too few to say anything."""
    path = tmp_path / "eval.sqlite"
    with Store(path) as st:
        write_run(st, "FP8", "mmlu", "MMLU", 40, 1.0, [[1, 1]] * 30 + [[0, 0]] * 10)
        write_run(st, "Q4", "mmlu", "MMLU", 40, 1.0, [[1, 1]] * 29 + [[0, 1]] + [[0, 0]] * 10)
        write_run(st, "Q2", "mmlu", "MMLU", 40, 1.0, [[1, 0]] * 15 + [[0, 0]] * 25)
        write_run(st, "Q8", "mmlu", "MMLU", 40, 1.0, [[1, 1], [0, 1], [1, 1]])
        write_run(st, "FP8", "gpqa", "GPQA Diamond", 20, 0.5, [[1, 0]] * 10 + [[0, 0]] * 10)
        write_run(st, "Q2", "gpqa", "GPQA Diamond", 20, 0.5, [[0, 0]] * 20)
    return path


def _study_data(tmp_path: Path):
    """What the study's report step hands write_report: sizes, results with evidence, proxies, speed."""
    table = results_table(_store(tmp_path), baseline="FP8", target_drop=1.0)
    sizes = [replace(s, label=label) for s, label in zip(paper_sizes(), ("FP8", "Q8", "Q4", "Q2"), strict=False)]
    proxies = dict(zip(("Q8", "Q4", "Q2"), illustrative_proxies().values(), strict=False))
    speed = illustrative_speed()
    speed["speed"] = dict(zip(("FP8", "Q8", "Q4", "Q2"), speed["speed"].values(), strict=False))
    data = report_data("m", results=table, proxies=proxies, notes=["a note"])
    return replace(data, sizes=sizes, device_sets=[], **speed)


def test_a_saved_report_json_renders_the_pages_the_study_wrote(tmp_path: Path) -> None:
    first = write_report(tmp_path / "study", _study_data(tmp_path)).parent
    doc = json.loads((first / "report.json").read_text())
    validate(doc)
    assert render_markdown(doc) == (first / "report.md").read_text()
    assert render_html(doc) == (first / "report.html").read_text()
    again = render(first / "report.json", tmp_path / "again").parent
    for name in ("report.md", "report.html", "report.json", "table2_summary.csv", "figures/quality-vs-speed.png"):
        assert (again / name).read_bytes() == (first / name).read_bytes(), name


def test_the_document_holds_everything_the_pages_show(paper_data) -> None:
    """ReportData -> report.json -> ReportData loses nothing: the renderers can show nothing it lacks."""
    data = replace(paper_data, proxies=illustrative_proxies(), **illustrative_speed())
    data = replace(data, recommendations=recommend(data))
    assert data.recommendations and load(report_dict(data)) == data


def test_the_pages_show_the_documents_values(paper_data, tmp_path: Path) -> None:
    doc = report_dict(replace(paper_data, **illustrative_speed()))
    doc["results"]["columns"][1]["cells"]["MMLU"]["mean"] = 12.34
    doc["speed"]["Q3_K_M"]["tg"] = 98.7
    md, page = render_markdown(doc), render_html(doc)
    for text in (md, page):
        assert "12.34" in text and "98.7 ± 0.3" in text


def test_every_accuracy_drop_has_its_interval_or_too_few_items(tmp_path: Path) -> None:
    data = _study_data(tmp_path)
    md = render_markdown(report_dict(replace(data, recommendations=[])))
    drop = next(line for line in md.splitlines() if line.startswith("| Accuracy drop |"))
    cells = [c.strip() for c in drop.strip("|").split("|")][1:]
    assert cells[0] == tables.DASH  # the baseline
    for cell in cells[1:]:
        assert re.search(r"\[-?\d+\.\d\d, -?\d+\.\d\d\]", cell) or cell == tables.TOO_FEW, cell
    assert tables.TOO_FEW in cells and any("[" in c for c in cells)  # both kinds are exercised


def test_a_foreign_or_newer_document_is_one_clear_error(tmp_path: Path, paper_data) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"schema": "something else"}))
    with pytest.raises(QuantdropError, match=r"not a quantdrop report\.json"):
        render(path, tmp_path / "out")
    path.write_text(json.dumps(report_dict(paper_data) | {"version": 99}))
    with pytest.raises(QuantdropError, match="version 99"):
        render(path, tmp_path / "out")
    pytest.importorskip("jsonschema")
    broken = report_dict(paper_data)
    broken["variants"][0]["size_bytes"] = "big"
    path.write_text(json.dumps(broken))
    with pytest.raises(QuantdropError, match="variants/0/size_bytes"):
        render(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_real_study_report_renders_again_from_its_report_json(demo_model: Path, tmp_path: Path) -> None:
    """The study's own report step (embedded model, one variant, proxies and speed, no evaluation)."""
    from quantdrop.study import study

    out = tmp_path / "study"
    study(
        demo_model,
        recipes="Q8_0",
        out=out,
        skip_eval=True,
        proxy_chunks=1,
        proxy_ctx=128,
        threads=2,
        speed_prompt=16,
        speed_gen=8,
        speed_repeat=1,
        progress=False,
    )
    doc = json.loads((out / "report.json").read_text())
    validate(doc)
    assert doc["speed"] and (out / "figures" / "quality-vs-speed.png").is_file()  # KL against tokens/s
    assert render_markdown(doc) == (out / "report.md").read_text()
    assert render_html(doc) == (out / "report.html").read_text()
