"""Code answers: extract the program, run it with its tests in the sandbox, decide outside it.

The verdict never comes from the untrusted program: expected outputs stay in this process and are
compared here with what the trusted harness (`quantdrop.sandbox.harness`) recorded, or, for
assert-style tests, the harness ran the asserts itself and wrote a random nonce that the candidate
process could not see. An exit status of 0 means nothing on its own.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import secrets
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from quantdrop import sandbox
from quantdrop.errors import QuantdropError
from quantdrop.eval.scoring.text import Extraction, strip_reasoning
from quantdrop.eval.types import Completion, Score, Scorer
from quantdrop.sandbox.harness import decode, encode

HARNESS = Path(sandbox.__file__).with_name("harness.py")
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}


# ---------------------------------------------------------------- extraction
# Which block of a response is the program (after its reasoning: code only inside <think> is not graded):
#  - entry point known (HumanEval, MBPP, LiveCodeBench functional): the last block that defines it at top
#    level (a function, a class, an assignment; or a class with that method: LeetCode's `Solution`),
#    preferring blocks that parse, so "Example usage:" blocks after the solution and drafts before it are
#    skipped. EvalPlus's sanitizer (evalplus/sanitize.py: code_extract) takes the longest parsable span,
#    which picks a long first draft; DeepSeek-Coder's harness (Evaluation/HumanEval/utils/utils.py) the
#    first block; Qwen-style extract_code the first block that defines the entry point.
#  - stdin program (LiveCodeBench without starter code): the last complete program, a block that parses
#    and reads its input (input(), sys.stdin, open(0)); sample inputs in fences are not programs.
#  - otherwise: the last block.
# Imports and helper definitions that the chosen block uses but does not bind are merged from the other
# blocks (nearest earlier block first). Blocks: fenced (tag python/py/none); a final fence never closed
# (its longest parsable prefix: trailing prose dropped); without fences, code lines between prose (the
# spans that parse, as EvalPlus's code_extract finds them, grown line by line rather than tried in pairs).


@dataclass(frozen=True)
class _Block:
    code: str
    kind: str  # "fenced", "unclosed fence", "unfenced", "whole answer"
    tree: ast.Module | None  # None: does not parse


_OPEN_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n", re.M)
_CODE_START = re.compile(
    r"(?:async\s+def|def|class|import|from\s+[\w.]+\s+import|@|if|for|while|with|try)\b"
    r"|[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*(?:\[[^\]]*\])?\s*[-+*/]?=(?!=)"
    r"|[A-Za-z_][\w.]*\("
)
_CONTINUE = re.compile(r"\s|$|[)\]}#]|(?:else|elif|except|finally)\b")


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _parses(code: str) -> bool:
    return _parse(code) is not None


def _block(code: str, kind: str) -> _Block:
    tree = _parse(code)
    if tree is None and (dedented := textwrap.dedent(code)) != code:  # a fence indented in a list item
        code, tree = dedented, _parse(dedented)
    return _Block(code, kind, tree)


def _blocks(answer: str) -> list[_Block]:
    """The code blocks of an answer, in order (see above)."""
    out, end = [], 0
    for match in _FENCE.finditer(answer):
        if match.group(1).lower() in _PYTHON_TAGS:
            out.append(_block(match.group(2), "fenced"))
        end = match.end()
    rest = _OPEN_FENCE.search(answer, end)
    if rest and rest.group(1).lower() in _PYTHON_TAGS:
        body = answer[rest.end() :]
        out.append(_block(_parsable_prefix(body) or body, "unclosed fence"))
    if out or "```" in answer:
        return out
    if _parses(answer) and answer.strip():
        return [_block(answer, "whole answer")]
    return [_block(span, "unfenced") for span in _code_spans(answer)]


def _parsable_prefix(body: str) -> str | None:
    lines = body.split("\n")
    for n in range(len(lines), 0, -1):
        code = "\n".join(lines[:n])
        if code.strip() and _parses(code):
            return code
    return None


def _code_spans(text: str, max_lines: int = 2000) -> list[str]:
    """Runs of code lines in prose: a line at column 0 that starts a statement, grown over indented, blank
    and continuation lines, then shrunk until it parses; a span must define, import or call something."""
    lines, spans, i = text.split("\n")[:max_lines], [], 0
    while i < len(lines):
        if not _CODE_START.match(lines[i]):
            i += 1
            continue
        j = i + 1
        while j < len(lines) and (_CONTINUE.match(lines[j]) or _CODE_START.match(lines[j])):
            j += 1
        code = _parsable_prefix("\n".join(lines[i : min(j, i + 400)]))
        if code is None:
            i += 1
            continue
        tree = _parse(code)
        if tree is not None and any(not isinstance(n, ast.Expr) or isinstance(n.value, ast.Call) for n in tree.body):
            spans.append(code.rstrip())
        i += code.count("\n") + 1
    return spans


def _top_names(tree: ast.Module) -> set[str]:
    """Names a module defines at top level (functions, classes, assignments) and the methods of its classes
    (LeetCode's `class Solution: def fn`)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _reads_input(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "input":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "stdin":
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "open"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == 0
        ):
            return True
    return False


def _defines(block: _Block, entry: str) -> bool:
    if block.tree is not None:
        return entry in _top_names(block.tree)
    return re.search(rf"^(?:async\s+def|def|class)\s+{re.escape(entry)}\b", block.code, re.M) is not None


def _choose(blocks: list[_Block], entry_point: str | None, stdin: bool) -> tuple[int, str]:
    """The index of the program block and why it was chosen."""
    last = len(blocks) - 1
    if entry_point:
        for parsed in (True, False):
            for i in range(last, -1, -1):
                if (blocks[i].tree is not None) == parsed and _defines(blocks[i], entry_point):
                    return i, f"defines {entry_point}" + ("" if parsed else ", does not parse")
        return last, f"the last block (none defines {entry_point})"
    if stdin:
        for i in range(last, -1, -1):
            tree = blocks[i].tree
            if tree is not None and _reads_input(tree):
                return i, "the last complete program (reads stdin)"
    return last, "the last block"


def _bound(tree: ast.AST) -> set[str]:
    """Every name a block binds anywhere (assignments, definitions, imports, arguments)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _used(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _providers(blocks: list[_Block], chosen: int) -> dict[str, tuple[int, ast.stmt]]:
    """name -> (block, top-level import or definition binding it), from the blocks other than `chosen`:
    the nearest earlier block wins, then later blocks."""
    order = list(range(chosen - 1, -1, -1)) + list(range(chosen + 1, len(blocks)))
    found: dict[str, tuple[int, ast.stmt]] = {}
    for i in order:
        tree = blocks[i].tree
        for node in tree.body if tree is not None else ():
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [node.name]
            else:
                continue
            for name in names:
                found.setdefault(name, (i, node))
    return found


def _merge(blocks: list[_Block], chosen: int) -> tuple[str, list[str]]:
    """The chosen block with the imports and definitions it needs from other blocks, and their names."""
    block = blocks[chosen]
    if block.tree is None:
        return block.code, []
    providers, bound = _providers(blocks, chosen), _bound(block.tree) | set(dir(builtins))
    wanted, todo, taken = set(), sorted(_used(block.tree) - bound), []
    while todo:
        name = todo.pop()
        if name in wanted or name not in providers:
            continue
        wanted.add(name)
        i, node = providers[name]
        if node not in [n for _, n in taken]:
            taken.append((i, node))
            todo += sorted(_used(node) - _bound(node) - bound - wanted)
    if not taken:
        return block.code, []
    imports = [n for _, n in taken if isinstance(n, ast.Import | ast.ImportFrom)]
    defs = [(i, n) for i, n in taken if not isinstance(n, ast.Import | ast.ImportFrom)]
    order = [(blocks[i].code, n) for i, n in sorted(((i, n) for i, n in taken if n in imports), key=_pos)]
    order += [(blocks[i].code, n) for i, n in sorted(defs, key=_pos)]
    parts = ["\n".join(code.split("\n")[_first_line(n) - 1 : n.end_lineno]) for code, n in order]
    return "\n".join(parts) + "\n\n" + block.code, sorted(wanted)


def _pos(pair: tuple[int, ast.stmt]) -> tuple[int, int]:
    return pair[0], pair[1].lineno


def explain_code(text: str, entry_point: str | None = None, *, stdin: bool = False) -> Extraction:
    """The program of a response (merged as described above) and the rule that chose it."""
    answer = strip_reasoning(text)
    if answer is None:
        return Extraction(None, "none", "the reasoning (<think>) never ended")
    blocks = _blocks(answer)
    if not blocks:
        return Extraction(None, "none", "no Python code in the answer (outside the reasoning)")
    chosen, why = _choose(blocks, entry_point, stdin)
    code, merged = _merge(blocks, chosen)
    rule = f"{blocks[chosen].kind} block {chosen + 1} of {len(blocks)}: {why}"
    if merged:
        rule += f"; merged from other blocks: {', '.join(merged)}"
    first = next((line for line in blocks[chosen].code.splitlines() if line.strip()), "")
    return Extraction(code, rule, first.strip())


def last_code_block(text: str) -> str | None:
    """The last Python block of a response (after its reasoning); None if there is none."""
    return explain_code(text).answer


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
    return "\n".join(lines[fences[-2] + 1 : fences[-1]])


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
        elif isinstance(node, ast.ClassDef) or (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and any(isinstance(n, ast.Return) for n in ast.walk(node))
        ):
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
    return "\n".join("\n".join(lines[_first_line(n) - 1 : n.end_lineno]) for n in kept)


def _identifiers(node: ast.AST) -> set[str]:
    """Every identifier in a definition, as EvalPlus's get_deps collects them (attributes too)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


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


def _harness_run(
    setup: dict[str, Any],
    code: str,
    task: dict[str, Any],
    timeout_s: float,
    memory_mb: int,
    max_output: int = sandbox.MAX_OUTPUT,
) -> tuple[list[dict[str, Any]], sandbox.ExecResult]:
    files = {"candidate.py": code, "candidate.json": json.dumps(setup)}
    result = sandbox.run(
        HARNESS.read_text(),
        stdin=json.dumps(task) + "\n",
        files=files,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        max_output=max_output,
    )
    records = []
    for line in result.stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, result


def _collect(
    records: list[dict[str, Any]],
    result: sandbox.ExecResult,
    n: int,
    nonce: str,
    value: Callable[[dict[str, Any]], Any],
) -> Outcome:
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
            f", {result.detail})" if result.detail else ")"
        )
    return outcome


def output_room(expected: Sequence[Any]) -> int:
    """How much harness output to accept for tests whose right answers are `expected`: the records of a
    right answer (JSON-escaped, up to 6x for control characters) fit, with room for wrong ones."""
    return sandbox.MAX_OUTPUT + 6 * len(json.dumps(encode(list(expected))))


def run_calls(
    code: str,
    entry: str,
    inputs: Sequence[Sequence[Any]],
    *,
    time_limits: Sequence[float],
    timeout_s: float,
    prelude: str = "",
    solution_class: bool = False,
    memory_mb: int = 1024,
    recursion_limit: int = 1000,
    max_output: int = sandbox.MAX_OUTPUT,
) -> Outcome:
    """Call `entry` of `code` with each input (a list of arguments); stop at the first error or timeout.
    `max_output`: bytes of records accepted (see `output_room`)."""
    nonce = secrets.token_hex(16)
    setup = {
        "mode": "calls",
        "entry": entry,
        "solution_class": solution_class,
        "load_timeout": timeout_s,
        "recursion_limit": recursion_limit,
    }
    task = {"nonce": nonce, "inputs": [encode(list(a)) for a in inputs], "time_limits": list(time_limits)}
    records, result = _harness_run(setup, prelude + code, task, timeout_s, memory_mb, max_output)
    return _collect(records, result, len(inputs), nonce, lambda r: decode(r["out"]))


def run_stdio(
    code: str,
    inputs: Sequence[str],
    *,
    time_limit: float,
    timeout_s: float,
    prelude: str = "",
    memory_mb: int = 1024,
    max_output: int = sandbox.MAX_OUTPUT,
) -> Outcome:
    """Run `code` once per input, the input on its stdin; stop at the first error or timeout."""
    nonce = secrets.token_hex(16)
    setup = {"mode": "stdio", "prelude": prelude}
    task = {"nonce": nonce, "inputs": list(inputs), "time_limit": time_limit}
    records, result = _harness_run(setup, code, task, timeout_s, memory_mb, max_output)
    return _collect(records, result, len(inputs), nonce, lambda r: str(r["stdout"]))


def run_asserts(
    code: str, entry: str, tests: Sequence[str], *, setup_code: str = "", timeout_s: float, memory_mb: int = 1024
) -> tuple[bool, str]:
    """Run assert-style `tests` (with `entry` bound to the candidate) in the harness; (passed, why not)."""
    nonce = secrets.token_hex(16)
    setup = {"mode": "asserts", "entry": entry, "load_timeout": timeout_s}
    task = {"nonce": nonce, "entry": entry, "setup": setup_code, "tests": list(tests), "time_limit": timeout_s}
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
NO_CODE = "no fenced Python code block in the answer"


class CheckFailed(QuantdropError):
    """A check that could not judge the program (e.g. the reference solution failed): scored "error"."""


def unextracted(detail: str = NO_CODE) -> Score:
    return Score(0.0, "unextracted", None, detail)


def verdict(passed: bool, code: str, detail: str = "") -> Score:
    return Score(1.0 if passed else 0.0, "correct" if passed else "wrong", code, detail[:500])


def code_scorer(
    extract: Callable[[str, Any], Extraction],
    check: Callable[[Any, str], tuple[bool, str]],
    *,
    sanitize_for: Callable[[Any], str] | None = None,
    no_code: str = NO_CODE,
) -> Scorer:
    """(response, target) -> Score for code: `extract(text, target)` finds the program, `sanitize_for(target)`
    names the entry point to sanitize it for (None: run as extracted), `check(target, code)` runs the
    tests in the sandbox and says (passed, why); a `CheckFailed` is an error, not a wrong answer."""

    def score(response: Completion, target: Any) -> Score:
        if response.error:
            return Score(0.0, "error", detail=response.error)
        code = extract(response.text, target).answer
        if code is None:
            return unextracted(no_code)
        if sanitize_for is not None:
            code = sanitize(code, sanitize_for(target))
        try:
            passed, why = check(target, code)
        except CheckFailed as err:
            return Score(0.0, "error", code, str(err))
        return verdict(passed, code, why)

    return score


def sandbox_note() -> str:
    """Probes the sandbox now, so a weak isolation is said at the start of a run (and in its source)."""
    iso = sandbox.isolation()
    return f"sandbox: {iso.level}" + ("" if iso.network_isolated else " (NO network isolation)")
