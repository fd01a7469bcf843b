"""Served answers equal in-process answers: the same items, seeds and sampler settings through
`python -m llama_cpp.server` (started by quantdrop.serve) as in-process, greedy and sampled."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import sys
from pathlib import Path

import pytest

from quantdrop.eval.backends.llama_cpp import default_n_ctx
from quantdrop.eval.backends.openai_compat import OpenAICompatBackend, sampler_fields, server_family
from quantdrop.eval.runner import evaluate
from quantdrop.eval.types import SamplingParams
from quantdrop.inventory import read_gguf_inventory
from quantdrop.serve import Engine

SERVER = (
    f"{sys.executable} -m llama_cpp.server --model {{model}} --port {{port}} --n_ctx {{ctx}} --interrupt_requests False"
)
MAX_TOKENS = 48


def graded(store: Path) -> dict[tuple, tuple]:
    """(benchmark, item, sample) -> (seed, text, status) of every response in `store`."""
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT r.benchmark, s.item_id, s.sample, s.seed, s.text, s.status FROM responses s "
            "JOIN runs r ON r.id = s.run_id"
        ).fetchall()
    return {row[:3]: row[3:] for row in rows}


@pytest.mark.parametrize(("temperature", "samples"), [(0.0, 1), (0.6, 2)], ids=["greedy", "sampled"])
def test_served_answers_equal_in_process_answers(
    demo_model: Path, tmp_path: Path, temperature: float, samples: int
) -> None:
    common = {
        "bench": ["mmlu", "math500"],
        "limit": 2,
        "samples": samples,
        "max_tokens": MAX_TOKENS,
        "temperature": temperature,
        "threads": 2,
        "progress": False,
    }
    evaluate(str(demo_model), label="local", store=str(tmp_path / "local.sqlite"), **common)
    ctx = default_n_ctx(read_gguf_inventory(demo_model).hparams.n_ctx_train, MAX_TOKENS)  # the in-process one
    with Engine(SERVER, str(demo_model), "served", tmp_path / "engines", ctx=ctx, ready_timeout_s=120) as engine:
        evaluate(None, endpoint=[engine.url], label="served", store=str(tmp_path / "served.sqlite"), **common)
    ours, theirs = graded(tmp_path / "local.sqlite"), graded(tmp_path / "served.sqlite")
    assert len(ours) == 2 * 2 * samples and all(text for _, text, _ in ours.values())
    assert theirs == ours  # the same seeds, texts and grades, item by item


def test_in_process_sampler_defaults_are_llama_cpp_pythons() -> None:
    # SamplingParams's llama.cpp settings are what the in-process backend always sampled with: a
    # llama-cpp-python upgrade that changes them must change them here too, knowingly
    from llama_cpp import Llama

    defaults = inspect.signature(Llama.create_chat_completion).parameters
    ours = SamplingParams()
    for name in ("top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
        assert getattr(ours, name) == defaults[name].default, name


def test_each_server_family_gets_the_sampler_fields_it_takes() -> None:
    params = SamplingParams(temperature=0.6, top_p=0.9, max_tokens=64, seed=7)
    standard = {
        "temperature": 0.6,
        "top_p": 0.9,
        "max_tokens": 64,
        "seed": 7,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
    }
    assert sampler_fields(params, None) == standard  # hosted or unknown servers: OpenAI's fields only
    assert sampler_fields(params, "llama.cpp") == standard | {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}
    assert sampler_fields(params, "vllm") == standard | {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.0}
    assert server_family({"id": "m", "owned_by": "llamacpp", "meta": {}}) == "llama.cpp"  # llama-server
    assert server_family({"id": "m", "owned_by": "me"}) == "llama.cpp"  # llama_cpp.server
    assert server_family({"id": "m", "owned_by": "vllm"}) == "vllm"
    assert server_family({"id": "m", "owned_by": "sglang"}) == "vllm"
    assert server_family({"id": "gpt-4o", "owned_by": "system"}) is None
    assert server_family("not an entry") is None


def test_the_request_body_follows_the_endpoints_family() -> None:
    from tests.eval.fake_openai import FakeOpenAI

    async def ask(server: FakeOpenAI, family: str | None) -> dict:
        backend = OpenAICompatBackend([server.url])
        await backend.connect()
        assert backend.families == {server.url: None}  # the fake says owned_by "fake": unknown
        backend.families[server.url] = family
        await backend.complete([{"role": "user", "content": "1 + 2"}], SamplingParams(max_tokens=8, seed=3))
        await backend.aclose()
        return server.requests[-1]

    with FakeOpenAI() as server:
        unknown, llama, vllm = (asyncio.run(ask(server, f)) for f in (None, "llama.cpp", "vllm"))
    assert unknown["seed"] == 3 and unknown["presence_penalty"] == 0.0 and "top_k" not in unknown
    assert llama["top_k"] == 40 and llama["repeat_penalty"] == 1.0 and "repetition_penalty" not in llama
    assert vllm["min_p"] == 0.05 and vllm["repetition_penalty"] == 1.0 and "repeat_penalty" not in vllm
