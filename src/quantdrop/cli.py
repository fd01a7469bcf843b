"""`quantdrop VERB ...`: dispatches lazily to one module per verb.

Each verb module exposes `configure(parser)` (its flags, named like the keywords of its API
function) and `main(args) -> int | None`. Only the chosen verb's module is imported.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from quantdrop.errors import QuantdropError

VERBS: dict[str, tuple[str, str]] = {
    "demo-model": ("quantdrop.demo_model", "make sure the embedded reference model exists; print its path"),
    "recipes": ("quantdrop.recipes.command", "list recipes, or show one resolved for a model"),
    "quantize": ("quantdrop.quantize", "quantize a GGUF with a recipe (bit-identical to llama.cpp)"),
    "plan": ("quantdrop.plan", "size, bits per weight, memory and device fit, from a GGUF or config.json"),
    "eval": ("quantdrop.eval.command", "evaluate a GGUF or an OpenAI-compatible endpoint on benchmarks"),
    "results": ("quantdrop.eval.results", "print the paper's table from an evaluation store"),
    "proxies": ("quantdrop.proxies", "perplexity and KL divergence of a quantized GGUF against its reference"),
    "tune": ("quantdrop.tune.command", "find the per-tensor mix that loses least within a size or device budget"),
    "imatrix": ("quantdrop.imatrix", "compute an importance matrix through llama.cpp (llama-imatrix's GGUF format)"),
    "study": ("quantdrop.study", "quantize, plan, measure, evaluate and report every variant"),
    "speed": ("quantdrop.speed", "prompt and generation throughput of GGUFs (like llama-bench) or endpoints"),
}


def _usage() -> str:
    width = max(len(v) for v in VERBS)
    lines = ["usage: quantdrop VERB [options]", "", "verbs:"]
    lines += [f"  {verb:<{width}}  {desc}" for verb, (_, desc) in VERBS.items()]
    lines += ["", "Run `quantdrop VERB --help` for a verb's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from quantdrop import __version__

        print(__version__)
        return 0
    # llama.cpp's OpenMP threads spin while they wait; next to our own worker processes (scoring,
    # sandbox) on a small machine that spinning starves everyone (3x slower prompt processing seen)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"quantdrop: error: unknown verb {verb!r} (one of: {', '.join(VERBS)})", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    parser = argparse.ArgumentParser(prog=f"quantdrop {verb}", description=VERBS[verb][1])
    module.configure(parser)
    args = parser.parse_args(rest)
    try:
        code = module.main(args)
    except QuantdropError as err:
        print(f"quantdrop {verb}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"quantdrop {verb}: interrupted; finished work is kept, run the same command to resume",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # an internal bug: still one line unless asked for the traceback
        if os.environ.get("QUANTDROP_DEBUG"):
            raise
        print(f"quantdrop {verb}: internal error: {type(err).__name__}: {err} "
              "(set QUANTDROP_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
