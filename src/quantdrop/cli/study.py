"""`quantdrop study [MODEL]`: `quantdrop.study.study` with the parsed flags; prints its summary."""

from __future__ import annotations

import argparse

from quantdrop.cli._flags import call_with_flags
from quantdrop.study import (
    BASELINE,
    DEFAULT_BENCH,
    DEFAULT_DEVICES,
    DEFAULT_RECIPES,
    DEMO_BENCH,
    DEMO_LOGLIK,
    DEMO_LOGLIK_LIMIT,
    study,
)


def configure(parser: argparse.ArgumentParser) -> None:
    _source_flags(parser)
    _protocol_flags(parser)
    _loglik_flags(parser.add_argument_group("log-likelihood scoring (eval --mode loglik)"))
    parser.add_argument(
        "--prefer",
        default="quality",
        choices=("quality", "speed", "balanced"),
        help="what the recommendation weighs: quality (the paper's), speed (the fastest variant "
        "without a significant drop) or balanced (the fastest within 2x the best KL)",
    )
    _speed_flags(parser.add_argument_group("speed (quantdrop speed)"))
    _serve_flags(parser.add_argument_group("engines started by quantdrop (quantdrop.serve)"))


def _source_flags(parser: argparse.ArgumentParser) -> None:
    """The model, the variants, the benchmarks, the devices and the output folder."""
    parser.add_argument(
        "model",
        nargs="?",
        default=None,
        help="source GGUF (F16/BF16/F32), or config.json when every variant is an endpoint "
        "(default: the embedded reference model)",
    )
    parser.add_argument(
        "--recipes",
        default=None,
        help=f"comma-separated: presets, recipe files or tuned:BUDGET (default: {','.join(DEFAULT_RECIPES)})",
    )
    parser.add_argument(
        "--bench",
        default=None,
        help=f"comma-separated, or none (default: {','.join(DEFAULT_BENCH)}; "
        f"the demo: {','.join(DEMO_BENCH)} and MMLU by log-likelihood)",
    )
    parser.add_argument("--devices", default=DEFAULT_DEVICES, help=f"device sets (default: {DEFAULT_DEVICES})")
    parser.add_argument("--out", default="quantdrop-study", help="output folder (default: quantdrop-study)")


def _protocol_flags(parser: argparse.ArgumentParser) -> None:
    """The evaluation protocol, the endpoints, the proxies."""
    parser.add_argument("--limit", type=int, default=None, help="first N items of each benchmark")
    parser.add_argument("--samples", type=int, default=None, help="samples per item (default: the paper's)")
    parser.add_argument("--max-tokens", type=int, default=None, help="generation limit (default: 32768)")
    parser.add_argument("--ctx", type=int, default=32768, help="context length for the memory plan")
    parser.add_argument(
        "--endpoint",
        action="append",
        default=None,
        metavar="LABEL=URL",
        help=f"evaluate LABEL (a recipe, or {BASELINE!r}) through an OpenAI-compatible server; repeatable",
    )
    parser.add_argument("--model-name", default=None, help="model name to send to the endpoints")
    parser.add_argument("--api-key-env", default=None, help="environment variable holding the API key")
    parser.add_argument("--concurrency", type=int, default=8, help="parallel requests per endpoint variant")
    parser.add_argument("--data-dir", default=None, help="local benchmark files in the hub's own schema")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--proxy-chunks", type=int, default=None, help="text chunks for perplexity/KL")
    parser.add_argument("--proxy-ctx", type=int, default=512, help="tokens per proxy chunk")
    parser.add_argument("--skip-eval", action="store_true", help="sizes, plan and proxies only")


def _loglik_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--loglik",
        default=None,
        metavar="BENCH,...",
        help="multiple-choice benchmarks also scored by log-likelihood; "
        f"default: {','.join(DEMO_LOGLIK)} for the demo, none otherwise",
    )
    group.add_argument(
        "--loglik-limit",
        type=int,
        default=None,
        help=f"items of each loglik benchmark (demo default: {DEMO_LOGLIK_LIMIT})",
    )
    group.add_argument(
        "--loglik-option",
        dest="loglik_options",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="loglik_style=letters|continuation, loglik_norm=acc|acc_norm|"
        "acc_bytes (demo: continuation, acc_norm); repeatable",
    )


def _speed_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--no-speed", dest="speed", action="store_false", help="do not measure throughput")
    group.add_argument("--speed-prompt", type=int, default=None, help="prompt tokens (default 512; demo 128)")
    group.add_argument("--speed-gen", type=int, default=None, help="generated tokens (default 128; demo 32)")
    group.add_argument("--speed-repeat", type=int, default=3, help="samples per speed test")


def _serve_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--serve",
        default=None,
        metavar="CMD",
        help="command starting a server for one variant, with {model} and {port} "
        "(also {ctx}, {label}, {gpus}), e.g. 'llama-server -m {model} --port {port} -c {ctx}'",
    )
    group.add_argument("--serve-slots", type=int, default=1, help="engines running at once")
    group.add_argument("--gpus", default=None, help="GPU ids split over the slots, e.g. 0-7")
    group.add_argument("--serve-timeout", type=float, default=600.0, help="seconds an engine may take to be ready")


def main(args: argparse.Namespace) -> int:
    result = call_with_flags(study, args, progress=True)
    print(result.summary)
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    print(f"\ntime this run: {steps}")
    print(f"report: {result.report}")
    return 3 if result.failed else 0
