"""OpenAI-compatible chat completions over HTTP (aiohttp), spread over one or more servers.

One request per sample (`n` is never sent above 1: llama-server rejects it). Each request goes to
the least busy endpoint. Transient failures (429, 5xx, timeouts, refused or dropped connections)
are retried with exponential backoff and jitter (honouring Retry-After), preferring another
endpoint; a request that still fails, or a 4xx that retrying cannot fix, comes back as a
`Completion` with `error` set: recorded, never scored as a wrong answer. So is a 200 reply with a
malformed field (`parse_chat_reply` checks every field we read): that reply's error, not the run's.
A reply longer than `max_tokens` can produce is stored cut, flagged `capped`.

aiohttp rather than httpx: httpcore's pool scans every connection on each request (encode/httpx
#3215), so httpx spent ~3 ms of CPU per request here against aiohttp's ~0.4 ms, and the runner
became the bottleneck long before a fleet of servers did (benchmarks/eval_throughput.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from quantdrop.errors import QuantdropError
from quantdrop.eval.backends import BackendBase
from quantdrop.eval.loglik import encode_result, split_pair
from quantdrop.eval.types import BackendFingerprint, Completion, Message, SamplingParams

JSON = {"Content-Type": "application/json"}
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 30.0
N_PROBS = 50  # llama-server: top log-probs asked per position (a choice token outside them is bounded)
MAX_CHARS_PER_TOKEN = 128  # generous: the longest entries of common vocabularies are runs of spaces
MIN_TEXT_CAP = 16384
MAX_BODY_BYTES = 64 << 20  # a larger reply is refused unread (an error), at least 16 bytes per capped char

# Which sampler fields a chat request carries. Every server gets OpenAI's standard ones (temperature,
# top_p, max_tokens, seed, presence_penalty, frequency_penalty); the others of SamplingParams only go
# to a server family known to take them, as GET /v1/models names it (`owned_by`): llama-server
# ("llamacpp") and llama_cpp.server ("me") take top_k, min_p and repeat_penalty; vLLM and SGLang take
# top_k, min_p and repetition_penalty (theirs counts the whole context, llama.cpp's the last 64
# tokens: the same at 1.0, off). Any other server (hosted APIs: OpenAI's answers an unknown field
# with HTTP 400) gets the standard fields only, and samples with its own top_k/min_p.
SERVER_FAMILIES = {"llamacpp": "llama.cpp", "me": "llama.cpp", "vllm": "vllm", "sglang": "vllm"}
EXTRA_SAMPLER_FIELDS: dict[str | None, dict[str, str]] = {  # family -> {request field: SamplingParams field}
    "llama.cpp": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repeat_penalty"},
}
STANDARD_SAMPLER_FIELDS = ("temperature", "top_p", "max_tokens", "seed", "presence_penalty", "frequency_penalty")


def normalize_endpoint(url: str) -> str:
    """ "http://host:8000/v1/" and "http://host:8000" -> "http://host:8000" (we add /v1/...)."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise QuantdropError(f"endpoint {url!r} is not an http(s) URL (e.g. http://127.0.0.1:8080)")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def parse_labelled_endpoint(spec: str) -> tuple[str, str]:
    """`LABEL=URL` (a variant served at URL, as `study` and `speed` take it) -> (label, url)."""
    label, sep, url = spec.partition("=")
    if not sep or not label.strip() or not url.strip().startswith(("http://", "https://")):
        raise QuantdropError(f"bad --endpoint {spec!r}: expected LABEL=URL (e.g. Q4_K_M=http://127.0.0.1:8080/v1)")
    return label.strip(), url.strip()


def server_family(model_entry: Any) -> str | None:
    """The server family of a /v1/models entry ("llama.cpp", "vllm"), None when unknown."""
    if not isinstance(model_entry, dict):
        return None
    return SERVER_FAMILIES.get(str(model_entry.get("owned_by", "")).lower())


def sampler_fields(params: SamplingParams, family: str | None) -> dict[str, Any]:
    """The sampler part of a chat request to a server of `family` (the rule above SERVER_FAMILIES)."""
    fields = {name: getattr(params, name) for name in STANDARD_SAMPLER_FIELDS}
    fields.update({name: getattr(params, attr) for name, attr in EXTRA_SAMPLER_FIELDS.get(family, {}).items()})
    return fields


class OpenAICompatBackend(BackendBase):
    """Chat completions from OpenAI-compatible servers; open it (`async with backend:`) before use."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        model_name: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 1800.0,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        if not endpoints:
            raise QuantdropError("no --endpoint given")
        self.endpoints = [normalize_endpoint(e) for e in endpoints]
        self.model_name = model_name
        self.retries, self.backoff = retries, backoff
        self.context_length: int | None = None
        self.fingerprint = BackendFingerprint("openai", endpoints=tuple(self.endpoints))  # the model: at open
        self._busy = dict.fromkeys(self.endpoints, 0)
        self.families: dict[str, str | None] = dict.fromkeys(self.endpoints)  # set by connect
        self._turn = 0
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._pool = max(concurrency, 1) + len(self.endpoints)
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self._session: aiohttp.ClientSession | None = None
        self._logprob_api = "vllm"  # or "llama-server": set by check_loglik

    @classmethod
    def from_options(
        cls, endpoints: Sequence[str], *, model_name: str | None, api_key_env: str | None, **kwargs: Any
    ) -> OpenAICompatBackend:
        api_key = None
        if api_key_env:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise QuantdropError(f"--api-key-env {api_key_env}: that environment variable is not set")
        return cls(endpoints, model_name=model_name, api_key=api_key, **kwargs)

    async def _open(self) -> None:
        """Check every endpoint answers `GET /v1/models`; learn the model name and context length."""
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit=self._pool, limit_per_host=0, enable_cleanup_closed=True),
        )
        models: list[str] = []
        for url in self.endpoints:
            entry = self._served_model(url, await self._list_models(url))
            if entry is not None:
                self.families[url] = server_family(entry)
                models.append(str(entry.get("id")))
                ctx = entry.get("max_model_len") or (entry.get("meta") or {}).get("n_ctx_train")
                if isinstance(ctx, int) and ctx > 0:
                    self.context_length = min(self.context_length or ctx, ctx)
        if self.model_name is None:
            if len(set(models)) > 1:
                raise QuantdropError(
                    f"the endpoints serve different models ({', '.join(sorted(set(models)))}); "
                    "name one with --model-name"
                )
            self.model_name = models[0] if models else "default"
        self.fingerprint = BackendFingerprint("openai", model=self.model_name, endpoints=tuple(self.endpoints))

    async def _list_models(self, url: str) -> list[dict[str, Any]] | None:
        """The entries of `GET url/v1/models`; None when the server has no such list (chat may still work)."""
        assert self._session is not None
        try:
            async with self._session.get(f"{url}/v1/models", timeout=aiohttp.ClientTimeout(total=15)) as resp:
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise QuantdropError(
                f"endpoint {url} is unreachable ({type(err).__name__}: {err or 'no answer'})"
            ) from None
        if status in (401, 403):
            raise QuantdropError(
                f"endpoint {url} refused our credentials (HTTP {status}); pass the key's variable with --api-key-env"
            )
        if status != 200:
            return None
        try:
            data = json.loads(raw).get("data") or []
        except (ValueError, AttributeError):
            data = []
        return [d for d in data if isinstance(d, dict)]

    def _served_model(self, url: str, entries: list[dict[str, Any]] | None) -> dict[str, Any] | None:
        """The entry of the model we ask for (else the first one); refuses an endpoint without it."""
        if not entries:
            return None
        if self.model_name and self.model_name not in {d.get("id") for d in entries}:
            served = ", ".join(str(d.get("id")) for d in entries)
            raise QuantdropError(f"endpoint {url} does not serve model {self.model_name!r} (it serves: {served})")
        return ([d for d in entries if d.get("id") == self.model_name] or entries[:1])[0]

    def _pick(self, avoid: str | None) -> str:
        """The least busy endpoint (round robin among equals), avoiding the one that just failed."""
        candidates = [e for e in self.endpoints if e != avoid] or self.endpoints
        n = len(candidates)
        self._turn += 1
        order = [candidates[(self._turn + k) % n] for k in range(n)]
        return min(order, key=lambda e: self._busy[e])

    def _chat_payload(self, messages: Sequence[Message], params: SamplingParams, family: str | None) -> bytes:
        body = {
            "model": self.model_name,
            "messages": list(messages),
            **sampler_fields(params, family),
            "n": 1,
            "stream": False,
        }
        return json.dumps(body, allow_nan=False).encode()

    async def complete(self, messages: Sequence[Message], params: SamplingParams) -> Completion:
        payloads: dict[str | None, bytes] = {}  # one per server family, not per attempt
        start = time.perf_counter()
        last_error, failed = "", None
        for attempt in range(self.retries + 1):
            url = self._pick(failed)
            family = self.families.get(url)
            if family not in payloads:
                payloads[family] = self._chat_payload(messages, params, family)
            self._busy[url] += 1
            try:
                done, last_error, retry_after = await self._chat_attempt(
                    url, payloads[family], params.max_tokens, start
                )
            finally:
                self._busy[url] -= 1
            if isinstance(done, Completion):
                return done
            if not done:  # an error that asking again cannot fix
                break
            failed = url
            if attempt < self.retries:
                await self._wait_before_retry(attempt, retry_after)
        return Completion(finish_reason="error", latency_s=time.perf_counter() - start, error=last_error)

    async def _chat_attempt(
        self, url: str, payload: bytes, max_tokens: int, start: float
    ) -> tuple[Completion | bool, str, float | None]:
        """One POST of a chat completion: (the Completion, or whether a retry may help; error; Retry-After)."""
        assert self._session is not None
        limit = max(MAX_BODY_BYTES, 16 * text_cap(max_tokens))
        retry_after = None
        try:
            async with self._session.post(f"{url}/v1/chat/completions", data=payload, headers=JSON) as resp:
                status, retry_after = resp.status, _retry_after(resp.headers)
                raw = await _read_limited(resp, limit)
        except _TooLarge:
            return False, f"malformed reply from {url}: more than {limit} bytes for max_tokens={max_tokens}", None
        except TimeoutError:
            return True, f"timeout from {url}", retry_after
        except aiohttp.ClientError as err:  # refused, reset, dropped mid-response
            return True, f"{type(err).__name__} from {url}: {err}".rstrip(": "), retry_after
        if status != 200:
            return status in RETRY_STATUS, f"HTTP {status} from {url}: {_error_text(raw)}", retry_after
        try:
            return parse_chat_reply(json.loads(raw), time.perf_counter() - start, max_tokens), "", None
        except MalformedReply as err:
            error = f"malformed reply from {url}: {err}"
        except (ValueError, RecursionError) as err:  # not JSON, not UTF-8, nested too deep
            error = f"malformed reply from {url}: not JSON ({type(err).__name__}: {err})"
        return False, error, None  # a server that answers garbage will not answer better next time

    async def _wait_before_retry(self, attempt: int, retry_after: float | None) -> None:
        """Exponential backoff with jitter, or the server's Retry-After, capped at MAX_BACKOFF_S."""
        delay = self.backoff * 2**attempt * (0.5 + random.random())
        await asyncio.sleep(min(MAX_BACKOFF_S, retry_after if retry_after is not None else delay))

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- log-likelihoods (quantdrop.eval.loglik) ---------------------------------------------------
    async def _post_json(self, path: str, body: dict[str, Any]) -> tuple[Any, str | None]:
        """POST to the least busy endpoint, transient failures retried as in `complete`: (JSON, error)."""
        payload, last_error, failed = json.dumps(body).encode(), "", None
        for attempt in range(self.retries + 1):
            url = self._pick(failed)
            self._busy[url] += 1
            retry_after = None
            try:
                async with self._session.post(f"{url}{path}", data=payload, headers=JSON) as resp:
                    status, raw, retry_after = resp.status, await resp.read(), _retry_after(resp.headers)
            except (TimeoutError, aiohttp.ClientError) as err:
                status, raw, last_error = 0, b"", f"{type(err).__name__} from {url}: {err}".rstrip(": ")
            finally:
                self._busy[url] -= 1
            if status == 200:
                try:
                    return json.loads(raw), None
                except ValueError:
                    return None, f"malformed response from {url}{path}"
            if status:
                last_error = f"HTTP {status} from {url}{path}: {_error_text(raw)}"
                if status not in RETRY_STATUS:
                    break
            failed = url
            if attempt < self.retries:
                await self._wait_before_retry(attempt, retry_after)
        return None, last_error

    async def _tokenize(self, text: str) -> list[int]:
        """The server's own tokens of `text`, special tokens added as it does for a prompt (vLLM's and
        llama-server's POST /tokenize take different keys: both are sent)."""
        data, error = await self._post_json(
            "/tokenize", {"model": self.model_name, "prompt": text, "content": text, "add_special": True}
        )
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if error or not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise LoglikUnavailable(error or "POST /tokenize gave no token ids")
        return tokens

    async def check_loglik(self) -> None:
        """Find which prompt log-probability API the endpoints speak: vLLM's `prompt_logprobs` on
        /v1/completions, else llama-server's /completion with `n_probs`; a clear error when neither."""
        try:
            ids = await self._tokenize("Answer: A")
            for api in ("vllm", "llama-server"):
                self._logprob_api = api
                if await self._token_logprob(ids[:-1], ids[-1]) is not None:
                    return
        except LoglikUnavailable as err:
            reason = str(err)
        else:
            reason = "neither vLLM's prompt_logprobs nor llama-server's completion_probabilities came back"
        raise QuantdropError(
            f"endpoint {', '.join(self.endpoints)} gives no prompt log-probabilities ({reason}): --mode loglik "
            "needs vLLM (prompt_logprobs) or llama-server (/completion with n_probs); use --mode generate"
        )

    async def _token_logprob(self, prefix: list[int], token: int) -> tuple[float, bool, bool] | None:
        """log p(token | prefix), whether it is the argmax, whether the value is only an upper bound
        (llama-server: not among the top `N_PROBS`); None when the server sent no log-probs."""
        if self._logprob_api == "vllm":
            body = {
                "model": self.model_name,
                "prompt": [*prefix, token],
                "max_tokens": 1,
                "temperature": 0,
                "prompt_logprobs": 1,
            }
            data, _ = await self._post_json("/v1/completions", body)
            try:
                entry = data["choices"][0]["prompt_logprobs"][-1][str(token)]
                return float(entry["logprob"]), int(entry.get("rank", 0)) == 1, False
            except (TypeError, KeyError, IndexError, ValueError):
                return None
        body = {"prompt": prefix, "n_predict": 1, "n_probs": N_PROBS, "temperature": 0, "cache_prompt": True}
        data, _ = await self._post_json("/completion", body)
        try:
            top = data["completion_probabilities"][0]["top_logprobs"]
            ranked = sorted(((float(e["logprob"]), int(e["id"])) for e in top), reverse=True)
        except (TypeError, KeyError, IndexError, ValueError):
            return None
        found = [lp for lp, tid in ranked if tid == token]
        if found:
            return found[0], ranked[0][1] == token, False
        return ranked[-1][0], False, True  # below the last one the server listed

    async def loglik(self, context: str, continuations: Sequence[str]) -> Completion:
        """Each continuation's log-likelihood after `context`, token by token (lm-eval's loglikelihood
        request; tokens split as its `_encode_pair`)."""
        start = time.perf_counter()
        lls, greedy, bounded = [], [], 0
        try:
            for continuation in continuations:
                ctx, cont = split_pair(context, continuation)
                ctx_ids = await self._tokenize(ctx)
                cont_ids = (await self._tokenize(ctx + cont))[len(ctx_ids) :]
                total, is_greedy = 0.0, True
                for j, token in enumerate(cont_ids):
                    got = await self._token_logprob(ctx_ids + cont_ids[:j], token)
                    if got is None:
                        raise LoglikUnavailable("the server sent no log-probabilities")
                    total, is_greedy, bounded = total + got[0], is_greedy and got[1], bounded + got[2]
                lls.append(total)
                greedy.append(is_greedy)
        except LoglikUnavailable as err:
            return Completion(finish_reason="error", latency_s=time.perf_counter() - start, error=str(err))
        return Completion(text=encode_result(lls, greedy, bounded), latency_s=time.perf_counter() - start)


class LoglikUnavailable(Exception):
    """An endpoint could not give a log-probability (internal: becomes an error or a QuantdropError)."""


class MalformedReply(ValueError):
    """A 200 reply whose JSON lacks a field we read or holds one of the wrong type; says which."""


def text_cap(max_tokens: int) -> int:
    """The most characters a reply of `max_tokens` can honestly hold (MAX_CHARS_PER_TOKEN each);
    more is stored cut to this length and flagged `capped`."""
    return max(MIN_TEXT_CAP, MAX_CHARS_PER_TOKEN * max_tokens)


def parse_chat_reply(data: Any, latency: float, max_tokens: int) -> Completion:
    """A chat completion (OpenAI's shape; llama-cpp-python's too) as a `Completion`, every field we
    read checked: a missing or ill-typed one raises MalformedReply naming it."""
    if not isinstance(data, dict):
        raise MalformedReply(f"the reply is a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedReply(f"'choices' is {_show(choices)}, expected a non-empty list")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise MalformedReply(f"choices[0].message is {_show(message)}, expected an object")
    text = _content(message.get("content"))
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, str):
        raise MalformedReply(f"choices[0].message.reasoning_content is {_show(reasoning)}, expected text")
    if text is None and not reasoning:
        raise MalformedReply("choices[0].message.content is null (no answer)")
    text = text or ""
    if reasoning:  # servers that split the reasoning off (vLLM, DeepSeek's API): put it back in place
        text = f"<think>\n{reasoning}\n</think>\n{text}"
    finish = choice.get("finish_reason")
    if finish is not None and not (isinstance(finish, str) and 0 < len(finish) <= 64):
        raise MalformedReply(f"choices[0].finish_reason is {_show(finish)}, expected a short text")
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise MalformedReply(f"'usage' is {_show(usage)}, expected an object")
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates (JSON "\ud800") cannot be stored
    cap = text_cap(max_tokens)
    return Completion(
        text=text[:cap],
        finish_reason=finish or "stop",
        prompt_tokens=_count(usage, "prompt_tokens"),
        completion_tokens=_count(usage, "completion_tokens"),
        latency_s=latency,
        capped=len(text) > cap,
    )


def _content(content: Any) -> str | None:
    """`message.content`: text, null, or a list of parts (`[{"type": "text", "text": ...}]`, OpenAI's
    content-parts shape) whose text parts are joined; other parts (images, audio) carry no answer."""
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise MalformedReply(f"choices[0].message.content is {_show(content)}, expected text or a list of parts")
    texts = []
    for k, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise MalformedReply(f"choices[0].message.content[{k}] is {_show(part)}, expected a typed part")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise MalformedReply(
                    f"choices[0].message.content[{k}].text is {_show(part.get('text'))}, expected text"
                )
            texts.append(part["text"])
    return "".join(texts)


def _count(usage: dict[str, Any] | None, key: str) -> int:
    """A token count of `usage`: absent or null is 0; otherwise a whole number in [0, 2**53]."""
    value = (usage or {}).get(key)
    if value is None:
        return 0
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**53:
        raise MalformedReply(f"usage.{key} is {_show(value)}, expected a count of tokens (an integer >= 0)")
    return value


def _show(value: Any) -> str:
    """A short rendering of a bad JSON value for an error message."""
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _TooLarge(Exception):
    pass


async def _read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, refused (_TooLarge) past `limit` bytes without reading the rest into memory."""
    if resp.content_length is not None:
        if resp.content_length > limit:
            raise _TooLarge
        return await resp.read()
    chunks, size = [], 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error_text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    try:
        err = json.loads(text).get("error")
        text = str((err.get("message") if isinstance(err, dict) else err) or text)
    except (ValueError, AttributeError):
        pass
    return " ".join(text.split())[:200] or "no message"


def _retry_after(headers: Any) -> float | None:
    try:
        return max(0.0, float(headers["Retry-After"]))
    except (KeyError, ValueError, TypeError):
        return None
