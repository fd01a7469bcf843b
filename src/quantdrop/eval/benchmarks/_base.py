"""What every benchmark module shares: the contract's attributes, the prompt template, the scorers.

A benchmark renders each item's prompt once, at load, from its template (a module constant that the
`template=` option overrides), and sends it as the only user message: no system prompt, as DeepSeek-R1's
evaluation protocol prescribes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from quantdrop.eval.scoring.choice import LETTERS, explain_choice, score_choice
from quantdrop.eval.scoring.math import explain_math, score_math
from quantdrop.eval.scoring.text import Extraction, render, strip_reasoning
from quantdrop.eval.types import Completion, Item, Message, Score

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
    weight: ClassVar[float]

    template: str
    data_dir: Path | None = None
    loaded_from: str = ""

    def messages(self, item: Item) -> list[Message]:
        return [{"role": "user", "content": item.prompt}]

    def label(self, n_items: int) -> str:
        """The table label: the title, with "(n/full)" when the set is partial."""
        return self.title if n_items >= self.full_size else f"{self.title} ({n_items}/{self.full_size})"

    def _source(self, data_dir: Path | str | None) -> Path | None:
        chosen = data_dir if data_dir is not None else self.data_dir
        return Path(chosen) if chosen is not None else None


class MathBenchmark(BaseBenchmark):
    """A benchmark whose answers are math expressions checked with math-verify."""

    def prompt(self, problem: str) -> str:
        return render(self.template, problem=problem.strip())

    def score(self, item: Item, completion: Completion) -> Score:
        return score_math(item, completion)

    def explain(self, item: Item | None, completion: Completion) -> Extraction:
        """The final answer chosen before math-verify, and its rule (the list rule needs the gold)."""
        answer = strip_reasoning(completion.text)
        if answer is None:
            return Extraction(None, "none", "the reasoning (<think>) never ended")
        return explain_math(answer, str(item.target) if item is not None else None)


class ChoiceBenchmark(BaseBenchmark):
    """A four-option multiple-choice benchmark; `item.target` is the correct letter."""

    def prompt(self, question: str, choices: list[str]) -> str:
        options = {letter: str(text).strip() for letter, text in zip(LETTERS, choices, strict=True)}
        return render(self.template, question=str(question).strip(), **options)

    def score(self, item: Item, completion: Completion) -> Score:
        return score_choice(item, completion)

    def explain(self, item: Item | None, completion: Completion) -> Extraction:
        """The chosen letter and the rule that found it (see quantdrop.eval.scoring.choice)."""
        answer = strip_reasoning(completion.text)
        if answer is None:
            return Extraction(None, "none", "the reasoning (<think>) never ended")
        return explain_choice(answer)
