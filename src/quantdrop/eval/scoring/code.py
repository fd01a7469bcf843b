"""Code answers: extract the program, run it with its tests in the sandbox, decide outside it.

The verdict never comes from the untrusted program: expected outputs stay in this process and are
compared here with what the trusted harness (`quantdrop.sandbox.harness`) recorded, or, for
assert-style tests, the harness ran the asserts itself and wrote a random nonce that the candidate
process could not see. An exit status of 0 means nothing on its own.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from quantdrop import sandbox
from quantdrop.eval.scoring.text import strip_reasoning
from quantdrop.eval.types import Completion, Score
from quantdrop.sandbox.harness import decode, encode

HARNESS = Path(sandbox.__file__).with_name("harness.py")
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}


# ---------------------------------------------------------------- extraction
def last_code_block(text: str) -> str | None:
    """The last fenced Python block of a response (after its reasoning); None if there is none."""
    answer = strip_reasoning(text)
    if answer is None:
        return None
    blocks = [body for tag, body in _FENCE.findall(answer) if tag.lower() in _PYTHON_TAGS]
    if blocks:
        return blocks[-1]
    return answer if answer.strip() and _parses(answer) and "```" not in answer else None


def lcb_code_block(text: str) -> str | None:
    """LiveCodeBench's extraction (lcb_runner/utils/extraction_utils.py: extract_code): the lines between
    the last two lines that contain ``` (after the reasoning); None if there are fewer than two."""
    answer = strip_reasoning(text)
    if answer is None:
        return None
    lines = answer.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return None
    return "\n".join(lines[fences[-2] + 1:fences[-1]])


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def sanitize(code: str, entry_point: str | None = None) -> str:
    """EvalPlus's sanitizer (evalplus/sanitize.py), on Python's ast instead of tree-sitter: keep the
    imports, and the first top-level class, function (with a return) or assignment of each name that the
    entry point reaches; drop top-level tests, prints and `if __name__ == "__main__":` blocks."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code  # it fails where it runs, as EvalPlus's does
    imports: list[ast.stmt] = []
    defs: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(node)
        elif isinstance(node, ast.ClassDef) or (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                                                and any(isinstance(n, ast.Return) for n in ast.walk(node))):
            defs.setdefault(node.name, node)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            defs.setdefault(node.targets[0].id, node)
    keep = set(defs)
    if entry_point:
        deps = {name: _identifiers(node) for name, node in defs.items()}
        keep, todo = {entry_point}, [entry_point]
        while todo:
            for dep in deps.get(todo.pop(), ()):
                if dep not in keep:
                    keep.add(dep)
                    todo.append(dep)
    kept = imports + [node for name, node in defs.items() if name in keep]
    if not [n for n in kept if n not in imports]:
        return code
    kept.sort(key=lambda n: n.lineno)
    lines = code.split("\n")
    return "\n".join("\n".join(lines[_first_line(n) - 1:n.end_lineno]) for n in kept)


def _identifiers(node: ast.AST) -> set[str]:
    """Every identifier in a definition, as EvalPlus's get_deps collects them (attributes too)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


# ---------------------------------------------------------------- running tests
@dataclass
class Outcome:
    """What the harness recorded: outputs per test, and whether and why it stopped early."""

    outputs: list[Any] = field(default_factory=list)  # decoded return values / stdout texts, in order
    times: list[float] = field(default_factory=list)
    complete: bool = False  # every test ran and the harness finished
    failure: str = ""  # why not: "timeout at test 3", "error at test 0: ...", the sandbox's status

    @property
    def ran_all(self) -> bool:
        return self.complete and not self.failure


def _harness_run(setup: dict[str, Any], code: str, task: dict[str, Any], timeout_s: float, memory_mb: int,
                 max_output: int = sandbox.MAX_OUTPUT) -> tuple[list[dict[str, Any]], sandbox.ExecResult]:
    files = {"candidate.py": code, "candidate.json": json.dumps(setup)}
    result = sandbox.run(HARNESS.read_text(), stdin=json.dumps(task) + "\n", files=files,
                         timeout_s=timeout_s, memory_mb=memory_mb, max_output=max_output)
    records = []
    for line in result.stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, result


def _collect(records: list[dict[str, Any]], result: sandbox.ExecResult, n: int, nonce: str,
             value: Callable[[dict[str, Any]], Any]) -> Outcome:
    outcome = Outcome()
    for record in records:
        if record.get("done") == nonce:
            outcome.complete = len(outcome.outputs) == n
            break
        if record.get("i") != len(outcome.outputs):
            outcome.failure = "the harness's records are out of order"
            return outcome
        if "timeout" in record:
            outcome.failure = f"timeout at test {record['i']}"
            return outcome
        if "error" in record:
            outcome.failure = f"error at test {record['i']}: {record['error']}"
            return outcome
        try:
            outcome.outputs.append(value(record))
        except Exception as err:
            outcome.failure = f"unreadable output at test {record['i']}: {type(err).__name__}"
            return outcome
        outcome.times.append(float(record.get("t") or 0.0))
    if not outcome.complete:
        outcome.failure = f"the program did not finish its tests (sandbox: {result.status}" + (
            f", {result.detail})" if result.detail else ")")
    return outcome


def output_room(expected: Sequence[Any]) -> int:
    """How much harness output to accept for tests whose right answers are `expected`: the records of a
    right answer (JSON-escaped, up to 6x for control characters) fit, with room for wrong ones."""
    return sandbox.MAX_OUTPUT + 6 * len(json.dumps(encode(list(expected))))


def run_calls(code: str, entry: str, inputs: Sequence[Sequence[Any]], *, time_limits: Sequence[float],
              timeout_s: float, prelude: str = "", solution_class: bool = False, memory_mb: int = 1024,
              recursion_limit: int = 1000, max_output: int = sandbox.MAX_OUTPUT) -> Outcome:
    """Call `entry` of `code` with each input (a list of arguments); stop at the first error or timeout.
    `max_output`: bytes of records accepted (see `output_room`)."""
    nonce = secrets.token_hex(16)
    setup = {"mode": "calls", "entry": entry, "solution_class": solution_class,
             "load_timeout": timeout_s, "recursion_limit": recursion_limit}
    task = {"nonce": nonce, "inputs": [encode(list(a)) for a in inputs], "time_limits": list(time_limits)}
    records, result = _harness_run(setup, prelude + code, task, timeout_s, memory_mb, max_output)
    return _collect(records, result, len(inputs), nonce, lambda r: decode(r["out"]))


def run_stdio(code: str, inputs: Sequence[str], *, time_limit: float, timeout_s: float, prelude: str = "",
              memory_mb: int = 1024, max_output: int = sandbox.MAX_OUTPUT) -> Outcome:
    """Run `code` once per input, the input on its stdin; stop at the first error or timeout."""
    nonce = secrets.token_hex(16)
    setup = {"mode": "stdio", "prelude": prelude}
    task = {"nonce": nonce, "inputs": list(inputs), "time_limit": time_limit}
    records, result = _harness_run(setup, code, task, timeout_s, memory_mb, max_output)
    return _collect(records, result, len(inputs), nonce, lambda r: str(r["stdout"]))


def run_asserts(code: str, entry: str, tests: Sequence[str], *, setup_code: str = "", timeout_s: float,
                memory_mb: int = 1024) -> tuple[bool, str]:
    """Run assert-style `tests` (with `entry` bound to the candidate) in the harness; (passed, why not)."""
    nonce = secrets.token_hex(16)
    setup = {"mode": "asserts", "entry": entry, "load_timeout": timeout_s}
    task = {"nonce": nonce, "entry": entry, "setup": setup_code, "tests": list(tests),
            "time_limit": timeout_s}
    records, result = _harness_run(setup, code, task, timeout_s + 2, memory_mb)
    for record in records:
        if record.get("verdict") == "pass" and record.get("nonce") == nonce:
            return True, ""
        if record.get("verdict") == "fail":
            return False, str(record.get("detail", ""))[:500]
    return False, f"no verdict (sandbox: {result.status}{', ' + result.detail if result.detail else ''})"


# ---------------------------------------------------------------- comparisons
def is_floats(x: Any) -> bool:
    """EvalPlus's is_floats: a float, or a list/tuple of floats."""
    if isinstance(x, float):
        return True
    if isinstance(x, list | tuple):
        return all(isinstance(i, float) for i in x)
    return False


def evalplus_equal(out: Any, exp: Any, atol: float) -> bool:
    """EvalPlus's output check (evalplus/eval/__init__.py: unsafe_execute), minus its special oracles."""
    import numpy as np

    exact = safe_eq(out, exp)
    if atol == 0 and is_floats(exp):
        atol = 1e-6  # EvalPlus enforces atol for float comparison
    if exact or atol == 0:
        return exact
    try:
        if type(out) is not type(exp):
            return False
        if isinstance(exp, list | tuple) and len(out) != len(exp):
            return False
        return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))
    except Exception:
        return False


def safe_eq(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def lcb_stdio_equal(prediction: str, expected: str) -> bool:
    """LiveCodeBench's stdio check (lcb_runner/evaluation/testing_util.py: grade_stdio): stripped lines
    equal, or equal as sequences of Decimals."""
    pred_lines = [line.strip() for line in prediction.strip().split("\n")]
    exp_lines = [line.strip() for line in expected.strip().split("\n")]
    if len(pred_lines) != len(exp_lines):
        return False
    for p, e in zip(pred_lines, exp_lines, strict=True):
        if p == e:
            continue
        try:
            if [Decimal(x) for x in p.split()] != [Decimal(x) for x in e.split()]:
                return False
        except (InvalidOperation, ValueError):
            return False
    return True


def lcb_call_equal(prediction: Any, expected: Any) -> bool:
    """LiveCodeBench's functional check (grade_call_based): tuples count as lists, then ==."""
    if isinstance(prediction, tuple):
        prediction = list(prediction)
    return safe_eq(prediction, expected)


# ---------------------------------------------------------------- scores
def unextracted(detail: str = "no fenced Python code block in the answer") -> Score:
    return Score(0.0, "unextracted", None, detail)


def verdict(passed: bool, code: str, detail: str = "") -> Score:
    return Score(1.0 if passed else 0.0, "correct" if passed else "wrong", code, detail[:500])


def sandbox_note() -> str:
    """Probes the sandbox now, so a weak isolation is said at the start of a run (and in its source)."""
    iso = sandbox.isolation()
    return f"sandbox: {iso.level}" + ("" if iso.network_isolated else " (NO network isolation)")


def answer_code(completion: Completion) -> str | None:
    return last_code_block(completion.text)
