"""A GGUF in-process through llama-cpp-python, with the chat template stored in the GGUF.

One model per process (loaded once, reused by every benchmark of a run); generation runs in one
worker thread, so requests are served one at a time while the event loop stays free.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from quantdrop.errors import QuantdropError
from quantdrop.eval.backends import BackendBase
from quantdrop.eval.backends.openai_compat import MalformedReply, parse_chat_reply
from quantdrop.eval.loglik import encode_pair, encode_result
from quantdrop.eval.types import BackendFingerprint, Completion, Message, SamplingParams
from quantdrop.fingerprint import sampled_digest

CPU_CTX_CAP = 16384  # default n_ctx ceiling: a larger KV cache rarely fits a CPU box's RAM
PROMPT_ALLOWANCE = 2048  # tokens reserved for the prompt when n_ctx is derived from max_tokens

_LOADED: dict[tuple[str, int, int | None], Any] = {}  # one model per process


def gguf_file_fingerprint(path: str | os.PathLike[str]) -> BackendFingerprint:
    """Size plus quantdrop.fingerprint's sampled hash (header and spread blocks): it tells any two
    quantizations apart, and costs milliseconds even for a 400 GB model."""
    size, digest = sampled_digest(path)
    return BackendFingerprint("gguf", name=Path(path).name, size=size, hash=digest)


def gguf_fingerprint(path: str | os.PathLike[str]) -> str:
    """`gguf_file_fingerprint` as the store's JSON text."""
    return json.dumps(gguf_file_fingerprint(path).to_dict(), sort_keys=True)


def default_n_ctx(n_ctx_train: int, max_tokens: int) -> int:
    """min(model's training context, max_tokens + a prompt allowance), capped for CPU."""
    want = max_tokens + PROMPT_ALLOWANCE
    return max(512, min(want, n_ctx_train or want, CPU_CTX_CAP))


class LlamaCppBackend(BackendBase):
    """Chat completions from a GGUF loaded with llama_cpp.Llama."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        n_ctx: int | None = None,
        threads: int | None = None,
        max_tokens: int = 32768,
    ) -> None:
        path = Path(model)
        if not path.is_file():
            raise QuantdropError(f"no GGUF model at {path}")
        try:
            from quantdrop.inventory import read_gguf_inventory

            n_ctx_train = read_gguf_inventory(path).hparams.n_ctx_train
        except QuantdropError:
            raise
        except Exception as err:
            raise QuantdropError(f"{path} is not a readable GGUF ({type(err).__name__}: {err})") from None
        self.path = path
        self.n_ctx = n_ctx or default_n_ctx(n_ctx_train, max_tokens)
        self.threads = threads
        self.context_length: int | None = self.n_ctx
        self.fingerprint = gguf_file_fingerprint(path)
        self._llm: Any = None
        self._last_logprobs: tuple[list[int], np.ndarray] | None = None  # see _next_logprobs
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")

    async def prepare(self, chat: bool = True) -> None:
        """Load the model off the event loop (see `load`)."""
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.load(chat=chat))

    def load(self, chat: bool = True) -> None:
        """Load the model (once per process); refuse a GGUF without a chat template when `chat`
        (log-likelihood scoring sends raw text and needs none)."""
        key = self._key()
        if key not in _LOADED:
            try:
                from llama_cpp import Llama
            except ImportError as err:
                raise QuantdropError(f"in-process evaluation needs llama-cpp-python ({err})") from None
            _LOADED.clear()  # one model per process: drop the previous one first
            try:
                llm = Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.threads,
                    n_gpu_layers=-1,  # every layer on the GPU when llama.cpp was built with one
                    chat_format="chat_template.default",
                    verbose=False,
                )
            except (ValueError, RuntimeError) as err:
                raise QuantdropError(f"llama.cpp could not load {self.path}: {err}") from None
            _LOADED[key] = llm
        if chat and "tokenizer.chat_template" not in _LOADED[key].metadata:
            raise QuantdropError(
                f"{self.path} has no chat template (tokenizer.chat_template); "
                "serve it with a template and use --endpoint"
            )
        self._llm = _LOADED[key]

    def _key(self) -> tuple[str, int, int | None]:
        return (str(self.path.resolve()), self.n_ctx, self.threads)

    def _generate(self, messages: list[Message], params: SamplingParams) -> Completion:
        start = time.perf_counter()
        # llama-cpp-python caps max_tokens at n_ctx minus the prompt (llama.py, _create_completion).
        out = self._llm.create_chat_completion(
            messages=messages,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
            top_k=params.top_k,
            min_p=params.min_p,
            repeat_penalty=params.repeat_penalty,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
        )
        try:
            return parse_chat_reply(out, time.perf_counter() - start, params.max_tokens)
        except MalformedReply as err:
            return Completion(finish_reason="error", error=f"llama-cpp-python: {err}")

    async def complete(self, messages: Sequence[Message], params: SamplingParams) -> Completion:
        if self._llm is None:
            self.load()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._generate, list(messages), params)
        except ValueError as err:  # e.g. a prompt longer than the context: this item cannot be asked
            return Completion(finish_reason="error", error=f"llama.cpp: {err}")

    # -- log-likelihoods (quantdrop.eval.loglik) ---------------------------------------------------
    def _tokenize(self, text: str) -> list[int]:
        # as llama-cpp-python's server tokenizes a prompt: BOS as the vocab says, special tokens parsed
        return self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def _next_logprobs(self, tokens: list[int]) -> np.ndarray:
        """Evaluate `tokens` after what the context already holds (its longest common prefix is kept in
        the KV cache) and return the log-softmax of the last position's logits. The same tokens again
        (the next choice after a shared context) reuse them: one forward pass per context, and every
        choice is read from the same distribution."""
        if self._last_logprobs is not None and self._last_logprobs[0] == tokens:
            return self._last_logprobs[1]
        logprobs = self._evaluate_logprobs(tokens)
        self._last_logprobs = (list(tokens), logprobs)
        return logprobs

    def _evaluate_logprobs(self, tokens: list[int]) -> np.ndarray:
        return self._evaluate_rows(tokens, len(tokens) - 1)[0]

    def _evaluate_rows(self, tokens: list[int], first: int) -> np.ndarray:
        """Evaluate `tokens` after the longest prefix the KV cache already holds (at most `first`
        tokens of it) and return the log-softmax of the logits at positions first..len-1: one batch
        (per n_batch tokens), as llama.cpp's eval, with outputs requested for those positions only.
        Uses llama-cpp-python 0.3's `_ctx` and `_batch`, as `Llama.eval` does."""
        from llama_cpp import llama_get_logits_ith

        llm = self._llm
        keep = 0
        limit = min(llm.n_tokens, first)
        while keep < limit and llm.input_ids[keep] == tokens[keep]:
            keep += 1
        llm.n_tokens = keep
        llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        rows: list[np.ndarray] = []
        for at in range(keep, len(tokens), llm.n_batch):
            chunk = tokens[at : at + llm.n_batch]
            llm._batch.set_batch(batch=chunk, n_past=at, logits_all=False)
            for i in range(max(first - at, 0), len(chunk)):  # set_batch also asks for the chunk's last
                llm._batch.batch.logits[i] = True
            llm._ctx.decode(llm._batch)
            llm.input_ids[at : at + len(chunk)] = chunk
            llm.n_tokens = at + len(chunk)
            rows += [self._row(llama_get_logits_ith(llm.ctx, i)) for i in range(len(chunk)) if at + i >= first]
        return np.stack(rows)

    def _row(self, pointer: Any) -> np.ndarray:
        logits = np.ctypeslib.as_array(pointer, shape=(self._llm.n_vocab(),))
        top = float(logits.max())
        return logits - (top + math.log(float(np.exp(logits - top).sum())))

    def _loglik(self, context: str, continuations: list[str]) -> Completion:
        start = time.perf_counter()
        pairs = [encode_pair(self._tokenize, context, c) for c in continuations]
        longest = max(len(ctx) + len(cont) for ctx, cont in pairs)
        if longest > self.n_ctx:
            return Completion(finish_reason="error", error=f"prompt of {longest} tokens exceeds n_ctx {self.n_ctx}")
        lls, greedy = [], []
        for ctx, cont in pairs:
            # the first token's distribution is the context's, evaluated once for all choices; the rest
            # of a longer choice comes from one batch over its tokens (lm-eval scores context + choice in one)
            rows = [self._next_logprobs(ctx)]
            if len(cont) > 1:
                rows += list(self._evaluate_rows(ctx + cont[:-1], len(ctx)))
            lls.append(sum(float(row[token]) for row, token in zip(rows, cont, strict=True)))
            greedy.append(all(int(row.argmax()) == token for row, token in zip(rows, cont, strict=True)))
        return Completion(
            text=encode_result(lls, greedy),
            prompt_tokens=longest,
            completion_tokens=0,
            latency_s=time.perf_counter() - start,
        )

    async def loglik(self, context: str, continuations: Sequence[str]) -> Completion:
        """Each continuation's log-likelihood after `context` (lm-eval's `loglikelihood` request)."""
        if self._llm is None:
            self.load(chat=False)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._loglik, context, list(continuations))
        except (ValueError, RuntimeError) as err:
            return Completion(finish_reason="error", error=f"llama.cpp: {err}")

    async def _close(self) -> None:
        """Stop the worker (an interrupt need not wait for its queue) and release the model."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._llm is not None and _LOADED.get(self._key()) is self._llm:
            del _LOADED[self._key()]
        self._llm = None
        self._last_logprobs = None
