"""`quantdrop speed` against llama-bench (the reference tool) and through `python -m llama_cpp.server`.

For each model (default: the embedded reference and its Q8_0 and Q4_K_M variants, quantized into a
temporary folder), in one run on one machine and with the same threads: llama-bench's pp/tg
(`-fa off`, as llama-cpp-python's default), then quantdrop's in-process pp/tg, then quantdrop's
endpoint path against llama_cpp.server started by quantdrop.serve; the ratios are ours over theirs
(in-process/reference, endpoint/in-process). llama-bench comes from $LLAMA_BENCH (see
scripts/build_reference_tools.sh); without it the reference is a direct llama_cpp timing in this
script (`Llama.eval` of the same random tokens, no quantdrop code). Every process here runs with
this script's OpenMP environment (quantdrop's measuring child too: quantdrop.omp), printed on top.

    .venv/bin/python benchmarks/speed_vs_llama_bench.py [MODEL.gguf ...] [--prompt 512 --gen 128 --repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from quantdrop.serve import Engine
from quantdrop.speed import SpeedOptions, bench_endpoint, bench_gguf, cpu_model

SERVER = (
    f"{sys.executable} -m llama_cpp.server --model {{model}} --port {{port}} --n_ctx {{ctx}} "
    "--n_threads {threads} --interrupt_requests False"
)


def llama_bench(binary: str, model: Path, opts: SpeedOptions, threads: int) -> dict[str, float]:
    cmd = [
        binary,
        "-m",
        str(model),
        "-p",
        str(opts.prompt),
        "-n",
        str(opts.gen),
        "-r",
        str(opts.repeat),
        "-t",
        str(threads),
        "-fa",
        "0",
        "-o",
        "json",
    ]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return {("pp" if t["n_prompt"] else "tg"): float(t["avg_ts"]) for t in out}


def direct_timing(model: Path, opts: SpeedOptions, threads: int) -> dict[str, float]:
    """The reference without llama-bench: llama_cpp's own Llama.eval, timed here, mean over repeats
    after one warm-up (as llama-bench: a fresh KV cache each time, random tokens, BOS first)."""
    import random
    import time

    from llama_cpp import Llama

    llm = Llama(
        str(model),
        n_ctx=opts.prompt + opts.gen,
        n_batch=opts.batch,
        n_ubatch=opts.ubatch,
        n_threads=threads,
        n_threads_batch=threads,
        n_gpu_layers=-1,
        verbose=False,
    )
    rng = random.Random(1)

    def tokens(n: int) -> list[int]:
        return [llm.token_bos(), *(rng.randrange(llm.n_vocab()) for _ in range(n - 1))]

    def prompt() -> None:
        llm.eval(tokens(opts.prompt))

    def gen() -> None:
        for token in tokens(opts.gen):
            llm.eval([token])

    out = {}
    for name, step, n in (("pp", prompt, opts.prompt), ("tg", gen, opts.gen)):
        rates = []
        for rep in range(opts.repeat + 1):
            llm.reset()
            start = time.perf_counter()
            step()
            if rep:  # the first run is the warm-up
                rates.append(n / (time.perf_counter() - start))
        out[name] = sum(rates) / len(rates)
    return out


def default_models(folder: Path) -> list[Path]:
    from quantdrop.demo_model import ensure_demo_model
    from quantdrop.quantize import quantize

    ref = ensure_demo_model()
    models = [ref]
    for recipe in ("Q8_0", "Q4_K_M"):
        dst = folder / f"{recipe}.gguf"
        quantize(ref, dst, recipe=recipe, progress=False)
        models.append(dst)
    return models


def measure(model: Path, opts: SpeedOptions, threads: int, bench_bin: str | None, folder: Path) -> list[str]:
    ours = bench_gguf(model, opts)
    assert ours.pp is not None and ours.tg is not None
    row = [model.name]
    ref = llama_bench(bench_bin, model, opts, threads) if bench_bin else direct_timing(model, opts, threads)
    row += [
        f"{ref['pp']:.1f}",
        f"{ours.pp.mean:.1f}",
        f"{ours.pp.mean / ref['pp']:.2f}",
        f"{ref['tg']:.1f}",
        f"{ours.tg.mean:.1f}",
        f"{ours.tg.mean / ref['tg']:.2f}",
    ]
    template = SERVER.replace("{threads}", str(threads))
    with Engine(template, str(model), model.stem, folder / "engines", ctx=opts.prompt + opts.gen + 256) as engine:
        served = bench_endpoint(model.stem, engine.url, opts)
    assert served.tg is not None and served.ttft_s is not None
    row += [f"{served.tg.mean:.1f}", f"{served.tg.mean / ours.tg.mean:.2f}", f"{served.ttft_s.mean:.3f}"]
    return row


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the engine is stopped too
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--gen", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    opts = SpeedOptions(prompt=args.prompt, gen=args.gen, repeat=args.repeat, threads=args.threads)
    bench_bin = os.environ.get("LLAMA_BENCH") or shutil.which("llama-bench")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = args.models or default_models(folder)
        ref = "llama-bench" if bench_bin else "direct"
        policy = os.environ.get("OMP_WAIT_POLICY") or "unset"
        print(
            f"{cpu_model()}, {args.threads} threads; pp{args.prompt}/tg{args.gen}, {args.repeat} repeats; "
            f"reference: {bench_bin or 'direct llama_cpp timing (no llama-bench)'}; OMP_WAIT_POLICY {policy}\n"
        )
        print(
            f"| model | pp {ref} | pp quantdrop | ratio | tg {ref} | tg quantdrop | ratio "
            "| tg endpoint | endpoint/in-process | TTFT s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for model in models:
            print("| " + " | ".join(measure(model, opts, args.threads, bench_bin, folder)) + " |", flush=True)


if __name__ == "__main__":
    main()
