"""Against llama.cpp's own llama-imatrix (optional: build it with scripts/build_reference_tools.sh and
put it on PATH or in $LLAMA_IMATRIX). Same model, text, ctx, chunks and batch (-b = ctx, one sequence
per batch, as we run): every weight's in_sum2 within a relative 1e-4 and counts equal.

The tolerance's cause: llama-imatrix accumulates in float32, one row after another, where we sum
in float64, and its binary may use other CPU kernels (GGML_NATIVE) than llama-cpp-python's build, so
activations differ in the last bits. Measured on the demo model: at most 1.2e-5 (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from quantdrop.imatrix import imatrix
from quantdrop.imatrix_io import read_imatrix, write_imatrix
from tests.synthetic_gguf import write_moe

BIN = os.environ.get("LLAMA_IMATRIX") or shutil.which("llama-imatrix")
pytestmark = [
    pytest.mark.skipif(
        BIN is None, reason="llama-imatrix not found: run scripts/build_reference_tools.sh, set $LLAMA_IMATRIX"
    )
]
RTOL = 1e-4


def _llama_imatrix(model: Path, text: Path, out: Path, ctx: int, chunks: int) -> Path:
    cmd = [
        BIN,
        "-m",
        str(model),
        "-f",
        str(text),
        "-o",
        str(out),
        "-c",
        str(ctx),
        "-b",
        str(ctx),
        "--chunks",
        str(chunks),
        "-t",
        "2",
        "--no-ppl",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def _assert_same(ours: Path, theirs: Path) -> None:
    a, b = read_imatrix(ours), read_imatrix(theirs)
    assert sorted(a.sums) == sorted(b.sums)
    assert (a.chunk_count, a.chunk_size) == (b.chunk_count, b.chunk_size)
    for name in b.sums:
        np.testing.assert_array_equal(a.counts[name], b.counts[name], err_msg=name)
        np.testing.assert_allclose(a.sums[name], b.sums[name], rtol=RTOL, atol=0, err_msg=name)


@pytest.mark.slow
def test_demo_model_matches_llama_imatrix(demo_model: Path, wiki_text: Path, tmp_path: Path) -> None:
    theirs = _llama_imatrix(demo_model, wiki_text, tmp_path / "theirs.gguf", 512, 2)
    ours = imatrix(demo_model, tmp_path / "ours.gguf", text=wiki_text, ctx=512, chunks=2, threads=2).path
    _assert_same(ours, theirs)
    # our writer reproduces llama.cpp's file byte for byte from the same numbers
    write_imatrix(read_imatrix(theirs), tmp_path / "rewritten.gguf")
    assert (tmp_path / "rewritten.gguf").read_bytes() == theirs.read_bytes()


def test_moe_experts_match_llama_imatrix(wiki_text: Path, tmp_path: Path) -> None:
    model = write_moe(tmp_path / "moe.gguf")
    theirs = _llama_imatrix(model, wiki_text, tmp_path / "theirs.gguf", 64, 4)
    ours = imatrix(model, tmp_path / "ours.gguf", text=wiki_text, ctx=64, chunks=4, threads=2).path
    _assert_same(ours, theirs)
