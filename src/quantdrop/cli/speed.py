"""`quantdrop speed GGUF... [--endpoint LABEL=URL]`: `quantdrop.speed.speed` with the parsed flags."""

from __future__ import annotations

import argparse
import json
import sys

from quantdrop.cli._flags import call_with_flags
from quantdrop.speed import render, speed


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", help="GGUF files, measured in-process through llama.cpp")
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="LABEL=URL",
        help="an OpenAI-compatible server to measure by streaming (repeatable)",
    )
    parser.add_argument("--prompt", type=int, default=512, help="prompt tokens (llama-bench's -p)")
    parser.add_argument("--gen", type=int, default=128, help="generated tokens (llama-bench's -n)")
    parser.add_argument("--repeat", type=int, default=5, help="samples per test, after one warm-up run")
    parser.add_argument("--ctx", type=int, default=None, help="context length (default: prompt + gen)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    parser.add_argument("--concurrency", type=int, default=1, help="endpoints: parallel requests per sample")
    parser.add_argument("--model-name", default=None, help="endpoints: the model name to send")
    parser.add_argument("--cache-dir", default=None, help="where results are cached")
    parser.add_argument("--no-cache", dest="use_cache", action="store_false", help="measure again")
    parser.add_argument("--json", action="store_true", help="print JSON")


def main(args: argparse.Namespace) -> int:
    results = call_with_flags(speed, args)
    if args.json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=1)
        print()
    else:
        print(render(results))
    return 0
