"""MBPP and MBPP+ as in EvalPlus, from fixtures in the hub's schema and in EvalPlus's release schema."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from quantdrop.eval.benchmarks import get_benchmark
from quantdrop.eval.benchmarks.mbpp import deserialize_inputs, ground_truth, literal, matches, parse_hub_test
from quantdrop.eval.types import Completion

FIXTURES = Path(__file__).parent.parent / "fixtures" / "code"
SOURCES = {"hub": FIXTURES / "hub", "release": FIXTURES / "release"}
# Passes MBPP's base tests of Mbpp/3 (2, 10, 35, 37) but not the plus tests (1, 4, 49, ...).
BASE_ONLY = "```python\ndef is_not_prime(n):\n    return (n % 2 == 0 and n != 2) or n % 5 == 0\n```"


def fenced(code: str) -> Completion:
    return Completion(text=f"Sure.\n```python\n{code}\n```\n")


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("name", ["mbpp", "mbppplus"])
def test_canonical_solutions_pass(name: str, source: str) -> None:
    bench = get_benchmark(name, data_dir=SOURCES[source])
    items = bench.load()
    assert [i.id for i in items] == ["Mbpp/2", "Mbpp/3", "Mbpp/17", "Mbpp/82", "Mbpp/4"]
    assert bench.full_size == 378 and bench.weight == 0.5 and bench.default_samples == 4
    for item in items:
        score = bench.score(item, fenced(item.target.solution))
        assert score.status == "correct", (item.id, score.detail)


@pytest.mark.parametrize("source", list(SOURCES))
def test_plus_tests_catch_what_base_tests_miss(source: str) -> None:
    base, plus = (get_benchmark(n, data_dir=SOURCES[source]) for n in ("mbpp", "mbppplus"))
    item = next(i for i in base.load() if i.id == "Mbpp/3")
    assert base.score(item, Completion(text=BASE_ONLY)).status == "correct"
    score = plus.score(item, Completion(text=BASE_ONLY))
    assert score.status == "wrong" and score.detail.startswith("plus:")


@pytest.mark.parametrize("source", list(SOURCES))
def test_wrong_solutions_fail(source: str) -> None:
    bench = get_benchmark("mbppplus", data_dir=SOURCES[source])
    items = {i.id: i for i in bench.load()}
    wrong = {
        "Mbpp/2": "def similar_elements(a, b):\n    return tuple(set(a) | set(b))",
        "Mbpp/17": "def square_perimeter(a):\n    return 4 * a + (a > 4)",
        "Mbpp/82": "def volume_sphere(r):\n    return 4.19 * r ** 3",  # close, not within atol
        "Mbpp/4": "def heap_queue_largest(nums, n):\n    return sorted(nums)[:n]",
    }
    for task_id, code in wrong.items():
        assert bench.score(items[task_id], fenced(code)).status == "wrong", task_id


def test_expected_outputs_match_the_hub_results() -> None:
    """Ground truth from running the canonical code in the sandbox equals the hub row's `results`."""
    bench = get_benchmark("mbppplus", data_dir=SOURCES["hub"])
    rows = [json.loads(line) for line in (SOURCES["hub"] / "mbppplus.jsonl").read_text().splitlines()]
    for item, row in zip(bench.load(), rows, strict=True):
        results = next(
            literal(n.value)
            for n in ast.walk(ast.parse(row["test"]))
            if isinstance(n, ast.Assign) and n.targets[0].id == "results"
        )
        expected, times = ground_truth(item.target, item.target.plus_inputs)
        assert len(times) == len(results)
        for inp, out, exp in zip(item.target.plus_inputs, expected, results, strict=True):
            assert matches(item.target, inp, out, exp), (item.id, inp)


def test_prompt_is_evalplus_instruction_with_the_docstring() -> None:
    for source in SOURCES.values():
        item = get_benchmark("mbpp", data_dir=source).load()[0]
        assert item.prompt.startswith(
            "Please provide a self-contained Python script that solves the "
            'following problem in a markdown code block:\n```\n"""\n'
            "Write a function to find"
        )
        assert "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))" in item.prompt


def test_parse_hub_test_reads_inputs_entry_and_atol_without_running_it() -> None:
    test = (
        "import numpy as np\nfrom math import inf\n"
        "inputs = [[1.5, -inf], [(1, 2), {3}], [complex(1, 2), -3]]\nresults = [0, 0, 0]\n"
        "for i, (inp, exp) in enumerate(zip(inputs, results)):\n    assertion(area(*inp), exp, 1e-4)\n"
    )
    inputs, entry, atol = parse_hub_test(test)
    assert inputs == [[1.5, float("-inf")], [(1, 2), {3}], [1 + 2j, -3]]
    assert (entry, atol) == ("area", 1e-4)
    wrapped = "inputs = [[1]]\nfor inp in inputs:\n    assertion(set(similar_elements(*inp)), exp, 0)\n"
    assert parse_hub_test(wrapped)[1] == "similar_elements"
    with pytest.raises(ValueError):
        parse_hub_test("inputs = [__import__('os').system('true')]\nassertion(f(*inp), exp, 0)")


def test_evalplus_input_deserialization() -> None:
    assert deserialize_inputs("Mbpp/2", [[[1, 2], [3]]]) == [[(1, 2), (3,)]]
    assert deserialize_inputs("Mbpp/124", [["1.0", "(1+2j)"]]) == [(1.0, 1 + 2j)]
    assert deserialize_inputs("Mbpp/580", [[[1, [2, 3]], 4]]) == [((1, (2, 3)), 4)]
    assert deserialize_inputs("Mbpp/5", [[1, 2]]) == [[1, 2]]


def test_special_oracles() -> None:
    from quantdrop.eval.benchmarks.mbpp import MbppTask

    def task(entry: str, atol: float = 0) -> MbppTask:
        return MbppTask("Mbpp/0", "", entry, "", None, (), atol)

    assert matches(task("similar_elements"), None, (5, 4), (4, 5))  # set comparison
    assert not matches(task("heap_queue_largest"), None, [5, 4], [4, 5])
    assert matches(task("check_str"), None, "a match object", True)  # output only needs to be not None
    assert matches(task("f"), None, 1.0000001, 1.0)  # floats: atol 1e-6 enforced
    assert not matches(task("f"), None, 1.01, 1.0)
    assert not matches(task("f"), None, [1.0, 2.0], (1.0, 2.0))  # types must match
