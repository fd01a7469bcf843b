"""`quantdrop study`: quantize, plan, measure and evaluate every variant, then report, resumably.

With no arguments it runs the embedded default: the reference model (SmolLM2-135M-Instruct, rebuilt
as F16 from the 4-bit file its package ships), six recipes, the planner, the quality proxies and a
small sample of the bundled benchmarks. Every step keeps its results on disk as it goes (quantized
files written atomically, proxy log-probs and scores cached, every model answer committed to a
SQLite store), so running the same command again after Ctrl-C or `kill -9` only does what is left.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError

DEFAULT_RECIPES = ("Q8_0", "Q6_K", "Q4_K_M", "Q3_K_M", "DQ3_K_M", "Q2_K")
DEFAULT_BENCH = ("mmlu", "math500", "aime2024", "humaneval")
DEFAULT_DEVICES = "8xH100-80G,8x910B-64G"
BASELINE = "reference"
CODE_BENCHMARKS = {"humaneval", "mbpp", "mbppplus", "livecodebench"}
# the embedded default's small sample: a few items, one sample each, short answers (2 CPU cores)
DEMO_LIMIT, DEMO_SAMPLES, DEMO_MAX_TOKENS, DEMO_PROXY_CHUNKS = 3, 1, 256, 4
# The demo's evidence: MMLU scored by log-likelihood (deterministic, one forward pass per item) on enough
# items for agreement and power to say something, next to the small generative sample.
# lm-eval's mmlu_continuation form (the answer texts are the choices): a 135M model answers "A" to 98 of
# 100 questions in the letters form, which no quantization can change (docs/BENCHMARKS.md).
DEMO_LOGLIK, DEMO_LOGLIK_LIMIT = ("mmlu",), 150
DEMO_LOGLIK_OPTIONS = {"loglik_style": "continuation", "loglik_norm": "acc_norm"}


@dataclass
class StudyResult:
    out: Path
    report: Path
    variants: dict[str, Path | None]  # label -> local GGUF (None: evaluated through an endpoint)
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall seconds this run
    summary: str = ""


def _split(value: str | list[str] | tuple[str, ...] | None, default: tuple[str, ...]) -> list[str]:
    if value is None:
        return list(default)
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [i.strip() for i in items if i.strip()]
    if not items:
        raise QuantdropError("an empty list where names were expected")
    return items


def _endpoints(endpoint: list[str] | None) -> dict[str, list[str]]:
    """`LABEL=URL` (repeatable; several URLs for one label spread its requests) -> {label: [urls]}."""
    out: dict[str, list[str]] = {}
    for spec in endpoint or []:
        label, sep, url = spec.partition("=")
        if not sep or not label.strip() or not url.strip().startswith(("http://", "https://")):
            raise QuantdropError(f"bad --endpoint {spec!r}: expected LABEL=http(s)://host:port/v1 "
                                 f"(LABEL: a recipe name or {BASELINE!r})")
        out.setdefault(label.strip(), []).append(url.strip())
    return out


def _source_fingerprint(path: Path) -> str:
    from quantdrop.fingerprint import file_fingerprint

    return file_fingerprint(path)


def _recipe_fingerprint(recipe: Any) -> str:
    rules = [(r.pattern, r.type.name, r.layers.describe() if r.layers else "") for r in recipe.rules]
    blob = json.dumps([recipe.name, recipe.default.name, recipe.base, recipe.file_type, rules, recipe.version])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _quantize_cached(source: Path, recipe: Any, models: Path, threads: int | None, progress: bool) -> Path:
    """Quantize once per (source, recipe): a sidecar records what the file was made from."""
    from quantdrop.quantize import quantize

    out = models / f"{recipe.name}.gguf"
    stamp = out.with_suffix(".json")
    key = {"source": _source_fingerprint(source), "recipe": _recipe_fingerprint(recipe)}
    if out.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == key:
                return out
        except ValueError:
            pass
    stamp.unlink(missing_ok=True)
    quantize(source, out, recipe=recipe, threads=threads, force=True, progress=progress)
    tmp = stamp.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(key))
    os.replace(tmp, stamp)
    return out


def _say(text: str, progress: bool) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def study(model: str | os.PathLike[str] | None = None, *, recipes: str | list[str] | None = None,
          bench: str | list[str] | None = None, devices: str | None = DEFAULT_DEVICES,
          out: str | os.PathLike[str] = "quantdrop-study", limit: int | None = None, samples: int | None = None,
          max_tokens: int | None = None, ctx: int = 32768, endpoint: list[str] | None = None,
          model_name: str | None = None, api_key_env: str | None = None, concurrency: int = 8,
          data_dir: str | None = None, threads: int | None = None, proxy_chunks: int | None = None,
          proxy_ctx: int = 512, skip_eval: bool = False, progress: bool = True,
          loglik: str | list[str] | None = None, loglik_limit: int | None = None,
          loglik_options: list[str] | dict[str, str] | None = None) -> StudyResult:
    """Run the whole study for MODEL (a float GGUF; or a config.json when every variant is an endpoint).

    recipes: variants to build and compare; the source model itself is the baseline ("reference"),
    or an endpoint given as `--endpoint reference=URL` (e.g. the official API).
    endpoint: `LABEL=URL`, repeatable, for variants served elsewhere (llama-server, vLLM, SGLang...).
    limit/samples/max_tokens: the evaluation protocol (defaults: the paper's, or the demo's small
    sample when MODEL is omitted).
    loglik/loglik_limit: multiple-choice benchmarks also scored by log-likelihood (`eval --mode loglik`),
    on the first `loglik_limit` items, with `loglik_options` (loglik_style=, loglik_norm=; the demo: MMLU,
    150 items, the continuation style with acc_norm; "none" for none).
    """
    from quantdrop.devices import parse_devices
    from quantdrop.eval.runner import get_benchmark
    from quantdrop.recipes import load_recipe

    t_start = time.perf_counter()
    demo = model is None
    if demo:
        from quantdrop.demo_model import NOTE, ensure_demo_model

        model = ensure_demo_model(verbose=progress)
        note = NOTE
        limit = DEMO_LIMIT if limit is None else limit
        samples = DEMO_SAMPLES if samples is None else samples
        max_tokens = DEMO_MAX_TOKENS if max_tokens is None else max_tokens
        proxy_chunks = DEMO_PROXY_CHUNKS if proxy_chunks is None else proxy_chunks
        loglik = DEMO_LOGLIK if loglik is None else loglik
        loglik_limit = DEMO_LOGLIK_LIMIT if loglik_limit is None else loglik_limit
        loglik_options = DEMO_LOGLIK_OPTIONS if loglik_options is None else loglik_options
    else:
        note = ""
    source = Path(model)
    if not source.exists():
        raise QuantdropError(f"{source}: no such file or directory")
    local = source.is_file() and source.suffix != ".json"
    if local and not note:  # a reference rebuilt by `quantdrop demo-model` says so in its metadata
        from quantdrop.ggufio import read_header

        note = str(read_header(source).fields.get("quantdrop.reference_note", ""))

    # validate everything before any long work
    recipe_objs = [load_recipe(r) for r in _split(recipes, DEFAULT_RECIPES)]
    labels = [r.name for r in recipe_objs]
    if len(set(labels)) != len(labels):
        raise QuantdropError(f"a recipe is listed twice: {', '.join(labels)}")
    bench_names = [] if skip_eval else _split(bench, DEFAULT_BENCH)
    for name in bench_names:
        get_benchmark(name)  # unknown names fail here, listing the known ones
    loglik_names = [] if skip_eval else [n for n in _split(loglik, ()) if n.lower() != "none"]
    if loglik_names:
        from quantdrop.eval.loglik import LoglikBenchmark
        from quantdrop.eval.runner import parse_options

        loglik_options = parse_options(loglik_options)
        for name in loglik_names:  # only multiple-choice benchmarks have a loglik mode; bad options fail here
            LoglikBenchmark(get_benchmark(name), norm=loglik_options.get("loglik_norm", "acc"),
                            style=loglik_options.get("loglik_style", "letters"))
    parse_devices(devices)
    served = _endpoints(endpoint)
    unknown = set(served) - {*labels, BASELINE}
    if unknown:
        raise QuantdropError(f"--endpoint for {', '.join(sorted(unknown))}: not a recipe of this study "
                             f"(recipes: {', '.join(labels)}; or {BASELINE!r})")
    if not local:
        missing = [lab for lab in [BASELINE, *labels] if lab not in served]
        if missing and not skip_eval:
            raise QuantdropError(f"{source} is not a GGUF file, so every variant needs an --endpoint; "
                                 f"missing: {', '.join(missing)}")

    out_dir = Path(out)
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    # 1. quantize (cached by source and recipe)
    t = time.perf_counter()
    variants: dict[str, Path | None] = {BASELINE: None if BASELINE in served else (source if local else None)}
    for r in recipe_objs:
        if r.name in served or not local:
            variants[r.name] = None
            continue
        _say(f"quantize: {r.name}", progress)
        variants[r.name] = _quantize_cached(source, r, out_dir / "models", threads, progress)
    seconds["quantize"] = time.perf_counter() - t

    # 2. plan: sizes, memory and device fit from the source's inventory (no weights read)
    t = time.perf_counter()
    from quantdrop.plan import plan as make_plan

    the_plan = make_plan(source, recipe=[r.name if r.origin == "builtin" else r.origin for r in recipe_objs],
                         ctx=ctx, devices=devices)
    seconds["plan"] = time.perf_counter() - t

    # 3. quality proxies against the reference (local files only)
    t = time.perf_counter()
    proxy_results: dict[str, Any] = {}
    local_variants = {lab: p for lab, p in variants.items() if p is not None and lab != BASELINE}
    if local and local_variants:
        from quantdrop.proxies import proxies

        _say("proxies: perplexity and KL divergence against the reference", progress)
        results = proxies(source, list(local_variants.values()), chunks=proxy_chunks, n_ctx=proxy_ctx,
                          cache_dir=out_dir / "proxies", progress=progress)
        proxy_results = dict(zip(local_variants, results, strict=True))
    seconds["proxies"] = time.perf_counter() - t

    # 4. evaluate every variant (resumable through the store)
    t = time.perf_counter()
    store = out_dir / "eval.sqlite"
    if bench_names:
        from quantdrop.eval.runner import evaluate

        for label, path in variants.items():
            if path is None and label not in served:
                continue
            _say(f"evaluate: {label}", progress)
            evaluate(str(path) if path is not None else None, endpoint=served.get(label), model_name=model_name,
                     api_key_env=api_key_env, bench=bench_names, label=label, limit=limit, samples=samples,
                     store=str(store), max_tokens=max_tokens or 32768, concurrency=concurrency,
                     data_dir=data_dir, threads=threads, progress=progress)
    for label, path in variants.items() if loglik_names else ():
        if path is None and label not in served:
            continue
        _say(f"evaluate by log-likelihood: {label}", progress)
        evaluate(str(path) if path is not None else None, endpoint=served.get(label), model_name=model_name,
                 api_key_env=api_key_env, bench=loglik_names, label=label, limit=loglik_limit, mode="loglik",
                 bench_options=loglik_options,
                 store=str(store), concurrency=concurrency, data_dir=data_dir, threads=threads, progress=progress)
    seconds["evaluate"] = time.perf_counter() - t

    # 5. the report
    t = time.perf_counter()
    from quantdrop.report import write_report
    from quantdrop.study_report import build_report_data, summary_text

    table = None
    if (bench_names or loglik_names) and store.exists():
        from quantdrop.eval.results import results_table

        baseline = BASELINE if variants.get(BASELINE) is not None or BASELINE in served else None
        table = results_table(store, baseline=baseline, labels=[lab for lab in variants if
                                                                variants[lab] is not None or lab in served])
    extra = []
    if set(bench_names) & CODE_BENCHMARKS:
        from quantdrop.sandbox._isolation import isolation

        iso = isolation()
        extra.append(f"Model-written code ran in the sandbox, isolation level '{iso.level}' ({iso.detail}).")
    data = build_report_data(the_plan, table, proxy_results, note=note, demo=demo, extra_notes=tuple(extra))
    report = write_report(out_dir, data)
    seconds["report"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    summary = summary_text(data, table, report)
    return StudyResult(out=out_dir, report=report, variants=variants, seconds=seconds, summary=summary)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None,
                        help="source GGUF (F16/BF16/F32), or config.json when every variant is an endpoint "
                             "(default: the embedded reference model)")
    parser.add_argument("--recipes", default=None, help=f"comma-separated (default: {','.join(DEFAULT_RECIPES)})")
    parser.add_argument("--bench", default=None, help=f"comma-separated (default: {','.join(DEFAULT_BENCH)})")
    parser.add_argument("--devices", default=DEFAULT_DEVICES, help=f"device sets (default: {DEFAULT_DEVICES})")
    parser.add_argument("--out", default="quantdrop-study", help="output folder (default: quantdrop-study)")
    parser.add_argument("--limit", type=int, default=None, help="first N items of each benchmark")
    parser.add_argument("--samples", type=int, default=None, help="samples per item (default: the paper's)")
    parser.add_argument("--max-tokens", type=int, default=None, help="generation limit (default: 32768)")
    parser.add_argument("--ctx", type=int, default=32768, help="context length for the memory plan")
    parser.add_argument("--endpoint", action="append", default=None, metavar="LABEL=URL",
                        help=f"evaluate LABEL (a recipe, or {BASELINE!r}) through an OpenAI-compatible server; "
                             "repeatable")
    parser.add_argument("--model-name", default=None, help="model name to send to the endpoints")
    parser.add_argument("--api-key-env", default=None, help="environment variable holding the API key")
    parser.add_argument("--concurrency", type=int, default=8, help="parallel requests per endpoint variant")
    parser.add_argument("--data-dir", default=None, help="local benchmark files in the hub's own schema")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--proxy-chunks", type=int, default=None, help="text chunks for perplexity/KL")
    parser.add_argument("--proxy-ctx", type=int, default=512, help="tokens per proxy chunk")
    parser.add_argument("--skip-eval", action="store_true", help="sizes, plan and proxies only")
    parser.add_argument("--loglik", default=None, metavar="BENCH,...",
                        help="multiple-choice benchmarks also scored by log-likelihood (eval --mode loglik); "
                             f"default: {','.join(DEMO_LOGLIK)} for the demo, none otherwise")
    parser.add_argument("--loglik-limit", type=int, default=None,
                        help=f"items of each loglik benchmark (demo default: {DEMO_LOGLIK_LIMIT})")
    parser.add_argument("--loglik-option", action="append", default=None, metavar="KEY=VALUE",
                        help="loglik_style=letters|continuation, loglik_norm=acc|acc_norm|acc_bytes (demo: "
                             "continuation, acc_norm); repeatable")


def main(args: argparse.Namespace) -> int:
    result = study(args.model, recipes=args.recipes, bench=args.bench, devices=args.devices, out=args.out,
                   limit=args.limit, samples=args.samples, max_tokens=args.max_tokens, ctx=args.ctx,
                   endpoint=args.endpoint, model_name=args.model_name, api_key_env=args.api_key_env,
                   concurrency=args.concurrency, data_dir=args.data_dir, threads=args.threads,
                   proxy_chunks=args.proxy_chunks, proxy_ctx=args.proxy_ctx, skip_eval=args.skip_eval,
                   progress=True, loglik=args.loglik, loglik_limit=args.loglik_limit,
                   loglik_options=args.loglik_option)
    print(result.summary)
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    print(f"\ntime this run: {steps}")
    print(f"report: {result.report}")
    return 0
