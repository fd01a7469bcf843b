"""Tier 1: imatrix-weighted quantization error with ggml's kernels, checked against gguf-py's
independent numpy dequantization and the file's own imatrix."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

from quantdrop import kernels
from quantdrop.ggufio import read_tensor
from quantdrop.imatrix_io import read_normalized
from quantdrop.inventory import read_gguf_inventory
from quantdrop.tune.command import _candidates, parse_types
from quantdrop.tune.sensitivity import tier1
from tests.tune.helpers import synthetic_model, write_imatrix


@pytest.mark.parametrize("qtype", [T.Q8_0, T.Q5_0, T.Q4_K, T.Q6_K])
def test_ggml_dequantization_matches_gguf_py(qtype: T) -> None:
    rows = np.random.default_rng(3).standard_normal((8, 512)).astype(np.float32)
    buf = np.empty(8 * kernels.row_size(qtype, 512), dtype=np.uint8)
    kernels.quantize_rows(qtype, rows, buf)
    assert np.array_equal(kernels.dequantize_rows(qtype, buf, 512), dequantize(buf, qtype).reshape(8, 512))


def _reference_error(path: Path, name: str, qtype: T, imat: np.ndarray | None) -> float:
    header = {t.name: t for t in read_gguf_inventory(path).tensors}
    from quantdrop.ggufio import read_header

    src = {t.name: t for t in read_header(path).tensors}[name]
    n = header[name].shape[0]
    w = read_tensor(path, src.offset, src.nbytes).view(np.float16).astype(np.float32).reshape(-1, n)
    buf = np.empty(w.shape[0] * kernels.row_size(qtype, n), dtype=np.uint8)
    kernels.quantize_rows(qtype, w, buf, imat)
    diff = dequantize(buf, qtype).reshape(w.shape) - w
    weights = np.ones(n) if imat is None else imat.astype(np.float64)
    return float(((diff.astype(np.float64) ** 2).sum(axis=0) * weights).sum())


@pytest.mark.parametrize("with_imatrix", [False, True])
def test_tier1_equals_an_independent_computation(tmp_path: Path, with_imatrix: bool) -> None:
    model = synthetic_model(tmp_path)
    inv = read_gguf_inventory(model)
    imat = read_normalized(write_imatrix(model, tmp_path / "imatrix.gguf")) if with_imatrix else None
    cands = _candidates(inv, parse_types("q2_k,q4_k,q8_0"), with_imatrix)
    sens = tier1(model, inv, cands, imat, threads=2)
    assert sens.weighted == with_imatrix
    for name in ("blk.1.attn_q.weight", "blk.2.ffn_down.weight", "output.weight"):
        for q in cands[name]:
            ref = _reference_error(model, name, q, None if imat is None else imat[name])
            assert sens.error[name][q.name] == pytest.approx(ref, rel=1e-6)
        errs = [sens.error[name][q.name] for q in (T.Q2_K, T.Q4_K, T.Q8_0)]
        assert errs[0] > errs[1] > errs[2] > 0


def test_token_embedding_error_is_per_token_and_cached(tmp_path: Path) -> None:
    model = synthetic_model(tmp_path)
    inv = read_gguf_inventory(model)
    cands = _candidates(inv, parse_types("q4_k"), False)
    sens = tier1(model, inv, cands, cache_dir=tmp_path / "cache")
    ref = _reference_error(model, "token_embd.weight", T.Q4_K, None) / inv.tensor("token_embd.weight").shape[1]
    assert sens.error["token_embd.weight"]["Q4_K"] == pytest.approx(ref, rel=1e-6)
    again = tier1(model, inv, cands, cache_dir=tmp_path / "cache")
    assert again.error == sens.error and "cache" in again.notes[0]


def test_moe_experts_use_their_own_imatrix_slice(tmp_path: Path) -> None:
    model = synthetic_model(tmp_path, "deepseek2", n_layer=3)
    inv = read_gguf_inventory(model)
    imat = read_normalized(write_imatrix(model, tmp_path / "imatrix.gguf"))
    cands = {"blk.1.ffn_up_exps.weight": [T.Q4_K]}
    sens = tier1(model, inv, cands, imat, threads=2)
    t = inv.tensor("blk.1.ffn_up_exps.weight")
    n, n_rows, n_exp = t.shape
    from quantdrop.ggufio import read_header

    src = {x.name: x for x in read_header(model).tensors}[t.name]
    w = read_tensor(model, src.offset, src.nbytes).view(np.float16).astype(np.float32).reshape(n_exp, n_rows, n)
    im = imat[t.name].reshape(n_exp, n)
    total = 0.0
    for e in range(n_exp):
        buf = np.empty(n_rows * kernels.row_size(T.Q4_K, n), dtype=np.uint8)
        kernels.quantize_rows(T.Q4_K, np.ascontiguousarray(w[e]), buf, im[e])
        diff = dequantize(buf, T.Q4_K).reshape(n_rows, n) - w[e]
        total += float(((diff.astype(np.float64) ** 2).sum(axis=0) * im[e]).sum())
    used = inv.hparams.n_expert_used / inv.hparams.n_expert
    assert sens.error[t.name]["Q4_K"] == pytest.approx(total * used, rel=1e-6)


def test_a_tied_token_embedding_counts_as_the_output_projection(tmp_path: Path) -> None:
    model = synthetic_model(tmp_path, "gemma3")  # no output.weight: token_embd is also the output
    inv = read_gguf_inventory(model)
    sens = tier1(model, inv, {"token_embd.weight": [T.Q4_K]})
    ref = _reference_error(model, "token_embd.weight", T.Q4_K, None)
    assert sens.error["token_embd.weight"]["Q4_K"] == pytest.approx(ref, rel=1e-6)


def test_a_tensor_the_imatrix_misses_gets_the_median_importance(tmp_path: Path) -> None:
    model = synthetic_model(tmp_path)
    inv = read_gguf_inventory(model)
    imat = read_normalized(write_imatrix(model, tmp_path / "imatrix.gguf"))  # no token_embd entry
    sens = tier1(model, inv, {"token_embd.weight": [T.Q4_K]}, imat)
    neutral = float(np.median([v.mean() for v in imat.values()]))
    rows = inv.tensor("token_embd.weight").shape[1]
    ref = _reference_error(model, "token_embd.weight", T.Q4_K, None) / rows * neutral
    assert sens.error["token_embd.weight"]["Q4_K"] == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("arch", ["llama", "deepseek2"])
def test_the_kept_pool_assembles_files_identical_to_quantizing(tmp_path: Path, arch: str, monkeypatch) -> None:
    """Tier 1's kept tensors (for tier 2's trials) are byte for byte what quantize writes, imatrix included."""
    qmod = importlib.import_module("quantdrop.quantize")  # the module: quantdrop.quantize is the function
    model = synthetic_model(tmp_path, arch, n_layer=3)
    inv = read_gguf_inventory(model)
    imatrix = write_imatrix(model, tmp_path / "imatrix.gguf")
    cands = _candidates(inv, parse_types("q2_k,q3_k,q4_k,q6_k"), True)
    sens = tier1(model, inv, cands, read_normalized(imatrix), threads=2, pool_dir=tmp_path / "pool")
    assert sorted(p.name for p in sens.pool) == sorted(
        f"pool-{q.name}.gguf" for q in {q for v in cands.values() for q in v}
    )
    scratch = qmod.quantize(model, tmp_path / "scratch.gguf", recipe="Q3_K_M", imatrix=imatrix, threads=2)
    streamed: list[str] = []
    stream = qmod._Quantizer.stream
    monkeypatch.setattr(qmod._Quantizer, "stream", lambda self, e, *a: streamed.append(e.name) or stream(self, e, *a))
    pooled = qmod.quantize(model, tmp_path / "pooled.gguf", recipe="Q3_K_M", imatrix=imatrix, reuse_from=sens.pool)
    assert pooled.path.read_bytes() == scratch.path.read_bytes()
    from_pool = {e.name for e in scratch.plan.entries if e.name in cands and e.type in cands[e.name]}
    assert from_pool and not from_pool & set(streamed)  # every pooled tensor copied, none quantized again
