"""Acceptance 1-3 of the quantize issue: our files equal llama.cpp's, tensor for tensor, and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantdrop.quantize import quantize
from quantdrop.recipes.llamacpp import FTYPES
from tests.reference import llama_cpp_quantize, tensor_bytes_by_name
from tests.synthetic_gguf import write_synthetic


def assert_same_tensors(ours: Path, ref: Path) -> None:
    a, b = tensor_bytes_by_name(ours), tensor_bytes_by_name(ref)
    assert a.keys() == b.keys()
    diff = [n for n in a if a[n] != b[n]]
    assert not diff, f"{len(diff)} tensors differ from llama.cpp, e.g. {diff[:3]}: " + ", ".join(
        f"{n}: ours {a[n][0]} vs llama.cpp {b[n][0]}" for n in diff[:3]
    )


@pytest.mark.parametrize("preset", ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"])
def test_reference_model_matches_llama_cpp(demo_model: Path, tmp_path: Path, preset: str) -> None:
    ref = tmp_path / "ref.gguf"
    llama_cpp_quantize(demo_model, ref, FTYPES[preset][0])
    ours = quantize(demo_model, tmp_path / "ours.gguf", recipe=preset, threads=2).path
    assert_same_tensors(ours, ref)


@pytest.fixture(scope="module")
def synthetic_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("synthetic")
    return {a: write_synthetic(d / f"{a}.gguf", a) for a in ("llama", "qwen2", "qwen3", "gemma3", "deepseek2")}


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gemma3", "deepseek2"])
def test_every_preset_matches_llama_cpp_on_each_architecture(
    synthetic_models: dict[str, Path], tmp_path: Path, arch: str
) -> None:
    # row lengths of 256 keep the K-quants (no fallback), so llama.cpp's per-arch rules decide every type
    for preset in ("Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K"):
        ref, ours = tmp_path / f"ref-{preset}.gguf", tmp_path / f"ours-{preset}.gguf"
        llama_cpp_quantize(synthetic_models[arch], ref, FTYPES[preset][0])
        quantize(synthetic_models[arch], ours, recipe=preset, threads=2)
        assert_same_tensors(ours, ref)


def test_custom_rules_match_llama_cpp_tensor_type_overrides(demo_model: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "mine.toml"
    recipe.write_text(
        'name = "mine"\ndefault = "q4_k"\nbase = "Q4_K_M"\n'
        '[[rules]]\npattern = "blk\\\\.1[0-9]\\\\.ffn_down"\ntype = "q6_k"\n'
        '[[rules]]\npattern = "ffn_down"\ntype = "q8_0"\n'
        '[[rules]]\npattern = "attn_(q|k)\\\\.weight"\ntype = "q5_0"\n'
    )
    # the first matching pattern wins, in llama.cpp as in a recipe
    overrides = {r"blk\.1[0-9]\.ffn_down": "q6_k", "ffn_down": "q8_0", r"attn_(q|k)\.weight": "q5_0"}
    ref = tmp_path / "ref.gguf"
    llama_cpp_quantize(demo_model, ref, FTYPES["Q4_K_M"][0], overrides=overrides)
    ours = quantize(demo_model, tmp_path / "ours.gguf", recipe=str(recipe)).path
    assert_same_tensors(ours, ref)
    types = {n: t for n, (t, _) in tensor_bytes_by_name(ours).items()}
    assert types["blk.3.ffn_down.weight"] == "Q8_0" and types["blk.12.ffn_down.weight"] == "Q6_K"
    assert types["blk.0.attn_k.weight"] == "Q5_0"


def test_imatrix_matches_llama_cpp(synthetic_models: dict[str, Path], tmp_path: Path) -> None:
    """A GGUF imatrix (llama.cpp's in_sum2/counts format) changes the data exactly as in llama.cpp,
    including per-expert slices of 3-D expert tensors and an IQ type that cannot work without one."""
    from gguf import GGUFReader, GGUFWriter

    src = synthetic_models["deepseek2"]
    rng = np.random.default_rng(1)
    values, writer = {}, GGUFWriter(tmp_path / "imatrix.gguf", "imatrix")
    writer.add_array("imatrix.datasets", ["synthetic"])
    writer.add_uint32("imatrix.chunk_count", 4)
    writer.add_uint32("imatrix.chunk_size", 512)
    for t in GGUFReader(src).tensors:
        if len(t.shape) < 2 or not t.name.endswith(".weight") or "norm" in t.name or "gate_inp" in t.name:
            continue
        n_mat = int(t.shape[2]) if len(t.shape) > 2 else 1
        sums = rng.uniform(0.1, 5.0, (n_mat, int(t.shape[0]))).astype(np.float32)
        counts = rng.integers(1, 50, n_mat).astype(np.float32)
        writer.add_tensor(f"{t.name}.in_sum2", sums)
        writer.add_tensor(f"{t.name}.counts", counts)
        values[t.name] = (sums / counts[:, None]).reshape(-1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    ref = tmp_path / "ref.gguf"
    llama_cpp_quantize(src, ref, FTYPES["Q4_K_M"][0], imatrix=values)
    ours = quantize(src, tmp_path / "ours.gguf", recipe="Q4_K_M", imatrix=tmp_path / "imatrix.gguf").path
    assert_same_tensors(ours, ref)
    without = tensor_bytes_by_name(quantize(src, tmp_path / "plain.gguf", recipe="Q4_K_M").path)
    assert without["blk.2.ffn_down_exps.weight"] != tensor_bytes_by_name(ours)["blk.2.ffn_down_exps.weight"]

    iq = tmp_path / "iq.toml"
    iq.write_text(
        'name = "iq2"\ndefault = "q4_k"\n[[rules]]\npattern = "blk\\\\.2\\\\.ffn_(up|gate)_exps"\ntype = "iq2_xs"\n'
    )
    ref_iq = tmp_path / "ref-iq.gguf"
    llama_cpp_quantize(
        src, ref_iq, FTYPES["Q4_K_M"][0], imatrix=values, pure=True, overrides={r"blk\.2\.ffn_(up|gate)_exps": "iq2_xs"}
    )
    ours_iq = quantize(src, tmp_path / "ours-iq.gguf", recipe=str(iq), imatrix=tmp_path / "imatrix.gguf").path
    assert_same_tensors(ours_iq, ref_iq)


@pytest.mark.parametrize(
    "preset",
    [
        "Q8_0",
        "Q6_K",
        "Q5_K_M",
        "Q5_K_S",
        "Q4_K_M",
        "Q4_K_S",
        "Q3_K_L",
        "Q3_K_M",
        "Q3_K_S",
        "Q2_K",
        "Q4_K",
        "Q3_K",
        "DQ3_K_M",
        "Q2_K_L",
        "UD-Q2_K_XL",
    ],
)
def test_every_output_loads_and_generates(demo_model: Path, tmp_path: Path, preset: str) -> None:
    import llama_cpp

    out = quantize(demo_model, tmp_path / f"{preset}.gguf", recipe=preset).path
    llm = llama_cpp.Llama(str(out), n_ctx=128, n_threads=2, verbose=False, seed=1)
    text = llm.create_completion("The capital of France is", max_tokens=8, temperature=0.0)["choices"][0]["text"]
    assert len(llm.tokenize(text.encode(), add_bos=False)) >= 1


def test_requantizing_a_q8_0_source_matches_llama_cpp(synthetic_models: dict[str, Path], tmp_path: Path) -> None:
    """A quantized source needs --allow-requantize; then it is dequantized (with gguf) exactly as
    llama.cpp dequantizes it, so the result is still bit-identical."""
    from quantdrop.errors import QuantdropError

    q8 = tmp_path / "q8.gguf"
    llama_cpp_quantize(synthetic_models["qwen2"], q8, FTYPES["Q8_0"][0])
    with pytest.raises(QuantdropError, match="--allow-requantize"):
        quantize(q8, tmp_path / "refused.gguf", recipe="Q4_K_M")
    assert not (tmp_path / "refused.gguf").exists()

    import ctypes

    import llama_cpp

    ref = tmp_path / "ref.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread, params.allow_requantize = FTYPES["Q4_K_M"][0], 2, True
    assert llama_cpp.llama_model_quantize(str(q8).encode(), str(ref).encode(), ctypes.byref(params)) == 0
    ours = quantize(q8, tmp_path / "ours.gguf", recipe="Q4_K_M", allow_requantize=True).path
    assert_same_tensors(ours, ref)


def test_reusing_an_earlier_output_writes_the_same_file(synthetic_models: dict[str, Path], tmp_path: Path) -> None:
    """quantize(reuse_from=...) copies unchanged tensors from an earlier output (tune's tier 2 trials):
    the file equals a fresh quantization byte for byte, and changed tensors are quantized again."""
    src = synthetic_models["llama"]
    base = quantize(src, tmp_path / "base.gguf", recipe="Q4_K_M").path
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'name = "Q4_K_M-low"\ndefault = "q4_k"\nbase = "Q4_K_M"\n'
        '[[rules]]\npattern = "blk\\\\.1\\\\.ffn_down"\ntype = "q2_k"\n'
    )
    fresh = quantize(src, tmp_path / "fresh.gguf", recipe=str(recipe)).path
    reused = quantize(src, tmp_path / "reused.gguf", recipe=str(recipe), reuse_from=base).path
    assert reused.read_bytes() == fresh.read_bytes()
    assert tensor_bytes_by_name(reused)["blk.1.ffn_down.weight"] != tensor_bytes_by_name(base)["blk.1.ffn_down.weight"]
