"""LiveCodeBench code generation (Jain et al., arXiv 2403.07974): contest problems from LeetCode, AtCoder and
Codeforces, dated so that a window after a model's training cut-off is contamination-free; one of the code
benchmarks of arXiv 2505.02390 (weight 0.5, 4 samples, 272 problems), which follows DeepSeek-R1's window
2024-08 to 2025-01. The default here: release_v5, contests from 2024-08-01 to 2025-01-31 (inclusive);
`release`, `date_from` and `date_to` change them; the run reports the problem count it got.

Data: hub `livecodebench/code_generation_lite` (version tag = `release`), or DIR/livecodebench.jsonl or
DIR/livecodebench/test*.jsonl in its schema (question_id, question_content, starter_code, contest_date,
platform, public_test_cases, private_test_cases, metadata). The hub's files test.jsonl, test2.jsonl, ...
hold releases v1, v2, ...: files beyond the chosen release are skipped.
Prompt: LiveCodeBench's DeepSeek-R1 template (lcb_runner/prompts/code_generation.py) as the user message.
Extraction (quantdrop.eval.scoring.code): the block that defines the Solution method, or for stdin problems
the last complete program; LiveCodeBench's own rule (the lines between the last two ``` lines) only when
no Python block is found. Scoring: lcb_runner/evaluation/testing_util.py: public + private tests,
functional (LeetCode `Solution` methods, JSON arguments per line) or stdin/stdout (stripped lines, equal
or equal as Decimals); 6 s per test, LiveCodeBench's import prelude; pass@1 = the mean over samples (the runner's mean).
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import re
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.eval.benchmarks._base import CodeBenchmark
from quantdrop.eval.benchmarks._data import DataSource, check_rows, read_file
from quantdrop.eval.scoring import code as code_scoring
from quantdrop.eval.scoring.text import Extraction, render, resolve_template
from quantdrop.eval.types import Item

HUB_ID = "livecodebench/code_generation_lite"
REQUIRED = (
    "question_id",
    "question_content",
    "starter_code",
    "contest_date",
    "public_test_cases",
    "private_test_cases",
    "metadata",
)
RELEASE = "release_v5"
DATE_FROM = "2024-08-01"
DATE_TO = "2025-01-31"
TIMEOUT_S = 6  # lcb_runner/runner/parser.py: --timeout default
MEMORY_MB = 4096  # LiveCodeBench sets no memory limit; this bound keeps a 2-core machine alive
# LiveCodeBench's get_deepseek_r1_question_template_answer, without the model's special tokens.
TEMPLATE = (
    "You will be given a question (problem specification) and will generate a correct Python program "
    "that matches the specification and passes all tests.\n\nQuestion: {question}\n\n{format}"
)
WITH_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose "
    "your code within delimiters.\n```python\n{starter}\n```\n\n"
)
WITHOUT_STARTER = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do "
    "not directly test on the sample inputs). Enclose your code within delimiters as follows. "
    "Ensure that when the python program runs, it reads the inputs, runs the algorithm and "
    "writes output to STDOUT.\n```python\n# YOUR CODE HERE\n```\n\n"
)
# testing_util.py's import_string, prepended to every program (and sys.set_int_max_str_digits(50000) from
# compute_code_generation_metrics.py, which its test processes inherit).
_MODULES = (
    "string",
    "re",
    "datetime",
    "collections",
    "heapq",
    "bisect",
    "copy",
    "math",
    "random",
    "statistics",
    "itertools",
    "functools",
    "operator",
    "io",
    "sys",
    "json",
    "builtins",
    "typing",
)
PRELUDE = (
    "".join(f"from {m} import *\n" for m in _MODULES)
    + "".join(f"import {m}\n" for m in _MODULES if m not in ("builtins", "typing"))
    + "sys.setrecursionlimit(50000)\nsys.set_int_max_str_digits(50000)\n\n"
)
_RELEASE_FILE = re.compile(r"test(\d*)$")


@dataclass(frozen=True)
class LcbProblem:
    question_id: str
    fn_name: str | None  # functional (LeetCode) problems name the Solution method
    public_tests: str  # the dataset's fields, decoded only when scored (private tests can be large)
    private_tests: str


def extract_program(text: str, problem: LcbProblem | None) -> Extraction:
    """The program block of a response and why it was chosen (functional or stdin: known from the
    problem), else LiveCodeBench's own rule."""
    if problem is None:
        return code_scoring.explain_code(text)
    found = code_scoring.explain_code(text, problem.fn_name, stdin=problem.fn_name is None)
    if found.answer is None and (fallback := code_scoring.lcb_code_block(text)) is not None:
        return Extraction(fallback, "LiveCodeBench's rule: the lines between the last two ``` lines")
    return found


class LiveCodeBench(CodeBenchmark):
    name = "livecodebench"
    title = "LiveCodeBench"
    full_size = 272  # the paper's count (Table 8)
    default_samples = 4
    weight = 0.5
    extract = staticmethod(extract_program)
    scorer = staticmethod(
        code_scoring.code_scorer(
            extract_program,
            lambda problem, code: check(problem, code),
            no_code="no Python code in the answer (nor two ``` lines)",
        )
    )

    release: str = RELEASE
    date_from: str = DATE_FROM
    date_to: str = DATE_TO

    def load(self, data_dir: Path | str | None = None) -> list[Item]:
        rows, where = _rows(self._source(data_dir), self.release, self.data)
        start, end = _day(self.date_from, "date_from"), _day(self.date_to, "date_to")
        chosen = [r for r in rows if start <= _contest_day(r) <= end]
        chosen.sort(key=lambda r: (_contest_day(r), str(r["question_id"])))
        self.loaded_from = (
            f"{where}, {self.release}, {self.date_from}..{self.date_to}: "
            f"{len(chosen)} of {len(rows)} problems; {code_scoring.sandbox_note()}"
        )
        return [self.item(row) for row in chosen]

    def item(self, row: dict[str, Any]) -> Item:
        metadata = row["metadata"]
        metadata = json.loads(metadata) if isinstance(metadata, str) else dict(metadata or {})
        starter = row.get("starter_code") or ""
        fmt = render(WITH_STARTER, starter=starter) if starter else WITHOUT_STARTER
        problem = LcbProblem(
            str(row["question_id"]),
            metadata.get("func_name"),
            str(row["public_test_cases"]),
            str(row["private_test_cases"]),
        )
        return Item(
            id=str(row["question_id"]),
            prompt=render(self.template, question=str(row["question_content"]), format=fmt),
            target=problem,
            meta={
                "platform": row.get("platform"),
                "difficulty": row.get("difficulty"),
                "contest_date": str(row["contest_date"]),
                "functional": problem.fn_name is not None,
            },
        )

    @property
    def data(self) -> DataSource:  # type: ignore[override]
        """The hub's release; `--data-dir` files are read by `_rows` (release files up to this one)."""
        return DataSource(HUB_ID, "test", self.release, REQUIRED)


def all_tests(problem: LcbProblem) -> list[dict[str, str]]:
    """Public then private tests (CodeGenerationProblem.get_evaluation_sample's order)."""
    return _json_tests(problem.public_tests) + decode_private_tests(problem.private_tests)


def check(problem: LcbProblem, code: str, timeout_s: int = TIMEOUT_S) -> tuple[bool, str]:
    """LiveCodeBench's verdict for `code` on all of the problem's tests."""
    tests = all_tests(problem)
    overall = (timeout_s + 1) * len(tests) + 5  # check_correctness's global timeout
    if problem.fn_name:
        inputs = [[json.loads(line) for line in t["input"].split("\n")] for t in tests]
        expected: list[Any] = [json.loads(t["output"]) for t in tests]
        outcome = code_scoring.run_calls(
            code,
            problem.fn_name,
            inputs,
            prelude=PRELUDE,
            solution_class="class Solution" in code,
            time_limits=[timeout_s] * len(tests),
            timeout_s=overall,
            memory_mb=MEMORY_MB,
            recursion_limit=50000,
            max_output=code_scoring.output_room(expected),
        )
        same = code_scoring.lcb_call_equal
    else:
        expected = [t["output"] for t in tests]
        outcome = code_scoring.run_stdio(
            code,
            [t["input"] for t in tests],
            prelude=PRELUDE,
            time_limit=timeout_s,
            timeout_s=overall,
            memory_mb=MEMORY_MB,
            max_output=code_scoring.output_room(expected),
        )
        same = code_scoring.lcb_stdio_equal
    for i, out in enumerate(outcome.outputs):
        if not same(out, expected[i]):
            return False, f"wrong answer at test {i}"
    if not outcome.ran_all:
        return False, outcome.failure
    return True, ""


def _json_tests(text: str) -> list[dict[str, str]]:
    tests = json.loads(text) if isinstance(text, str) else text
    return [{"input": t["input"], "output": t["output"]} for t in tests]


class _StringsOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a test-case blob")


def decode_private_tests(text: str) -> list[dict[str, str]]:
    """LiveCodeBench's private tests: JSON, or base64(zlib(pickle(JSON string))) as its loader decodes them
    (lcb_runner/benchmarks/code_generation.py). Unpickling runs code from the data file; we only accept
    pickles of plain values (no classes, no callables), which is all a JSON string needs."""
    try:
        return _json_tests(text)
    except (ValueError, TypeError):
        pass
    try:
        blob = zlib.decompress(base64.b64decode(text.encode("utf-8")))
        return _json_tests(_StringsOnly(io.BytesIO(blob)).load())
    except Exception as err:
        raise QuantdropError(f"cannot decode LiveCodeBench private test cases ({type(err).__name__}: {err})") from None


def _rows(source: Path | None, release: str, hub: DataSource) -> tuple[list[dict[str, Any]], str]:
    number = _release_number(release)
    if source is not None:
        files = _local_files(source)
        if files:
            rows: list[dict[str, Any]] = []
            for path in files:
                match = _RELEASE_FILE.match(path.stem)
                if number is not None and match and int(match.group(1) or 1) > number:
                    continue
                part = read_file(path)
                check_rows(part, REQUIRED, str(path))
                rows += part
            where = str(files[0]) if len(files) == 1 else f"{source / 'livecodebench'} ({len(files)} files)"
            return rows, where
    return hub.rows("livecodebench", None)


def _local_files(source: Path) -> list[Path]:
    if not source.is_dir():
        raise QuantdropError(f"--data-dir {source} is not a directory")
    for ext in (".jsonl", ".json", ".parquet"):
        if (source / f"livecodebench{ext}").is_file():
            return [source / f"livecodebench{ext}"]
    folder = source / "livecodebench"
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if p.suffix in (".jsonl", ".json", ".parquet")),
        key=lambda p: (int(m.group(1) or 1) if (m := _RELEASE_FILE.match(p.stem)) else 0, p.name),
    )


def _release_number(release: str) -> int | None:
    match = re.fullmatch(r"(?:release_)?v(\d+)", release.strip())
    if match:
        return int(match.group(1))
    if release.strip() in {"release_latest", "latest"}:
        return None
    raise QuantdropError(f"unknown LiveCodeBench release {release!r} (release_v1 .. release_v6, release_latest)")


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        raise QuantdropError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def _contest_day(row: dict[str, Any]) -> date:
    value = row["contest_date"]
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date()


def create(
    *,
    template: str | None = None,
    data_dir: Path | str | None = None,
    release: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    **_: Any,
) -> LiveCodeBench:
    template = resolve_template(template, TEMPLATE, ("question", "format"), "livecodebench")
    bench = LiveCodeBench(template=template, data_dir=Path(data_dir) if data_dir is not None else None)
    bench.release = release or RELEASE
    _release_number(bench.release)
    bench.date_from = date_from or DATE_FROM
    bench.date_to = date_to or DATE_TO
    _day(bench.date_from, "date_from")
    _day(bench.date_to, "date_to")
    return bench
