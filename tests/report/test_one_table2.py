"""One Table 2 renderer, one legend: `quantdrop results` and the report show the same cells with the
same marks ("*": the paired CI of the difference from the baseline excludes 0; "†": incomplete).
Before, the report used "†" for a significant drop while `results` used it for incomplete."""

from __future__ import annotations

import re
from pathlib import Path

from quantdrop.cli import main as cli
from quantdrop.eval.results import format_table, results_table
from quantdrop.eval.store import Store
from quantdrop.eval.types import Completion, Score
from quantdrop.report import report_data, tables, write_report
from tests.eval.test_results import write_run


def _rows(md: str) -> dict[str, list[str]]:
    cells = (
        [c.strip() for c in line.strip().strip("|").split("|")] for line in md.splitlines() if line.startswith("| ")
    )
    return {c[0]: c[1:] for c in cells}


def _store(tmp_path: Path) -> Path:
    path = tmp_path / "eval.sqlite"
    with Store(path) as st:
        write_run(st, "FP8", "mmlu", "MMLU", 8, 1.0, [[1]] * 8)
        write_run(st, "Q2", "mmlu", "MMLU", 8, 1.0, [[0]] * 8)  # surely worse: a significant drop
        write_run(st, "FP8", "gpqa", "GPQA Diamond", 4, 1.0, [[1], [0], [1], [0]])
        run = st.open_run(
            label="Q2",
            benchmark="gpqa",
            title="GPQA Diamond",
            full_size=4,
            weight=1.0,
            fingerprint={"kind": "openai", "model": "Q2", "endpoints": ["http://x"]},
            protocol={"samples": 1},
        )
        st.add_items(run, [f"gpqa-{i}" for i in range(4)])  # half answered: incomplete
        for i, ok in enumerate((1, 0)):  # as FP8 answered them
            st.put_response(run, f"gpqa-{i}", 0, 0, Completion(text=str(ok)))
            st.put_score(run, f"gpqa-{i}", 0, Score(float(ok), "correct" if ok else "wrong"))
    return path


def test_results_and_report_render_the_same_table2(tmp_path: Path, capsys) -> None:
    store = _store(tmp_path)
    table = results_table(store, baseline="FP8")
    printed = format_table(table, "md")
    data = report_data("m", results=table)
    report_md = tables.results_table(data).markdown() + tables.evidence_table(data.results).markdown()
    assert _rows(printed) == _rows(report_md)
    assert "|---|---:|---:|" in report_md  # GitHub Markdown: numbers right-aligned
    assert re.search(r"^\|-+\|-+:\|-+:\|$", printed, re.M)  # padded for a terminal, same alignment
    rows = _rows(printed)
    assert rows["MMLU"] == ["100.00", "0.00 *"]
    assert rows["GPQA Diamond"] == ["50.00", "50.00 †"]
    assert rows["Accuracy drop"][1].startswith("**") and rows["Accuracy drop"][1].endswith("\\***")
    legend = [line for line in printed.splitlines() if line.startswith(("* ", "† "))]
    assert legend == [line for line in report_md.splitlines() if line.startswith(("* ", "† "))]
    assert [line[0] for line in legend] == ["*", "†"]
    assert "incomplete" in legend[1] and "excludes 0" in legend[0]
    # the CLI prints that same table; the written report carries the same legend
    assert cli(["results", "--store", str(store), "--baseline", "FP8"]) == 0
    assert _rows(capsys.readouterr().out) == rows
    write_report(tmp_path / "rep", report_data("m", results=table))
    written = (tmp_path / "rep" / "report.md").read_text()
    assert all(line in written for line in legend)
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "incomplete: requests pending or failed" in html and "significant drop" not in html


def test_the_report_marks_no_significant_drop_with_the_incomplete_symbol(paper_data) -> None:
    import dataclasses

    res = paper_data.results
    cols = [dataclasses.replace(c, drop_ci=(0.9, 2.7), significant=True) for c in res.columns]
    data = dataclasses.replace(paper_data, results=dataclasses.replace(res, columns=cols))
    md = tables.results_table(data).markdown()
    assert tables.INCOMPLETE not in md  # every run complete: no "†" anywhere, the drop is "*"
    assert all(c.endswith("\\***") for c in _rows(md)["Accuracy drop"][2:])
