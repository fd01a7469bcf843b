"""Multiple-choice scoring: find the letter a response chose, robustly, or say that it chose none.

The prompts ask for a last line "Answer: X" (simple-evals' ANSWER_PATTERN_MULTICHOICE) or "答案：X". The
extraction is an ordered list of rules; the first rule that decides wins (`RULES`):

1. answer-line: the last line that starts with "Answer:" / "Final answer:" / "答案：" / "答：" and holds one
   letter ("Answer: \\(\\text{B}\\)", "**Answer:** B. 42 kg", "answer: c"). Two letters ("A or B",
   "A, B", "A、B") are a hedge: the response has no answer. Nothing after this line overrides it.
2. boxed: the last `\\boxed{X}` (a box with two letters is a hedge, as above).
3. phrase: the last answer phrase of either language ("the correct option is not A but C", "Choice B is
   correct", "I'll go with B", "答案是C", "故选B", "因此应选择C", "选项B正确"). A phrase does not count when
   it is negated ("Answer choice A is incorrect", "选项A错误"), hedged ("the answer is A or B"), or a
   counterfactual aside: a conditional clause ("if", "had", "若", "如果") that is modal ("would", "则",
   "应") or in parentheses ("(If the question had asked ..., the answer would be D.)", "（注：若……则应选D。）").
4. final-line: a bare letter on the last line ("B", "**(D)**"), or a bold letter with its option's text
   ("**B. 42 kg**").

English and Chinese benchmarks use the same rules. Lowercase letters count only where they stand alone
("the answer is b.", not "the answer is a function"). A response where no rule decides is "unextracted",
which is not the same as wrong.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from quantdrop.eval.scoring.text import Extraction, answer_scorer
from quantdrop.eval.types import Completion, Item, Score, Scorer

LETTERS = "ABCD"

# Between a cue ("Answer:", "答案是", "\boxed{") and the letter: spaces, markdown, `$`, brackets, `\(`, and
# the LaTeX wrappers models put around a letter.
_GAP = r"(?:[\s:*_$(\[{]|\\[(\[]|\\boxed\{|\\text(?:bf)?\{|\\mathrm\{|\\mathbf\{|(?i:option|choice)\b|选项)*"
_END = r"(?![A-Za-z0-9])"
# before a second letter: a connective ("A or B", "A, B", "A \\text{ or } B", "A、B")
_HEDGE = r"(?:\\text(?:bf)?\{|[\s)\]}$*_\\])*(?:(?i:or|and)\b|[,/&、，或和与])[\s}]*"
_ANSWER_LINE = re.compile(
    r"^[ \t>#*_]*(?:(?i:final[ \t]+answer|answer)|最终答案|答案|答)[ \t*_]*"
    r"(?::|[-–—](?=[ \t]))(.*)$",
    re.M,
)
_FINAL_LINE = re.compile(r"^[\s*_#>(\[$\\{}]*(?:\\text(?:bf)?\{)?\s*([A-Z])\s*[)\].:}$*_\s]*$")
_BOLD_OPTION = re.compile(r"^\s*(?:\*\*|__)\s*\(?([A-Z])[.):]\s+\S[^*]*(?:\*\*|__)\s*$")
_NEGATED = re.compile(
    r"[)\]}$*_\\]*[ \t]*(?:(?i:is|was|seems|appears|would\s+be)[ \t]+)?"
    r"(?i:not|incorrect|wrong|false|eliminated|ruled\s+out)\b"
    r"|[)]*\s*(?:项|选项)?\s*(?:是)?(?:错误|不正确|不对|不符合|排除|错)"
)
_CLAUSE_END = re.compile(r"[.!?](?=\s)|[。！？\n；;]")
_CONDITIONAL = re.compile(
    r"\b(?i:if|suppose|supposing|assuming|unless|otherwise)\b|若|如果|假如|假设|倘若|要是"
    r"|^\W*(?i:had|were)\b"
)
_MODAL = re.compile(r"\b(?i:would|could|might)\b|则|会")
_MUST_CHOOSE = re.compile(r"(?i:if\s+i\s+(?:had|have)\s+to\s+(?:choose|pick|guess|answer))")


def _letter(letters: str) -> str:
    """One option letter: uppercase (not followed by a letter or digit), or lowercase standing alone."""
    upper, lower = re.escape(letters), re.escape(letters.lower())
    return rf"([{upper}]{_END}|[{lower}](?=[)\]}}$*_\\]*[.。!！]?[ \t]*(?:\n|$)))"


_Phrase = tuple[str, tuple[str, ...], re.Pattern[str]]


@functools.cache
def _phrases(letters: str) -> list[_Phrase]:
    """(name, cue words, pattern) of the phrase rule: a pattern runs only on a text that contains one of
    its cue words (lowercased); the lookaheads let the regex engine skip positions that cannot match."""
    letter = _letter(letters)
    return _english_phrases(letters, letter) + _chinese_phrases(letter)


def _english_phrases(letters: str, letter: str) -> list[_Phrase]:
    """The answer phrases of English responses (`letter`: _letter's pattern of one of `letters`)."""
    rejected = (
        rf"(?:(?i:not)\s+(?:(?i:option|choice)\s+)?\(?[{re.escape(letters)}]\)?,?\s+(?i:but)\s+"
        r"(?:(?i:rather)\s+)?)?"
    )  # "not A but C"
    english = ("answer", "option", "choice")
    return [
        # "The answer is (B)", "the best answer to this question is B", "the correct option is not A but C".
        # A cue needs its verb or a colon: "Answer choice A is incorrect" names an option, it answers nothing.
        (
            "answer-is",
            english,
            re.compile(
                r"(?=[AaCcRrBbFf])(?i:answer|(?:correct|right|best|final)\s+(?:option|choice))"
                r"(?:(?:[ \t]+[^\s.:]+){0,6}?[ \t]+(?i:is|would\s+be|should\s+be|must\s+be|will\s+be)"
                r"|[ \t*_]*:)" + _GAP + rejected + letter
            ),
        ),
        # "(B) is the correct answer", "Choice B is correct", "B would be the right option".
        (
            "is-correct",
            ("correct", "right", "best"),
            re.compile(
                rf"(?<![A-Za-z0-9])\(?{letter}\)?\s+(?i:is|would\s+be|should\s+be|must\s+be)\s+(?:(?i:the)\s+)?(?i:correct|right|best)"
                r"(?:\s+(?i:answer|option|choice)|\s*(?:[.!]|$))"
            ),
        ),
        # "I'll go with B", "I choose (C)", "Let me pick D".
        (
            "i-choose",
            ("go with", "choose", "pick", "select", "going with"),
            re.compile(
                r"(?i:\bi(?:'ll|\s+will|'d|\s+would|'m|\s+am)?\s+(?:go|going)\s+with|\bi\s+(?:choose|pick|select)|"
                r"\bi(?:'ll|\s+will|'d|\s+would)\s+(?:choose|pick|select)|"
                r"\blet(?:'s|\s+me|\s+us)\s+(?:go\s+with|choose|pick|select))" + _GAP + letter
            ),
        ),
    ]


def _chinese_phrases(letter: str) -> list[_Phrase]:
    """The answer phrases of Chinese responses."""
    return [
        # "答案：B", "答案是 B", "答案为（B）", "正确答案应选B".
        ("答案", ("答案",), re.compile(r"答案\s*(?:应该?|就)?\s*(?:是|为|选)?" + _GAP + letter)),
        # "答：B" (not "回答" inside a sentence).
        ("答", ("答",), re.compile(r"(?<!回)答\s*:" + _GAP + letter)),
        # "正确选项是B", "选项应为 C" (but not "选项A和选项C都不对").
        ("选项是", ("选项",), re.compile(r"选项\s*(?:应该?)?\s*(?:是|为)" + _GAP + letter)),
        # "选项B正确", "B项正确", "B选项是正确的".
        (
            "选项正确",
            ("正确",),
            re.compile(r"(?<![A-Za-z0-9])(?:选项)?\s*\(?" + letter + r"\)?\s*(?:项|选项)?\s*(?:是)?正确"),
        ),
        # "故选B", "应选 C", "因此应选择C", "所以选择B" (not "选项A", which names an option while discussing it).
        ("选", ("选",), re.compile(r"选(?!项)(?:择)?" + _GAP + letter)),
    ]


@functools.cache
def _hedge(letters: str) -> re.Pattern[str]:
    """After a letter: a connective and a second letter ("A or B", "A, B", "A、B"; "AB" fails _END)."""
    return re.compile(_HEDGE + _GAP + rf"[{re.escape(letters)}]{_END}")


@functools.cache
def _strict(letters: str) -> re.Pattern[str]:
    """The content of an answer line: one letter, then closers, and (uppercase only) the option's text."""
    return re.compile(r"\s*" + _GAP + _letter(letters) + r"(.*)$")


@functools.cache
def _boxed(letters: str) -> re.Pattern[str]:
    return re.compile(r"\\boxed\{" + _GAP + _letter(letters))


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text)  # full-width "：", "（Ｂ）" -> ":", "(B)"


def explain_choice(text: str, letters: str = LETTERS) -> Extraction:
    """The letter a response chose and the rule that decided (see the module docstring for the order)."""
    text = _norm(text)
    for rule in _RULES:
        found = rule(text, letters)
        if found is not None:
            return found
    return Extraction(None, "none", "no rule found a letter")


def extract_choice(text: str, letters: str = LETTERS) -> str | None:
    """The letter a response chose, or None if it chose none (or hedged between two)."""
    return explain_choice(text, letters).answer


def _answer_line(text: str, letters: str) -> Extraction | None:
    for line in reversed(list(_ANSWER_LINE.finditer(text))):
        content = line.group(1)
        match = _strict(letters).match(content)
        if match is None:
            continue  # "Answer: Based on the data, none of them": no letter on this line
        if _hedge(letters).match(content, match.end(1)):
            return Extraction(None, "answer-line (hedge: two letters)", line.group(0).strip())
        letter, rest = match.group(1), match.group(2)
        if letter.islower() and rest.strip(" )]}$*_.。\\"):
            continue
        return Extraction(letter.upper(), "answer-line", line.group(0).strip())
    return None


def _last_boxed(text: str, letters: str) -> Extraction | None:
    if "\\boxed" not in text:
        return None
    matches = list(_boxed(letters).finditer(text))
    if not matches:
        return None
    last = matches[-1]
    evidence = text[last.start() : last.end() + 8].strip()
    if _hedge(letters).match(text, last.end(1)):
        return Extraction(None, "boxed (hedge: two letters)", evidence)
    return Extraction(last.group(1).upper(), "boxed", evidence)


def _last_phrase(text: str, letters: str) -> Extraction | None:
    """The last answer phrase that is not negated or hedged; a counterfactual aside counts only when the
    response has no other phrase."""
    found: dict[bool, tuple[int, str, str, int]] = {}  # conditional? -> (position, letter, rule, start)
    lowered = text.lower()
    for name, cues, pattern in _phrases(letters):
        if not any(cue in lowered for cue in cues):
            continue
        for match in pattern.finditer(text):
            end = match.end(1)
            if _NEGATED.match(text, end) or _hedge(letters).match(text, end):
                continue
            aside = _counterfactual(text, match.start(), end)
            if aside not in found or match.start(1) > found[aside][0]:
                found[aside] = (match.start(1), match.group(1).upper(), name, match.start())
    if not found:
        return None
    at, letter, name, start = found.get(False) or found[True]
    rule = f"phrase: {name}" + ("" if False in found else " (a conditional aside, the only phrase)")
    return Extraction(letter, rule, text[start : at + 1].strip())


def _counterfactual(text: str, start: int, end: int) -> bool:
    """Whether a match sits in a conditional clause that is modal ("would", "则") or parenthetical."""
    window = max(0, start - 500)  # a clause is shorter than this; bounds the work on long responses
    bounds = [m.end() for m in _CLAUSE_END.finditer(text, window, start)]
    before = text[bounds[-1] if bounds else window : start]
    clause = before + text[start:end]
    if not _CONDITIONAL.search(clause) or _MUST_CHOOSE.search(clause):
        return False
    parenthetical = before.count("(") > before.count(")")
    return parenthetical or bool(_MODAL.search(clause))


def _final_line(text: str, letters: str) -> Extraction | None:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    for pattern in (_FINAL_LINE, _BOLD_OPTION):
        bare = pattern.match(lines[-1])
        if bare and bare.group(1) in letters:
            return Extraction(bare.group(1), "final-line", lines[-1].strip())
    return None


# the precedence of the module docstring
_RULES: tuple[Callable[[str, str], Extraction | None], ...] = (_answer_line, _last_boxed, _last_phrase, _final_line)


def choice_scorer(letters: str = LETTERS) -> Scorer:
    """(response, the correct letter) -> Score, the letter found by the rules above."""

    def judge(answer: str, target: Any) -> Score:
        found = explain_choice(answer, letters)
        if found.answer is None:
            return Score(0.0, "unextracted", detail=f"no answer letter found ({found.rule})")
        if found.answer == target:
            return Score(1.0, "correct", extracted=found.answer, detail=found.rule)
        return Score(0.0, "wrong", extracted=found.answer, detail=f"expected {target} ({found.rule})")

    return answer_scorer(judge)


def score_choice(item: Item, completion: Completion, letters: str = LETTERS) -> Score:
    """Score a multiple-choice completion against `item.target` (a letter)."""
    return choice_scorer(letters)(completion, item.target)
