"""What every benchmark module shares: the contract's attributes, the prompt template, the scorers.

A benchmark renders each item's prompt once, at load, from its template (a module constant that the
`template=` option overrides), and sends it as the only user message: no system prompt, as DeepSeek-R1's
evaluation protocol prescribes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from quantdrop.eval.benchmarks._data import DataSource
from quantdrop.eval.scoring.choice import LETTERS, choice_scorer, explain_choice
from quantdrop.eval.scoring.math import explain_math, math_scorer
from quantdrop.eval.scoring.text import NO_ANSWER, Extraction, render, strip_reasoning
from quantdrop.eval.types import Completion, Item, Message, Score, Scorer, partial_label

if TYPE_CHECKING:
    from quantdrop.eval.results import BenchResult

# DeepSeek-R1's math directive (its model card: "Please reason step by step, and put your final answer
# within \boxed{}."), after the problem.
MATH_TEMPLATE = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{}."

# simple-evals' QUERY_TEMPLATE_MULTICHOICE, which DeepSeek-R1 used for MMLU and GPQA-Diamond.
CHOICE_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the "
    "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by "
    "step before answering.\n\n{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)

# The same instruction in Chinese, for CMMLU and C-Eval.
CHOICE_TEMPLATE_ZH = (
    "回答下面的单项选择题。你的回答的最后一行应当采用以下格式：“答案：$LETTER”（不含引号），其中 LETTER 是 "
    "ABCD 中的一个。回答之前请逐步思考。\n\n{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)

MATH_PLACEHOLDERS = ("problem",)
CHOICE_PLACEHOLDERS = ("question", "A", "B", "C", "D")


@dataclass
class BaseBenchmark:
    """Fields of `quantdrop.eval.types.Benchmark` shared by all benchmark modules."""

    name: ClassVar[str]
    title: ClassVar[str]
    full_size: ClassVar[int]
    default_samples: ClassVar[int]
    weight: ClassVar[float]  # the paper's Appendix A.2 weight: the one home of the weights
    data: ClassVar[DataSource]  # where the items come from
    scorer: ClassVar[Scorer]  # (response, item.target) -> Score, a staticmethod

    template: str
    data_dir: Path | None = None
    loaded_from: str = ""

    def messages(self, item: Item) -> list[Message]:
        return [{"role": "user", "content": item.prompt}]

    def score(self, item: Item, completion: Completion) -> Score:
        return self.scorer(completion, item.target)

    def after_run(self, store: str | Path, label: str, result: BenchResult) -> str | None:
        """Called by the runner after each run of this benchmark; a line to show, or None."""
        return None

    def label(self, n_items: int) -> str:
        """The table label: the title, with "(n/full)" when the set is partial."""
        return partial_label(self.title, n_items, self.full_size)

    def _rows(self, data_dir: Path | str | None) -> tuple[list[dict[str, Any]], str]:
        """The rows of `self.data` (from `data_dir`, else the one given at creation, else the hub)."""
        return self.data.rows(self.name, self._source(data_dir))

    def _source(self, data_dir: Path | str | None) -> Path | None:
        chosen = data_dir if data_dir is not None else self.data_dir
        return Path(chosen) if chosen is not None else None


class CodeBenchmark(BaseBenchmark):
    """A benchmark whose answers are programs, run with their tests in the sandbox (scoring.code)."""

    # (response text, item.target or None) -> the program and why it was chosen; a staticmethod
    extract: ClassVar[Callable[[str, Any], Extraction]]

    def explain(self, item: Item | None, completion: Completion) -> Extraction:
        """The program block and why it was chosen (the entry point, or stdin, is known from the item)."""
        return self.extract(completion.text, item.target if item is not None else None)


class MathBenchmark(BaseBenchmark):
    """A benchmark whose answers are math expressions checked with math-verify."""

    scorer = staticmethod(math_scorer())

    def prompt(self, problem: str) -> str:
        return render(self.template, problem=problem.strip())

    def explain(self, item: Item | None, completion: Completion) -> Extraction:
        """The final answer chosen before math-verify, and its rule (the list rule needs the gold)."""
        answer = strip_reasoning(completion.text)
        if answer is None:
            return Extraction(None, "none", NO_ANSWER)
        return explain_math(answer, str(item.target) if item is not None else None)


class ChoiceBenchmark(BaseBenchmark):
    """A four-option multiple-choice benchmark; `item.target` is the correct letter."""

    scorer = staticmethod(choice_scorer())

    def prompt(self, question: str, choices: list[str]) -> str:
        options = {letter: str(text).strip() for letter, text in zip(LETTERS, choices, strict=True)}
        return render(self.template, question=str(question).strip(), **options)

    def item(self, item_id: str, question: Any, choices: list[str], target: str | None, **meta: Any) -> Item:
        """One question, prompted; its meta keeps the question and choices that log-likelihood scoring
        reads (quantdrop.eval.loglik) next to the benchmark's own fields (subject, domain...)."""
        return Item(
            id=item_id,
            prompt=self.prompt(question, choices),
            target=target,
            meta={**meta, "question": str(question), "choices": choices},
        )

    def explain(self, item: Item | None, completion: Completion) -> Extraction:
        """The chosen letter and the rule that found it (see quantdrop.eval.scoring.choice)."""
        answer = strip_reasoning(completion.text)
        if answer is None:
            return Extraction(None, "none", NO_ANSWER)
        return explain_choice(answer)
