"""Tier 1's throughput per type against one quantize pass of the same source, in one run.

    python benchmarks/tune_tier1_speed.py MODEL_F16.gguf [--type q4_k] [--threads 2]

Quantize (all tensors to TYPE) and tier 1 (TYPE only, no cache) alternate twice; prints source MB/s of
each and the ratio (tier 1 also dequantizes with ggml and sums the squared error).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from quantdrop.inventory import read_gguf_inventory
from quantdrop.quantize import quantize
from quantdrop.tune.command import _candidates, parse_types
from quantdrop.tune.sensitivity import tier1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--type", default="q4_k")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    inv = read_gguf_inventory(args.model)
    cands = _candidates(inv, parse_types(args.type), False)
    source = sum(t.nbytes for t in inv.tensors if t.name in cands)
    q_s, t_s = [], []
    with tempfile.TemporaryDirectory() as d:
        recipe = Path(d) / "all.toml"
        recipe.write_text(f'name = "all"\ndefault = "{args.type}"\n')
        for _ in range(2):
            t0 = time.perf_counter()
            quantize(args.model, Path(d) / "q.gguf", recipe=str(recipe), threads=args.threads, force=True)
            q_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            tier1(args.model, inv, cands, threads=args.threads)
            t_s.append(time.perf_counter() - t0)
    q, t = min(q_s), min(t_s)
    print(
        f"quantize {args.type}: {q:.1f} s; tier 1 {args.type}: {t:.1f} s ({source / 2**20 / t:.0f} MiB/s of "
        f"source); ratio {t / q:.2f}"
    )


if __name__ == "__main__":
    main()
