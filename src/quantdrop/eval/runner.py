"""Evaluate a GGUF (in-process) or OpenAI-compatible endpoints on benchmarks, resumably.

`evaluate()` validates everything first (benchmarks, data, endpoints, the store's earlier runs
under this label), then asks every pending (item, sample) pair, sample by sample, with
`concurrency` requests in flight. Each response is committed to the store as it arrives, then
scored off the event loop (scorers may be slow: math-verify, the code sandbox). Running the same
command again resumes: done pairs are skipped, failed requests are asked again.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.eval.results import BenchResult, summarize
from quantdrop.eval.store import Store, StoreWriteError
from quantdrop.eval.types import Benchmark, Completion, Item, SamplingParams, Score, partial_label
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
                protocol={"samples": n_samples, "template": _template_hash(bench), "seeds": SEED_SCHEME,
                          # options that change the item set or the prompts (LiveCodeBench's release and
                          # date window, C-Eval's split) are part of the protocol
                          "options": {k: str(v) for k, v in sorted(bench_options.items())},
                          **({"mode": mode} if mode != "generate" else {})},
                mode=mode,
            )
        )
    return out


def _loglik_benchmark(bench: Benchmark, samples: int | None, options: dict[str, Any]) -> Benchmark:
    """The benchmark scored by log-likelihood (deterministic: one sample per item)."""
    from quantdrop.eval.loglik import LoglikBenchmark

    if samples not in (None, 1):
        raise QuantdropError(f"--mode loglik is deterministic: one sample per item, not --samples {samples}")
    return LoglikBenchmark(bench, norm=str(options.get("loglik_norm", "acc")),  # type: ignore[return-value]
                           style=str(options.get("loglik_style", "letters")))


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
) -> Any:
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
        model, endpoint, bench, label, limit=limit, samples=samples, max_tokens=max_tokens,
        temperature=temperature, top_p=top_p, concurrency=concurrency, retries=retries, timeout=timeout,
        ctx=ctx, threads=threads,
    )
    from quantdrop.eval.loglik import MODES

    if mode not in MODES:
        raise QuantdropError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    options = parse_options(bench_options)
    benches = _load_benchmarks(bench, limit, samples, data_dir, template, options, mode)  # bad names and data fail here
    backend = _make_backend(  # loglik: a context for the prompt alone (default_n_ctx's allowance)
        model, endpoint, model_name, api_key_env, concurrency, timeout, retries, ctx, threads,
        1 if mode == "loglik" else max_tokens,
    )
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(
            _evaluate(
                backend,
                benches,
                label=label,
                store_path=store,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=top_p,
                concurrency=1 if model is not None else concurrency,
                progress=progress,
                served_as=served_as,
            )
        )


def _loop_factory() -> Any:
    """uvloop's event loop when it is installed (less CPU per request: benchmarks/eval_throughput.py),
    else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _evaluate(
    backend: Any,
    benches: list[_Bench],
    *,
    label: str,
    store_path: str,
    max_tokens: int,
    temperature: float,
    top_p: float,
    concurrency: int,
    progress: bool,
    served_as: dict[str, Any] | None = None,
) -> list[BenchResult]:
    try:
        if hasattr(backend, "connect"):
            await backend.connect()  # unreachable endpoints fail here, before any work
        loglik = any(b.mode == "loglik" for b in benches)
        if loglik and not hasattr(backend, "loglik"):
            raise QuantdropError("this backend cannot score log-likelihoods (--mode loglik)")
        if loglik and hasattr(backend, "check_loglik"):
            await backend.check_loglik()  # endpoints without prompt log-probs fail here
        effective = min(max_tokens, backend.context_length) if backend.context_length else max_tokens
        if effective < max_tokens and any(b.mode == "generate" for b in benches):
            _note(f"max tokens capped at {effective} by the backend's context length", progress)
        fingerprint = served_as or json.loads(backend.fingerprint)
        with Store(store_path) as store:
            claims: list[tuple[int, str]] = []
            try:
                for b in benches:  # refuse a conflicting earlier run (or one running now) before loading any model
                    if b.mode == "generate":  # sampling does not touch a log-likelihood
                        b.protocol.update(temperature=temperature, top_p=top_p, max_tokens=effective)
                    b.run_id = store.open_run(
                        label=label,
                        benchmark=b.key,
                        title=b.bench.title,
                        full_size=b.bench.full_size,
                        weight=getattr(b.bench, "weight", None),
                        fingerprint=fingerprint,
                        protocol=b.protocol,
                        loaded_from=str(getattr(b.bench, "loaded_from", "")),
                    )
                    claims.append((b.run_id, store.claim(b.run_id, f"label {label!r} on {b.key}")))
                    store.add_items(b.run_id, [it.id for it in b.items])
                return await _run_benches(backend, store, benches, store_path, label, effective,
                                          temperature, top_p, concurrency, progress)
            finally:
                for run_id, token in claims:
                    store.release(run_id, token)
    finally:
        await backend.aclose()


async def _run_benches(
    backend: Any,
    store: Store,
    benches: list[_Bench],
    store_path: str,
    label: str,
    max_tokens: int,
    temperature: float,
    top_p: float,
    concurrency: int,
    progress: bool,
) -> list[BenchResult]:
    if hasattr(backend, "load"):
        chat = any(b.mode == "generate" for b in benches)  # a chat template is needed only to generate
        await asyncio.get_running_loop().run_in_executor(None, lambda: backend.load(chat=chat))
    results = []
    with ThreadPoolExecutor(SCORE_WORKERS, thread_name_prefix="score") as scorers:
        for b in benches:
            params = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
            await _run_bench(backend, store, b, params, concurrency, scorers, progress)
            results.append(summarize(store, b.run_id))
            if getattr(b.bench, "submission_path", None) and results[-1].complete:
                from quantdrop.eval.benchmarks.ceval import submission_from_store

                path = submission_from_store(store_path, label, b.bench.submission_path)
                _note(f"C-Eval submission file for the official site: {path}", progress)
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
            self.failed.set_exception(StoreWriteError(
                f"{err}; stopped: {self.committed} responses committed by this run are kept"
                + (f", {lost} not stored are asked again on the next run" if lost else "")
            ))

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


async def _run_bench(
    backend: Any,
    store: Store,
    b: _Bench,
    params: SamplingParams,
    concurrency: int,
    scorers: ThreadPoolExecutor,
    progress: bool,
) -> None:
    done = store.done(b.run_id)
    todo: list[tuple[Item, int]] = []  # sample-major: an interrupted run still has whole sample runs
    rescore: list[tuple[Item, int]] = []
    for sample in range(b.samples):
        for item in b.items:
            status = done.get((item.id, sample), "missing")
            if status == "missing":
                todo.append((item, sample))
            elif status is None or status == "error":  # unscored, or its scorer failed last time
                rescore.append((item, sample))
    total = len(b.items) * b.samples
    loop = asyncio.get_running_loop()
    # Responses wait here to be scored; a full queue holds the requests back (backpressure).
    queue: asyncio.Queue[tuple[Item, int, Completion]] = asyncio.Queue(maxsize=SCORE_WORKERS * SCORE_BATCH * 2)
    tally = _Tally()
    committer = _Committer(store, b.run_id)
    label = partial_label(getattr(b.bench, "title", b.key), len(b.items), b.bench.full_size)
    _note(
        f"{label}: {len(b.items)} items x {b.samples} samples from {getattr(b.bench, 'loaded_from', '?')}; "
        f"{total - len(todo)} responses already stored",
        progress,
    )

    async def scorer() -> None:
        while True:  # score what has arrived in one thread hop, store the scores in one commit
            batch = [await queue.get()]
            while len(batch) < SCORE_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                scores = await loop.run_in_executor(scorers, _score_batch, b.bench, batch)
                committer.flush()  # the responses are stored before their scores
                store.put_scores(b.run_id, [(it.id, k, sc) for (it, k, _), sc in zip(batch, scores, strict=True)])
            except StoreWriteError as err:
                committer.fail(err)
            finally:
                for _ in batch:
                    queue.task_done()

    with progress_bar(*(f"{{task.fields[{f}]}}" for f in ("rate", "tps", "errors", "trunc")), enabled=progress,
                      clock="elapsed") as bar:
        task = bar.add_task(label, total=total, completed=total - len(todo), **tally.fields())
        scoring = [asyncio.create_task(scorer()) for _ in range(SCORE_WORKERS)]
        if rescore:  # responses stored by a run killed before it scored them
            stored = {(r.item_id, r.sample): r.completion for r in store.rows(b.run_id)}
            for item, sample in rescore:
                await queue.put((item, sample, stored[(item.id, sample)]))

        pairs: Iterator[tuple[Item, int]] = iter(todo)

        async def worker() -> None:
            for item, sample in pairs:  # workers share one iterator: each pair is asked once
                seed = derive_seed(b.key, item.id, sample)
                if b.mode == "loglik":
                    c = await backend.loglik(*b.bench.request(item))  # type: ignore[attr-defined]
                else:
                    c = await backend.complete(
                        b.bench.messages(item),
                        SamplingParams(
                            temperature=params.temperature,
                            top_p=params.top_p,
                            max_tokens=params.max_tokens,
                            seed=seed,
                        ),
                    )
                committer.add(item.id, sample, seed, c)  # committed at the end of this loop turn
                if tally.add(c):
                    bar.update(task, completed=total - len(todo) + tally.done, **tally.fields())
                if c.error is None:
                    await queue.put((item, sample, c))

        try:
            await committer.guard(asyncio.gather(*(worker() for _ in range(min(concurrency, max(len(todo), 1))))))
            await committer.guard(queue.join())
        finally:
            committer.flush()  # what arrived before an interrupt or a failure is kept
            for t in scoring:
                t.cancel()
            results = await asyncio.gather(*scoring, return_exceptions=True)
        bar.update(task, completed=total - len(todo) + tally.done, **tally.fields())
    if committer.failed.done():
        committer.failed.result()  # the last flush failed
    for r in results:  # a scorer task that died (not cancelled) had a real failure: surface it
        if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError):
            raise r
