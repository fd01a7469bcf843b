"""Scorers: text helpers, multiple-choice letter extraction, math answer checking (code: see sandbox)."""

from quantdrop.eval.scoring.choice import explain_choice, extract_choice, score_choice
from quantdrop.eval.scoring.math import check_answer, score_math
from quantdrop.eval.scoring.text import Extraction, strip_reasoning

__all__ = [
    "Extraction",
    "check_answer",
    "explain_choice",
    "extract_choice",
    "score_choice",
    "score_math",
    "strip_reasoning",
]
