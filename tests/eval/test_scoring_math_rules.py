"""Issue 9's math cases, one line each: we choose the final answer (last box, a list of boxes that stand
together when the gold is a list, a letter, a unit dropped) before math-verify compares it."""

from __future__ import annotations

import pytest

from quantdrop.eval.scoring.math import check_answer, drop_unit, explain_math, is_list

# (gold, response, status, rule prefix)
CASES = [
    # a response that revised itself: bare boxes close together are not joined (latex2sympy2_extended 1.11)
    ("204", "\\boxed{200} ... Wait, I forgot four cases. The total is \\boxed{204}.", "correct", "last-box"),
    ("200204", "\\boxed{200} ... Wait, I forgot four cases. The total is \\boxed{204}.", "wrong", "last-box"),
    ("200,204", "\\boxed{200} ... Wait, I forgot four cases. The total is \\boxed{204}.", "wrong", "last-box"),
    ("5", "First I got \\boxed{4}, but recounting gives \\boxed{5}", "correct", "last-box"),
    (
        "\\frac{1}{2}",
        "There are \\boxed{12} favourable outcomes, so the probability is \\boxed{\\frac{1}{2}}",
        "correct",
        "last-box",
    ),
    # several boxes that stand together are the answer to a list question
    ("3, 5, 7", "$\\boxed{3}$, $\\boxed{5}$, and $\\boxed{7}$", "correct", "box-list (3"),
    ("3, 5, 7", "\\boxed{3}, \\boxed{5}, and \\boxed{7}", "correct", "box-list (3"),
    ("3, 5, 7", "$\\boxed{3}$, $\\boxed{5}$, and $\\boxed{8}$", "wrong", "box-list (3"),
    ("-2, 1", "The roots are $x=\\boxed{-2}$ and $x=\\boxed{1}$.", "correct", "box-list (2"),
    ("3, 5, 7", "I tried \\boxed{3}. Then after much more work the set is \\boxed{3, 5, 7}", "correct", "last-box"),
    ("7", "$\\boxed{3}$, $\\boxed{5}$, and $\\boxed{7}$", "correct", "last-box"),  # not a list gold: last box
    # a multiple-choice gold
    ("\\text{(C)}", "The answer is (C).", "correct", "letter"),
    ("\\text{(C)}", "The answer is (B).", "wrong", "letter"),
    ("\\text{(C)}", "**Answer:** C", "correct", "letter"),
    ("\\text{(C)}", "So the answer is \\boxed{C}.", "correct", "last-box"),
    ("\\text{(C)}", "So the answer is \\boxed{\\text{(C)}}.", "correct", "last-box"),
    # units inside the box
    ("6", "\\boxed{6 cm^2}", "correct", "last-box, unit dropped"),
    ("6", "The area is $\\boxed{6 \\text{ cm}^2}$.", "correct", "last-box, unit dropped"),
    ("7", "\\boxed{6 cm^2}", "wrong", "last-box, unit dropped"),
    ("2x", "\\boxed{2 x}", "correct", "last-box"),  # a variable is no unit
]


@pytest.mark.parametrize(("gold", "response", "status", "rule"), CASES)
def test_final_answer_then_math_verify(gold: str, response: str, status: str, rule: str) -> None:
    result = check_answer(gold, response)
    assert result.status == status, result
    assert explain_math(response, gold).rule.startswith(rule)
    assert result.detail.startswith(rule)


@pytest.mark.parametrize(
    ("gold", "listed"),
    [
        ("3, 5, 7", True),
        ("-2, 1", True),
        ("1; 2", True),
        ("10,000", False),
        ("(3, \\frac{\\pi}{2})", False),
        ("[2, 5)", False),
        ("\\frac{1}{2}", False),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", False),
        ("f(1, 2)", False),
    ],
)
def test_which_golds_are_lists(gold: str, listed: bool) -> None:
    assert is_list(gold) is listed


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        ("6 cm^2", "6"),
        ("5 \\text{ inches}", "5"),
        ("12\\,\\mathrm{m}", "12"),
        ("\\frac{3}{4} \\text{ hours}", "\\frac{3}{4}"),
        ("2 x", "2 x"),
        ("x cm", "x cm"),
        ("6", "6"),
        ("10 \\text{ apples}", "10 \\text{ apples}"),
    ],
)
def test_drop_unit_only_after_a_number(content: str, kept: str) -> None:
    assert drop_unit(content) == kept


def test_unclosed_box_and_no_box() -> None:
    assert explain_math("So \\boxed{5 and then it stops").rule == "whole-answer"
    assert explain_math("The sum is $12$.").answer is None
    assert explain_math("\\boxed{\\frac{1}{\\sqrt{2}}}").answer == "\\frac{1}{\\sqrt{2}}"  # nested braces
