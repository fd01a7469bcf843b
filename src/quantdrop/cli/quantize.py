"""`quantdrop quantize SRC DST --recipe R`: `quantdrop.quantize.quantize` with the parsed flags."""

from __future__ import annotations

import argparse
import json
import sys

from quantdrop.cli._flags import call_with_flags
from quantdrop.cli.recipes import print_plan
from quantdrop.quantize import quantize
from quantdrop.recipes.resolve import plan_as_dict


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="source GGUF (F32, F16 or BF16; quantized only with --allow-requantize)")
    parser.add_argument("dst", help="output GGUF")
    parser.add_argument("--recipe", required=True, help="preset name (see `quantdrop recipes`) or a TOML/YAML file")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument("--imatrix", default=None, help="llama.cpp GGUF importance matrix")
    parser.add_argument("--allow-requantize", action="store_true", help="accept an already quantized source")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace) -> int:
    result = call_with_flags(quantize, args, progress=not args.json and sys.stderr.isatty())
    plan = result.plan
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        d = plan_as_dict(plan)
        d.update(path=str(result.path) if result.path else None, seconds=round(result.seconds, 3))
        print(json.dumps(d, indent=1))
        return 0
    if args.dry_run:
        print_plan(plan)
    else:
        print(
            f"{result.path}: {plan.recipe.name}, {plan.nbytes / 2**20:.1f} MiB, "
            f"{plan.bits_per_weight:.2f} bits per weight, {result.seconds:.1f} s"
        )
    return 0
