"""Quantization speed and memory: quantdrop vs llama.cpp's own `llama_model_quantize`, same input,
same recipe, same thread count, in one run (the ratio is what counts on a shared, noisy machine).

    .venv/bin/python benchmarks/quantize_speed.py [--model F16.gguf] [--recipe Q4_K_M] [--threads 2] [--repeat 3]

Each run is a separate process; we report its wall time and peak RSS (ru_maxrss from wait4).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from measure import timed_process

OURS = """
import sys
from quantdrop.quantize import quantize
quantize(sys.argv[1], sys.argv[2], recipe=sys.argv[3], threads=int(sys.argv[4]), force=True)
"""
THEIRS = """
import ctypes, sys, llama_cpp
from quantdrop.recipes.llamacpp import FTYPES
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = FTYPES[sys.argv[3]][0]
p.nthread = int(sys.argv[4])
quiet = llama_cpp.llama_log_callback(lambda *a: None)  # kept alive: ggml calls it
llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
assert llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)) == 0
"""


def run(code: str, args: list[str]) -> tuple[float, int]:
    """Wall seconds of the whole process (imports included) and its peak RSS in bytes."""
    return timed_process([sys.executable, "-c", code, *args])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="F16 source GGUF (default: the embedded reference model)")
    ap.add_argument("--recipe", default="Q4_K_M")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if a.model is None:
        from quantdrop.demo_model import ensure_demo_model

        a.model = str(ensure_demo_model())
    size = Path(a.model).stat().st_size
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.repeat):  # interleaved, so both see the same machine load
            theirs.append(run(THEIRS, [a.model, f"{d}/ref.gguf", a.recipe, str(a.threads)]))
            ours.append(run(OURS, [a.model, f"{d}/ours.gguf", a.recipe, str(a.threads)]))
    t_ours = statistics.median(w for w, _ in ours)
    t_ref = statistics.median(w for w, _ in theirs)
    print(
        f"model: {a.model} ({size / 2**20:.0f} MiB), recipe {a.recipe}, threads {a.threads}, "
        f"repeat {a.repeat} (median, whole process)"
    )
    print(f"llama_model_quantize: {t_ref:6.2f} s  peak RSS {max(r for _, r in theirs) / 2**20:7.0f} MiB")
    print(f"quantdrop quantize  : {t_ours:6.2f} s  peak RSS {max(r for _, r in ours) / 2**20:7.0f} MiB")
    print(f"wall-time ratio quantdrop / llama.cpp = {t_ours / t_ref:.3f}")


if __name__ == "__main__":
    main()
