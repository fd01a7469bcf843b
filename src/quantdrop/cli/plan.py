"""`quantdrop plan MODEL --recipes R,...`: `quantdrop.plan.plan` with the parsed flags; the CLI's
`--flash-attn yes|no` and the like become the function's bools here."""

from __future__ import annotations

import argparse
import json
import sys
import time

from quantdrop.cli._flags import add_flag, add_yes_no
from quantdrop.memory import KV_TYPES
from quantdrop.plan import AS_IS, DEFAULT_RECIPES, plan, render_table

SWITCHES = ("mla_split", "flash_attn", "swa_full", "mmap")  # yes|no on the CLI, bools in the API


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a GGUF file, an HF model directory or its config.json")
    add_flag(
        parser,
        "--recipes",
        "--recipe",
        help=f"comma-separated recipes, or {AS_IS} for the GGUF as it is "
        f"(default: {AS_IS} for a quantized GGUF, else {','.join(DEFAULT_RECIPES)})",
    )
    parser.add_argument("--ctx", type=int, default=32768, help="context length per sequence (default 32768)")
    parser.add_argument("--kv-type", default="f16", choices=KV_TYPES, help="KV cache type (default f16)")
    add_yes_no(
        parser, "--mla-split", True, help="DeepSeek from a config: split attn_kv_b like today's converter (default yes)"
    )
    parser.add_argument(
        "--kv-layout",
        default="auto",
        choices=("auto", "full", "latent"),
        help="DeepSeek KV cache: full heads, MLA latent, or auto (follows the model)",
    )
    parser.add_argument("--parallel", type=int, default=1, help="parallel sequences (default 1)")
    parser.add_argument(
        "--devices",
        help="device sets, e.g. 8xH100-80G,8x910B-64G (+ joins a mixed set); cpu (this machine), cpu-32G: CPU hosts",
    )
    parser.add_argument("--n-ubatch", type=int, default=512, help="llama.cpp's physical batch (default 512)")
    add_yes_no(parser, "--flash-attn", True, help="flash attention (no: the KQ score matrix is in the compute buffer)")
    add_yes_no(parser, "--swa-full", False, help="full-size cache for sliding-window layers (llama-server: no)")
    add_yes_no(
        parser,
        "--mmap",
        True,
        help="llama.cpp maps the model file (default yes; no = --no-mmap): on a CPU "
        "host, mapped weights that are also repacked count twice",
    )
    parser.add_argument(
        "--overhead-gib", type=float, help="runtime overhead per device (default: each device's, devices.toml)"
    )
    parser.add_argument(
        "--headroom-gib",
        type=float,
        default=1.0,
        help="free memory a device must keep to count as fitting (default 1.0)",
    )
    parser.add_argument("--accuracy", help="measured scores: RECIPE=SCORE,... or a JSON file")
    parser.add_argument("--json", action="store_true", help="print the documented JSON instead of a table")


def main(args: argparse.Namespace) -> int:
    kwargs = vars(args).copy()
    as_json = kwargs.pop("json")
    kwargs.update({k: kwargs[k] == "yes" for k in SWITCHES})
    start = time.perf_counter()
    result = plan(**kwargs)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(render_table(result), flush=True)
        print(f"planned in {time.perf_counter() - start:.2f} s", file=sys.stderr)
    return 0
