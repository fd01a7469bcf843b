"""`quantdrop study`: quantize, plan, measure and evaluate every variant, then report, resumably.

With no arguments it runs the embedded default: the reference model (SmolLM2-135M-Instruct, rebuilt
as F16 from the 4-bit file its package ships), six recipes, the planner, the quality proxies, a
small sample of the bundled benchmarks and each variant's speed. The study is a pipeline of typed
steps (quantize, plan, proxies, evaluate, speed, report) run by a small driver; each step keeps its
results on disk as it goes (quantized files written atomically with a stamp of what they were made
from, proxy log-probs and scores cached, every model answer committed to a SQLite store, speed cached
per file and machine), so running the same command again after Ctrl-C or `kill -9` only does what
is left. With `--serve CMD` each variant is served by an engine that quantdrop starts and stops
(quantdrop.serve), evaluated and timed through it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.util import atomic_write, comma_list, name_list

_EMPTY = "an empty list where names were expected"

DEFAULT_RECIPES = ("Q8_0", "Q6_K", "Q4_K_M", "Q3_K_M", "DQ3_K_M", "Q2_K")
DEFAULT_BENCH = ("mmlu", "math500", "aime2024", "humaneval")
DEFAULT_DEVICES = "8xH100-80G,8x910B-64G"
BASELINE = "reference"
CODE_BENCHMARKS = {"humaneval", "mbpp", "mbppplus", "livecodebench"}
TUNED_PREFIX = "tuned:"
# the embedded default's small sample: a few items, one sample each, short answers (2 CPU cores)
DEMO_LIMIT, DEMO_SAMPLES, DEMO_MAX_TOKENS, DEMO_PROXY_CHUNKS = 3, 1, 256, 4
# The demo's evidence: MMLU scored by log-likelihood (deterministic, one forward pass per item) on enough
# items for agreement and power to say something, next to the small generative sample; in lm-eval's
# mmlu_continuation form (the answer texts are the choices): a 135M model answers "A" to 98 of 100
# questions in the letters form, which no quantization can change (docs/BENCHMARKS.md).
DEMO_LOGLIK, DEMO_LOGLIK_LIMIT = ("mmlu",), 150
DEMO_BENCH = ("math500", "aime2024", "humaneval")  # MMLU is the loglik one: scored once, on 150 items
DEMO_LOGLIK_OPTIONS = {"loglik_style": "continuation", "loglik_norm": "acc_norm"}


# ----------------------------------------------------------------------------- option groups


@dataclass(frozen=True)
class EvalProtocol:
    """How every variant is evaluated (the same for all, so their answers compare item by item)."""

    bench: tuple[str, ...] = DEFAULT_BENCH
    limit: int | None = None
    samples: int | None = None
    max_tokens: int = 32768
    concurrency: int = 8
    data_dir: str | None = None
    model_name: str | None = None
    api_key_env: str | None = None
    loglik: tuple[str, ...] = ()  # multiple-choice benchmarks also scored by log-likelihood
    loglik_limit: int | None = None
    loglik_options: dict[str, Any] = field(default_factory=dict)  # loglik_style=, loglik_norm=

    @property
    def evaluates(self) -> bool:
        return bool(self.bench or self.loglik)


@dataclass(frozen=True)
class ProxyOptions:
    chunks: int | None = None
    ctx: int = 512


@dataclass(frozen=True)
class SpeedSettings:
    """Each variant's throughput (quantdrop.speed): in-process, or through its engine when served."""

    enabled: bool = True
    prompt: int = 512
    gen: int = 128
    repeat: int = 3


@dataclass(frozen=True)
class ServeOptions:
    """Engines quantdrop starts per variant (quantdrop.serve); `command` None: in-process."""

    command: str | None = None
    slots: int = 1
    gpus: str | None = None
    ready_timeout_s: float = 600.0


@dataclass
class StudyResult:
    out: Path
    report: Path
    variants: dict[str, Path | None]  # label -> local GGUF (None: evaluated through an endpoint)
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall seconds this run
    summary: str = ""
    failed: dict[str, str] = field(default_factory=dict)  # label -> why its evaluation did not finish


@dataclass
class StudyState:
    """What the steps share: the validated inputs, then each step's results."""

    source: Path
    local: bool  # the source is a GGUF here (else a config.json: every variant is an endpoint)
    note: str
    demo: bool
    recipes: list[Any]
    served: dict[str, list[str]]  # label -> endpoint URLs given by the user
    out: Path
    devices: str | None
    ctx: int
    threads: int | None
    progress: bool
    protocol: EvalProtocol
    proxy: ProxyOptions
    speed: SpeedSettings
    serve: ServeOptions
    variants: dict[str, Path | None] = field(default_factory=dict)
    plan: Any = None
    proxies: dict[str, Any] = field(default_factory=dict)
    speeds: dict[str, Any] = field(default_factory=dict)  # label -> speed.SpeedResult
    failed: dict[str, str] = field(default_factory=dict)
    report: Path | None = None
    summary: str = ""
    prefer: str = "quality"  # the recommendation's weighing: quality (the paper), speed or balanced

    @property
    def store(self) -> Path:
        return self.out / "eval.sqlite"

    def say(self, text: str) -> None:
        if self.progress:
            print(text, file=sys.stderr, flush=True)

    def serve_ctx(self, model: Path) -> int:
        """An engine's context: the one the in-process backend would use for MODEL (its training context,
        the longest answer plus the prompt allowance, the CPU cap), so served and in-process answers agree."""
        from quantdrop.eval.backends.llama_cpp import default_n_ctx
        from quantdrop.inventory import read_gguf_inventory

        return default_n_ctx(read_gguf_inventory(model).hparams.n_ctx_train, self.protocol.max_tokens)

    def evaluated(self) -> list[str]:
        """Labels with answers: a local file, an engine of ours, or an endpoint given by the user."""
        return [lab for lab, path in self.variants.items() if path is not None or lab in self.served]


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[StudyState], None]


def run_steps(state: StudyState, steps: tuple[Step, ...]) -> dict[str, float]:
    """The driver: each step in order, timed; a step resumes from what it left on disk."""
    seconds: dict[str, float] = {}
    for step in steps:
        start = time.perf_counter()
        step.run(state)
        seconds[step.name] = time.perf_counter() - start
    return seconds


# ---------------------------------------------------------------------------------- validation


def _endpoints(endpoint: list[str] | None) -> dict[str, list[str]]:
    """`LABEL=URL` (repeatable; several URLs for one label spread its requests) -> {label: [urls]}."""
    from quantdrop.eval.backends.openai_compat import parse_labelled_endpoint

    out: dict[str, list[str]] = {}
    for spec in endpoint or []:
        label, url = parse_labelled_endpoint(spec)  # LABEL: a recipe of the study, or BASELINE
        out.setdefault(label, []).append(url)
    return out


def _tuned_recipe(spec: str, source: Path, out: Path, ctx: int, progress: bool) -> Path:
    """`tuned:BUDGET` -> a recipe file made by quantdrop.tune for that budget (cached in out/recipes)."""
    from quantdrop.tune.command import tune

    budget = spec[len(TUNED_PREFIX) :].strip()
    if not budget:
        raise QuantdropError(f"recipe {spec!r}: expected tuned:BUDGET (e.g. tuned:8x910B-64G or tuned:3.6bpw)")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in budget)
    path = out / "recipes" / f"tuned-{safe}.toml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tune(source, budget, ctx=ctx, out=path, progress=progress)
    return path


def _load_recipes(names: list[str], source: Path, out: Path, ctx: int, progress: bool) -> list[Any]:
    from quantdrop.recipes import load_recipe

    recipes = []
    for name in names:
        tuned = name.lower().startswith(TUNED_PREFIX)
        recipes.append(load_recipe(_tuned_recipe(name, source, out, ctx, progress) if tuned else name))
    labels = [r.name for r in recipes]
    if len(set(labels)) != len(labels):
        raise QuantdropError(f"a recipe is listed twice: {', '.join(labels)}")
    return recipes


def _check_served(state: StudyState) -> None:
    labels = [r.name for r in state.recipes]
    unknown = set(state.served) - {*labels, BASELINE}
    if unknown:
        raise QuantdropError(
            f"--endpoint for {', '.join(sorted(unknown))}: not a recipe of this study "
            f"(recipes: {', '.join(labels)}; or {BASELINE!r})"
        )
    if not state.local and state.protocol.evaluates:
        missing = [lab for lab in [BASELINE, *labels] if lab not in state.served]
        if missing:
            raise QuantdropError(
                f"{state.source} is not a GGUF file, so every variant needs an --endpoint; "
                f"missing: {', '.join(missing)}"
            )
    if state.serve.command:
        from quantdrop.serve import check_template, split_gpus

        check_template(state.serve.command)
        split_gpus(state.serve.gpus, state.serve.slots)


def _check_out_dir(out: Path) -> None:
    """--out is a folder we can write in, or can be created: checked before any work."""
    if out.exists() and not out.is_dir():
        raise QuantdropError(f"--out {out} is a file, not a folder")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise QuantdropError(f"--out {out}: {existing} is not a writable folder")


def _reference_note(source: Path, local: bool) -> str:
    """What a reference rebuilt by `quantdrop demo-model` (or scripts/real_model.sh) says of itself."""
    if not local:
        return ""
    from quantdrop.ggufio import read_header

    return str(read_header(source).fields.get("quantdrop.reference_note", ""))


# --------------------------------------------------------------------------------------- steps


def _recipe_fingerprint(recipe: Any) -> str:
    rules = [(r.pattern, r.type.name, r.layers.describe() if r.layers else "") for r in recipe.rules]
    blob = json.dumps([recipe.name, recipe.default.name, recipe.base, recipe.file_type, rules, recipe.version])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _quantize_cached(source: Path, recipe: Any, models: Path, threads: int | None, progress: bool) -> Path:
    """Quantize once per (source, recipe): a sidecar records what the file was made from."""
    from quantdrop.fingerprint import file_fingerprint
    from quantdrop.quantize import quantize

    out = models / f"{recipe.name}.gguf"
    stamp = out.with_suffix(".json")
    key = {"source": file_fingerprint(source), "recipe": _recipe_fingerprint(recipe)}
    if out.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == key:
                return out
        except ValueError:
            pass
    stamp.unlink(missing_ok=True)
    quantize(source, out, recipe=recipe, threads=threads, force=True, progress=progress)
    atomic_write(stamp, json.dumps(key))  # a kill here leaves .NAME.PID.tmp: swept by the next quantize
    return out


def quantize_step(state: StudyState) -> None:
    state.variants[BASELINE] = None if BASELINE in state.served else (state.source if state.local else None)
    for r in state.recipes:
        if r.name in state.served or not state.local:
            state.variants[r.name] = None
            continue
        state.say(f"quantize: {r.name}")
        state.variants[r.name] = _quantize_cached(state.source, r, state.out / "models", state.threads, state.progress)


def plan_step(state: StudyState) -> None:
    """Sizes, memory and device fit from the source's inventory (no weights read)."""
    from quantdrop.plan import plan

    names = [r.name if r.origin == "builtin" else r.origin for r in state.recipes]
    state.plan = plan(state.source, recipes=names, ctx=state.ctx, devices=state.devices)


def proxies_step(state: StudyState) -> None:
    """Perplexity and KL divergence of every local variant against the reference."""
    local = {lab: p for lab, p in state.variants.items() if p is not None and lab != BASELINE}
    if not (state.local and local):
        return
    from quantdrop.proxies import proxies

    state.say("proxies: perplexity and KL divergence against the reference")
    results = proxies(
        state.source,
        list(local.values()),
        chunks=state.proxy.chunks,
        ctx=state.proxy.ctx,
        cache_dir=state.out / "proxies",
        progress=state.progress,
    )
    state.proxies = dict(zip(local, results, strict=True))


def _evaluate(
    state: StudyState,
    label: str,
    model: Path | None,
    endpoint: list[str] | None,
    served_as: dict[str, Any] | None = None,
) -> None:
    """One variant: the generative benchmarks, then the log-likelihood ones (one store, one label)."""
    from quantdrop.eval.runner import evaluate

    p = state.protocol
    common = {
        "endpoint": endpoint,
        "model_name": p.model_name,
        "api_key_env": p.api_key_env,
        "label": label,
        "store": str(state.store),
        "concurrency": p.concurrency,
        "data_dir": p.data_dir,
        "threads": state.threads,
        "progress": state.progress,
        "served_as": served_as,
    }
    path = str(model) if model is not None else None
    if p.bench:
        evaluate(path, bench=list(p.bench), limit=p.limit, samples=p.samples, max_tokens=p.max_tokens, **common)
    if p.loglik:
        state.say(f"evaluate by log-likelihood: {label}")
        evaluate(
            path, bench=list(p.loglik), limit=p.loglik_limit, mode="loglik", bench_options=p.loglik_options, **common
        )


def evaluate_step(state: StudyState) -> None:
    """Every variant on the benchmarks, in-process or through its endpoint (or engine: serve_step)."""
    if not state.protocol.evaluates:
        return
    for label, path in state.variants.items():
        if label in state.served:
            state.say(f"evaluate: {label} (endpoint)")
            _evaluate(state, label, None, state.served[label])
        elif path is not None and not state.serve.command:
            state.say(f"evaluate: {label}")
            _evaluate(state, label, path, None)


def _speed_options(state: StudyState) -> Any:
    from quantdrop.speed import SpeedOptions

    s = state.speed
    return SpeedOptions(prompt=s.prompt, gen=s.gen, repeat=s.repeat, threads=state.threads)


def speed_step(state: StudyState) -> None:
    """Each local variant's pp/tg in-process (cached per file and machine); served ones in serve_step."""
    if not state.speed.enabled or state.serve.command:
        return
    from quantdrop.speed import cached_gguf

    for label, path in state.variants.items():
        if path is not None and label not in state.served:
            state.say(f"speed: {label}")
            state.speeds[label] = cached_gguf(path, _speed_options(state), state.out / "speed", label)


def _served_as(state: StudyState, path: Path) -> dict[str, Any]:
    """A served variant's identity in the store: the file and the engine command, not the URL."""
    from quantdrop.eval.backends.llama_cpp import gguf_fingerprint

    return {"kind": "served", "gguf": json.loads(gguf_fingerprint(path)), "engine": state.serve.command}


def _serve_one(state: StudyState, label: str, path: Path, gpus: str) -> None:
    """One variant through its own engine; an engine that dies is restarted once, then the variant fails."""
    from quantdrop.serve import Engine
    from quantdrop.speed import bench_endpoint

    for attempt in (1, 2):
        engine = Engine(
            state.serve.command or "",
            str(path),
            label,
            state.out / "engines",
            ctx=state.serve_ctx(path),
            gpus=gpus,
            ready_timeout_s=state.serve.ready_timeout_s,
        )
        try:
            with engine:
                state.say(f"evaluate: {label} (engine at {engine.url}, attempt {attempt})")
                if state.protocol.evaluates:
                    _evaluate(state, label, None, [engine.url], served_as=_served_as(state, path))
                if engine.alive() and state.speed.enabled:
                    state.speeds[label] = bench_endpoint(
                        label, engine.url, _speed_options(state), state.protocol.model_name
                    )
                if engine.alive():
                    state.failed.pop(label, None)
                    return
                why = f"the engine exited during the run; log {engine.log_path}"
        except QuantdropError as err:
            why = str(err)
        state.failed[label] = why
        state.say(f"serve: {label}: {why}" + ("; retrying once" if attempt == 1 else ""))


def serve_step(state: StudyState) -> None:
    """With --serve: each local variant evaluated and timed through an engine quantdrop runs."""
    if not state.serve.command:
        return
    from concurrent.futures import ThreadPoolExecutor

    from quantdrop.serve import split_gpus, sweep_stale

    folder = state.out / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    for pid in sweep_stale(folder):
        state.say(f"serve: stopped engine pid {pid} left by an earlier run")
    todo = [(lab, p) for lab, p in state.variants.items() if p is not None and lab not in state.served]
    slots = split_gpus(state.serve.gpus, state.serve.slots)
    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        for i in range(0, len(todo), len(slots)):
            batch = [(lab, p, slots[j]) for j, (lab, p) in enumerate(todo[i : i + len(slots)])]
            list(pool.map(lambda job: _serve_one(state, *job), batch))


def report_step(state: StudyState) -> None:
    from quantdrop.report import write_report
    from quantdrop.study_report import build_report_data, summary_text

    table = None
    if state.protocol.evaluates and state.store.exists():
        from quantdrop.eval.results import results_table

        has_baseline = state.variants.get(BASELINE) is not None or BASELINE in state.served
        table = results_table(state.store, baseline=BASELINE if has_baseline else None, labels=state.evaluated())
    data = build_report_data(
        state.plan,
        table,
        state.proxies,
        note=state.note,
        demo=state.demo,
        extra_notes=tuple(_notes(state)),
        speed=state.speeds,
        prefer=state.prefer,
    )
    state.report = write_report(state.out, data)
    state.summary = summary_text(data, table, state.report)
    if state.speeds:
        from quantdrop.speed import render

        state.summary += "\n\nSpeed on this machine:\n" + render(list(state.speeds.values()))


def _notes(state: StudyState) -> list[str]:
    notes = []
    if set(state.protocol.bench) & CODE_BENCHMARKS:
        from quantdrop.sandbox._isolation import isolation

        iso = isolation()
        notes.append(f"Model-written code ran in the sandbox, isolation level '{iso.level}' ({iso.detail}).")
    notes += [
        f"{label}: evaluation failed ({why}); its answers so far are kept in {state.store}."
        for label, why in state.failed.items()
    ]
    return notes


STEPS = (
    Step("quantize", quantize_step),
    Step("plan", plan_step),
    Step("proxies", proxies_step),
    Step("evaluate", evaluate_step),
    Step("serve", serve_step),
    Step("speed", speed_step),
    Step("report", report_step),
)


# ------------------------------------------------------------------------------------ the verb


def _loglik_protocol(names: list[str], options: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """Refuse a loglik benchmark without choices, or bad loglik options, before any work."""
    from quantdrop.eval.loglik import LoglikBenchmark
    from quantdrop.eval.runner import get_benchmark, parse_options

    parsed = parse_options(options)
    for name in names:
        LoglikBenchmark(
            get_benchmark(name), norm=parsed.get("loglik_norm", "acc"), style=parsed.get("loglik_style", "letters")
        )
    return parsed


def _demo_defaults(
    limit: int | None, samples: int | None, max_tokens: int | None, proxy_chunks: int | None
) -> tuple[int, int, int, int]:
    return (
        DEMO_LIMIT if limit is None else limit,
        DEMO_SAMPLES if samples is None else samples,
        DEMO_MAX_TOKENS if max_tokens is None else max_tokens,
        DEMO_PROXY_CHUNKS if proxy_chunks is None else proxy_chunks,
    )


def _demo_loglik(
    loglik: str | list[str] | None, limit: int | None, options: list[str] | dict[str, Any] | None
) -> tuple[Any, int, Any]:
    """The demo's log-likelihood sample where the user gave none: MMLU, 150 items, lm-eval's style."""
    return (
        DEMO_LOGLIK if loglik is None else loglik,
        DEMO_LOGLIK_LIMIT if limit is None else limit,
        DEMO_LOGLIK_OPTIONS if options is None else options,
    )


def _prepare(model: str | os.PathLike[str] | None, progress: bool) -> tuple[Path, bool, str, bool]:
    """The source model (the embedded reference when None): path, is-a-local-GGUF, note, demo."""
    demo = model is None
    if demo:
        from quantdrop.demo_model import NOTE, ensure_demo_model

        return ensure_demo_model(verbose=progress), True, NOTE, True
    from quantdrop.inventory import locate

    found = locate(model)  # type: ignore[arg-type]  # a GGUF (maybe in a model directory), else a config
    local = found.kind == "gguf"
    return found.path, local, _reference_note(found.path, local), False


def _bench_names(bench: str | list[str] | None, demo: bool) -> list[str]:
    """The generative benchmarks ("none": none, e.g. a log-likelihood-only study); an unknown name fails
    here, listing the known ones."""
    from quantdrop.eval.runner import get_benchmark

    names = _without_none(name_list(bench, DEMO_BENCH if demo else DEFAULT_BENCH, _EMPTY))
    for name in names:
        get_benchmark(name)
    return names


def _without_none(names: list[str]) -> list[str]:
    return [n for n in names if n.lower() != "none"]


def _check_plan_options(devices: str | None, prefer: str, ctx: int) -> None:
    """The device sets, the preference and the plan's options, before any long work."""
    from quantdrop.devices import parse_devices
    from quantdrop.plan import check_options
    from quantdrop.recommend import PREFERENCES

    parse_devices(devices)
    if prefer not in PREFERENCES:
        raise QuantdropError(f"--prefer must be one of {', '.join(PREFERENCES)}, got {prefer!r}")
    check_options(kv_type="f16", flash_attn=True, ctx=ctx, parallel=1, n_ubatch=512)  # the plan it makes


def _speed_settings(enabled: bool, prompt: int | None, gen: int | None, repeat: int, demo: bool) -> SpeedSettings:
    """The speed test's sizes as given, else 512 prompt and 128 generated tokens (the demo without
    `speed_prompt`: 128 and 32)."""
    small = demo and prompt is None
    return SpeedSettings(enabled, prompt or (128 if small else 512), gen or (32 if small else 128), repeat)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise QuantdropError(f"--out {folder.parent}: cannot create the folder ({err.strerror})") from None


def study(
    model: str | os.PathLike[str] | None = None,
    *,
    recipes: str | list[str] | None = None,
    bench: str | list[str] | None = None,
    devices: str | None = DEFAULT_DEVICES,
    out: str | os.PathLike[str] = "quantdrop-study",
    limit: int | None = None,
    samples: int | None = None,
    max_tokens: int | None = None,
    ctx: int = 32768,
    endpoint: list[str] | None = None,
    model_name: str | None = None,
    api_key_env: str | None = None,
    concurrency: int = 8,
    data_dir: str | None = None,
    threads: int | None = None,
    proxy_chunks: int | None = None,
    proxy_ctx: int = 512,
    skip_eval: bool = False,
    speed: bool = True,
    speed_prompt: int | None = None,
    speed_gen: int | None = None,
    speed_repeat: int = 3,
    serve: str | None = None,
    serve_slots: int = 1,
    gpus: str | None = None,
    serve_timeout: float = 600.0,
    loglik: str | list[str] | None = None,
    loglik_limit: int | None = None,
    loglik_options: list[str] | dict[str, Any] | None = None,
    prefer: str = "quality",
    progress: bool = True,
) -> StudyResult:
    """Run the whole study for MODEL (a float GGUF; or a config.json when every variant is an endpoint).

    recipes: variants to build and compare (presets, recipe files, or `tuned:BUDGET` for a recipe that
    quantdrop.tune finds for that budget); the source model itself is the baseline ("reference"), or
    an endpoint given as `--endpoint reference=URL` (e.g. the official API).
    endpoint: `LABEL=URL`, repeatable, for variants served elsewhere (llama-server, vLLM, SGLang...).
    serve: a command template (`{model}`, `{port}`, `{ctx}`, `{label}`, `{gpus}`) to start an engine
    per variant; `serve_slots` engines at once on disjoint `gpus`.
    limit/samples/max_tokens: the evaluation protocol (defaults: the paper's, or the demo's small
    sample when MODEL is omitted).
    loglik/loglik_limit/loglik_options: multiple-choice benchmarks also scored by log-likelihood
    (`eval --mode loglik`) on their first `loglik_limit` items (the demo: MMLU, 150 items, lm-eval's
    continuation style with acc_norm; "none" for none).
    prefer: what the recommendation weighs: "quality" (the paper's), "speed" (the fastest variant
    without a significant drop) or "balanced" (the fastest whose KL is within 2x of the best's).
    """
    from quantdrop.kernels import check_threads

    t_start = time.perf_counter()
    check_threads(threads)
    _check_out_dir(Path(out))
    source, local, note, demo = _prepare(model, progress)
    if demo:
        limit, samples, max_tokens, proxy_chunks = _demo_defaults(limit, samples, max_tokens, proxy_chunks)
        loglik, loglik_limit, loglik_options = _demo_loglik(loglik, loglik_limit, loglik_options)
    bench_names = [] if skip_eval else _bench_names(bench, demo)
    loglik_names = [] if skip_eval else _without_none(comma_list(loglik))
    _check_plan_options(devices, prefer, ctx)
    out_dir = Path(out)
    state = StudyState(
        source=source,
        local=local,
        note=note,
        demo=demo,
        recipes=[],
        served=_endpoints(endpoint),
        out=out_dir,
        devices=devices,
        ctx=ctx,
        threads=threads,
        progress=progress,
        protocol=EvalProtocol(
            tuple(bench_names),
            limit,
            samples,
            max_tokens or 32768,
            concurrency,
            data_dir,
            model_name,
            api_key_env,
            tuple(loglik_names),
            loglik_limit,
            _loglik_protocol(loglik_names, loglik_options),
        ),
        proxy=ProxyOptions(proxy_chunks, proxy_ctx),
        speed=_speed_settings(speed, speed_prompt, speed_gen, speed_repeat, demo),
        serve=ServeOptions(serve, serve_slots, gpus, serve_timeout),
        prefer=prefer,
    )
    state.recipes = _load_recipes(name_list(recipes, DEFAULT_RECIPES, _EMPTY), source, out_dir, ctx, progress)
    _check_served(state)  # everything is validated before any long work
    _make_folder(out_dir / "models")
    seconds = run_steps(state, STEPS)
    seconds["total"] = time.perf_counter() - t_start
    return _result(state, seconds)


def _result(state: StudyState, seconds: dict[str, float]) -> StudyResult:
    assert state.report is not None
    return StudyResult(
        out=state.out,
        report=state.report,
        variants=state.variants,
        seconds=seconds,
        summary=state.summary,
        failed=state.failed,
    )
