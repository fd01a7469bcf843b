"""Proxies on the embedded model: KL ordering by bits (acceptance 3) and an independent numpy check.

The independent computation gets every position's logits through llama-cpp-python's high-level
`Llama(logits_all=True).eval` (not the batch code under test) and does the softmax, KL and
perplexity in float64 over the full vocabulary, without llama.cpp's uint16 log-prob storage.
"""

from __future__ import annotations

import itertools
import math
from importlib import import_module

import numpy as np
import pytest

px = import_module("quantdrop.proxies")  # the module; `quantdrop.proxies` is the function


pytestmark = pytest.mark.slow

N_CTX, CHUNKS = 128, 3


@pytest.fixture(scope="module")
def results(reference_gguf, variants, tmp_path_factory) -> dict[str, px.ProxyResult]:
    cache = tmp_path_factory.mktemp("proxy-cache")
    out = px.proxies(reference_gguf, list(variants.values()), ctx=N_CTX, chunks=CHUNKS, cache_dir=cache, progress=False)
    return dict(zip(variants, out, strict=True)) | {"_cache": cache}  # type: ignore[dict-item]


def test_kl_divergence_grows_as_bits_shrink(results) -> None:
    kld = [results[name].kld_mean for name in ("Q8_0", "Q6_K", "Q4_K_M", "Q3_K_M", "Q2_K")]
    assert all(a < b for a, b in itertools.pairwise(kld)), kld
    assert results["Q8_0"].same_top > results["Q2_K"].same_top
    assert results["Q2_K"].ppl > results["Q8_0"].ppl
    r = results["Q8_0"]
    assert r.n_tokens == CHUNKS * (N_CTX - 1 - N_CTX // 2)
    assert r.kld_median <= r.kld_mean <= r.kld_p99 <= r.kld_max


def _all_logits(path, tokens: np.ndarray) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=N_CTX, n_batch=N_CTX, logits_all=True, verbose=False)
    add_bos = llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model))
    rows = []
    for chunk in tokens:
        chunk = chunk.tolist()
        if add_bos:
            chunk[0] = llm.token_bos()
        llm.reset()
        llm.eval(chunk)
        rows.append(np.array(llm.scores[N_CTX // 2 : N_CTX - 1], dtype=np.float64))
    llm.close()
    return np.stack(rows)  # (chunks, rows, vocab)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


@pytest.fixture(scope="module")
def independent(results, reference_gguf, variants) -> dict[str, np.ndarray]:
    """Float64 log-softmax of every scored position, for the reference and two variants."""
    ref = px.reference_log_probs(
        reference_gguf, n_ctx=N_CTX, chunks=CHUNKS, cache_dir=results["_cache"], progress=False
    )
    tokens = ref.tokens()
    import llama_cpp

    body, _ = px.load_text(None)
    vocab_only = llama_cpp.Llama(str(reference_gguf), vocab_only=True, verbose=False)
    assert vocab_only.tokenize(body.encode(), add_bos=True)[: tokens.size] == tokens.ravel().tolist()
    out = {"tokens": tokens, "reference": _all_logits(reference_gguf, tokens)}
    out |= {name: _log_softmax(_all_logits(variants[name], tokens)) for name in ("Q8_0", "Q2_K")}
    return out


@pytest.mark.parametrize("name", ["Q8_0", "Q2_K"])
def test_agrees_with_independent_numpy_softmax(results, independent, name) -> None:
    x = independent["reference"]
    lp, lq = _log_softmax(x), independent[name]
    targets = independent["tokens"][:, N_CTX // 2 + 1 :, None]
    nll = -np.take_along_axis(lq, targets, -1).ravel()
    nll_ref = -np.take_along_axis(lp, targets, -1).ravel()
    kl = (np.exp(lp) * (lp - lq)).sum(-1).ravel()
    top = (lp.argmax(-1) == lq.argmax(-1)).mean()

    r = results[name]
    assert r.ppl == pytest.approx(math.exp(nll.mean()), rel=1e-3)
    assert r.ppl_err == pytest.approx(math.exp(nll.mean()) * nll.std() / math.sqrt(len(nll) - 1), rel=1e-2)
    # the reference side is read back from llama.cpp's uint16 log-probs, which floor log p at
    # max(min logit, max logit - 16) - max logit - log-sum-exp: the same floor here
    mx = x.max(-1)
    floor = np.maximum(x.min(-1), mx - 16) - mx - np.log(np.exp(x - mx[..., None]).sum(-1))
    nll_floored = np.minimum(nll_ref, -floor.ravel())
    assert r.ppl_base == pytest.approx(math.exp(nll_floored.mean()), rel=1e-3)
    assert r.kld_mean == pytest.approx(kl.mean(), rel=2e-2, abs=2e-4)
    assert r.kld_median == pytest.approx(np.median(kl), rel=5e-2, abs=2e-4)
    assert r.kld_p99 == pytest.approx(np.percentile(kl, 99), rel=5e-2)
    assert r.same_top == pytest.approx(top, abs=0.01)
