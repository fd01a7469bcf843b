"""The reference log-prob encoding and the statistics, against llama.cpp's perplexity.cpp conventions."""

from __future__ import annotations

import math
import struct
from importlib import import_module

import numpy as np
import pytest

px = import_module("quantdrop.proxies")  # the module; `quantdrop.proxies` is the function


def _llama_cpp_row(logits: np.ndarray) -> np.ndarray:
    """A line-by-line transcription of perplexity.cpp's `log_softmax(n_vocab, logits, log_prob, tok)`."""
    x = logits.astype(np.float32)
    max_logit, min_logit = np.float32(x.max()), np.float32(x.min())
    min_logit = max(min_logit, np.float32(max_logit - 16))
    sum_exp = sum(float(np.exp(np.float32(v - max_logit))) for v in x)
    log_sum_exp = np.float32(math.log(sum_exp))
    min_log_prob = np.float32(min_logit - max_logit - log_sum_exp)
    scale = np.float32((max_logit - min_logit) / np.float32(65535))
    out = np.zeros(px.row_width(len(x)), dtype=np.uint16)
    out[:4] = np.array([scale, min_log_prob], dtype=np.float32).view(np.uint16)
    inv = np.float32(1) / scale
    for i, v in enumerate(x):
        if v > min_logit:
            val = np.float32(inv * np.float32(v - min_logit))
            out[4 + i] = int(np.rint(val))  # nearest_int: fval + 12582912.f rounds half to even
    return out


def test_encoding_matches_the_scalar_llama_cpp_loop() -> None:
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((5, 301)) * 6).astype(np.float32)
    logits[2, 7] = 40.0  # one dominant token: most others fall below the 16-nat floor
    encoded = px.encode_log_probs(logits)
    assert encoded.shape == (5, 2 * 151 + 4)
    for row in range(5):
        expected = _llama_cpp_row(logits[row])
        assert np.abs(encoded[row].astype(int) - expected.astype(int)).max() <= 1  # float rounding at .5
        assert np.array_equal(encoded[row, :4], expected[:4])


def test_decoded_log_probs_are_within_half_a_step_of_log_softmax() -> None:
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((4, 1000)) * 3).astype(np.float32)
    decoded = px.decode_log_probs(px.encode_log_probs(logits), 1000)
    exact = logits - logits.max(1, keepdims=True)
    exact = exact - np.log(np.exp(exact.astype(np.float64)).sum(1, keepdims=True))
    step = (logits.max(1) - np.maximum(logits.min(1), logits.max(1) - 16)) / 65535
    above = exact > -16 + 1e-3
    err = np.abs(decoded - exact)
    assert np.all(err[above] <= (step[:, None] / 2 + 2e-5).repeat(1000, 1)[above])


def test_kl_and_nll_of_one_chunk_agree_with_float64_softmax() -> None:
    rng = np.random.default_rng(2)
    ref = (rng.standard_normal((40, 500)) * 2).astype(np.float32)
    var = ref + (rng.standard_normal(ref.shape) * 0.3).astype(np.float32)
    targets = rng.integers(0, 500, size=40)
    stats = px.TokenStats.empty()
    stats.add(var, px.encode_log_probs(ref), targets)

    def logp(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        return x - x.max(1, keepdims=True) - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True))

    lp, lq = logp(ref), logp(var)
    kl = (np.exp(lp) * (lp - lq)).sum(1)
    np.testing.assert_allclose(np.concatenate(stats.kld), kl, rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(np.concatenate(stats.nll), -lq[np.arange(40), targets], rtol=1e-5)
    assert stats.same_top == int((ref.argmax(1) == var.argmax(1)).sum())


def test_summary_uses_llama_perplexity_formulas() -> None:
    rng = np.random.default_rng(3)
    nll = rng.gamma(2.0, 1.5, 400)
    kld = np.sort(rng.gamma(0.5, 0.02, 400))
    stats = px.TokenStats([nll], [nll * 0.9], [kld], [np.zeros(400)], same_top=300)
    r = px.summarize(stats, variant="v", fingerprint="f", reference="r", text="t", n_ctx=512, n_chunks=1)
    # Final estimate: PPL = exp(mean nll) +/- ppl * sqrt((<nll^2> - <nll>^2) / (n - 1))
    assert r.ppl == pytest.approx(math.exp(nll.mean()))
    assert r.ppl_err == pytest.approx(math.exp(nll.mean()) * nll.std() / math.sqrt(399))
    assert r.kld_mean == pytest.approx(kld.mean())
    assert r.kld_median == pytest.approx(0.5 * (kld[199] + kld[200]))
    p = 0.99 * 399  # percentile(): (1 - p) * v[ip] + p * v[ip + 1] at p = fraction * (n - 1)
    assert r.kld_p99 == pytest.approx((1 - (p - int(p))) * kld[int(p)] + (p - int(p)) * kld[int(p) + 1])
    assert r.same_top == pytest.approx(0.75)
    assert r.same_top_err == pytest.approx(math.sqrt(0.75 * 0.25 / 399))
    assert r.n_tokens == 400


def test_reference_file_header_is_llama_perplexity_layout(tmp_path) -> None:
    ref = px.ReferenceLogProbs(tmp_path / "x.logprobs", n_ctx=8, n_vocab=5, n_chunks=2, fingerprint="f", text="t")
    tokens = np.arange(16, dtype=np.int32)
    logits = np.random.default_rng(4).standard_normal((3, 5)).astype(np.float32)
    with ref.path.open("wb") as f:  # the layout perplexity.cpp writes with --kl-divergence-base
        f.write(b"_logits_" + struct.pack("<Iii", 8, 5, 2) + tokens.tobytes())
        for _ in range(2):
            f.write(px.encode_log_probs(logits).tobytes())
    assert px.read_reference_header(ref.path) == (8, 5, 2)
    assert np.array_equal(ref.tokens().ravel(), tokens)
    assert ref.rows == 3  # n_ctx - 1 - n_ctx/2
    assert np.array_equal(ref.chunk(1), px.encode_log_probs(logits))
    assert ref.path.stat().st_size == ref.header_bytes + 2 * ref.chunk_bytes
