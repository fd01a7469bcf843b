"""Benchmark weights have one home, the benchmark classes: stats.PAPER_WEIGHTS, the results table's
and the report's fallbacks for a store row without a weight all follow them. The partial-set label
("MATH-500 (311/500)") is built in one place (eval.types.partial_label)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import quantdrop.stats as stats
from quantdrop.eval.benchmarks import declared_weight
from quantdrop.eval.benchmarks.math500 import Math500
from quantdrop.eval.results import BenchResult, _weights
from quantdrop.eval.store import Run
from quantdrop.eval.types import partial_label

SRC = Path(__file__).resolve().parents[2] / "src" / "quantdrop"


@pytest.fixture
def math500_weighs_0_7(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(Math500, "weight", 0.7)
    declared_weight.cache_clear()
    yield
    declared_weight.cache_clear()


def test_paper_weights_follow_the_benchmark_classes(math500_weighs_0_7) -> None:
    assert stats.PAPER_WEIGHTS["math500"] == 0.7
    assert stats.weighted_average({"MATH-500": 100.0, "MMLU": 0.0}) == pytest.approx(70 / 1.7)
    assert stats.weight_of("MATH-500 (311/500)") == 0.7 and stats.weight_of("toy") == 1.0


def test_fallbacks_for_rows_without_a_weight_follow_them(math500_weighs_0_7) -> None:
    from quantdrop.report.sources import from_results

    row = BenchResult(
        "Q4", "math500", "MATH-500", 500, 1, [50.0], 50.0, 0.0, stats.Interval(50.0, 40.0, 60.0), {}, weight=None
    )
    assert _weights([row]) == {"math500": 0.7}
    from quantdrop.eval.results import Table

    table = Table(
        labels=[],
        benchmarks=["math500"],
        titles={},
        cells={("math500", "Q4"): row},
        average={},
        weighted={},
        baseline=None,
    )
    assert from_results(table).benchmarks[0].weight == 0.7


def test_humaneval_declares_its_weight_but_is_not_a_paper_benchmark() -> None:
    assert declared_weight("humaneval") == 0.5 and "humaneval" not in stats.PAPER_WEIGHTS


def test_the_partial_label_is_built_in_one_place() -> None:
    assert partial_label("MATH-500", 311, 500) == "MATH-500 (311/500)"
    assert partial_label("MATH-500", 500, 500) == "MATH-500"
    run = Run(1, "Q4", "math500", "MATH-500", 500, 0.5, {}, {}, "", 311)
    assert run.table_label == "MATH-500 (311/500)"
    assert Math500(template="{problem}").label(311) == "MATH-500 (311/500)"
    # and nowhere else: no other f-string of the shape "{title} ({n}/{full})" in the package
    builders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        for line in p.read_text().splitlines()
        if re.search(r"\{[^}]+\} \(\{[^}]+\}/\{[^}]+\}\)", line)
    ]
    assert builders == ["eval/types.py"], builders
