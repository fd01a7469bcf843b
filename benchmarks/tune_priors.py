"""Derive quantdrop.tune's shipped priors (src/quantdrop/tune/priors.json) from measured models.

    python benchmarks/tune_priors.py MODEL.gguf [MODEL.gguf ...] [--scales scales.json] > priors.json

Runs tier 1 (cached) on each F16 GGUF over the default types and writes, per type, the median relative
error (error / signal) and, per tensor class, the median loss per element at unit relative error
(times the tier 2 class scale when `--scales` gives one per class), normalised to the MLP's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from quantdrop.demo_model import cache_dir
from quantdrop.inventory import read_gguf_inventory
from quantdrop.recipes.llamacpp import layer_of
from quantdrop.tune.command import DEFAULT_TYPES, _candidates, parse_types
from quantdrop.tune.sensitivity import derive_priors, tier1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--scales", default=None, help="JSON {class: scale} from tier 2")
    ap.add_argument("--layers", type=int, default=None, help="only blocks below N and output (faster)")
    ap.add_argument(
        "--errors-from",
        default=None,
        help="take the per-type relative errors from this F16 GGUF "
        "(e.g. random Gaussian weights) instead: a model rebuilt from a 4-bit file re-quantizes "
        "losslessly to its own grid, which says nothing about real F16 weights",
    )
    args = ap.parse_args()
    scales = json.loads(Path(args.scales).read_text()) if args.scales else {}
    measured = []
    for m in args.models:
        inv = read_gguf_inventory(m)
        cands = _candidates(inv, parse_types(DEFAULT_TYPES), False)
        if args.layers is not None:
            cands = {n: c for n, c in cands.items() if (layer_of(n) or 0) < args.layers}
        sens = tier1(m, inv, cands, cache_dir=cache_dir() / "tune")
        measured.append((inv, sens, scales))
    part = f", blocks 0-{args.layers - 1}" if args.layers else ""
    scaled = ", x tier 2 class scales" if scales else ""
    label = ", ".join(Path(m).stem for m in args.models) + f" (tier 1, unweighted{part}{scaled})"
    priors = derive_priors(measured, label)
    if args.errors_from:
        inv = read_gguf_inventory(args.errors_from)
        sens = tier1(args.errors_from, inv, _candidates(inv, parse_types(DEFAULT_TYPES + ",q4_0,q5_0,q5_1"), False))
        priors["relative_error"] = derive_priors([(inv, sens, {})], "")["relative_error"]
        priors["derived_from"] += f"; type errors from {Path(args.errors_from).stem}"
    print(json.dumps(priors, indent=1))


if __name__ == "__main__":
    main()
