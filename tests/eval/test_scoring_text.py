"""Reasoning removal and prompt templates."""

from __future__ import annotations

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.eval.scoring.text import render, resolve_template, strip_reasoning


def test_strip_reasoning_keeps_the_text_after_the_think_block() -> None:
    assert (
        strip_reasoning("<think>\nlet me see: 2+2\n</think>\n\nThe answer is \\boxed{4}.")
        == "The answer is \\boxed{4}."
    )


def test_strip_reasoning_with_the_opening_tag_in_the_prompt() -> None:
    # DeepSeek-R1's chat template opens <think> in the prompt: the response has only the closing tag.
    assert strip_reasoning("2+2 is 4.\n</think>\nAnswer: B") == "Answer: B"


def test_strip_reasoning_unclosed_block_is_no_answer() -> None:
    assert strip_reasoning("<think>\nlet me see, \\boxed{4}? or maybe") is None


def test_strip_reasoning_without_tags_returns_the_text() -> None:
    assert strip_reasoning("  Answer: C\n") == "Answer: C"


def test_render_leaves_latex_braces_alone() -> None:
    template = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{}."
    text = render(template, problem="What is {x} in $\\frac{1}{2}$?")
    assert (
        text == "What is {x} in $\\frac{1}{2}$?\nPlease reason step by step, and put your final "
        "answer within \\boxed{}."
    )


def test_render_fills_each_placeholder_once() -> None:
    # A question that itself contains "{A}" must not be filled again.
    assert render("{question} | {A}", question="see {A}", A="x") == "see {A} | x"


def test_template_override_from_text_and_file(tmp_path) -> None:
    assert resolve_template(None, "D {problem}", ("problem",), "math500") == "D {problem}"
    assert resolve_template("Solve: {problem}", "D {problem}", ("problem",), "math500") == "Solve: {problem}"
    path = tmp_path / "t.txt"
    path.write_text("From a file: {problem}", encoding="utf-8")
    assert resolve_template(str(path), "D", ("problem",), "math500") == "From a file: {problem}"


def test_template_without_its_placeholder_is_refused() -> None:
    with pytest.raises(QuantdropError, match=r"lacks the placeholder \{question\}"):
        resolve_template("Answer this: {A} {B} {C} {D}", "", ("question", "A", "B", "C", "D"), "mmlu")
