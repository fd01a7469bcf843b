"""`quantdrop results --store S`: the paper's table (`quantdrop.eval.results`), or one item explained."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quantdrop.errors import QuantdropError
from quantdrop.eval.results import FORMATS, format_table, results_table
from quantdrop.util import atomic_write, comma_list


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default="quantdrop-eval.sqlite", help="the evaluation store (SQLite)")
    parser.add_argument("--baseline", help="label to compare against (adds the Accuracy drop row)")
    parser.add_argument("--labels", type=comma_list, help="comma-separated labels, in column order (default: all)")
    parser.add_argument("--format", choices=FORMATS, default="md", dest="fmt")
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")
    parser.add_argument(
        "--target-drop",
        type=float,
        metavar="POINTS",
        help="with --baseline: the items and samples each benchmark needs to detect a drop of "
        "this many points (paired, alpha 0.05, 80%% power)",
    )
    parser.add_argument(
        "--explain",
        metavar="BENCH/ITEM[#SAMPLE]",
        help="instead of the table: each stored response of one item, its extracted answer, the "
        "rule that produced it and the verdict (quantdrop.eval.explain)",
    )
    parser.add_argument("--data-dir", help="with --explain: where the benchmark's data is, to score it again")


def _check_output(path: str) -> None:
    """`--output` must be a file in an existing folder (checked before any work)."""
    target = Path(path)
    if target.is_dir():
        raise QuantdropError(f"--output {path} is a directory; give a file name")
    if not target.parent.is_dir():
        raise QuantdropError(f"--output {path}: no directory {target.parent}")


def main(args: argparse.Namespace) -> int:
    if args.explain:
        from quantdrop.eval.explain import explain_text

        text = explain_text(args.store, args.explain, labels=args.labels, data_dir=args.data_dir)
        sys.stdout.write(text + "\n")
        return 0
    if args.output:
        _check_output(args.output)
    table = results_table(args.store, baseline=args.baseline, labels=args.labels, target_drop=args.target_drop)
    text = format_table(table, args.fmt)
    if args.output:
        try:
            atomic_write(args.output, text if text.endswith("\n") else text + "\n")
        except OSError as err:
            raise QuantdropError(f"cannot write --output {args.output}: {err.strerror or err}") from None
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
