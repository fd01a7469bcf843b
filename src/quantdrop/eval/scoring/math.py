"""Math answer checking with math-verify, under our own per-item timeout.

math-verify's own timeouts use `signal.alarm`, which only works in the main thread, while the runner
scores off its event loop in worker threads; and an alarm cannot interrupt long C-level arithmetic
(sympy on `10^{10^{10}}`). So we turn its timeouts off (`parsing_timeout=None`, `timeout_seconds=None`)
and run each check in a small pool of long-lived worker processes: a check that outlives its deadline
gets its worker killed and replaced, and counts as not verified ("wrong", detail says timed out). Workers
are fresh interpreters (`python -m quantdrop.eval.scoring.math`, JSON lines over pipes): never a fork of
this multi-threaded process, and no re-import of the caller's main script as multiprocessing's spawn
does. Each imports math-verify once and says "ready" before the deadline of its first check starts.
A worker also limits its own address space (4 GiB) and CPU time per check (RLIMIT_CPU), so a runaway
check cannot outlive a parent that was killed (`kill -9`) while waiting for it.

Answers are compared the way lighteval and open-r1 do for MATH-500/AIME (the gold answer parsed from
`\\boxed{gold}`, `verify(gold, pred)`), except that we choose the response's final answer ourselves
(`explain_math`) before math-verify sees it, because latex2sympy2_extended 1.11 (math-verify 0.9) joins
bare boxes that are close together ("\\boxed{200} ... \\boxed{204}" reads as "200,204"; lighteval's pinned
1.0.6 does not). The rules, in order:

- last-box: the content of the last `\\boxed{}` / `\\fbox{}` (braces balanced), handed to math-verify alone;
  a trailing unit ("6 cm^2", "5 \\text{ inches}") is dropped when the rest is a number;
- box-list: when the gold answer is a list ("3, 5, 7"), the boxes at the end that stand together,
  separated only by commas, "and" or `$` ("$\\boxed{3}$, $\\boxed{5}$, and $\\boxed{7}$"), joined;
- letter: a multiple-choice gold ("\\text{(C)}") against a letter in a box or in "The answer is (C).";
- whole-answer: no box: math-verify's own extraction on the answer text (LaTeX, then plain expressions).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import re
import resource
import select
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any

from quantdrop.eval.scoring.text import Extraction, answer_scorer
from quantdrop.eval.types import Completion, Item, Score, Scorer

DEFAULT_TIMEOUT_S = 10.0
_START_TIMEOUT_S = 120.0
_MEMORY_LIMIT = 4 << 30  # address space of one worker
_DIED = "the math-verify worker died on this answer (CPU or memory limit)"


@dataclass(frozen=True)
class MathCheck:
    """The outcome of one check: status "correct", "wrong" or "unextracted"."""

    status: str
    extracted: str | None = None
    detail: str = ""


def _last_boxed() -> Any:
    from latex2sympy2_extended import NormalizationConfig

    # math-verify's LatexExtractionConfig defaults, except that only the last \boxed{} counts (its
    # default "all" joins every box of a response that revised itself: \boxed{200} ... \boxed{204});
    # a second guard, as `check_answer` hands math-verify one chosen box (see the module docstring).
    return NormalizationConfig(
        basic_latex=True, units=True, malformed_operators=True, nits=True, boxed="last", equations=False
    )


# ---------------------------------------------------------------- extraction (no math-verify needed)
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
# between boxes that stand together: punctuation, "and", `$`, `\\(`, "x =" (at most 40 characters)
_LIST_SEP = re.compile(
    r"(?:[\s$,;.&]|\\[()\[\]]|and\b|\\text\{\s*and\s*\}|\\q?quad|"
    r"[a-zA-Z](?:_\{?\d\}?)?\s*=)*"
)
_UNIT_WORDS = (
    "cm|mm|km|m|in|inch|inches|ft|feet|foot|yd|yards?|miles?|mph|kg|g|mg|lbs?|pounds?|oz|ounces?|"
    "s|sec|seconds?|min|minutes?|h|hr|hrs|hours?|days?|weeks?|years?|ml|mL|L|liters?|litres?|"
    "degrees?|dollars?|cents?|units?|square\\s+units|sq\\s+units|meters?|metres?|centimeters?"
)
# a unit after a number, as text or in \text{}/\mathrm{}/\mbox{}, maybe squared or cubed
_UNIT = re.compile(
    r"(?:\\[,;: ]|~|\s)*(?:\\(?:text|mathrm|mbox)\s*\{\s*)?(?:\\?(?:"
    + _UNIT_WORDS
    + r"))\s*\}?\s*(?:\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
_NUMBER = re.compile(r"[-+]?\s*(?:\d[\d,]*(?:\.\d+)?|\.\d+|\\[dt]?frac\{\d+\}\{\d+\})")
_LETTER = re.compile(r"^\s*(?:\\text(?:bf)?\s*\{\s*)?\(?\s*([A-E])\s*\)?\s*\}?\s*$")
_ANSWER_PHRASE = re.compile(r"(?i:answer)\s*(?:is|:)\s*[*$]*\s*(?:\\text\{\s*)?\(?([A-E])\)?(?![A-Za-z0-9])")


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """Every `\\boxed{...}` of a text as (start, end, content), braces balanced; an unclosed box is skipped."""
    out = []
    for match in _BOX.finditer(text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0) if text[i - 1] != "\\" else 0
            i += 1
        if depth == 0:
            out.append((match.start(), i, text[match.end() : i - 1].strip()))
    return out


def is_list(gold: str) -> bool:
    """Whether a gold answer is a list ("3, 5, 7"): a comma outside brackets and not a thousands separator,
    and not itself a tuple or an interval."""
    text = gold.strip()
    if text[:1] in "([" or text.startswith(("\\left", "\\{")):
        return False
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch in "([{") - (ch in ")]}")
        if depth == 0 and (ch == ";" or (ch == "," and not re.match(r"\d{3}(?!\d)", text[i + 1 :]))):
            return True
    return False


def drop_unit(content: str) -> str:
    """ "6 cm^2" -> "6", "5 \\text{ inches}" -> "5": a unit after a number goes (other text stays)."""
    unit = _UNIT.search(content)
    if unit and unit.start() > 0 and _NUMBER.fullmatch(content[: unit.start()].strip()):
        return content[: unit.start()].strip()
    return content


def explain_math(response: str, gold: str | None = None) -> Extraction:
    """The final answer of a response (LaTeX, or None: let math-verify read the whole answer) and its rule."""
    boxes = _boxes(response)
    if not boxes:
        phrase = list(_ANSWER_PHRASE.finditer(response))
        if phrase and gold is not None and _LETTER.match(gold):
            return Extraction(phrase[-1].group(1), "letter", phrase[-1].group(0))
        return Extraction(None, "whole-answer", "no \\boxed{}: math-verify reads the answer text")
    group = [boxes[-1]]
    if gold is not None and is_list(gold):
        while len(group) < len(boxes):
            before = boxes[-len(group) - 1]
            if group[0][0] - before[1] > 40 or not _LIST_SEP.fullmatch(response, before[1], group[0][0]):
                break
            group.insert(0, before)
    if len(group) > 1:
        return Extraction(
            ", ".join(drop_unit(c) for _, _, c in group),
            f"box-list ({len(group)} boxes)",
            response[group[0][0] : group[-1][1]],
        )
    content = boxes[-1][2]
    answer = drop_unit(content)
    rule = f"last-box ({len(boxes)} boxes)" if len(boxes) > 1 else "last-box"
    return Extraction(
        answer, rule + (", unit dropped" if answer != content else ""), response[boxes[-1][0] : boxes[-1][1]]
    )


def _letters_match(gold: str, answer: str) -> bool | None:
    """A multiple-choice gold ("\\text{(C)}") against a letter answer; None when either is no letter."""
    g, a = _LETTER.match(gold), _LETTER.match(answer)
    return None if g is None or a is None else g.group(1) == a.group(1)


def check_answer(gold: str, response: str) -> MathCheck:
    """Compare one response with the gold answer, in this process and without a timeout."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout disabled" warning
    found = explain_math(response, gold)
    if found.answer is not None:
        same = _letters_match(gold, found.answer)
        if same is not None:
            return MathCheck("correct" if same else "wrong", found.answer, detail=found.rule)
    gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=None)
    if not gold_parsed:
        gold_parsed = parse(f"${gold}$", parsing_timeout=None)
    text = response if found.answer is None else f"\\boxed{{{found.answer}}}"
    pred = parse(
        text,
        extraction_config=[
            LatexExtractionConfig(boxed_match_priority=0, normalization_config=_last_boxed()),
            ExprExtractionConfig(),
        ],
        parsing_timeout=None,
    )
    if not pred:
        return MathCheck("unextracted", detail=f"no final answer found ({found.rule})")
    extracted = str(pred[-1])
    if not gold_parsed:
        return MathCheck("wrong", extracted, detail=f"the gold answer {gold!r} could not be parsed")
    ok = verify(gold_parsed, pred, timeout_seconds=None)
    return MathCheck("correct" if ok else "wrong", extracted, detail=found.rule)


def _limit_cpu(seconds: float) -> None:
    """Let the kernel kill this worker once the next check has used `seconds` of CPU (SIGXCPU): the
    backstop for a runaway check whose parent died before it could kill it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _serve() -> None:
    """A worker process (`python -m quantdrop.eval.scoring.math`): JSON lines in, JSON lines out."""
    import math_verify  # noqa: F401  (import once, before saying ready)

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > _MEMORY_LIMIT:  # sympy on 10^{10^9} eats memory
        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT, hard))
    out, sys.stdout = sys.stdout, sys.stderr  # the pipe carries only our replies, not library prints
    print("ready", file=out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        _limit_cpu(request["cpu_limit"])
        try:
            result = check_answer(request["gold"], request["response"])
        except Exception as err:  # math-verify bugs, MemoryError under the limit: not verified, no crash
            result = MathCheck("wrong", detail=f"math-verify failed: {type(err).__name__}: {err}")
        print(json.dumps(asdict(result)), file=out, flush=True)


class _Worker:
    """One checker process, started with the same interpreter (not forked from this process)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
        if self.readline(_START_TIMEOUT_S) != "ready":
            self.kill()
            raise RuntimeError("a math-verify worker process did not start (is math-verify installed?)")

    def readline(self, timeout: float) -> str | None:
        """The worker's next line; "" if it died, None if nothing came within `timeout` seconds."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().rstrip("\n") if ready else None

    def ask(self, gold: str, response: str, timeout: float, cpu_limit: float) -> tuple[MathCheck, bool]:
        """The check's result, and whether this worker can take another one."""
        assert self.proc.stdin is not None
        request = {"gold": gold, "response": response, "cpu_limit": cpu_limit}
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except OSError:
            return MathCheck("wrong", detail=_DIED), False
        line = self.readline(timeout)
        if line is None:
            return MathCheck("wrong", detail=f"math-verify timed out after {timeout:g} s"), False
        try:
            return MathCheck(**json.loads(line)), True
        except (ValueError, TypeError):  # "" (it died) or a garbled line
            return MathCheck("wrong", detail=_DIED), False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]


class MathChecker:
    """A pool of math-verify worker processes with a hard per-check deadline (thread-safe)."""

    def __init__(
        self, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT_S, cpu_limit: float | None = None
    ) -> None:
        self.max_workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.timeout = timeout
        self.cpu_limit = cpu_limit if cpu_limit is not None else 2 * timeout + 5
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._started = 0
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()

    def check(self, gold: str, response: str) -> MathCheck:
        worker = self._acquire()
        result, healthy = worker.ask(gold, response, self.timeout, self.cpu_limit)
        if healthy:
            self._idle.put(worker)
        else:
            self._discard(worker)  # killed; the next check that needs a worker starts a fresh one
        return result

    def _acquire(self) -> _Worker:
        while True:
            with self._lock:
                try:
                    return self._idle.get_nowait()
                except queue.Empty:
                    pass
                if self._started < self.max_workers:
                    self._started += 1
                    break
            try:  # all busy: wait for one (re-checking, as a timed-out worker frees a slot instead)
                return self._idle.get(timeout=0.2)
            except queue.Empty:
                continue
        try:
            worker = _Worker()
        except BaseException:
            with self._lock:
                self._started -= 1
            raise
        with self._lock:
            self._all.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
            self._started -= 1

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._started = list(self._all), set(), 0
        while True:
            try:
                self._idle.get_nowait()
            except queue.Empty:
                break
        for worker in workers:
            worker.kill()


_checker: MathChecker | None = None
_checker_lock = threading.Lock()


def default_checker() -> MathChecker:
    """The process-wide checker (created on first use, closed at exit)."""
    global _checker
    with _checker_lock:
        if _checker is None:
            _checker = MathChecker()
            atexit.register(_checker.close)
        return _checker


def math_scorer(checker: MathChecker | None = None) -> Scorer:
    """(response, the gold answer as LaTeX) -> Score by math-verify (the process-wide checker unless
    `checker` is given)."""

    def judge(answer: str, target: Any) -> Score:
        result = (checker or default_checker()).check(str(target), answer)
        value = 1.0 if result.status == "correct" else 0.0
        return Score(value, result.status, extracted=result.extracted, detail=result.detail)  # type: ignore[arg-type]

    return answer_scorer(judge)


def score_math(item: Item, completion: Completion, checker: MathChecker | None = None) -> Score:
    """Score a math completion against `item.target` (the gold answer as LaTeX)."""
    return math_scorer(checker)(completion, item.target)


if __name__ == "__main__":
    _serve()
