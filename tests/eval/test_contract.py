"""The eval contract's shape (issue 11): backends opened and closed, with a typed fingerprint whose
dict is what the store records; the runner calls a benchmark's after-run hook; scorers are pure
functions built by factories."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
import toy_benchmark
from fake_openai import FakeOpenAI

from quantdrop.errors import QuantdropError
from quantdrop.eval.backends.llama_cpp import gguf_file_fingerprint, gguf_fingerprint
from quantdrop.eval.backends.openai_compat import OpenAICompatBackend
from quantdrop.eval.runner import evaluate
from quantdrop.eval.scoring.choice import choice_scorer
from quantdrop.eval.scoring.code import CheckFailed, code_scorer
from quantdrop.eval.scoring.text import Extraction
from quantdrop.eval.store import Store
from quantdrop.eval.types import BackendFingerprint, Completion


def test_gguf_fingerprint_is_typed_and_stores_the_same_dict(tmp_path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    fp = gguf_file_fingerprint(path)
    assert isinstance(fp, BackendFingerprint) and fp.kind == "gguf" and fp.size == path.stat().st_size
    assert (
        fp.to_dict()
        == json.loads(gguf_fingerprint(path))
        == {"kind": "gguf", "name": "m.gguf", "size": fp.size, "hash": fp.hash}
    )
    served = BackendFingerprint("served", engine="llama-server -m m.gguf", gguf=fp)
    assert served.to_dict() == {"kind": "served", "gguf": fp.to_dict(), "engine": "llama-server -m m.gguf"}


def test_http_backend_opens_and_closes_once(fake_server) -> None:
    async def go() -> OpenAICompatBackend:
        backend = OpenAICompatBackend([fake_server.url + "/v1/", fake_server.url])
        async with backend:
            assert backend._session is not None
        assert backend._session is None
        await backend.close()  # idempotent
        return backend

    backend = asyncio.run(go())
    assert backend.fingerprint.to_dict() == {
        "kind": "openai",
        "model": "fake-model",
        "endpoints": [fake_server.url, fake_server.url],
    }


def test_a_failed_open_releases_the_session() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    backend = OpenAICompatBackend([f"http://127.0.0.1:{port}"])

    async def go() -> None:
        async with backend:
            pass

    with pytest.raises(QuantdropError, match="unreachable"):
        asyncio.run(go())
    assert backend._session is None


def test_runner_stores_the_fingerprint_dict_and_calls_the_after_run_hook(tmp_path) -> None:
    store = str(tmp_path / "eval.sqlite")
    toy_benchmark.after_run_calls.clear()
    with FakeOpenAI() as server:
        evaluate(
            endpoint=[server.url],
            bench=["toy_benchmark:create_hooked"],
            label="M",
            store=store,
            samples=1,
            progress=False,
        )
    assert toy_benchmark.after_run_calls == [(store, "M", True)]
    with Store(store, readonly=True) as db:
        (run,) = db.runs(["M"])
    assert run.fingerprint == {"kind": "openai", "model": "fake-model", "endpoints": [server.url]}


def test_choice_scorer_is_a_pure_function_of_response_and_target() -> None:
    score = choice_scorer()
    assert score(Completion(text="<think>A?</think>Answer: B"), "B").status == "correct"
    assert score(Completion(text="Answer: B"), "C").status == "wrong"
    assert score(Completion(text="<think>no end"), "B").status == "unextracted"
    assert score(Completion(error="HTTP 500", finish_reason="error"), "B").status == "error"


def test_code_scorer_runs_extract_sanitize_check_verdict() -> None:
    seen = []

    def extract(text: str, target: dict) -> Extraction:
        return Extraction(text or None, "whole text")

    def check(target: dict, code: str) -> tuple[bool, str]:
        seen.append(code)
        if target.get("broken"):
            raise CheckFailed("reference failed")
        return code.strip().endswith("return 1"), "checked"

    score = code_scorer(extract, check, sanitize_for=lambda target: "f")
    program = "import os\nprint('draft')\ndef f():\n    return 1\n"
    good = score(Completion(text=program), {})
    assert (good.status, good.value) == ("correct", 1.0) and "print('draft')" not in seen[-1]  # sanitized
    assert score(Completion(text=""), {}).status == "unextracted"
    assert score(Completion(text=program), {"broken": True}).status == "error"
    assert score(Completion(error="timeout", finish_reason="error"), {}).status == "error"
    assert len(seen) == 2  # neither an unextracted answer nor a failed request is checked
