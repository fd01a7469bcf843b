"""Issue 9's code-extraction cases, one line each: which block is the program, what is merged into it,
and end to end on MBPP fixtures (a solution followed by a usage example is not a NameError)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdrop.eval.benchmarks import get_benchmark
from quantdrop.eval.scoring.code import explain_code
from quantdrop.eval.types import Completion

SOLUTION = "def pos_count(xs):\n    return sum(1 for x in xs if x > 0)\n"
USAGE = "print(pos_count([1, -2, 3, -4]))\n"
DRAFT = "def pos_count(xs):\n    return len(xs)\n"
FIB = "import functools\n\n@functools.cache\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
LEETCODE = "class Solution:\n    def twoSum(self, a, t):\n        return [0, 1]\n"
STDIN = "n = int(input())\nprint(n * 2)\n"


def fence(code: str, tag: str = "python") -> str:
    return f"```{tag}\n{code}```\n"


# (response, entry point, stdin?, expected program, rule prefix)
CASES = [
    # the block that defines the entry point, not the "Example usage:" block after it
    (
        "Here is the solution:\n" + fence(SOLUTION) + "Example usage:\n" + fence(USAGE) + "Output: 2",
        "pos_count",
        False,
        SOLUTION,
        "fenced block 1 of 2: defines pos_count",
    ),
    # a draft first, then the final version: the last block that defines it (EvalPlus would take the longer)
    (
        fence(DRAFT + "# a first try, long\n" * 3) + "Wait, that counts all.\n" + fence(SOLUTION),
        "pos_count",
        False,
        SOLUTION,
        "fenced block 2 of 2: defines pos_count",
    ),
    # imports and helpers from an earlier block are merged into the chosen one
    (
        fence("import math\n") + fence("def root(x):\n    return math.sqrt(x)\n"),
        "root",
        False,
        "import math\n\ndef root(x):\n    return math.sqrt(x)\n",
        "fenced block 2 of 2: defines root; merged from",
    ),
    (
        fence("from typing import List\n\ndef helper(x):\n    return x * 2\n")
        + "Now:\n"
        + fence("def f(xs: List[int]):\n    return [helper(x) for x in xs]\n")
        + fence("print(f([1]))\n"),
        "f",
        False,
        "from typing import List\ndef helper(x):\n    return x * 2\n\n"
        "def f(xs: List[int]):\n    return [helper(x) for x in xs]\n",
        "fenced block 2 of 3: defines f; merged from other blocks: List, helper",
    ),
    # a block that does not parse is the choice only when no parsing block defines the entry point
    (
        fence(SOLUTION) + fence("def pos_count(xs):\n    return (\n"),
        "pos_count",
        False,
        SOLUTION,
        "fenced block 1 of 2: defines pos_count",
    ),
    # a fence indented inside a list item
    (
        "1. The function:\n   ```python\n   def f(x):\n       return x + 1\n   ```\n",
        "f",
        False,
        "def f(x):\n    return x + 1\n",
        "fenced block 1 of 1: defines f",
    ),
    # decorated functions are kept
    (fence(FIB), "fib", False, FIB, "fenced block 1 of 1: defines fib"),
    # no block defines it: the last block
    (fence("x = 1\n") + fence("y = 2\n"), "f", False, "y = 2\n", "fenced block 2 of 2: the last block (none"),
    # LeetCode's class Solution defines the method the tests call
    (
        fence(LEETCODE) + fence("print(Solution().twoSum([1], 2))\n"),
        "twoSum",
        False,
        LEETCODE,
        "fenced block 1 of 2: defines twoSum",
    ),
    # stdin programs: the last complete program, not a fenced sample input after it
    (
        fence(STDIN) + "Sample input:\n" + fence("3\n", "") + "Sample output:\n" + fence("6\n", ""),
        None,
        True,
        STDIN,
        "fenced block 1 of 3: the last complete program",
    ),
    (
        fence("import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"),
        None,
        True,
        "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n",
        "fenced block 1 of 1: the last complete program",
    ),
    # unfenced code with prose around it
    (
        "Here is my solution.\n\n" + SOLUTION + "\nThis counts the positive numbers in one pass.",
        "pos_count",
        False,
        SOLUTION.rstrip(),
        "unfenced block 1 of 1: defines pos_count",
    ),
    (
        "First import what we need:\nimport math\nThen the function:\ndef root(x):\n    return math.sqrt(x)\nDone.",
        "root",
        False,
        "import math\n\ndef root(x):\n    return math.sqrt(x)",
        "unfenced block 2 of 2: defines root; merged",
    ),
    (
        "Read the number and print it twice:\n" + STDIN + "That is all.",
        None,
        True,
        STDIN.rstrip(),
        "unfenced block 1 of 1: the last complete program",
    ),
    # a final fence never closed: its code, without the prose that follows
    (
        "Solution:\n```python\n" + SOLUTION + "\nThis works because",
        "pos_count",
        False,
        SOLUTION,
        "unclosed fence block 1 of 1: defines pos_count",
    ),
    ("```python\n" + SOLUTION, "pos_count", False, SOLUTION.rstrip(), "unclosed fence block 1 of 1"),
    (
        fence(USAGE) + "```python\n" + SOLUTION,
        "pos_count",
        False,
        SOLUTION.rstrip(),
        "unclosed fence block 2 of 2: defines",
    ),
    # code only inside the reasoning is not graded
    ("<think>\n" + fence(SOLUTION) + "</think>\nI could not finish.", "pos_count", False, None, "none"),
    ("<think>\n" + fence(DRAFT) + "</think>\n" + fence(SOLUTION), "pos_count", False, SOLUTION, "fenced block 1 of 1"),
    ("<think>\n" + fence(SOLUTION) + " and it goes on", "pos_count", False, None, "none"),
    # prose only, other languages, the whole answer as code
    ("I am not able to solve this problem.", "f", False, None, "none"),
    (fence("int main() { return 0; }\n", "cpp"), "f", False, None, "none"),
    (SOLUTION, "pos_count", False, SOLUTION.rstrip(), "whole answer block 1 of 1"),
]


@pytest.mark.parametrize(("text", "entry", "stdin", "program", "rule"), CASES)
def test_program_and_rule(text: str, entry: str | None, stdin: bool, program: str | None, rule: str) -> None:
    found = explain_code(text, entry, stdin=stdin)
    assert found.answer == program, found
    assert found.rule.startswith(rule), found.rule


FIXTURES = Path(__file__).parent.parent / "fixtures" / "code"


@pytest.mark.parametrize("source", ["hub", "release"])
def test_usage_example_after_the_solution_scores_correct(source: str) -> None:
    bench = get_benchmark("mbpp", data_dir=FIXTURES / source)
    item = next(i for i in bench.load() if i.id == "Mbpp/17")  # square_perimeter(a)
    solution = "def square_perimeter(a):\n    return 4 * a\n"
    text = "Sure.\n" + fence(solution) + "Example usage:\n" + fence("print(square_perimeter(10))\n") + "This prints 40."
    assert bench.score(item, Completion(text=text)).status == "correct"
    unfenced = "The perimeter is four sides:\n\n" + solution + "\nThat's it."
    assert bench.score(item, Completion(text=unfenced)).status == "correct"
    unclosed = "```python\n" + solution + "\nExplanation: four equal sides."
    assert bench.score(item, Completion(text=unclosed)).status == "correct"
