"""`quantdrop VERB ...`: dispatches lazily to one adapter module per verb, `quantdrop.cli.<verb>`.

Each adapter exposes `configure(parser)` (its flags, named like the keywords of its API function;
tests/test_cli_flags.py checks it) and `main(args) -> int | None`, which calls that function. Only
the chosen verb's adapter (and so its verb module) is imported. The verb modules hold no argparse.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from quantdrop.errors import QuantdropError, Terminated
from quantdrop.omp import set_wait_policy

VERBS: dict[str, tuple[str, str]] = {
    "demo-model": ("quantdrop.cli.demo_model", "make sure the embedded reference model exists; print its path"),
    "recipes": ("quantdrop.cli.recipes", "list recipes, or show one resolved for a model"),
    "quantize": ("quantdrop.cli.quantize", "quantize a GGUF with a recipe (bit-identical to llama.cpp)"),
    "plan": ("quantdrop.cli.plan", "size, bits per weight, memory and device fit, from a GGUF or config.json"),
    "eval": ("quantdrop.cli.eval", "evaluate a GGUF or an OpenAI-compatible endpoint on benchmarks"),
    "results": ("quantdrop.cli.results", "print the paper's table from an evaluation store"),
    "proxies": ("quantdrop.cli.proxies", "perplexity and KL divergence of a quantized GGUF against its reference"),
    "tune": ("quantdrop.cli.tune", "find the per-tensor mix that loses least within a size or device budget"),
    "imatrix": (
        "quantdrop.cli.imatrix",
        "compute an importance matrix through llama.cpp (llama-imatrix's GGUF format)",
    ),
    "study": ("quantdrop.cli.study", "quantize, plan, measure, evaluate and report every variant"),
    "speed": ("quantdrop.cli.speed", "prompt and generation throughput of GGUFs (like llama-bench) or endpoints"),
}


def _usage() -> str:
    width = max(len(v) for v in VERBS)
    lines = ["usage: quantdrop VERB [options]", "", "verbs:"]
    lines += [f"  {verb:<{width}}  {desc}" for verb, (_, desc) in VERBS.items()]
    lines += ["", "Run `quantdrop VERB --help` for a verb's options."]
    return "\n".join(lines)


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM ends a run like Ctrl-C does (cleanup, a message); a second one during cleanup is ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from quantdrop import __version__

        print(__version__)
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"quantdrop: error: unknown verb {verb!r} (one of: {', '.join(VERBS)})", file=sys.stderr)
        return 2
    # before llama.cpp loads: PASSIVE OpenMP threads next to our own workers, spinning ones for speed
    set_wait_policy(verb)
    module = importlib.import_module(VERBS[verb][0])
    parser = argparse.ArgumentParser(prog=f"quantdrop {verb}", description=VERBS[verb][1])
    module.configure(parser)
    args = parser.parse_args(rest)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = module.main(args)
    except QuantdropError as err:
        print(f"quantdrop {verb}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (Terminated): exit 128 + the signal's number
        how, code = ("terminated", 143) if isinstance(err, Terminated) else ("interrupted", 130)
        print(f"quantdrop {verb}: {how}; finished work is kept, run the same command to resume", file=sys.stderr)
        return code
    except BrokenPipeError:
        return 0
    except OSError as err:  # a file or folder the user named cannot be read or written (read-only, full)
        where = f"{err.filename}: " if err.filename else ""
        print(f"quantdrop {verb}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except Exception as err:  # an internal bug: still one line unless asked for the traceback
        if os.environ.get("QUANTDROP_DEBUG"):
            raise
        print(
            f"quantdrop {verb}: internal error: {type(err).__name__}: {err} (set QUANTDROP_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    return int(code or 0)
