"""The evaluation contract (after openai/simple-evals' types.py).

A backend turns chat messages into a `Completion`; a benchmark turns items into prompts and a
completion into a `Score`. Everything else (runner, store, stats, report) only sees these types.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


@dataclass(frozen=True)
class BackendFingerprint:
    """What identifies the model a backend answers with, as the store records it (`to_dict`):
    a GGUF by file name, size and sampled hash; an endpoint by model name and URLs; a served GGUF by
    the file and the engine's command (not its URL, which changes each start)."""

    kind: Literal["gguf", "openai", "served"]
    name: str = ""  # gguf: the file's name
    size: int = 0  # gguf: bytes
    hash: str = ""  # gguf: quantdrop.fingerprint's sampled digest
    model: str = ""  # openai: the served model's name
    endpoints: tuple[str, ...] = ()  # openai: the URLs (sorted)
    engine: str = ""  # served: the engine's command
    gguf: BackendFingerprint | None = None  # served: the file

    def to_dict(self) -> dict[str, Any]:
        """The store's JSON object (the keys of `kind` only)."""
        if self.kind == "gguf":
            return {"kind": "gguf", "name": self.name, "size": self.size, "hash": self.hash}
        if self.kind == "openai":
            return {"kind": "openai", "model": self.model, "endpoints": sorted(self.endpoints)}
        return {"kind": "served", "gguf": self.gguf.to_dict() if self.gguf else {}, "engine": self.engine}


# A scorer: a pure function of the response and the item's target (scoring/*: math_scorer, choice_scorer,
# code_scorer build them).
Scorer = Callable[[Completion, Any], Score]


class Backend(Protocol):
    """Async chat completion; implementations retry transient failures themselves.

    A backend is opened before use and closed after (`async with backend:`, or `await open()` and
    `await close()`; closing twice is harmless): `open` checks it can answer (endpoints reachable),
    `prepare` loads what the run needs (an in-process model), `close` releases it all."""

    fingerprint: BackendFingerprint
    context_length: int | None

    async def open(self) -> None: ...

    async def prepare(self, chat: bool) -> None: ...

    async def complete(self, messages: Sequence[Message], params: SamplingParams) -> Completion: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Backend: ...

    async def __aexit__(self, *exc: object) -> None: ...


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

    # Optional: `after_run(store, label, result) -> str | None`, called after each run with its
    # BenchResult (C-Eval writes its submission file); the line it returns is shown.
