"""The plan against what llama.cpp itself allocates on this machine's CPU: per buffer, planned vs logged.

Run: .venv/bin/python benchmarks/plan_vs_llama_cpp.py MODEL.gguf [--ctx 4096,32768] [--kv f16,q8_0]
Each configuration loads MODEL with llama_cpp.Llama(verbose=True) in a child process and reads the
"CPU_Mapped (or, --mmap no, CPU)/CPU_REPACK model buffer size", "CPU KV buffer size" and "CPU compute
buffer size" lines;
the plan is `quantdrop.plan(MODEL, "as-is", devices="cpu")` less the runtime overhead estimate.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from quantdrop.devices import parse_devices
from quantdrop.plan import plan

MiB = 1 << 20
PROBE = """
import sys, llama_cpp
types = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0}
llama_cpp.Llama(sys.argv[1], n_ctx=int(sys.argv[2]), n_batch=512, n_ubatch=512, n_threads=1, flash_attn=True,
                type_k=types[sys.argv[3]], type_v=types[sys.argv[3]], use_mmap=sys.argv[4] == "yes", verbose=True)
"""
LINES = {
    "weights": r"CPU(?:_Mapped)? model buffer size =\s+([\d.]+)",
    "repack": r"CPU_REPACK model buffer size =\s+([\d.]+)",
    "kv": r"CPU KV buffer size =\s+([\d.]+)",
    "compute": r"CPU compute buffer size =\s+([\d.]+)",
}


def logged(model: str, ctx: int, kv: str, mmap: str) -> dict[str, float]:
    err = subprocess.run(
        [sys.executable, "-c", PROBE, model, str(ctx), kv, mmap], capture_output=True, text=True, check=True
    ).stderr
    return {k: float(m.group(1)) if (m := re.search(p, err)) else 0.0 for k, p in LINES.items()}


def planned(model: str, ctx: int, kv: str, mmap: str) -> dict[str, float]:
    """Per buffer; without mmap the weights buffer is what is not repacked (CPU_REPACK holds the rest)."""
    r = plan(model, "as-is", ctx=ctx, kv_type=kv, devices="cpu", mmap=mmap == "yes").recipes[0]
    fit = r.devices[0]
    on_host = fit.bytes_per_device - parse_devices("cpu")[0].devices[0].overhead_bytes
    weights = on_host - fit.cpu_repack_bytes - r.kv_cache_bytes - r.compute_buffer_bytes
    return {
        "weights": weights / MiB,
        "repack": fit.cpu_repack_bytes / MiB,
        "kv": r.kv_cache_bytes / MiB,
        "compute": r.compute_buffer_bytes / MiB,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ctx", default="4096,32768")
    ap.add_argument("--kv", default="f16,q8_0")
    ap.add_argument("--mmap", default="yes", choices=("yes", "no"))
    args = ap.parse_args()
    print(f"CPU features: {sorted(parse_devices('cpu')[0].devices[0].cpu_features or ())}")
    print("| ctx | KV | buffer | llama.cpp MiB | plan MiB | plan / llama.cpp |\n|---|---|---|---|---|---|")
    for ctx in map(int, args.ctx.split(",")):
        for kv in args.kv.split(","):
            ref, ours = logged(args.model, ctx, kv, args.mmap), planned(args.model, ctx, kv, args.mmap)
            for key in [*LINES, "total"]:
                a = sum(ref.values()) if key == "total" else ref[key]
                b = sum(ours.values()) if key == "total" else ours[key]
                ratio = f"{b / a:.4f}" if a else ("-" if not b else "inf")
                print(f"| {ctx} | {kv} | {key} | {a:.2f} | {b:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
