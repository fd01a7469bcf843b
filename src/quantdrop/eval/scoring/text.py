"""Text helpers shared by the scorers: reasoning removal and prompt templates."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.eval.types import Completion, Score, Scorer

NO_ANSWER = "the reasoning (<think>) never ended"


@dataclass(frozen=True)
class Extraction:
    """What an extractor found and why: the answer (None: no answer), the rule that decided, and the
    text it matched (for `quantdrop results --explain`)."""

    answer: str | None
    rule: str
    evidence: str = ""


THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def strip_reasoning(text: str) -> str | None:
    """The answer part of a response: the text after the last `</think>`.

    A response with `<think>` but no `</think>` was cut inside its reasoning: it has no answer (None).
    A response without any think tag is returned unchanged (a model that does not reason aloud).
    Chat templates that open the think block in the prompt (DeepSeek-R1's does) leave only the closing tag
    in the response, which is handled the same way.
    """
    if THINK_CLOSE in text:
        return text.rsplit(THINK_CLOSE, 1)[1].strip()
    if THINK_OPEN in text:
        return None
    return text.strip()


def render(template: str, **fields: str) -> str:
    """Fill `{field}` placeholders in one pass; other braces (LaTeX's `\\boxed{}`) are left alone."""
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, fields)) + r")\}")
    return pattern.sub(lambda m: str(fields[m.group(1)]), template)


def resolve_template(template: str | None, default: str, placeholders: tuple[str, ...], bench: str) -> str:
    """The template to use: `default`, or an override given as text or as the path of a text file."""
    if template is None:
        return default
    text = template
    if "{" not in template and len(template) < 4096:
        path = Path(template).expanduser()
        if path.is_file():
            text = path.read_text(encoding="utf-8")
    missing = [p for p in placeholders if "{" + p + "}" not in text]
    if missing:
        raise QuantdropError(
            f"the {bench} template lacks the placeholder {{{missing[0]}}} "
            f"(it needs {', '.join('{' + p + '}' for p in placeholders)})"
        )
    return text


def answer_scorer(judge: Callable[[str, Any], Score]) -> Scorer:
    """A scorer from `judge(answer, target)`, the answer being the text after the reasoning: a failed
    request scores "error" (never wrong), a response cut inside its reasoning "unextracted"."""

    def score(response: Completion, target: Any) -> Score:
        if response.error:
            return Score(0.0, "error", detail=response.error)
        answer = strip_reasoning(response.text)
        if answer is None:
            return Score(0.0, "unextracted", detail=NO_ANSWER)
        return judge(answer, target)

    return score
