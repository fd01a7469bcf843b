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
from quantdrop.tune.command import DEFAULT_TYPES, _candidates, parse_types
from quantdrop.tune.sensitivity import derive_priors, tier1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--scales", default=None, help="JSON {class: scale} from tier 2")
    args = ap.parse_args()
    scales = json.loads(Path(args.scales).read_text()) if args.scales else {}
    measured = []
    for m in args.models:
        inv = read_gguf_inventory(m)
        sens = tier1(m, inv, _candidates(inv, parse_types(DEFAULT_TYPES), False), cache_dir=cache_dir() / "tune")
        measured.append((inv, sens, scales))
    label = ", ".join(Path(m).stem for m in args.models) + " (tier 1, unweighted)"
    print(json.dumps(derive_priors(measured, label), indent=1))


if __name__ == "__main__":
    main()
