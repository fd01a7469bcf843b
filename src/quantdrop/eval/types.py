"""The evaluation contract (after openai/simple-evals' types.py).

A backend turns chat messages into a `Completion`; a benchmark turns items into prompts and a
completion into a `Score`. Everything else (runner, store, stats, report) only sees these types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Message = dict[str, str]  # {"role": "user", "content": "..."}

ScoreStatus = Literal["correct", "wrong", "unextracted", "error"]


@dataclass(frozen=True)
class Item:
    """One benchmark question. `id` is stable across runs and variants (seeds derive from it)."""

    id: str
    prompt: str
    target: Any
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplingParams:
    """Every sampler setting of a request. The last five are llama-cpp-python's create_chat_completion
    defaults, which the in-process backend always sampled with; both backends send them all
    explicitly, so a served run samples as an in-process one (servers have other defaults:
    llama_cpp.server's repeat_penalty is 1.1, vLLM's top_k and min_p are off)."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768
    seed: int = 0
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0  # 1.0: off (llama.cpp's penalty over the last 64 tokens)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass(frozen=True)
class Completion:
    """A backend's answer. `error` set means the request failed: never score it as wrong."""

    text: str = ""
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    capped: bool = False  # the text was cut: longer than max_tokens can produce (a broken server)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@dataclass(frozen=True)
class Score:
    value: float  # 1.0 correct, 0.0 otherwise
    status: ScoreStatus
    extracted: str | None = None
    detail: str = ""


class Backend(Protocol):
    """Async chat completion; implementations retry transient failures themselves."""

    fingerprint: str  # identifies the model: GGUF size+hash, or endpoint + model name
    context_length: int | None

    async def complete(self, messages: Sequence[Message], params: SamplingParams) -> Completion: ...

    async def aclose(self) -> None: ...


def partial_label(title: str, n_items: int, full_size: int) -> str:
    """A benchmark's row label: its title, marked partial when fewer items than the full set,
    e.g. "MATH-500 (311/500)" (the one place that label is built)."""
    return title if n_items >= full_size else f"{title} ({n_items}/{full_size})"


class Benchmark(Protocol):
    """One benchmark module's contract (see quantdrop.eval.benchmarks)."""

    name: str  # CLI key, e.g. "math500"
    title: str  # table label, e.g. "MATH-500"
    full_size: int  # the size of the complete set, to label partial sets ("MATH-500 (311/500)")
    default_samples: int
    weight: float  # the paper's Appendix A.2 weight

    def load(self, data_dir: Path | None = None) -> list[Item]: ...

    def messages(self, item: Item) -> list[Message]: ...

    def score(self, item: Item, completion: Completion) -> Score: ...
