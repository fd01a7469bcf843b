"""Evaluate a GGUF (in-process) or OpenAI-compatible endpoints on benchmarks, resumably.

`evaluate()` validates everything first (benchmarks, data, endpoints, the store's earlier runs
under this label), then asks every pending (item, sample) pair, sample by sample, with
`concurrency` requests in flight. Each response is committed to the store as it arrives, then
scored off the event loop (scorers may be slow: math-verify, the code sandbox). Running the same
command again resumes: done pairs are skipped, failed requests are asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.eval.results import BenchResult, summarize
from quantdrop.eval.store import Store, StoreWriteError
from quantdrop.eval.types import Backend, Benchmark, Completion, Item, SamplingParams, Score, partial_label
from quantdrop.util import comma_list, progress_bar

SEED_SCHEME = "sha256(benchmark/item/sample)[:4]"  # part of the protocol: same seeds for every variant
SCORE_WORKERS = min(4, os.cpu_count() or 1)
SCORE_BATCH = 16  # responses scored per thread hop
PROGRESS_EVERY_S = 0.1


def derive_seed(benchmark: str, item_id: str, sample: int) -> int:
    """The sampling seed of one (item, sample): the same for every model variant."""
    return int.from_bytes(hashlib.sha256(f"{benchmark}/{item_id}/{sample}".encode()).digest()[:4], "big")


def get_benchmark(name: str, **options: Any) -> Benchmark:
    """A registered benchmark by CLI name, or any `package.module:factory` (your own benchmark)."""
    if ":" in name:
        module_name, _, factory = name.partition(":")
        try:
            make = getattr(importlib.import_module(module_name), factory)
        except (ImportError, AttributeError, ValueError) as err:
            raise QuantdropError(f"cannot load benchmark {name!r}: {err}") from None
        if not callable(make):
            raise QuantdropError(f"--bench {name}: {factory} is not a benchmark factory (not callable)")
        try:
            return _check_benchmark(name, make(**options))
        except QuantdropError:
            raise
        except Exception as err:  # e.g. os:system, which takes no keyword options
            raise QuantdropError(
                f"--bench {name}: {module_name}.{factory}(**options) is not a benchmark factory "
                f"({type(err).__name__}: {err})"
            ) from None
    try:
        from quantdrop.eval.benchmarks import get_benchmark as registry
    except ImportError as err:
        raise QuantdropError(f"the benchmark registry is not available ({err})") from None
    return registry(name, **options)


BENCH_FIELDS = {"name": str, "title": str, "full_size": int, "default_samples": int}


def _check_benchmark(name: str, bench: Any) -> Benchmark:
    """What a factory returned, if it has quantdrop.eval.types.Benchmark's fields and methods."""
    for attr, kind in BENCH_FIELDS.items():
        if not isinstance(getattr(bench, attr, None), kind):
            raise QuantdropError(
                f"--bench {name}: the factory returned a {type(bench).__name__}, not a benchmark "
                f"({attr} is not a {kind.__name__}; see quantdrop.eval.types.Benchmark)"
            )
    for method in ("load", "messages", "score"):
        if not callable(getattr(bench, method, None)):
            raise QuantdropError(f"--bench {name}: the benchmark has no {method}() method")
    return bench


@dataclass
class _Bench:
    """One benchmark of this evaluation, prepared: its items, run id and protocol."""

    key: str
    bench: Benchmark
    items: list[Item]
    samples: int
    protocol: dict[str, Any]
    run_id: int = 0
    mode: str = "generate"  # or "loglik" (quantdrop.eval.loglik): a LoglikBenchmark, one sample


def _template_hash(bench: Benchmark) -> str | None:
    template = getattr(bench, "template", None)
    if template is None:
        return None
    text = template if isinstance(template, str) else json.dumps(template, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check_options(model: str | None, endpoint: list[str] | None, bench: list[str], label: str, **flags: Any) -> None:
    """Every option of `evaluate`, checked before anything is loaded, asked or stored."""
    if (model is None) == (not endpoint):
        raise QuantdropError("give either a GGUF model path or --endpoint URL (not both, not neither)")
    if not bench:
        raise QuantdropError("no benchmark given (--bench math500,aime2024,...)")
    if not label or not label.strip():
        raise QuantdropError("--label must name the variant (e.g. Q4_K_M)")
    cpus = os.cpu_count() or 1
    for key, low, high in (
        ("limit", 1, None),
        ("samples", 1, None),
        ("max_tokens", 1, None),
        ("concurrency", 1, None),
        ("retries", 0, None),
        ("ctx", 1, None),
        ("threads", 1, cpus),
    ):
        value = flags.get(key)
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool) or not isinstance(value, int):
            raise QuantdropError(f"{flag} must be a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high} (the CPUs here)" if high is not None else f"at least {low}"
            raise QuantdropError(f"{flag} must be {bound}, got {value}")
    _check_real("--temperature", flags.get("temperature"), lambda x: x >= 0, ">= 0")
    _check_real("--top-p", flags.get("top_p"), lambda x: 0 < x <= 1, "in (0, 1]")
    _check_real("--timeout", flags.get("timeout"), lambda x: x > 0, "seconds > 0 (0 would wait forever)")


def _check_real(flag: str, value: Any, ok: Any, expected: str) -> None:
    """A finite real number for which `ok` holds (NaN and infinities never are)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not ok(value):
        raise QuantdropError(f"{flag} must be a finite number {expected}, got {value!r}")


def parse_options(pairs: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """["split=test", "release=v5"] -> {"split": "test", "release": "v5"} (a dict passes through)."""
    if pairs is None or isinstance(pairs, dict):
        return dict(pairs or {})
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise QuantdropError(f"--bench-options takes KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def _load_benchmarks(
    names: list[str],
    limit: int | None,
    samples: int | None,
    data_dir: str | None,
    template: str | None,
    bench_options: dict[str, Any],
    mode: str = "generate",
) -> list[_Bench]:
    out = []
    options: dict[str, Any] = {**bench_options, "data_dir": Path(data_dir) if data_dir else None}
    if template is not None:
        options["template"] = template
    for name in dict.fromkeys(n.strip() for n in names if n.strip()):
        bench = get_benchmark(name, **options)
        if mode == "loglik":
            bench = _loglik_benchmark(bench, samples, bench_options)
        items = bench.load(options["data_dir"])
        if not items:
            raise QuantdropError(f"{name}: no items found ({getattr(bench, 'loaded_from', 'no source')})")
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            raise QuantdropError(f"{name}: item ids are not unique; results could not be keyed")
        n_samples = samples or bench.default_samples
        out.append(
            _Bench(
                key=bench.name if ":" not in name else name,
                bench=bench,
                items=items[:limit] if limit else items,
                samples=n_samples,
                protocol={
                    "samples": n_samples,
                    "template": _template_hash(bench),
                    "seeds": SEED_SCHEME,
                    # options that change the item set or the prompts (LiveCodeBench's release and
                    # date window, C-Eval's split) are part of the protocol
                    "options": {k: str(v) for k, v in sorted(bench_options.items())},
                    **({"mode": mode} if mode != "generate" else {}),
                },
                mode=mode,
            )
        )
    return out


def _loglik_benchmark(bench: Benchmark, samples: int | None, options: dict[str, Any]) -> Benchmark:
    """The benchmark scored by log-likelihood (deterministic: one sample per item)."""
    from quantdrop.eval.loglik import LoglikBenchmark

    if samples not in (None, 1):
        raise QuantdropError(f"--mode loglik is deterministic: one sample per item, not --samples {samples}")
    return LoglikBenchmark(
        bench,
        norm=str(options.get("loglik_norm", "acc")),  # type: ignore[return-value]
        style=str(options.get("loglik_style", "letters")),
    )


def _make_backend(
    model: str | None,
    endpoint: list[str] | None,
    model_name: str | None,
    api_key_env: str | None,
    concurrency: int,
    timeout: float,
    retries: int,
    n_ctx: int | None,
    threads: int | None,
    max_tokens: int,
) -> Backend:
    if model is not None:
        from quantdrop.eval.backends.llama_cpp import LlamaCppBackend

        return LlamaCppBackend(model, n_ctx=n_ctx, threads=threads, max_tokens=max_tokens)
    from quantdrop.eval.backends.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend.from_options(
        endpoint or [],
        model_name=model_name,
        api_key_env=api_key_env,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
    )


def evaluate(
    model: str | None = None,
    *,
    endpoint: list[str] | None = None,
    model_name: str | None = None,
    api_key_env: str | None = None,
    bench: list[str],
    label: str,
    limit: int | None = None,
    samples: int | None = None,
    store: str = "quantdrop-eval.sqlite",
    max_tokens: int = 32768,
    temperature: float = 0.6,
    top_p: float = 0.95,
    concurrency: int = 8,
    data_dir: str | None = None,
    ctx: int | None = None,
    threads: int | None = None,
    template: str | None = None,
    bench_options: list[str] | dict[str, Any] | None = None,
    timeout: float = 1800.0,
    retries: int = 4,
    progress: bool = True,
    mode: str = "generate",
    served_as: dict[str, Any] | None = None,
) -> list[BenchResult]:
    """Evaluate one model variant (`label`) on benchmarks; returns each benchmark's result so far.

    `model` is a GGUF path (in-process llama.cpp) or None with `endpoint` URLs (OpenAI-compatible).
    `samples` defaults to each benchmark's paper setting; `max_tokens` is capped by the backend's
    context; `timeout` and `retries` bound each HTTP request. `bench_options` go to every benchmark's
    `create()` (e.g. {"split": "test"} for C-Eval's submission run; benchmarks ignore unknown ones).
    `mode="loglik"` scores the multiple-choice benchmarks by log-likelihood as lm-evaluation-harness does
    (quantdrop.eval.loglik; `loglik_norm=acc|acc_norm|acc_bytes` in `bench_options`), without generating.
    `served_as`: the model an engine started by the study serves, recorded instead of the engine's
    URL (a new port each start), so a restarted engine resumes the same run.
    """
    if isinstance(bench, str):
        bench = comma_list(bench)
    _check_options(
        model,
        endpoint,
        bench,
        label,
        limit=limit,
        samples=samples,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        ctx=ctx,
        threads=threads,
    )
    _check_mode(mode)
    options = parse_options(bench_options)
    benches = _load_benchmarks(bench, limit, samples, data_dir, template, options, mode)  # bad names and data fail here
    # loglik: a context for the prompt alone (default_n_ctx's allowance)
    backend_tokens = 1 if mode == "loglik" else max_tokens
    backend = _make_backend(
        model, endpoint, model_name, api_key_env, concurrency, timeout, retries, ctx, threads, backend_tokens
    )
    sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
    in_flight = 1 if model is not None else concurrency  # in-process: one request at a time
    settings = _Settings(label, store, sampling, concurrency=in_flight, progress=progress, served_as=served_as)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_evaluate(backend, benches, settings))


def _check_mode(mode: str) -> None:
    from quantdrop.eval.loglik import MODES

    if mode not in MODES:
        raise QuantdropError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")


@dataclass(frozen=True)
class _Settings:
    """What one evaluation asks with, and where it stores the answers."""

    label: str
    store_path: str
    sampling: SamplingParams  # the seed is derived per (item, sample)
    concurrency: int
    progress: bool
    served_as: dict[str, Any] | None = None  # the store's fingerprint of a study-served variant


def _loop_factory() -> Any:
    """uvloop's event loop when it is installed (less CPU per request: benchmarks/eval_throughput.py),
    else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _evaluate(backend: Backend, benches: list[_Bench], settings: _Settings) -> list[BenchResult]:
    async with backend:  # unreachable endpoints fail here, before any work; closed however this ends
        await _check_loglik(backend, benches)
        max_tokens = _effective_max_tokens(backend, benches, settings)
        fingerprint = settings.served_as or backend.fingerprint.to_dict()
        with Store(settings.store_path) as store, _claimed(store, benches, settings, fingerprint, max_tokens):
            return await _run_benches(backend, store, benches, settings, max_tokens)


async def _check_loglik(backend: Backend, benches: list[_Bench]) -> None:
    if not any(b.mode == "loglik" for b in benches):
        return
    if not hasattr(backend, "loglik"):
        raise QuantdropError("this backend cannot score log-likelihoods (--mode loglik)")
    if hasattr(backend, "check_loglik"):
        await backend.check_loglik()  # endpoints without prompt log-probs fail here


def _effective_max_tokens(backend: Backend, benches: list[_Bench], settings: _Settings) -> int:
    """max_tokens, capped by the backend's context length (said when it matters)."""
    asked = settings.sampling.max_tokens
    effective = min(asked, backend.context_length) if backend.context_length else asked
    if effective < asked and any(b.mode == "generate" for b in benches):
        _note(f"max tokens capped at {effective} by the backend's context length", settings.progress)
    return effective


@contextlib.contextmanager
def _claimed(
    store: Store, benches: list[_Bench], settings: _Settings, fingerprint: dict[str, Any], max_tokens: int
) -> Iterator[None]:
    """Each benchmark's run opened and claimed (a conflicting earlier run, or one running now, is refused
    before any model is loaded); the claims are released on exit."""
    claims: list[tuple[int, str]] = []
    try:
        for b in benches:
            if b.mode == "generate":  # sampling does not touch a log-likelihood
                b.protocol.update(
                    temperature=settings.sampling.temperature, top_p=settings.sampling.top_p, max_tokens=max_tokens
                )
            b.run_id = store.open_run(
                label=settings.label,
                benchmark=b.key,
                title=b.bench.title,
                full_size=b.bench.full_size,
                weight=getattr(b.bench, "weight", None),
                fingerprint=fingerprint,
                protocol=b.protocol,
                loaded_from=str(getattr(b.bench, "loaded_from", "")),
            )
            claims.append((b.run_id, store.claim(b.run_id, f"label {settings.label!r} on {b.key}")))
            store.add_items(b.run_id, [it.id for it in b.items])
        yield
    finally:
        for run_id, token in claims:
            store.release(run_id, token)


async def _run_benches(
    backend: Backend, store: Store, benches: list[_Bench], settings: _Settings, max_tokens: int
) -> list[BenchResult]:
    await backend.prepare(chat=any(b.mode == "generate" for b in benches))  # a chat template only to generate
    params = replace(settings.sampling, max_tokens=max_tokens)
    results = []
    with ThreadPoolExecutor(SCORE_WORKERS, thread_name_prefix="score") as scorers:
        for b in benches:
            await _run_bench(backend, store, b, params, settings.concurrency, scorers, settings.progress)
            results.append(summarize(store, b.run_id))
            after_run = getattr(b.bench, "after_run", None)  # e.g. C-Eval's submission file
            if after_run is not None and (said := after_run(settings.store_path, settings.label, results[-1])):
                _note(said, settings.progress)
    return results


def _note(text: str, progress: bool) -> None:
    if progress:
        print(text, file=sys.stderr)


class _Tally:
    """Live counts for the progress bar."""

    def __init__(self) -> None:
        self.done = self.tokens = self.errors = self.truncated = 0
        self.start = self.shown = time.perf_counter()

    def add(self, c: Completion) -> bool:
        """Count a response; True when the bar is due a refresh (at most every PROGRESS_EVERY_S)."""
        self.done += 1
        self.tokens += c.completion_tokens
        self.errors += c.error is not None
        self.truncated += c.truncated
        now = time.perf_counter()
        if now - self.shown < PROGRESS_EVERY_S:
            return False
        self.shown = now
        return True

    def fields(self) -> dict[str, str]:
        dt = max(time.perf_counter() - self.start, 1e-9)
        return {
            "rate": f"{self.done / dt:.1f} it/s",
            "tps": f"{self.tokens / dt:.0f} tok/s",
            "errors": f"{self.errors} err",
            "trunc": f"{self.truncated} trunc",
        }


class _Committer:
    """Group commit: the responses that arrive in one turn of the event loop are committed together
    at the end of that turn, before any of them is scored or anything else is asked.

    A commit that fails (disk full, a locked or broken store) cannot raise from the loop's callback:
    it is kept in `failed`, and `guard` stops the run with it; everything committed before stays."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store, self.run_id = store, run_id
        self.pending: list[tuple[str, int, int, Completion]] = []
        self.committed = 0
        self.failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def add(self, item_id: str, sample: int, seed: int, c: Completion) -> None:
        if self.failed.done():
            return  # the run is stopping; this answer is asked again next time
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append((item_id, sample, seed, c))

    def flush(self) -> None:
        if not self.pending or self.failed.done():
            return
        rows, self.pending = self.pending, []
        try:
            self.store.put_responses(self.run_id, rows)
        except StoreWriteError as err:
            self.fail(err, lost=len(rows))
        else:
            self.committed += len(rows)

    def fail(self, err: StoreWriteError, lost: int = 0) -> None:
        if not self.failed.done():
            self.failed.set_exception(
                StoreWriteError(
                    f"{err}; stopped: {self.committed} responses committed by this run are kept"
                    + (f", {lost} not stored are asked again on the next run" if lost else "")
                )
            )

    async def guard(self, aw: Any) -> None:
        """Await `aw` unless a commit fails first: then cancel it and raise that failure."""
        task = asyncio.ensure_future(aw)
        try:
            await asyncio.wait({task, self.failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # a failed commit, or this run cancelled (Ctrl-C): stop the work under us too
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.failed.done():
            self.failed.result()
        task.result()


def _score_batch(bench: Benchmark, batch: list[tuple[Item, int, Completion]]) -> list[Score]:
    """Score in a worker thread; a scorer bug must not kill the run, it shows as an error."""
    out = []
    for item, _, c in batch:
        try:
            out.append(bench.score(item, c))
        except Exception as err:
            out.append(Score(0.0, "error", detail=f"scorer failed: {type(err).__name__}: {err}"))
    return out


def _pending(store: Store, b: _Bench) -> tuple[list[tuple[Item, int]], list[tuple[Item, int]]]:
    """(pairs to ask, pairs stored but unscored or whose scorer failed), sample-major: an interrupted run
    still has whole sample runs."""
    done = store.done(b.run_id)
    todo: list[tuple[Item, int]] = []
    rescore: list[tuple[Item, int]] = []
    for sample in range(b.samples):
        for item in b.items:
            status = done.get((item.id, sample), "missing")
            if status == "missing":
                todo.append((item, sample))
            elif status is None or status == "error":  # unscored, or its scorer failed last time
                rescore.append((item, sample))
    return todo, rescore


async def _run_bench(
    backend: Backend,
    store: Store,
    b: _Bench,
    params: SamplingParams,
    concurrency: int,
    scorers: ThreadPoolExecutor,
    progress: bool,
) -> None:
    todo, rescore = _pending(store, b)
    total = len(b.items) * b.samples
    label = partial_label(getattr(b.bench, "title", b.key), len(b.items), b.bench.full_size)
    _note(
        f"{label}: {len(b.items)} items x {b.samples} samples from {getattr(b.bench, 'loaded_from', '?')}; "
        f"{total - len(todo)} responses already stored",
        progress,
    )
    with progress_bar(
        *(f"{{task.fields[{f}]}}" for f in ("rate", "tps", "errors", "trunc")), enabled=progress, clock="elapsed"
    ) as bar:
        run = _BenchRun(backend, store, b, params, scorers, bar, label, total, total - len(todo))
        await run.run(todo, rescore, concurrency)


class _BenchRun:
    """One benchmark's pending pairs: workers ask them and commit each response as it arrives, scorer
    tasks score what has arrived off the event loop. A full score queue holds the requests back."""

    def __init__(
        self,
        backend: Backend,
        store: Store,
        b: _Bench,
        params: SamplingParams,
        scorers: ThreadPoolExecutor,
        bar: Any,
        label: str,
        total: int,
        already: int,
    ) -> None:
        self.backend, self.store, self.b, self.params, self.scorers = backend, store, b, params, scorers
        self.queue: asyncio.Queue[tuple[Item, int, Completion]] = asyncio.Queue(maxsize=SCORE_WORKERS * SCORE_BATCH * 2)
        self.tally = _Tally()
        self.committer = _Committer(store, b.run_id)
        self.bar, self.already = bar, already
        self.task = bar.add_task(label, total=total, completed=already, **self.tally.fields())

    def show(self) -> None:
        self.bar.update(self.task, completed=self.already + self.tally.done, **self.tally.fields())

    async def run(self, todo: list[tuple[Item, int]], rescore: list[tuple[Item, int]], concurrency: int) -> None:
        scoring = [asyncio.create_task(self.score_loop()) for _ in range(SCORE_WORKERS)]
        try:
            await self.requeue(rescore)
            pairs: Iterator[tuple[Item, int]] = iter(todo)  # workers share one iterator: each pair asked once
            workers = (self.ask_loop(pairs) for _ in range(min(concurrency, max(len(todo), 1))))
            await self.committer.guard(asyncio.gather(*workers))
            await self.committer.guard(self.queue.join())
        finally:
            self.committer.flush()  # what arrived before an interrupt or a failure is kept
            for t in scoring:
                t.cancel()
            results = await asyncio.gather(*scoring, return_exceptions=True)
        self.show()
        if self.committer.failed.done():
            self.committer.failed.result()  # the last flush failed
        for r in results:  # a scorer task that died (not cancelled) had a real failure: surface it
            if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError):
                raise r

    async def requeue(self, rescore: list[tuple[Item, int]]) -> None:
        """Responses stored by a run killed before it scored them go to the scorers."""
        if rescore:
            stored = {(r.item_id, r.sample): r.completion for r in self.store.rows(self.b.run_id)}
            for item, sample in rescore:
                await self.queue.put((item, sample, stored[(item.id, sample)]))

    async def ask_loop(self, pairs: Iterator[tuple[Item, int]]) -> None:
        for item, sample in pairs:
            seed = derive_seed(self.b.key, item.id, sample)
            if self.b.mode == "loglik":
                c = await self.backend.loglik(*self.b.bench.request(item))  # type: ignore[attr-defined]
            else:
                c = await self.backend.complete(self.b.bench.messages(item), replace(self.params, seed=seed))
            self.committer.add(item.id, sample, seed, c)  # committed at the end of this loop turn
            if self.tally.add(c):
                self.show()
            if c.error is None:
                await self.queue.put((item, sample, c))

    async def score_loop(self) -> None:
        """Score what has arrived in one thread hop, store the scores in one commit."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while len(batch) < SCORE_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                scores = await loop.run_in_executor(self.scorers, _score_batch, self.b.bench, batch)
                self.committer.flush()  # the responses are stored before their scores
                self.store.put_scores(
                    self.b.run_id, [(it.id, k, sc) for (it, k, _), sc in zip(batch, scores, strict=True)]
                )
            except StoreWriteError as err:
                self.committer.fail(err)
            finally:
                for _ in batch:
                    self.queue.task_done()
