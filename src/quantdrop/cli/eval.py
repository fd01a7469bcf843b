"""`quantdrop eval`: evaluate a GGUF or OpenAI-compatible endpoints; flags are `evaluate()`'s keywords."""

from __future__ import annotations

import argparse
import json
import sys

from quantdrop.cli._flags import add_flag, call_with_flags
from quantdrop.eval.results import format_table, json_safe, results_table
from quantdrop.eval.runner import evaluate
from quantdrop.util import comma_list

EXIT_CODES = """exit status:
  0    every response is in and scored
  3    finished, but some responses failed or are pending (the table marks them; run the same
       command again to retry them)
  2    bad input, or a failure that stopped the run (unreachable endpoint, store not writable):
       one line on stderr names the file or flag; what was committed is kept
  130  interrupted (Ctrl-C); what was committed is kept, run the same command to resume"""
EXIT_INCOMPLETE = 3


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXIT_CODES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("model", nargs="?", help="a GGUF file, evaluated in-process with llama.cpp")
    parser.add_argument(
        "--endpoint",
        action="append",
        metavar="URL",
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8080 (repeat to spread requests)",
    )
    parser.add_argument("--model-name", help="model name sent to the endpoint (default: the one it serves)")
    parser.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    parser.add_argument(
        "--bench",
        type=comma_list,
        required=True,
        help="comma-separated: math500,aime2024,gpqa,mmlu,cmmlu,ceval,humaneval,mbpp,mbppplus,"
        "livecodebench (or package.module:factory)",
    )
    parser.add_argument("--label", required=True, help="name of this variant in the store, e.g. Q4_K_M")
    parser.add_argument("--limit", type=int, help="only the first N items of each benchmark")
    parser.add_argument("--samples", type=int, help="responses per item (default: the paper's per benchmark)")
    parser.add_argument("--store", default="quantdrop-eval.sqlite", help="SQLite store; re-run to resume")
    parser.add_argument("--max-tokens", type=int, default=32768, help="generation limit (capped by the context)")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (endpoints)")
    parser.add_argument("--data-dir", help="local JSONL/Parquet files in the hub's schema")
    parser.add_argument("--template", help="override the benchmarks' prompt template")
    parser.add_argument(
        "--bench-options",
        action="append",
        metavar="KEY=VALUE",
        help="option for the benchmarks, e.g. split=test (C-Eval submission run); repeatable",
    )
    parser.add_argument(
        "--mode",
        choices=("generate", "loglik"),
        default="generate",
        help="generate (the paper's protocol) or loglik: multiple choice by log-likelihood as lm-evaluation-harness"
        " (mmlu, cmmlu, ceval, gpqa; stored as <bench>@loglik)",
    )
    add_flag(parser, "--ctx", "--n-ctx", type=int, help="context length for in-process llama.cpp")
    parser.add_argument("--threads", type=int, help="CPU threads for in-process llama.cpp")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per HTTP request")
    parser.add_argument("--retries", type=int, default=4, help="retries of a failed HTTP request")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def main(args: argparse.Namespace) -> int:
    results = call_with_flags(evaluate, args)
    if args.json:
        print(json.dumps(json_safe([r.to_dict() for r in results]), indent=2, allow_nan=False))
    else:
        table = results_table(args.store, labels=[args.label])
        sys.stdout.write(format_table(table, "md") + "\n")
    incomplete = sum(r.counts["error"] + r.counts["pending"] for r in results)
    if incomplete:
        print(
            f"quantdrop eval: {incomplete} responses failed or are missing; run the same command again to retry them",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return 0
