"""Scorers: text helpers, multiple-choice letter extraction, math answer checking (code: see sandbox)."""

from quantdrop.eval.scoring.choice import extract_choice, score_choice
from quantdrop.eval.scoring.math import check_answer, score_math
from quantdrop.eval.scoring.text import strip_reasoning

__all__ = ["check_answer", "extract_choice", "score_choice", "score_math", "strip_reasoning"]
