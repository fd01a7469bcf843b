"""A fake server that returns prompt log-probabilities the way vLLM or llama-server does, from a toy model.

The toy model: tokens are bytes (id = byte + 1, BOS = 0, added by POST /tokenize); after a prefix, the
next-token logits are 0 except +2 for a space and, right after a space that follows "Answer:", +3 for the
letter the question names with "prefer X". So its answer is known without it: the log-likelihood of
" X" is lp(" " | ...) + lp("X" | ... " "), and every choice shares lp(" ").

    flavour "vllm":         POST /tokenize {"prompt"} and /v1/completions with `prompt_logprobs`
    flavour "llama-server": POST /tokenize {"content"} and /completion with `n_probs`
    flavour "none":         neither (a plain chat server): --mode loglik must refuse it in one line
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from fake_openai import FakeOpenAI

VOCAB = 257


def tokenize(text: str) -> list[int]:
    return [0] + [b + 1 for b in text.encode("utf-8")]


def next_logprobs(prefix: list[int]) -> list[float]:
    """The toy model's log-softmax after `prefix` (token ids)."""
    text = bytes(t - 1 for t in prefix if t > 0).decode("utf-8", "replace")
    logits = [0.0] * VOCAB
    logits[ord(" ") + 1] += 2.0
    prefer = re.search(r"prefer ([A-D])", text)
    if prefer and text.endswith("Answer: "):
        logits[ord(prefer[1]) + 1] += 3.0
    norm = math.log(sum(math.exp(x) for x in logits))
    return [x - norm for x in logits]


def _rank(lps: list[float], token: int) -> int:
    return 1 + sum(lp > lps[token] for lp in lps)


class FakeLogprobs(FakeOpenAI):
    def __init__(self, flavour: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flavour = flavour
        self.logprob_requests = 0

    async def _respond(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        route = path.rstrip("/")
        if self.flavour == "none" or route not in ("/tokenize", "/v1/completions", "/completion"):
            return await super()._respond(method, path, body, writer)
        request = json.loads(body)
        if route == "/tokenize":
            text = request.get("prompt" if self.flavour == "vllm" else "content")
            return self._send(writer, 200, {"tokens": tokenize(text) if text else []})
        if route == "/v1/completions" and self.flavour == "vllm" and request.get("prompt_logprobs") is not None:
            self.logprob_requests += 1
            ids = request["prompt"]
            entries: list[Any] = [None]
            for i in range(1, len(ids)):
                lps = next_logprobs(ids[:i])
                entries.append({str(ids[i]): {"logprob": lps[ids[i]], "rank": _rank(lps, ids[i])}})
            return self._send(writer, 200, {"choices": [{"text": "x", "prompt_logprobs": entries}]})
        if route == "/completion" and self.flavour == "llama-server":
            self.logprob_requests += 1
            lps = next_logprobs(request["prompt"])
            top = sorted(range(VOCAB), key=lambda t: -lps[t])[: int(request.get("n_probs", 0))]
            probs = [{"id": t, "token": chr(t - 1) if t else "<s>", "logprob": lps[t]} for t in top]
            return self._send(
                writer,
                200,
                {
                    "content": "x",
                    "completion_probabilities": [{"id": top[0], "logprob": lps[top[0]], "top_logprobs": probs}],
                },
            )
        # vLLM-like /v1/completions without prompt_logprobs, or llama-server asked the vLLM way
        return self._send(writer, 200, {"choices": [{"text": "x"}]})
