"""ReportData filled from a real plan and from an eval results table, then written."""

from __future__ import annotations

import pytest

from quantdrop.report import write_report
from quantdrop.report.sources import from_plan, from_results, report_data


def test_from_plan_on_the_demo_model(demo_model, tmp_path) -> None:
    from quantdrop.plan import plan

    p = plan(demo_model, ["Q8_0", "Q4_K_M"], ctx=2048, devices="8xH100-80G,8x910B-64G")
    devices, sizes = from_plan(p)
    assert [d.name for d in devices] == [f.spec for f in p.recipes[0].devices]
    assert [s.label for s in sizes] == ["Q8_0", "Q4_K_M"]
    for row, rp in zip(sizes, p.recipes, strict=True):
        assert (row.size_bytes, row.bpw) == (rp.size_bytes, rp.bits_per_weight)
        for fit in rp.devices:
            assert row.placements[fit.spec].per_device_bytes == fit.bytes_per_device
            assert row.placements[fit.spec].total_bytes == fit.total_bytes
            assert row.placements[fit.spec].fits == fit.fits
    assert sizes[0].size_bytes > sizes[1].size_bytes
    page = write_report(tmp_path, report_data("SmolLM2-135M", plan=p))
    assert "Table 1: size and memory" in page.read_text()


def test_from_results_converts_the_paired_interval_to_the_relative_drop() -> None:
    from quantdrop.eval.results import BenchResult, Table
    from quantdrop.stats import Interval

    def cell(label: str, key: str, mean: float, samples: int = 4) -> BenchResult:
        return BenchResult(
            label=label,
            benchmark=key,
            title=f"{key} (10/500)",
            n_items=10,
            samples=samples,
            runs=[mean] * samples,
            mean=mean,
            std=1.5,
            ci=Interval(mean, mean - 1, mean + 1),
            counts={"correct": 5, "wrong": 5},
        )

    labels = ["F16", "Q4_K_M", "Q2_K"]
    means = {"F16": (80.0, 60.0), "Q4_K_M": (79.0, 60.0), "Q2_K": (70.0, 50.0)}
    cells = {
        (k, lab): cell(lab, k, m, 1 if k == "mmlu" else 4)
        for lab in labels
        for k, m in zip(("math500", "mmlu"), means[lab], strict=True)
    }
    table = Table(
        labels=labels,
        benchmarks=["math500", "mmlu"],
        titles={"math500": "MATH-500 (10/500)", "mmlu": "MMLU (10/14042)"},
        cells=cells,
        average={lab: sum(means[lab]) / 2 for lab in labels},
        weighted={"F16": 66.67, "Q4_K_M": 66.0, "Q2_K": 56.67},
        baseline="F16",
        drop={"Q4_K_M": 0.01, "Q2_K": 0.15},
        drop_base={"Q4_K_M": 66.67, "Q2_K": 66.67},
        diffs={("weighted", "Q4_K_M"): Interval(-0.67, -2.0, 0.5), ("weighted", "Q2_K"): Interval(-10.0, -14.0, -6.0)},
        notes=["Q2_K: 3 truncated"],
    )
    res = from_results(table)
    assert [b.display for b in res.benchmarks] == ["MATH-500 (10/500)", "MMLU (10/14042)"]
    assert [b.weight for b in res.benchmarks] == [0.5, 1.0]  # the paper's Appendix A.2 weights
    cols = {c.label: c for c in res.columns}
    assert cols["F16"].drop is None and cols["F16"].significant is None
    assert cols["Q4_K_M"].drop == pytest.approx(1.0)
    assert cols["Q4_K_M"].drop_ci == pytest.approx((-0.5 / 66.67 * 100, 2.0 / 66.67 * 100))
    assert cols["Q4_K_M"].significant is False
    assert cols["Q2_K"].drop_ci == pytest.approx((6.0 / 66.67 * 100, 14.0 / 66.67 * 100))
    assert cols["Q2_K"].significant is True
    assert cols["Q2_K"].cells["mmlu"].std is None  # a single run has no spread to show
    assert cols["Q2_K"].cells["math500"].std == 1.5
    assert report_data("m", results=table).notes == ["Q2_K: 3 truncated"]
