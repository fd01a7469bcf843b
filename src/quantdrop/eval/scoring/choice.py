"""Multiple-choice scoring: find the letter a response chose, robustly, or say that it chose none.

The prompts ask for a last line "Answer: X" (simple-evals' ANSWER_PATTERN_MULTICHOICE) or "答案：X"; models
also write "**Answer:** X", "the answer is (X)", "\\boxed{X}", "答案是X", "故选X", or end with a bare "X".
The last explicit statement wins (models revise themselves); a bare letter on the final line is the
fallback. A response where no letter can be found is "unextracted", which is not the same as wrong.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from quantdrop.eval.scoring.text import strip_reasoning
from quantdrop.eval.types import Completion, Item, Score

LETTERS = "ABCD"

# Between a cue ("Answer:", "答案是", "\boxed{") and the letter: spaces, markdown, `$`, brackets, and the
# LaTeX wrappers models put around a letter.
_GAP = r"(?:[\s:*$(\[{]|\\boxed\{|\\text(?:bf)?\{|\\mathrm\{|\\mathbf\{|(?i:option|choice)\b)*"
_END = r"(?![A-Za-z0-9])"


@functools.cache
def _patterns(letters: str) -> list[tuple[tuple[str, ...], re.Pattern[str]]]:
    """(cue words, pattern): a pattern is only run on a text that contains one of its cue words
    (lowercased); the lookaheads let the regex engine skip positions that cannot start a match."""
    letter = f"([{re.escape(letters)}])"
    english = ("answer", "option", "choice")
    return [
        # English: "Answer: B", "**Answer:** B", "The answer is (B)", "Final answer: $\boxed{B}$",
        # "the best answer to this question is B", "the correct option is B".
        (english, re.compile(r"(?=[AaCcRrBb])(?i:answer|(?:correct|right|best)\s+(?:option|choice))"
                             r"(?:(?:[ \t]+[^\s.:]+){0,6}?[ \t]+(?i:is|would\s+be|should\s+be))?"
                             + _GAP + letter + _END)),
        # "(B) is the correct answer", "B is the right option".
        (("correct", "right", "best"),
         re.compile(rf"(?=[({re.escape(letters)}])(?<![A-Za-z0-9])\(?" + letter
                    + r"\)?\s+is\s+(?:the\s+)?(?i:correct|right|best)\s+(?i:answer|option|choice)")),
        # Chinese: "答案：B", "答案是 B", "答案为（B）", "正确答案应选B".
        (("答案",), re.compile(r"答案\s*(?:应该?|就)?\s*(?:是|为|选)?" + _GAP + r"(?:选项)?" + _GAP
                              + letter + _END)),
        # "正确选项是B", "选项应为 C" (but not "选项A和选项C都不对").
        (("选项",), re.compile(r"选项\s*(?:应该?)?\s*(?:是|为)" + _GAP + letter + _END)),
        # "故选B", "应选 C", "选：D" (not "选项A", which names an option while discussing it).
        (("选",), re.compile(r"选(?!项)" + _GAP + letter + _END)),
        # A boxed letter: "\boxed{B}", "\boxed{\text{B}}", "\boxed{(B)}".
        (("\\boxed",), re.compile(r"\\boxed\{" + _GAP + letter + _END)),
    ]


_FINAL_LINE = re.compile(r"^[\s*_#>(\[$\\{}]*(?:\\text(?:bf)?\{)?\s*([A-Z])\s*[)\].:}$*_\s]*$")


def extract_choice(text: str, letters: str = LETTERS) -> str | None:
    """The letter a response chose (the last explicit statement), or None if it chose none."""
    text = unicodedata.normalize("NFKC", text)  # full-width "：", "（Ｂ）" -> ":", "(B)"
    best: tuple[int, str] | None = None
    lowered = text.lower()
    for cues, pattern in _patterns(letters):
        if not any(cue in lowered for cue in cues):
            continue
        for match in pattern.finditer(text):
            if best is None or match.start(1) > best[0]:
                best = (match.start(1), match.group(1))
    if best is not None:
        return best[1]
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        bare = _FINAL_LINE.match(lines[-1])
        if bare and bare.group(1) in letters:
            return bare.group(1)
    return None


def score_choice(item: Item, completion: Completion, letters: str = LETTERS) -> Score:
    """Score a multiple-choice completion against `item.target` (a letter)."""
    if completion.error:
        return Score(0.0, "error", detail=completion.error)
    answer = strip_reasoning(completion.text)
    if answer is None:
        return Score(0.0, "unextracted", detail="the reasoning (<think>) never ended")
    letter = extract_choice(answer, letters)
    if letter is None:
        return Score(0.0, "unextracted", detail="no answer letter found")
    if letter == item.target:
        return Score(1.0, "correct", extracted=letter)
    return Score(0.0, "wrong", extracted=letter, detail=f"expected {item.target}")
