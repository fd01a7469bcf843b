"""Issue 9's multiple-choice cases, one line each: the letter and the rule that must decide it.

The rules and their precedence are in quantdrop.eval.scoring.choice's docstring: answer-line, boxed,
phrase, final-line; the same for English and Chinese."""

from __future__ import annotations

import pytest

from quantdrop.eval.scoring.choice import explain_choice, extract_choice

# (response, expected letter or None, the rule that decides: a prefix of Extraction.rule)
CASES = [
    # a later mention never overrides the explicit final answer line
    ("Answer: C\n\nAnswer choice A is incorrect since the units do not match.", "C", "answer-line"),
    ("Answer: B\n(If the question had asked for weight, the answer would be D.)", "B", "answer-line"),
    ("答案：B\n（注：若题目问的是重量，则应选D。）", "B", "answer-line"),
    # hedges are no answer
    ("Answer: A or B", None, "answer-line (hedge"),
    ("Answer: A, B", None, "answer-line (hedge"),
    ("答案：A、B", None, "answer-line (hedge"),
    ("答案：A或B", None, "answer-line (hedge"),
    ("Answer: (A) and (C)", None, "answer-line (hedge"),
    ("Answer: A, because the others are wrong.", "A", "answer-line"),  # a comma is not always a hedge
    # clear answers that were missed
    ("Answer: \\(\\text{B}\\)", "B", "answer-line"),
    ("Answer: $\\text{C}$", "C", "answer-line"),
    ("答：B", "B", "answer-line"),
    ("因此应选择C。", "C", "phrase: 选"),
    ("所以选择B。", "B", "phrase: 选"),
    ("综上，选项B正确。", "B", "phrase: 选项正确"),
    ("The mass is 42 kg.\n\n**B. 42 kg**", "B", "final-line"),
    ("Choice B is correct.", "B", "phrase: is-correct"),
    ("The answer A) would be the correct option because ...", "A", "phrase: is-correct"),  # seen from SmolLM2
    ("The correct option is not A but C.", "C", "phrase: answer-is"),
    ("answer: c", "C", "answer-line"),
    ("So the answer is b.", "B", "phrase: answer-is"),
    ("I'll go with B.", "B", "phrase: i-choose"),
    ("Let me pick D.", "D", "phrase: i-choose"),
    ("Answer - B", "B", "answer-line"),
    ("因此选项C是正确的。", "C", "phrase: 选项正确"),
    ("我认为应该选择D选项。", "D", "phrase: 选"),
    ("答案为A和C", None, "none"),  # a hedge in a phrase: no answer
    ("**Answer:** B. 42 kg", "B", "answer-line"),
    ("Answer: D) Primary", "D", "answer-line"),
    # the answer line beats a box and phrases; a box beats phrases
    ("The answer is A.\n\\boxed{B}\nAnswer: C", "C", "answer-line"),
    ("The answer is A, I think. Final: \\boxed{B}", "B", "boxed"),
    ("\\boxed{A \\text{ or } B}", None, "boxed (hedge"),
    # negations, hedges and counterfactual asides do not count as phrases
    ("The answer is C. Option A would be correct only for a closed system.", "C", "phrase: answer-is"),
    ("The answer is B. (If the question had asked for weight, the answer would be D.)", "B", "phrase: answer-is"),
    ("故选B。（注：若……则应选D。）", "B", "phrase: 选"),
    ("Had the question asked for weight, the answer would be D. Here the answer is B.", "B", "phrase: answer-is"),
    ("The answer is A or B.", None, "none"),
    ("The correct answer is not A.", None, "none"),
    ("选项A错误，选项C错误。", None, "none"),
    ("Answer choice A is incorrect, and answer choice B is incorrect.", None, "none"),
    # a conditional that is not counterfactual, and a sole counterfactual aside
    ("If we compute the mass, we get 42 kg, so the answer is B.", "B", "phrase: answer-is"),
    ("If I had to choose, I would go with C.", "C", "phrase: i-choose"),
    ("(If the question had asked for weight, the answer would be D.)", "D", "phrase: answer-is (a conditional"),
    # lowercase only where it stands alone
    ("The answer is a function of temperature.", None, "none"),
    ("Answer: a function of temperature", None, "none"),
]


@pytest.mark.parametrize(("text", "letter", "rule"), CASES)
def test_rule_and_letter(text: str, letter: str | None, rule: str) -> None:
    found = explain_choice(text)
    assert (found.answer, found.rule[: len(rule)]) == (letter, rule), found
    assert extract_choice(text) == letter


def test_evidence_is_the_matched_text() -> None:
    found = explain_choice("Long reasoning.\nAnswer: C\nAnswer choice A is incorrect since ...")
    assert found.evidence == "Answer: C"
