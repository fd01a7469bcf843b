"""A minimal OpenAI-style /v1/completions server with `echo` + `logprobs`, on llama.cpp logits, for running
lm-evaluation-harness's `gguf` model (lm_eval/models/gguf.py) against a GGUF on 127.0.0.1.

Why not `python -m llama_cpp.server`: llama-cpp-python 0.3.36's echo log-probs are shifted by one token for
vocabularies without a BOS token (SmolLM2, Qwen2.5): `_create_completion` pairs the logits row i, which
predicts token i+1, with token i when no BOS was stripped (llama.py, `all_logprobs = ...[token_offset:]`),
and it sorts the whole vocabulary in Python for every prompt token (minutes per MMLU question on 2 cores).
This server gives token i the log-softmax of row i-1 (what the OpenAI API means), tokenizes the prompt as
llama-cpp-python does (BOS as the vocab says, special tokens parsed), reports character offsets as it does,
and keeps the common prefix of consecutive prompts in the KV cache.

    python benchmarks/echo_logprobs_server.py MODEL.gguf PORT
"""

from __future__ import annotations

import sys

import numpy as np
from aiohttp import web
from llama_cpp import Llama


class Model:
    def __init__(self, path: str, n_ctx: int = 2048) -> None:
        self.llm = Llama(model_path=path, n_ctx=n_ctx, logits_all=True, verbose=False)
        self.held: list[int] = []
        self.lse = np.zeros(0)  # per held position: log-sum-exp and argmax of its logits row
        self.best = np.zeros(0, dtype=np.int64)
        self.bytes: dict[int, bytes] = {}

    def rows(self, tokens: list[int]) -> None:
        """Evaluate `tokens`, keeping the common prefix with the previous prompt (and its row statistics)."""
        keep = 0
        while keep < min(len(self.held), len(tokens) - 1) and self.held[keep] == tokens[keep]:
            keep += 1
        self.llm.n_tokens = keep
        self.llm.eval(tokens[keep:])
        new = self.llm.scores[keep : len(tokens)]
        top = new.max(axis=1)
        lse = top + np.log(np.exp(new - top[:, None]).sum(axis=1))
        self.lse = np.concatenate([self.lse[:keep], lse])
        self.best = np.concatenate([self.best[:keep], new.argmax(axis=1)])
        self.held = list(tokens)

    def logprob(self, row: int, token: int) -> float:
        return float(self.llm.scores[row, token]) - float(self.lse[row])

    def piece(self, token: int) -> bytes:
        if token not in self.bytes:
            self.bytes[token] = self.llm.detokenize([token])
        return self.bytes[token]

    def completion(self, prompt: str) -> dict:
        tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        self.rows(tokens)
        nxt = int(self.best[len(tokens) - 1])  # the one generated token (max_tokens=1), greedy
        seq = [*tokens, nxt]
        start = 1 if tokens[0] == self.llm.token_bos() else 0  # llama-cpp-python drops a leading BOS
        raw = b"".join(self.piece(t) for t in seq[start:])
        ends = np.cumsum([len(self.piece(t)) for t in seq[start:]])
        offsets = [0] + [len(raw[:e].decode("utf-8", errors="ignore")) for e in ends[:-1]]
        out: dict[str, list] = {"tokens": [], "text_offset": [], "token_logprobs": [], "top_logprobs": []}
        for k, i in enumerate(range(start, len(seq))):
            text = self.piece(seq[i]).decode("utf-8", errors="ignore")
            out["tokens"].append(text)
            out["text_offset"].append(offsets[k])
            if i == 0:
                out["token_logprobs"].append(None)
                out["top_logprobs"].append(None)
                continue
            best = int(self.best[i - 1])
            lp = self.logprob(i - 1, seq[i])
            out["token_logprobs"].append(lp)
            out["top_logprobs"].append(
                {self.piece(best).decode("utf-8", errors="ignore"): self.logprob(i - 1, best), text: lp}
            )
        text = raw.decode("utf-8", errors="ignore")
        return {
            "object": "text_completion",
            "choices": [{"index": 0, "text": text, "logprobs": out, "finish_reason": "length"}],
        }


def main() -> None:
    model = Model(sys.argv[1])

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("echo") or body.get("logprobs") is None:
            return web.json_response({"error": {"message": "this server only echoes log-probs"}}, status=400)
        return web.json_response(model.completion(body["prompt"]))

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "gguf", "object": "model"}]})

    app = web.Application()
    app.add_routes([web.post("/v1/completions", completions), web.get("/v1/models", models)])
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None)


if __name__ == "__main__":
    main()
