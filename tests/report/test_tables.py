"""The paper's Table 1 and Table 2 rendered from the paper's own numbers reproduce its cells."""

from __future__ import annotations

import dataclasses

from quantdrop.report import BenchmarkRow, ReportData, ResultsTable, tables
from tests.report.paper import paper_results


def _row(md: str, first_cell: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_table2_cells_match_the_paper(paper_data) -> None:
    md = tables.results_table(paper_data).markdown()
    assert _row(md, "Benchmark")[1:] == ["FP8 (Official API)", "Q4_K_M", "Q3_K_M", "UD-Q2_K_XL", "DQ3_K_M"]
    # Table 2, DeepSeek-R1, as printed in the paper
    assert _row(md, "MATH 500")[1:] == [
        "95.45 (±0.82)",
        "95.55 (±0.44)",
        "94.15 (±0.68)",
        "95.25 (±0.44)",
        "95.35 (±0.50)",
    ]
    assert _row(md, "MMLU")[1:] == ["90.99", "90.14", "89.87", "89.72", "91.03"]
    assert _row(md, "Weighted avg.")[1:] == ["85.82", "85.24", "84.28", "85.02", "85.53"]
    assert _row(md, "Accuracy drop")[1:] == ["–", "0.68%", "1.80%", "0.94%", "0.34%"]


def test_significant_drops_are_marked_with_their_interval(paper_data) -> None:
    res = paper_data.results
    cols = [
        dataclasses.replace(c, drop_ci=(0.9, 2.7), significant=True)
        if c.label == "Q3_K_M"
        else dataclasses.replace(c, drop_ci=(-0.5, 1.2), significant=False)
        if c.label == "Q4_K_M"
        else c
        for c in res.columns
    ]
    data = dataclasses.replace(paper_data, results=dataclasses.replace(res, columns=cols))
    table = tables.results_table(data)
    drop = _row(table.markdown(), "Accuracy drop")
    assert drop[2] == "0.68% [-0.50, 1.20]"  # not significant: plain
    assert drop[3] == "**1.80% [0.90, 2.70] \\***"  # significant: marked (the one legend's "*")
    html = table.html("t2")
    assert "<td class='strong'>1.80%<br><span class='ci'>[0.90, 2.70] *</span></td>" in html
    assert "<td>0.68%<br><span class='ci'>[-0.50, 1.20]</span></td>" in html


def test_partial_benchmarks_show_their_label() -> None:
    res = paper_results()
    benches = [
        BenchmarkRow(b.title, b.weight, "MATH 500 (311/500)") if b.title == "MATH 500" else b for b in res.benchmarks
    ]
    table = tables.results_table(ReportData("m", results=ResultsTable(benches, res.columns, res.baseline)))
    assert any(row[0] == "MATH 500 (311/500)" for row in table.rows)


def test_table1_marks_what_does_not_fit(paper_data) -> None:
    md = tables.sizes_table(paper_data).markdown()
    assert _row(md, "Model size")[1:] == ["377 GiB", "298 GiB", "281 GiB", "228 GiB", "212 GiB"]
    assert _row(md, "Avg quants (bits per weight)")[1:] == ["4.82", "3.81", "3.59", "2.91", "2.70"]
    # section 4.4: Q4_K_M (71 GB per device) exceeds a 64 GB Ascend 910B, fits an 80 GB H100
    assert _row(md, "MU per device (8x910B-64G, 64.0 GiB)")[1] == "71.0 GiB ✗"
    assert _row(md, "MU per device (8xH100-80G, 80.0 GiB)")[1] == "71.0 GiB"


def test_byte_formatting() -> None:
    assert tables.fmt_bytes(377 * 2**30) == "377 GiB"
    assert tables.fmt_bytes(61.25 * 2**30) == "61.2 GiB"
    assert tables.fmt_bytes(138_000_000) == "132 MiB"
    assert tables.fmt_bytes(2.5 * 2**40) == "2.50 TiB"


def test_html_table_has_its_header_and_rows(paper_data) -> None:
    html = tables.results_table(paper_data).html("t2")
    head = html.split("<thead>")[1].split("</thead>")[0]
    assert head.count("<th>") == 6 and "<th>DQ3_K_M</th>" in head
    assert html.count("<tr>") == 1 + 9 + 3  # header, benchmarks, Average / Weighted avg. / Accuracy drop
