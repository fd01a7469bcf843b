"""`quantdrop proxies` against `llama-perplexity --kl-divergence` (the reference tool): tokens/s, same file,
text, context, chunks and threads, in one run. Both passes are timed: the reference's log-probs
(`--kl-divergence-base` written) and one variant scored against them. Each side runs `--repeat`
times, alternating, and the best wall time counts (this machine is shared). llama-perplexity comes
from $LLAMA_PERPLEXITY (scripts/build_reference_tools.sh). Ratio = our time / theirs (<= 1.15 asked).

    .venv/bin/python benchmarks/proxies_speed.py [--chunks 8 --ctx 512 --repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from quantdrop.demo_model import ensure_demo_model
from quantdrop.proxies import compare, load_text, reference_log_probs
from quantdrop.quantize import quantize


def theirs(binary: str, ref: Path, variant: Path, text: Path, work: Path, ctx: int, chunks: int) -> tuple[float, float]:
    base = work / "theirs.logprobs"
    common = ["-c", str(ctx), "-b", str(ctx), "-t", str(os.cpu_count()), "-fa", "off", "--chunks", str(chunks)]
    start = time.perf_counter()
    subprocess.run(
        [binary, "-m", ref, "-f", text, "--kl-divergence-base", base, *common], capture_output=True, check=True
    )
    mid = time.perf_counter()
    subprocess.run(
        [binary, "-m", variant, "--kl-divergence-base", base, "--kl-divergence", *common],
        capture_output=True,
        check=True,
    )
    return mid - start, time.perf_counter() - mid


def ours(ref: Path, variant: Path, text: Path, work: Path, ctx: int, chunks: int) -> tuple[float, float]:
    cache = work / "ours"
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    base = reference_log_probs(ref, text=text, n_ctx=ctx, chunks=chunks, cache_dir=cache, progress=False)
    mid = time.perf_counter()
    compare(base, variant, progress=False)
    return mid - start, time.perf_counter() - mid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI sets it, for both tools
    binary = os.environ.get("LLAMA_PERPLEXITY") or shutil.which("llama-perplexity")
    if not binary:
        raise SystemExit("llama-perplexity not found: scripts/build_reference_tools.sh, then set $LLAMA_PERPLEXITY")
    ref = ensure_demo_model()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        variant = work / "Q4_K_M.gguf"
        quantize(ref, variant, recipe="Q4_K_M", progress=False)
        text = work / "wiki.txt"
        text.write_text(load_text(None)[0], encoding="utf-8")
        best = {"theirs": [float("inf")] * 2, "ours": [float("inf")] * 2}
        for _ in range(args.repeat):
            for name, times in (
                ("theirs", theirs(binary, ref, variant, text, work, args.ctx, args.chunks)),
                ("ours", ours(ref, variant, text, work, args.ctx, args.chunks)),
            ):
                best[name] = [min(a, b) for a, b in zip(best[name], times, strict=True)]
    tokens = args.chunks * args.ctx
    print(
        f"{ref.name}, Q4_K_M variant, {args.chunks} chunks x {args.ctx} tokens, {os.cpu_count()} threads, "
        f"best of {args.repeat}\n"
    )
    print("| pass | llama-perplexity s | quantdrop s | llama-perplexity t/s | quantdrop t/s | ratio (time) |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, name in enumerate(("reference log-probs", "variant KL divergence")):
        t, o = best["theirs"][i], best["ours"][i]
        print(f"| {name} | {t:.2f} | {o:.2f} | {tokens / t:.0f} | {tokens / o:.0f} | {o / t:.2f} |")


if __name__ == "__main__":
    main()
