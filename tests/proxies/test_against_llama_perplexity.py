"""Against llama.cpp's own `llama-perplexity` (tools/perplexity), when its binary is available.

Optional: build it from the llama.cpp that llama-cpp-python vendors (`cmake --build . --target
llama-perplexity`) and put it on PATH or in $LLAMA_PERPLEXITY. Checks both directions: llama-perplexity
reads our reference file and prints our numbers, and writes the same file from the same text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib import import_module

import numpy as np
import pytest

px = import_module("quantdrop.proxies")  # the module; `quantdrop.proxies` is the function


BIN = os.environ.get("LLAMA_PERPLEXITY") or shutil.which("llama-perplexity")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        BIN is None, reason="llama-perplexity not found: build llama.cpp's tools/perplexity, set $LLAMA_PERPLEXITY"
    ),
]
N_CTX, CHUNKS = 256, 3


def _run(*args: object) -> str:
    # flash attention off, as in quantdrop's llama.cpp context (it shifts quantized models' logits a little)
    out = subprocess.run(
        [BIN, *map(str, args), "-c", str(N_CTX), "-b", str(N_CTX), "-t", "2", "-fa", "off"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout + out.stderr


def _value(log: str, label: str) -> float:
    return float(re.search(re.escape(label) + r"\s*:?\s*(-?[\d.]+)", log).group(1))


def test_llama_perplexity_reads_our_reference_file(reference_gguf, variants, tmp_path) -> None:
    ref = px.reference_log_probs(reference_gguf, n_ctx=N_CTX, chunks=CHUNKS, cache_dir=tmp_path, progress=False)
    ours = px.compare(ref, variants["Q4_K_M"], progress=False)
    log = _run("-m", variants["Q4_K_M"], "--kl-divergence-base", ref.path, "--kl-divergence")
    # the same numbers to the digits llama-perplexity prints
    assert _value(log, "Mean PPL(Q)") == pytest.approx(ours.ppl, rel=1e-5)
    assert _value(log, "Mean PPL(base)") == pytest.approx(ours.ppl_base, rel=1e-5)
    assert _value(log, "Mean ln(PPL(Q)/PPL(base))") == pytest.approx(ours.ln_ppl_ratio, abs=2e-6)
    assert _value(log, "Mean    KLD") == pytest.approx(ours.kld_mean, rel=1e-4, abs=2e-6)
    assert _value(log, "Median  KLD") == pytest.approx(ours.kld_median, rel=1e-4, abs=2e-6)
    assert _value(log, "99.0%   KLD") == pytest.approx(ours.kld_p99, rel=1e-4, abs=2e-6)
    assert _value(log, "Same top p:") / 100 == pytest.approx(ours.same_top, abs=1e-5)


def test_llama_perplexity_writes_the_same_reference_file(reference_gguf, tmp_path) -> None:
    body, _ = px.load_text(None)
    text = tmp_path / "wiki.txt"
    text.write_text(body, encoding="utf-8")
    theirs = tmp_path / "theirs.logprobs"
    _run("-m", reference_gguf, "-f", text, "--kl-divergence-base", theirs, "--chunks", CHUNKS)
    ours = px.reference_log_probs(
        reference_gguf, text=text, n_ctx=N_CTX, chunks=CHUNKS, cache_dir=tmp_path, progress=False
    )
    a, b = theirs.read_bytes(), ours.path.read_bytes()
    assert len(a) == len(b)
    assert a[: ours.header_bytes] == b[: ours.header_bytes]  # magic, n_ctx, n_vocab, n_chunk, the tokens
    qa = np.frombuffer(a[ours.header_bytes :], dtype=np.uint16).reshape(-1, px.row_width(ours.n_vocab))
    qb = np.frombuffer(b[ours.header_bytes :], dtype=np.uint16).reshape(-1, px.row_width(ours.n_vocab))
    assert np.array_equal(qa[:, 4:], qb[:, 4:])  # every quantized log-prob identical
    # per token (scale, min log-prob): equal up to the order of the float sum in log-sum-exp
    ha, hb = (np.ascontiguousarray(q[:, :4]).view(np.float32) for q in (qa, qb))
    np.testing.assert_allclose(ha, hb, rtol=1e-6, atol=1e-6)
