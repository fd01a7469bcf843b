"""A fake OpenAI-compatible chat server: real HTTP/1.1 on 127.0.0.1, answers from a script.

Speaks just enough of the API that llama-server, vLLM and llama-cpp-python's server share:
`GET /v1/models` and `POST /v1/chat/completions` (non-streaming, keep-alive). A script maps a
request to a `Reply`: the text, or a fault (an HTTP status, a hang, a dropped connection) for
the first `fail_times` attempts at that prompt. Every request is logged.

    with FakeOpenAI(script) as server:      # a thread of the calling process
        evaluate(endpoint=[server.url], ...)

    python fake_openai.py --latency 0.05      # a separate process (benchmarks); prints its URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    text: str = ""
    finish_reason: str = "stop"
    status: int = 200  # a fault status (429, 500, 503...) for the first `fail_times` attempts
    hang: bool = False  # never answer the first `fail_times` attempts (the client must time out)
    drop: bool = False  # close the connection without answering the first `fail_times` attempts
    fail_times: int = 0  # -1: fail every attempt
    retry_after: float | None = None
    reasoning: str | None = None  # sent as `reasoning_content`, as vLLM and DeepSeek's API do
    completion_tokens: int | None = None
    body: Any = None  # the whole 200 reply instead of the one built from `text`: a dict (sent with
    # Python's json, so NaN and Infinity go out as the non-standard tokens a broken server sends) or bytes


Script = Callable[[dict[str, Any]], Reply]


def chat_body(content: Any = "5", *, finish_reason: Any = "stop", usage: Any = None, **over: Any) -> dict[str, Any]:
    """A chat completion body around `content` (any JSON value, to build malformed ones); keys in
    `over` replace the top-level ones (`choices=[{}]`, `usage=...`)."""
    body = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": usage if usage is not None else {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    return body | over


def arithmetic_script(request: dict[str, Any]) -> Reply:
    """Answers "What is A + B?" correctly: the toy benchmark's questions."""
    prompt = request["messages"][-1]["content"]
    m = re.search(r"(-?\d+)\s*\+\s*(-?\d+)", prompt)
    return Reply(text=f"The sum is {int(m[1]) + int(m[2])}." if m else "I do not know.")


class FakeOpenAI:
    """The server; `url` is its base URL ("http://127.0.0.1:PORT"). Use as a context manager."""

    def __init__(
        self,
        script: Script = arithmetic_script,
        *,
        latency: float = 0.0,
        model: str = "fake-model",
        context_length: int | None = 4096,
        port: int = 0,
    ) -> None:
        self.script, self.latency, self.model, self.context_length = script, latency, model, context_length
        self.port = port
        self.requests: list[dict[str, Any]] = []  # every chat request's JSON body, in arrival order
        self.attempts: Counter[str] = Counter()  # per prompt
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self._run_thread, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and self._thread:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._server:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run_thread(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self.start(self.port))
        self._ready.set()
        self._loop.run_forever()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port, backlog=1024)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    # -- HTTP ------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if not await self._respond(method, path, body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False closes the connection."""
        if method == "GET" and path.rstrip("/") == "/v1/models":
            entry: dict[str, Any] = {"id": self.model, "object": "model", "owned_by": "fake"}
            if self.context_length:
                entry["max_model_len"] = self.context_length  # as vLLM reports it
            return self._send(writer, 200, {"object": "list", "data": [entry]})
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            return self._send(writer, 404, {"error": {"message": f"no route {method} {path}"}})
        request = json.loads(body)
        if request.get("n", 1) != 1:  # llama-server rejects n > 1
            return self._send(writer, 400, {"error": {"message": "only one completion per request is supported"}})
        prompt = request["messages"][-1]["content"]
        with self._lock:
            self.requests.append(request)
            self.attempts[prompt] += 1
            attempt = self.attempts[prompt]
        reply = self.script(request)
        failing = reply.fail_times < 0 or attempt <= reply.fail_times
        if self.latency:
            await asyncio.sleep(self.latency)
        if failing and reply.drop:
            writer.transport.abort()
            return False
        if failing and reply.hang:
            await asyncio.sleep(3600)
            return False
        if failing and reply.status != 200:
            headers = {"Retry-After": f"{reply.retry_after:g}"} if reply.retry_after is not None else {}
            return self._send(writer, reply.status, {"error": {"message": f"injected {reply.status}"}}, headers)
        if reply.body is not None:
            return self._send(writer, 200, reply.body)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
        n_out = reply.completion_tokens if reply.completion_tokens is not None else len(reply.text.split())
        return self._send(
            writer,
            200,
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model", self.model),
                "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
                "usage": {
                    "prompt_tokens": len(prompt.split()),
                    "completion_tokens": n_out,
                    "total_tokens": len(prompt.split()) + n_out,
                },
            },
        )

    @staticmethod
    def _send(
        writer: asyncio.StreamWriter, status: int, payload: dict | bytes, headers: dict[str, str] | None = None
    ) -> bool:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"{extra}Connection: keep-alive\r\n\r\n".encode()
            + data
        )
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake OpenAI-compatible server answering A + B questions")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--die-after", type=int, default=0, help="exit like a crashed engine at the Nth request")
    parser.add_argument("--die-label", default=None, help="... only when --label is this one")
    parser.add_argument("--label", default=None, help="the variant served (a --serve template's {label})")
    parser.add_argument("--model-path", default=None, help="ignored: a --serve template's {model}")
    args = parser.parse_args()
    dies = args.die_after > 0 and args.die_label in (None, args.label)
    seen = Counter()

    def script(request: dict[str, Any]) -> Reply:
        seen["requests"] += 1
        if dies and seen["requests"] >= args.die_after:
            os._exit(1)
        return arithmetic_script(request)

    server = FakeOpenAI(script, latency=args.latency)

    async def serve() -> None:
        await server.start(args.port)
        print(server.url, flush=True)
        await asyncio.Event().wait()

    try:  # the fastest loop at hand: the benchmark measures the client, not this server
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve())


if __name__ == "__main__":
    main()
