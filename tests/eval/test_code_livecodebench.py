"""LiveCodeBench from fixtures in the hub's schema: window, decoding, stdin and functional tests."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.eval.benchmarks import get_benchmark
from quantdrop.eval.benchmarks.livecodebench import all_tests, decode_private_tests
from quantdrop.eval.scoring.code import lcb_call_equal, lcb_stdio_equal
from quantdrop.eval.types import Completion

DATA = Path(__file__).parent.parent / "fixtures" / "code" / "hub"
SOLUTIONS = {
    "abc999_a": "a, b = map(int, input().split())\nprint(a + b)\n",
    "9001": (
        "class Solution:\n    def pairSum(self, nums: List[int], target: int) -> List[int]:\n"
        "        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n"
        "                return (seen[target - x], i)\n            seen[x] = i\n"
    ),
    # reads bytes from sys.stdin.buffer, prints a float, then calls exit() as contest code does
    "abc999_b": (
        "import sys\ndata = sys.stdin.buffer.read().split()\nn = int(data[0])\n"
        "print(f'{sum(map(int, data[1:1 + n])) / n:.10f}')\nexit(0)\n"
    ),
}


def answer(code: str) -> Completion:
    return Completion(text=f"<think>hmm</think>\n### Answer\n```python\n{code}```\n")


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    return get_benchmark("livecodebench", data_dir=DATA)


def test_window_and_count(bench) -> None:  # type: ignore[no-untyped-def]
    items = bench.load()
    assert [i.id for i in items] == ["abc999_a", "9001", "abc999_b"]  # abc998_a (2024-07) is outside
    assert "3 of 4 problems" in bench.loaded_from and "release_v5" in bench.loaded_from
    wider = get_benchmark("livecodebench", data_dir=DATA, date_from="2024-07-01")
    assert len(wider.load()) == 4
    with pytest.raises(QuantdropError):
        get_benchmark("livecodebench", release="v99x")


def test_prompt_follows_lcb_template(bench) -> None:  # type: ignore[no-untyped-def]
    items = {i.id: i for i in bench.load()}
    assert "Question: You are given two integers" in items["abc999_a"].prompt
    assert "Read the inputs from stdin solve the problem" in items["abc999_a"].prompt
    assert "class Solution:\n    def pairSum" in items["9001"].prompt


def test_private_tests_decode_like_lcb(bench) -> None:  # type: ignore[no-untyped-def]
    items = {i.id: i for i in bench.load()}
    tests = all_tests(items["abc999_a"].target)
    assert [t["input"] for t in tests] == ["3 5\n", "100 200\n", "-7 7\n", "123456789123 987654321987\n"]
    evil = base64.b64encode(zlib.compress(pickle.dumps(print))).decode()  # a pickle that names a callable
    with pytest.raises(QuantdropError):
        decode_private_tests(evil)


def test_reference_solutions_pass(bench) -> None:  # type: ignore[no-untyped-def]
    for item in bench.load():
        score = bench.score(item, answer(SOLUTIONS[item.id]))
        assert score.status == "correct", (item.id, score.detail)


def test_contest_idioms_work(bench) -> None:  # type: ignore[no-untyped-def]
    item = bench.load()[0]
    threaded = (
        "import sys, threading\nsys.setrecursionlimit(10**6)\nthreading.stack_size(1 << 26)\n"
        "def main():\n    a, b = map(int, sys.stdin.readline().split())\n    print(a + b)\n"
        "threading.Thread(target=main).start()\n"
    )
    assert bench.score(item, answer(threaded)).status == "correct"
    guarded = (
        "def solve():\n    a, b = map(int, input().split())\n    return a + b\n"
        "if __name__ == '__main__':\n    print(solve())\n"
    )
    assert bench.score(item, answer(guarded)).status == "correct"


def test_wrong_solutions_fail(bench) -> None:  # type: ignore[no-untyped-def]
    items = {i.id: i for i in bench.load()}
    wrong = {
        # right on the public test only
        "abc999_a": "a, b = map(int, input().split())\nprint(a + b if a == 3 else a - b)\n",
        "9001": "class Solution:\n    def pairSum(self, nums, target):\n        return [0, 1]\n",
        "abc999_b": "import sys\nraise SystemError('crash')\n",
    }
    for task_id, code in wrong.items():
        score = bench.score(items[task_id], answer(code))
        assert score.status == "wrong", task_id
    assert bench.score(items["9001"], Completion(text="no code here")).status == "unextracted"


@pytest.mark.slow
def test_time_limit_is_six_seconds_per_test(bench) -> None:  # type: ignore[no-untyped-def]
    item = bench.load()[0]
    score = bench.score(item, answer("import time\ntime.sleep(7)\nprint(8)\n"))
    assert score.status == "wrong" and "timeout" in score.detail
    fast = bench.score(item, answer("import time\ntime.sleep(0.5)\na, b = map(int, input().split())\nprint(a+b)\n"))
    assert fast.status == "correct"


def test_lcb_comparisons() -> None:
    assert lcb_stdio_equal("1.50\n", "1.5")  # Decimal equality
    assert lcb_stdio_equal("  3 4 \n\n", "3 4")
    assert not lcb_stdio_equal("3 4\n5", "3 4")
    assert not lcb_stdio_equal("1.5000001", "1.5")
    assert lcb_call_equal((0, 1), [0, 1])  # tuples count as lists
    assert not lcb_call_equal([(0, 1)], [[0, 1]])  # only at the top, as LiveCodeBench does


def test_large_right_outputs_are_not_cut() -> None:
    """Outputs larger than the sandbox's default output limit still reach the comparison."""
    from quantdrop.eval.benchmarks.livecodebench import LcbProblem, check

    n = 700_000  # about 6 MB of output, more than sandbox.MAX_OUTPUT
    expected = "\n".join(str(i) for i in range(n)) + "\n"
    tests = json.dumps([{"input": f"{n}\n", "output": expected, "testtype": "stdin"}])
    problem = LcbProblem("big", None, tests, "[]")
    right = "import sys\nn = int(input())\nsys.stdout.write(''.join(f'{i}\\n' for i in range(n)))\n"
    passed, why = check(problem, right)
    assert passed, why
    assert not check(problem, "n = int(input())\nprint(0)\n")[0]
