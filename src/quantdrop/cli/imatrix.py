"""`quantdrop imatrix MODEL -o OUT` (or `--show FILE`, `--convert DAT`): `quantdrop.imatrix.imatrix`,
or the `imatrix_io` reader and converter, with the parsed flags."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quantdrop.cli._flags import call_with_flags
from quantdrop.errors import QuantdropError
from quantdrop.imatrix import format_stats, imatrix
from quantdrop.imatrix_io import read_imatrix, write_imatrix


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="the GGUF to calibrate (F16/BF16 for reference statistics)")
    parser.add_argument("-o", "--output", default=None, help="the imatrix to write (llama.cpp's GGUF format)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--text", default=None, help="calibration text file (.txt, or .jsonl of {'text': ...})")
    src.add_argument(
        "--dataset",
        default=None,
        help="built-in calibration text: wiki (default) or mix (chat, code, math; no evaluated items)",
    )
    parser.add_argument("--chunks", type=int, default=None, help="use at most N chunks (default: all)")
    parser.add_argument("--ctx", type=int, default=512, help="tokens per chunk (default 512)")
    parser.add_argument(
        "--skip-chunks",
        type=int,
        default=0,
        help="skip the first N chunks of the text "
        "(llama-imatrix --chunk), e.g. to keep them held out for `quantdrop proxies`",
    )
    parser.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    parser.add_argument("--process-output", action="store_true", help="also collect output.weight")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT.partial.npz after a kill")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument(
        "--show",
        metavar="FILE",
        default=None,
        help="print per-tensor statistics of an "
        "imatrix (GGUF or legacy .dat), worst covered first; with MODEL, warn on uncovered weights",
    )
    parser.add_argument(
        "--convert",
        metavar="DAT",
        default=None,
        help="convert a legacy .dat imatrix to GGUF (-o), with --ctx as its chunk size",
    )


def main(args: argparse.Namespace) -> int:
    if args.show:
        print(format_stats(read_imatrix(args.show), args.show, args.model))
        return 0
    if args.output is None:
        raise QuantdropError("-o/--output is required")
    if args.convert:
        out = Path(args.output)
        if out.exists() and not args.force:
            raise QuantdropError(f"{out} exists (pass --force to overwrite)")
        im = read_imatrix(args.convert).to_gguf_counts(args.ctx)
        write_imatrix(im, out)
        print(f"wrote {out}: {len(im.sums)} entries")
        return 0
    if args.model is None:
        raise QuantdropError("MODEL is required (or --show FILE / --convert DAT)")
    r = call_with_flags(imatrix, args, progress=sys.stderr.isatty())
    for note in r.notes:
        print(f"note: {note}", file=sys.stderr)
    resumed = f", resumed after {r.resumed_from}" if r.resumed_from else ""
    print(
        f"wrote {r.path}: {r.entries} entries from {r.n_chunks} chunks of {r.n_ctx} tokens{resumed}; "
        f"{r.tokens_per_second:.1f} tokens/s"
    )
    return 0
