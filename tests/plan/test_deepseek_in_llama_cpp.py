"""A tiny DeepSeek-V3 built from a config, loaded by llama.cpp in both converter layouts.

The inventory `hfconfig` builds is written as a GGUF (zero weights, the converter's metadata) and
llama.cpp must accept every tensor name and shape; the KV cache it then allocates must equal ours
(all K/V heads for the attn_kv_b layout, `full`; MLA's latent for attn_k_b/attn_v_b, `latent`), and
its compute buffer must be close to our estimate, with and without flash attention.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import ExpertGatingFuncType, GGUFWriter
from gguf import GGMLQuantizationType as T

from quantdrop.hfconfig import inventory_from_config
from quantdrop.inventory import ModelInventory
from quantdrop.memory import compute_buffer_bytes, kv_bytes_per_layer, layer_shapes

MiB = 1 << 20
TINY_V3 = {  # DeepSeek-V3's structure at toy size
    "model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 64,
    "num_attention_heads": 4, "num_key_value_heads": 4, "q_lora_rank": 32, "kv_lora_rank": 32,
    "qk_nope_head_dim": 16, "qk_rope_head_dim": 16, "v_head_dim": 24, "intermediate_size": 96,
    "moe_intermediate_size": 32, "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2,
    "first_k_dense_replace": 1, "num_hidden_layers": 3, "vocab_size": 256, "topk_method": "noaux_tc",
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "torch_dtype": "bfloat16",
    "tie_word_embeddings": False, "num_nextn_predict_layers": 1,
}


def _byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode alphabet: a complete byte-level BPE vocabulary without merges."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


def write_gguf(inv: ModelInventory, path: Path, mla_split: bool) -> None:
    """What convert_hf_to_gguf.py writes for this config (DeepseekV2Model.set_gguf_parameters)."""
    c, hp = TINY_V3, inv.hparams
    w = GGUFWriter(path, "deepseek2")
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(hp.n_head_kv)
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_leading_dense_block_count(c["first_k_dense_replace"])
    w.add_vocab_size(c["vocab_size"])
    w.add_q_lora_rank(c["q_lora_rank"])
    w.add_kv_lora_rank(c["kv_lora_rank"])
    w.add_key_length(hp.key_length)
    w.add_value_length(hp.value_length)
    if mla_split:
        w.add_key_length_mla(c["qk_nope_head_dim"] + c["qk_rope_head_dim"])
        w.add_value_length_mla(c["v_head_dim"])
    w.add_expert_feed_forward_length(c["moe_intermediate_size"])
    w.add_expert_count(c["n_routed_experts"])
    w.add_expert_used_count(c["num_experts_per_tok"])
    w.add_expert_shared_count(c["n_shared_experts"])
    w.add_expert_weights_scale(2.5)
    w.add_expert_weights_norm(True)
    w.add_expert_gating_func(ExpertGatingFuncType.SIGMOID)
    w.add_rope_dimension_count(c["qk_rope_head_dim"])
    w.add_tokenizer_model("gpt2")
    w.add_token_list(_byte_tokens())
    w.add_token_types([1] * 256)
    w.add_token_merges(["! !"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    for t in inv.tensors:
        numpy_shape = tuple(reversed(t.shape))
        if t.type == T.F32:
            w.add_tensor(t.name, np.ones(numpy_shape, np.float32))
        else:
            w.add_tensor(t.name, np.zeros(numpy_shape, np.uint16), raw_shape=numpy_shape, raw_dtype=t.type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


PROBE = """
import os, sys, llama_cpp
for run in sys.argv[2:]:
    n_ctx, flash = run.split(":")
    os.write(2, f"@@RUN {run}\\n".encode())
    m = llama_cpp.Llama(sys.argv[1], n_ctx=int(n_ctx), n_threads=1, flash_attn=flash == "1", verbose=True)
    del m
"""
RUNS = [(4096, True), (16384, False)]  # (n_ctx, flash attention)


@pytest.mark.parametrize(("mla_split", "layout"), [(False, "full"), (True, "latent")])
def test_llama_cpp_loads_it_and_allocates_our_kv_cache(tmp_path: Path, mla_split: bool, layout: str) -> None:
    inv = inventory_from_config(TINY_V3, mla_split=mla_split)
    path = tmp_path / f"tiny-{layout}.gguf"
    write_gguf(inv, path, mla_split)
    proc = subprocess.run([sys.executable, "-c", PROBE, str(path), *(f"{n}:{int(fa)}" for n, fa in RUNS)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for (n_ctx, flash_attn), log in zip(RUNS, proc.stderr.split("@@RUN ")[1:], strict=True):
        m = re.search(r"llama_kv_cache: size =\s+([\d.]+) MiB \(\s*(\d+) cells,\s+(\d+) layers.*"
                      r"K \(f16\):\s+([\d.]+) MiB, V \(f16\):\s+([\d.]+) MiB", log)
        compute = re.search(r"CPU compute buffer size =\s+([\d.]+) MiB", log)
        assert m and compute, log[-3000:]
        total, cells, layers, _, v_mib = (float(x) for x in m.groups())
        assert (cells, layers) == (n_ctx, 3)
        ours = kv_bytes_per_layer(inv, ctx=n_ctx, layout="auto")
        assert sum(ours) / MiB == pytest.approx(total, abs=0.005)
        if layout == "latent":  # K = kv_lora_rank + qk_rope for one head, and no V
            assert sum(ours) == 3 * n_ctx * (32 + 16) * 2 and v_mib == 0
        else:  # every head's K (nope + rope) and V
            assert sum(ours) == 3 * n_ctx * 4 * ((16 + 16) + 24) * 2 and v_mib > 0
        estimate = compute_buffer_bytes(inv, layer_shapes(inv), has_output=True, ctx=n_ctx,
                                        flash_attn=flash_attn)
        assert estimate / MiB == pytest.approx(float(compute.group(1)), rel=0.06)
