"""C-Eval: Chinese four-option exam questions over 52 subjects (Huang et al., "C-Eval: A Multi-Level
Multi-Discipline Chinese Evaluation Suite for Foundation Models", arXiv 2305.08322); a general-capability
benchmark of "Quantitative Analysis of Performance Drop in DeepSeek Model Quantization" (arXiv 2505.02390,
which reports the 12,342-question test set), weight 1, one sample.

Data: hub `ceval/ceval-exam`, one config per subject (id, question, A, B, C, D, answer, explanation), or
its archive layout under `--data-dir` (ceval/val/<subject>_val.csv). The test split's answers are not
public, so quantdrop scores the `val` split (1,346 questions) and labels the row "C-Eval (val)".

A `split="test"` run is a different benchmark in the store ("ceval-test", weight 0, so it never enters
an average): each response keeps its chosen letter (scored 0, "unextracted": nothing to check against),
and `write_submission` / `submission_from_store` write the JSON the official site grades,
{subject: {question id: letter}}.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantdrop.errors import QuantdropError
from quantdrop.eval.benchmarks._base import CHOICE_PLACEHOLDERS, CHOICE_TEMPLATE_ZH, ChoiceBenchmark
from quantdrop.eval.benchmarks._data import DataSource, subject_of
from quantdrop.eval.scoring.choice import LETTERS, extract_choice
from quantdrop.eval.scoring.text import resolve_template, strip_reasoning
from quantdrop.eval.types import Completion, Item, Score
from quantdrop.util import atomic_write

if TYPE_CHECKING:
    from quantdrop.eval.results import BenchResult

HUB_ID = "ceval/ceval-exam"
FIELDS = ("id", "question", "A", "B", "C", "D")
SIZES = {"val": 1346, "test": 12342, "dev": 260}
TEST_NAME = "ceval-test"  # the store's key for test-split runs
DEFAULT_SUBMISSION = "ceval-test-submission.json"
# The 52 subjects (the hub's config names), as in lm-evaluation-harness' ceval task list.
SUBJECTS = (
    "computer_network",
    "operating_system",
    "computer_architecture",
    "college_programming",
    "college_physics",
    "college_chemistry",
    "advanced_mathematics",
    "probability_and_statistics",
    "discrete_mathematics",
    "electrical_engineer",
    "metrology_engineer",
    "high_school_mathematics",
    "high_school_physics",
    "high_school_chemistry",
    "high_school_biology",
    "middle_school_mathematics",
    "middle_school_biology",
    "middle_school_physics",
    "middle_school_chemistry",
    "veterinary_medicine",
    "college_economics",
    "business_administration",
    "marxism",
    "mao_zedong_thought",
    "education_science",
    "teacher_qualification",
    "high_school_politics",
    "high_school_geography",
    "middle_school_politics",
    "middle_school_geography",
    "modern_chinese_history",
    "ideological_and_moral_cultivation",
    "logic",
    "law",
    "chinese_language_and_literature",
    "art_studies",
    "professional_tour_guide",
    "legal_professional",
    "high_school_chinese",
    "high_school_history",
    "middle_school_history",
    "civil_servant",
    "sports_science",
    "plant_protection",
    "basic_medicine",
    "clinical_medicine",
    "urban_and_rural_planner",
    "accountant",
    "fire_engineer",
    "environmental_impact_assessment_engineer",
    "tax_accountant",
    "physician",
)
NO_ANSWERS = "C-Eval test answers are not public: the letter is kept for the submission file"


class Ceval(ChoiceBenchmark):
    default_samples = 1

    def __init__(
        self, template: str, data_dir: Path | None = None, split: str = "val", submission: str | Path | None = None
    ) -> None:
        super().__init__(template=template, data_dir=data_dir)
        if split not in SIZES:
            raise QuantdropError(f"unknown C-Eval split {split!r} (one of: {', '.join(SIZES)})")
        self.split = split
        wanted = submission or (DEFAULT_SUBMISSION if split == "test" else None)
        self.submission_path = Path(wanted) if wanted else None

    # The contract's class-level fields depend on the split here.
    @property
    def name(self) -> str:  # type: ignore[override]
        return {"val": "ceval", "test": TEST_NAME}.get(self.split, f"ceval-{self.split}")

    @property
    def title(self) -> str:  # type: ignore[override]
        return "C-Eval (test, unscored)" if self.split == "test" else f"C-Eval ({self.split})"

    @property
    def full_size(self) -> int:  # type: ignore[override]
        return SIZES[self.split]

    @property
    def weight(self) -> float:  # type: ignore[override]
        return 0.0 if self.split == "test" else 1.0

    @property
    def data(self) -> DataSource:  # type: ignore[override]
        required = FIELDS if self.split == "test" else (*FIELDS, "answer")
        return DataSource(HUB_ID, self.split, SUBJECTS, required, local_name="ceval")

    def load(self, data_dir: Path | str | None = None) -> list[Item]:
        rows, self.loaded_from = self._rows(data_dir)
        items = []
        for number, row in enumerate(rows, 1):
            subject, answer = subject_of(row), str(row.get("answer") or "").strip() or None
            if self.split != "test" and answer not in LETTERS:
                raise QuantdropError(
                    f"ceval row {number} ({subject}): 'answer' must be one of A-D, got {row.get('answer')!r}"
                )
            choices = [str(row[letter]) for letter in LETTERS]
            items.append(
                self.item(f"{subject}/{str(row['id']).strip()}", row["question"], choices, answer, subject=subject)
            )
        return items

    def score(self, item: Item, completion: Completion) -> Score:
        if item.target is not None or completion.error:
            return super().score(item, completion)
        return Score(0.0, "unextracted", extracted=_letter(completion.text), detail=NO_ANSWERS)

    def after_run(self, store: str | Path, label: str, result: BenchResult) -> str | None:
        """After a complete test-split run: the official submission file, and a line saying where."""
        if self.submission_path is None or not result.complete:
            return None
        path = submission_from_store(store, label, self.submission_path)
        return f"C-Eval submission file for the official site: {path}"

    def write_submission(self, responses: Iterable[tuple[Item | str, str]], path: str | Path | None = None) -> Path:
        """Write the official submission file from (item, response text) pairs, to `path` or to the
        `submission=` option (default for a test-split run: ceval-test-submission.json)."""
        target = path or self.submission_path
        if target is None:
            raise QuantdropError("no path for the C-Eval submission file (pass submission=PATH)")
        return write_submission(responses, target)


def _letter(text: str) -> str | None:
    answer = strip_reasoning(text)
    return extract_choice(answer) if answer is not None else None


def submission(responses: Iterable[tuple[Item | str, str]]) -> dict[str, dict[str, str]]:
    """{subject: {question id: letter}} from (item or item id "subject/id", response text) pairs;
    "" where no letter was found. With several samples of one item, the first response counts."""
    result: dict[str, dict[str, str]] = {}
    for item, text in responses:
        subject, qid = (item.id if isinstance(item, Item) else item).rsplit("/", 1)
        if qid not in result.setdefault(subject, {}):
            result[subject][qid] = _letter(text) or ""
    return result


def write_submission(responses: Iterable[tuple[Item | str, str]], path: str | Path) -> Path:
    """Write the C-Eval submission JSON atomically (a temp file in the target directory, then rename)."""
    path = Path(path)
    data = submission(responses)
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1))
    return path


def submission_from_store(store: str | Path, label: str, path: str | Path = DEFAULT_SUBMISSION) -> Path:
    """Write the submission file from the test-split C-Eval run stored under `label` in `store`."""
    from quantdrop.eval.store import Store

    with Store(store, readonly=True) as db:
        runs = [run for run in db.runs([label]) if run.benchmark == TEST_NAME]
        if not runs:
            raise QuantdropError(
                f"{store} has no C-Eval test-split run labelled {label!r} "
                "(run the evaluation with the C-Eval split set to test first)"
            )
        rows = [row for row in db.rows(runs[-1].id) if not row.completion.error]
        expected = len(db.item_ids(runs[-1].id))
    answered = {row.item_id for row in rows}
    if len(answered) < expected:
        raise QuantdropError(
            f"the C-Eval test run {label!r} has responses for {len(answered)} of "
            f"{expected} questions: finish it (re-run the same command) first"
        )
    return write_submission(
        ((row.item_id, row.completion.text) for row in sorted(rows, key=lambda r: (r.item_id, r.sample))), path
    )


def create(
    *,
    template: str | None = None,
    data_dir: Path | str | None = None,
    split: str = "val",
    submission: str | Path | None = None,
    **_: Any,
) -> Ceval:
    return Ceval(
        template=resolve_template(template, CHOICE_TEMPLATE_ZH, CHOICE_PLACEHOLDERS, "ceval"),
        data_dir=Path(data_dir) if data_dir is not None else None,
        split=split,
        submission=submission,
    )
