"""The OpenAI-compatible backend against a real HTTP fake server on 127.0.0.1: answers, retries of
500/429/hangs/dropped connections, errors recorded (never scored), spreading over endpoints."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from fake_openai import FakeOpenAI, Reply, chat_body

from quantdrop.errors import QuantdropError
from quantdrop.eval.backends.openai_compat import OpenAICompatBackend, normalize_endpoint, text_cap
from quantdrop.eval.types import SamplingParams

MSG = [{"role": "user", "content": "What is 2 + 3?"}]
PARAMS = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=123, seed=42)


def ask(urls, messages=MSG, n=1, **kw):
    async def go():
        backend = OpenAICompatBackend(urls, backoff=0.01, **kw)
        try:
            await backend.connect()
            return await asyncio.gather(*(backend.complete(messages, PARAMS) for _ in range(n))), backend
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_answer_usage_and_request_body(fake_server):
    (c,), backend = ask([fake_server.url])
    assert c.error is None and c.text == "The sum is 5." and c.finish_reason == "stop"
    assert c.completion_tokens == 4 and c.prompt_tokens == 5  # the fake counts words
    body = fake_server.requests[0]
    assert body["n"] == 1 and body["seed"] == 42 and body["max_tokens"] == 123
    assert body["temperature"] == 0.6 and body["top_p"] == 0.95 and body["messages"] == MSG
    assert body["model"] == "fake-model" == backend.model_name  # learned from /v1/models
    assert backend.context_length == 4096


@pytest.mark.parametrize(
    "fault",
    [
        Reply(text="5", status=500, fail_times=2),
        Reply(text="5", status=503, fail_times=1),
        Reply(text="5", status=429, fail_times=2, retry_after=0),
        Reply(text="5", drop=True, fail_times=2),
        Reply(text="5", hang=True, fail_times=1),
    ],
    ids=["500", "503", "429", "dropped", "hang"],
)
def test_transient_faults_are_retried(fault):
    with FakeOpenAI(lambda req: fault) as server:
        (c,), _ = ask([server.url], timeout=1.0)
        assert c.error is None and c.text == "5"
        assert server.attempts[MSG[0]["content"]] == fault.fail_times + 1


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Reply(status=500, fail_times=-1), "HTTP 500"),
        (Reply(status=429, fail_times=-1, retry_after=0), "HTTP 429"),
        (Reply(drop=True, fail_times=-1), "from http://127.0.0.1"),
        (Reply(hang=True, fail_times=-1), "timeout"),
    ],
    ids=["500", "429", "dropped", "hang"],
)
def test_persistent_faults_become_errors(fault, message):
    with FakeOpenAI(lambda req: fault) as server:
        (c,), _ = ask([server.url], retries=2, timeout=0.5)
        assert c.error is not None and message in c.error and c.finish_reason == "error" and c.text == ""
        assert server.attempts[MSG[0]["content"]] == 3  # first try + 2 retries


def test_client_errors_are_not_retried():
    with FakeOpenAI(lambda req: Reply(status=400, fail_times=-1)) as server:
        (c,), _ = ask([server.url], retries=3)
        assert "HTTP 400" in c.error and "injected 400" in c.error
        assert server.attempts[MSG[0]["content"]] == 1


def test_reasoning_content_is_put_back_in_think_tags():
    with FakeOpenAI(lambda req: Reply(text="Answer: B", reasoning="B fits")) as server:
        (c,), _ = ask([server.url])
        assert c.text == "<think>\nB fits\n</think>\nAnswer: B"


def test_content_as_a_list_of_parts_is_joined():
    parts = [
        {"type": "text", "text": "The sum "},
        {"type": "image_url", "image_url": {}},
        {"type": "text", "text": "is 5."},
    ]
    with FakeOpenAI(lambda req: Reply(body=chat_body(parts))) as server:
        (c,), _ = ask([server.url])
    assert c.error is None and c.text == "The sum is 5."


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (chat_body(usage={"prompt_tokens": INF, "completion_tokens": 1}), "usage.prompt_tokens is inf"),
        (chat_body(usage={"prompt_tokens": 5, "completion_tokens": NAN}), "usage.completion_tokens is nan"),
        (chat_body(usage={"prompt_tokens": "5", "completion_tokens": 1}), 'usage.prompt_tokens is "5"'),
        (chat_body(usage={"prompt_tokens": -3, "completion_tokens": 1}), "usage.prompt_tokens is -3"),
        (chat_body(usage={"prompt_tokens": 10**30, "completion_tokens": 1}), "usage.prompt_tokens"),
        (chat_body(usage=[1, 2]), "'usage' is [1, 2]"),
        (chat_body(choices=None), "'choices' is null"),
        (chat_body(choices=[]), "'choices' is []"),
        (chat_body(choices=[{}]), "choices[0].message is null"),
        (chat_body(choices=["x"]), "choices[0].message is null"),
        (chat_body(None), "choices[0].message.content is null"),
        (chat_body(42), "choices[0].message.content is 42"),
        (chat_body([{"type": "text", "text": 7}]), "content[0].text is 7"),
        (chat_body(["loose"]), 'content[0] is "loose"'),
        (chat_body("5", finish_reason=3), "finish_reason is 3"),
        ([1, 2, 3], "a JSON list, not an object"),
        (b"{not json", "not JSON"),
        (b"[" * 100000 + b"]" * 100000, "not JSON"),
    ],
    ids=[
        "inf",
        "nan",
        "string",
        "negative",
        "huge",
        "usage-list",
        "no-choices",
        "empty-choices",
        "empty-choice",
        "string-choice",
        "null-content",
        "number-content",
        "bad-part-text",
        "bad-part",
        "finish",
        "list",
        "not-json",
        "nested",
    ],
)
def test_a_malformed_field_is_that_replys_error_naming_the_field(body, field):
    with FakeOpenAI(lambda req: Reply(body=body)) as server:
        (c,), _ = ask([server.url], retries=3)
    assert c.error is not None and c.finish_reason == "error" and c.text == "", c
    assert f"malformed reply from {server.url}" in c.error and field in c.error, c.error
    assert server.attempts[MSG[0]["content"]] == 1  # garbage is not asked again in this run


def test_null_counts_and_null_finish_reason_are_accepted():
    body = chat_body("5", finish_reason=None, usage={"prompt_tokens": None, "completion_tokens": 3.0})
    with FakeOpenAI(lambda req: Reply(body=body)) as server:
        (c,), _ = ask([server.url])
    assert (c.error, c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens) == (None, "5", "stop", 0, 3)


def test_a_reply_longer_than_max_tokens_allows_is_capped_and_flagged():
    cap = text_cap(PARAMS.max_tokens)
    with FakeOpenAI(lambda req: Reply(text="x" * (2 << 20) + " 5")) as server:  # 2 MB for max_tokens=123
        (c,), _ = ask([server.url])
    assert c.error is None and c.capped and len(c.text) == cap == 16384
    with FakeOpenAI(lambda req: Reply(text="y" * cap)) as server:  # exactly the cap: kept whole
        (c,), _ = ask([server.url])
    assert not c.capped and c.text == "y" * cap


def test_a_lone_surrogate_in_the_text_is_replaced_not_fatal():
    with FakeOpenAI(lambda req: Reply(body=b'{"choices": [{"message": {"content": "5 \\ud800"}}]}')) as server:
        (c,), _ = ask([server.url])
    assert c.error is None and c.text == "5 ?"
    c.text.encode("utf-8")  # storable


def test_requests_spread_over_endpoints():
    with FakeOpenAI(latency=0.02) as a, FakeOpenAI(latency=0.02) as b:
        results, _ = ask([a.url, b.url + "/v1/"], n=40, concurrency=8)
        assert all(c.error is None for c in results)
        assert len(a.requests) + len(b.requests) == 40
        assert min(len(a.requests), len(b.requests)) >= 15


def test_failing_endpoint_fails_over_to_the_other():
    with FakeOpenAI(lambda req: Reply(status=503, fail_times=-1)) as bad, FakeOpenAI() as good:
        results, _ = ask([bad.url, good.url], n=10, retries=2)
        assert all(c.error is None and c.text == "The sum is 5." for c in results)


def test_unreachable_endpoint_is_refused_up_front():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(QuantdropError, match=rf"endpoint http://127.0.0.1:{port} is unreachable"):
        ask([f"http://127.0.0.1:{port}"])


def test_wrong_model_name_is_refused(fake_server):
    with pytest.raises(QuantdropError, match=r"does not serve model 'other'.*fake-model"):
        ask([fake_server.url], model_name="other")


def test_api_key_env_must_be_set(monkeypatch):
    monkeypatch.delenv("QD_TEST_KEY", raising=False)
    with pytest.raises(QuantdropError, match="QD_TEST_KEY"):
        OpenAICompatBackend.from_options(["http://127.0.0.1:1"], model_name=None, api_key_env="QD_TEST_KEY")


def test_normalize_endpoint():
    assert normalize_endpoint("http://h:8000/v1/") == "http://h:8000"
    with pytest.raises(QuantdropError, match="not an http"):
        normalize_endpoint("h:8000")


def test_gguf_fingerprint_tells_files_apart_by_content(tmp_path):
    from quantdrop.eval.backends.llama_cpp import gguf_fingerprint

    data = bytes(range(256)) * 40_000  # ~10 MB: several sampled chunks
    a, b, c = tmp_path / "a.gguf", tmp_path / "b.gguf", tmp_path / "c.gguf"
    a.write_bytes(data)
    b.write_bytes(data)
    c.write_bytes(data[:5_000_000] + b"\x01" + data[5_000_001:])  # one byte in the middle of a spot
    fa, fb, fc = (json.loads(gguf_fingerprint(p)) for p in (a, b, c))
    assert fa["hash"] == fb["hash"] and fa["size"] == len(data) and fa["kind"] == "gguf"
    assert fa["hash"] != fc["hash"]


def test_default_n_ctx():
    from quantdrop.eval.backends.llama_cpp import CPU_CTX_CAP, PROMPT_ALLOWANCE, default_n_ctx

    assert default_n_ctx(8192, 32768) == 8192  # the model's training context
    assert default_n_ctx(131072, 256) == 256 + PROMPT_ALLOWANCE  # what the run needs
    assert default_n_ctx(131072, 32768) == CPU_CTX_CAP
