"""write_report: every file, tidy CSVs that round-trip the data, partial reports, clean failures."""

from __future__ import annotations

import csv
import dataclasses

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.report import ReportData, write_report
from tests.report.paper import GIB, illustrative_proxies


def _csv(path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_full_report_files(tmp_path, paper_data) -> None:
    data = dataclasses.replace(paper_data, proxies=illustrative_proxies())
    page = write_report(tmp_path / "out", data)
    out = page.parent
    assert page.name == "report.html"
    names = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    assert names == {
        "report.html",
        "report.md",
        "report.json",
        "table1_sizes.csv",
        "table2_results.csv",
        "table2_summary.csv",
        "proxies.csv",
        "recommendations.csv",
        "figures",
        "figures/quality-vs-size.png",
        "figures/benchmark-bars.png",
    }  # and no temporary files left behind
    for png in out.glob("figures/*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "![" in md and "(figures/quality-vs-size.png)" in md and "| Weighted avg. | 85.82 |" in md
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 2 and "figures/" not in html  # self-contained


def test_csvs_round_trip_the_numbers(tmp_path, paper_data) -> None:
    out = write_report(tmp_path, dataclasses.replace(paper_data, proxies=illustrative_proxies())).parent
    sizes = _csv(out / "table1_sizes.csv")
    assert len(sizes) == 5 * 2
    q4 = {r["device_set"]: r for r in sizes if r["recipe"] == "Q4_K_M"}
    assert int(q4["8x910B-64G"]["memory_per_device_bytes"]) == 71 * GIB and q4["8x910B-64G"]["fits"] == "0"
    assert q4["8xH100-80G"]["fits"] == "1" and float(q4["8xH100-80G"]["bpw"]) == 4.82
    results = _csv(out / "table2_results.csv")
    assert len(results) == 9 * 5
    cell = next(r for r in results if r["benchmark"] == "GPQA" and r["variant"] == "DQ3_K_M")
    assert (float(cell["mean"]), float(cell["std"]), float(cell["weight"])) == (68.95, 0.65, 0.5)
    summary = {r["variant"]: r for r in _csv(out / "table2_summary.csv")}
    assert float(summary["Q3_K_M"]["accuracy_drop_pct"]) == 1.80
    assert summary["FP8 (Official API)"]["accuracy_drop_pct"] == ""
    proxies = {r["label"]: r for r in _csv(out / "proxies.csv")}
    assert float(proxies["Q2_K_L"]["kld_mean"]) == 0.11
    recs = {r["device_set"]: r["recipe"] for r in _csv(out / "recommendations.csv")}
    assert recs == {"8xH100-80G": "DQ3_K_M", "8x910B-64G": "DQ3_K_M"}


def test_a_report_of_sizes_alone(tmp_path, paper_data) -> None:
    data = ReportData("m", device_sets=paper_data.device_sets, sizes=paper_data.sizes)
    out = write_report(tmp_path, data).parent
    assert {p.name for p in out.glob("*.csv")} == {"table1_sizes.csv", "recommendations.csv"}
    assert not list(out.glob("figures/*.png"))  # nothing to plot without accuracy or KL
    assert _csv(out / "recommendations.csv")[1]["recipe"] == "Q3_K_M"  # without quality data: most bits that fit


def test_rewriting_replaces_every_file(tmp_path, paper_data) -> None:
    write_report(tmp_path, paper_data)
    assert (tmp_path / "figures" / "benchmark-bars.png").is_file()
    page = write_report(tmp_path, dataclasses.replace(paper_data, model="second run", results=None))
    assert not (tmp_path / "figures" / "benchmark-bars.png").exists()  # no stale figure from the last run
    assert "second run" in page.read_text() and "second run" in (tmp_path / "report.md").read_text()
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_unwritable_target_is_one_clear_error(tmp_path, paper_data) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(QuantdropError, match="cannot create the report folder"):
        write_report(blocker / "out", paper_data)


def test_quality_vs_speed_is_shown_with_its_caption_and_removed_without_speed(tmp_path, paper_data) -> None:
    from tests.report.paper import illustrative_speed

    page = write_report(tmp_path, dataclasses.replace(paper_data, **illustrative_speed()))
    png = tmp_path / "figures" / "quality-vs-speed.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md, html = (tmp_path / "report.md").read_text(), page.read_text()
    caption = "Quality against generation speed (tg128 tokens/s, Test CPU, 2 threads, no GPU)"
    assert "(figures/quality-vs-speed.png)" in md and caption in md
    assert caption in html and html.count("data:image/png;base64,") == 3 and 'id="quality-vs-speed"' in html
    write_report(tmp_path, paper_data)  # the same study without speed results
    assert not png.exists() and "quality-vs-speed" not in (tmp_path / "report.md").read_text()
