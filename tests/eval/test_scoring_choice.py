"""Letter extraction on realistic model outputs; unextractable answers are not wrong answers."""

from __future__ import annotations

import pytest

from quantdrop.eval.scoring.choice import extract_choice, score_choice
from quantdrop.eval.types import Completion, Item

R1_STYLE = """<think>
Okay, the question asks for the order of 2 in Z_6. Adding 2 to itself: 2, 4, 0. So three steps.
Option A says 2, which is wrong. Let me double check... 2+2+2 = 6 = 0 mod 6. Yes, order 3.
</think>
The element 2 generates {0, 2, 4}, a subgroup with 3 elements, so its order is 3.

Answer: B"""

CASES = [
    (R1_STYLE, "B"),
    ("The order is 3.\n\n**Answer:** C", "C"),
    ("**Answer: D**", "D"),
    ("Therefore, the answer is (A).", "A"),
    ("The correct answer is option B, since ...", "B"),
    ("Final Answer: The final answer is $\\boxed{C}$", "C"),
    ("So we pick \\boxed{\\text{D}}.", "D"),
    ("So the choice is \\boxed{(A)}", "A"),
    ("Answer: $B$", "B"),
    ("I first thought Answer: A, but the units do not match.\nAnswer: C", "C"),  # the last one counts
    ("The most likely answer to the given question is A) Primary", "A"),  # seen from SmolLM2
    ("Comparing the rates, (C) is the correct answer.", "C"),
    ("Therefore, the correct option is D.", "D"),
    ("ANSWER: B", "B"),
    ("Reasoning...\n\nB", "B"),  # a bare letter on the last line
    ("Reasoning...\n\n**(D)**", "D"),
    ("水稻是粮食作物。\n答案：B", "B"),
    ("分析各选项后可知，答案是C。", "C"),
    ("综上，正确答案为（D）", "D"),
    ("所以本题答案：Ａ", "A"),  # full-width letter
    ("A项错误，B项正确，故选B", "B"),
    ("答案应选 A", "A"),
    ("因此，正确选项是B。", "B"),
    ("故答案为：D", "D"),
]


@pytest.mark.parametrize(("text", "letter"), CASES)
def test_extracts_the_chosen_letter(text: str, letter: str) -> None:
    assert extract_choice(text) == letter


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I am not sure about this one.",
        "The last line should be 'Answer: $LETTER' where LETTER is one of ABCD.",  # the instruction echoed
        "Answer: Based on the data, none of them.",  # a word, not a letter
        "The answer is a function of temperature.",  # the article "a"
        "选项A和选项C都不对。",  # options discussed, none chosen
        "Answer: E",  # not one of the four options
        "Answer the following multiple choice question.",  # the prompt echoed
        "The answer to this question is not obvious.",
    ],
)
def test_no_letter_is_none(text: str) -> None:
    assert extract_choice(text) is None


def _item(target: str = "B") -> Item:
    return Item(id="q1", prompt="...", target=target)


def test_score_statuses_correct_wrong_unextracted_error() -> None:
    assert score_choice(_item("B"), Completion(text=R1_STYLE)).status == "correct"
    assert score_choice(_item("B"), Completion(text=R1_STYLE)).value == 1.0
    wrong = score_choice(_item("A"), Completion(text=R1_STYLE))
    assert (wrong.status, wrong.value, wrong.extracted) == ("wrong", 0.0, "B")
    none = score_choice(_item("B"), Completion(text="I do not know."))
    assert (none.status, none.value, none.extracted) == ("unextracted", 0.0, None)
    failed = score_choice(_item("B"), Completion(error="HTTP 500", finish_reason="error"))
    assert (failed.status, failed.value) == ("error", 0.0)


def test_letters_inside_the_reasoning_do_not_count() -> None:
    # The think block names "Answer: A" but the final answer is C.
    text = "<think>Maybe Answer: A? No.</think>\nAnswer: C"
    assert score_choice(_item("C"), Completion(text=text)).status == "correct"


def test_unclosed_reasoning_is_no_answer_even_if_it_names_a_letter() -> None:
    cut = Completion(text="<think>\nAnswer: B looks plausible, but let me check the", finish_reason="length")
    score = score_choice(_item("B"), cut)
    assert (score.status, score.value) == ("unextracted", 0.0)
