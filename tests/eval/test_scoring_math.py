"""Math answer checking: known equivalences through math-verify, and our timeout outside the main thread."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from quantdrop.eval.scoring.math import MathChecker, check_answer, score_math
from quantdrop.eval.types import Completion, Item

EQUIVALENT = [
    ("\\frac{1}{2}", "So the probability is \\boxed{0.5}."),
    ("0.5", "Hence $x = \\boxed{\\frac12}$."),
    ("\\frac{14}{3}", "$f(-2)+f(-1)+f(0) = \\boxed{\\dfrac{14}{3}}$"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "The polar coordinates are \\boxed{(3, \\frac{\\pi}{2})}."),
    ("3\\sqrt{13}", "The distance is \\boxed{\\sqrt{117}}."),
    ("90^\\circ", "The angle between the lines is \\boxed{90}."),
    ("\\text{Evelyn}", "Evelyn is fastest: \\boxed{\\text{Evelyn}}"),
    ("p - q", "\\boxed{p-q}"),
    ("6 - 5i", "so $w = \\boxed{6-5i}$"),
    ("25", "The answer is \\boxed{025}."),  # AIME's zero-padded answers
    # a response that revised itself: the last box counts
    (
        "204",
        "First I got \\boxed{200}. Checking the minutes spent in the coffee shop again, the walk "
        "takes 3 hours and 24 minutes in all, so the total is \\boxed{204}.",
    ),
]

NOT_EQUIVALENT = [
    ("4", "In total there are \\boxed{5} values."),
    ("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}"),
    ("(3, \\frac{\\pi}{2})", "\\boxed{(3, \\pi)}"),
]


@pytest.mark.parametrize(("gold", "response"), EQUIVALENT)
def test_equivalent_answers_are_correct(gold: str, response: str) -> None:
    assert check_answer(gold, response).status == "correct"


@pytest.mark.parametrize(("gold", "response"), NOT_EQUIVALENT)
def test_different_answers_are_wrong(gold: str, response: str) -> None:
    result = check_answer(gold, response)
    assert result.status == "wrong"
    assert result.extracted  # an answer was found: wrong, not unextracted


def test_no_answer_is_unextracted() -> None:
    assert check_answer("9", "I could not solve this problem.").status == "unextracted"


def test_extracted_answer_is_reported() -> None:
    assert check_answer("9", "There are \\boxed{9} divisors.").extracted == "9"


@pytest.fixture(scope="module")
def checker():
    pool = MathChecker(workers=2, timeout=3.0)
    yield pool
    pool.close()


def test_pool_scores_from_worker_threads(checker: MathChecker) -> None:
    # math-verify's own signal-based timeout raises outside the main thread; ours must not.
    cases = EQUIVALENT[:4] + NOT_EQUIVALENT[:2]
    results: dict[int, str] = {}

    def run(i: int, gold: str, response: str) -> None:
        results[i] = checker.check(gold, response).status

    threads = [threading.Thread(target=run, args=(i, g, r)) for i, (g, r) in enumerate(cases)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [results[i] for i in range(len(cases))] == ["correct"] * 4 + ["wrong"] * 2


def test_pool_times_out_a_runaway_check_and_recovers(checker: MathChecker) -> None:
    # sympy evaluates this tower of powers for ever (in C, where no alarm can interrupt it).
    start = time.monotonic()
    result = checker.check("1", "\\boxed{10^{10^{10^{10}}}}")
    assert result.status == "wrong" and "timed out" in result.detail
    assert time.monotonic() - start < 3.0 + 5.0
    assert checker.check("\\frac{1}{2}", "\\boxed{0.5}").status == "correct"  # a fresh worker took over


def test_score_math_statuses(checker: MathChecker) -> None:
    item = Item(id="test/number_theory/572.json", prompt="...", target="9")
    ok = score_math(item, Completion(text="<think>196 = 2^2 7^2</think>\nSo \\boxed{9}."), checker)
    assert (ok.status, ok.value, ok.extracted) == ("correct", 1.0, "9")
    cut = score_math(item, Completion(text="<think>196 = 2^2 7^2, so \\boxed{9}", finish_reason="length"), checker)
    assert (cut.status, cut.value) == ("unextracted", 0.0)  # unclosed reasoning: no answer
    failed = score_math(item, Completion(error="connection dropped", finish_reason="error"), checker)
    assert failed.status == "error"


def test_worker_cpu_limit_is_a_backstop_without_the_deadline() -> None:
    # The parent would wait 60 s; the worker's own RLIMIT_CPU (1 s) ends the runaway check first.
    pool = MathChecker(workers=1, timeout=60.0, cpu_limit=1.0)
    try:
        start = time.monotonic()
        result = pool.check("1", "\\boxed{10^{10^{10^{10}}}}")
        assert result.status == "wrong" and "died" in result.detail
        assert time.monotonic() - start < 30
        assert pool.check("2", "\\boxed{2}").status == "correct"
    finally:
        pool.close()


def _math500_fixture() -> list[dict]:
    path = Path(__file__).parents[1] / "fixtures" / "data" / "math500.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_reference_solutions_verify_against_their_answers(checker: MathChecker) -> None:
    # MATH-500's own worked solutions end in \boxed{answer}: each must score correct against its answer
    # and wrong against the next problem's answer.
    rows = _math500_fixture()
    for row, other in zip(rows, rows[1:] + rows[:1], strict=True):
        solution = Completion(text=row["solution"])
        right = Item(id=row["unique_id"], prompt=row["problem"], target=row["answer"])
        assert score_math(right, solution, checker).status == "correct", row["unique_id"]
        wrong = Item(id=row["unique_id"], prompt=row["problem"], target=other["answer"])
        assert score_math(wrong, solution, checker).status == "wrong", row["unique_id"]
