"""Code extraction (the last Python block without an entry point, LiveCodeBench's rule) and EvalPlus's sanitizer."""

from __future__ import annotations

from quantdrop.eval.scoring.code import last_code_block, lcb_code_block, sanitize
from quantdrop.sandbox.harness import Opaque, decode, encode


def test_last_python_block_after_reasoning() -> None:
    text = (
        "<think>```python\nwrong()\n```</think>Plan:\n```text\nnot code\n```\n"
        "```python\nfirst()\n```\nBetter:\n```py\nsecond()\n```\nDone."
    )
    assert last_code_block(text) == "second()\n"
    assert last_code_block("<think>never closed ```python\nx()\n```") is None
    assert last_code_block("no code at all, sorry") is None
    assert last_code_block("def f():\n    return 1\n") == "def f():\n    return 1"  # bare code that parses


def test_lcb_block_is_between_the_last_two_fence_lines() -> None:
    assert lcb_code_block("```python\na\n```\ntext\n```\nb\n```") == "b"
    assert lcb_code_block("```python\nonly one fence") is None


def test_sanitize_keeps_what_the_entry_point_needs() -> None:
    code = (
        "import math\n\nLIMIT = 10\n\ndef helper(x):\n    return x * LIMIT\n\n"
        "def unused():\n    return 0\n\ndef f(x):\n    return helper(x) + math.floor(0.5)\n\n"
        "print(f(3))\nassert f(1) == 11\n\nif __name__ == '__main__':\n    f(2)\n"
    )
    out = sanitize(code, "f")
    assert "def helper" in out and "LIMIT = 10" in out and "import math" in out
    assert "unused" not in out and "print(f(3))" not in out and "assert" not in out and "__main__" not in out
    assert sanitize("def f(:\n", "f") == "def f(:\n"  # unparsable code is kept; it fails where it runs


def test_values_cross_processes_as_plain_data() -> None:
    value = {"a": (1, 2.5, float("inf")), 3: {frozenset({1}), None}, "b": [b"x", 1 + 2j, True, -(7**9000)]}
    assert decode(encode(value)) == value

    class Anything:
        def __eq__(self, other: object) -> bool:
            return True

    opaque = decode(encode(Anything()))
    assert isinstance(opaque, Opaque) and opaque != 1 and opaque != "x"

    class Liar(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    assert decode(encode(Liar(3))) == 3 and type(decode(encode(Liar(3)))) is int
