"""A tiny DeepSeek-V3 built from a config, loaded by llama.cpp in both converter layouts.

The inventory `hfconfig` builds is written as a GGUF (zero weights, the converter's metadata) and
llama.cpp must accept every tensor name and shape; the KV cache it then allocates must equal ours
(all K/V heads for the attn_kv_b layout, `full`; MLA's latent for attn_k_b/attn_v_b, `latent`), and
its compute buffer must be close to our estimate, with and without flash attention.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import ExpertGatingFuncType, GGUFWriter

from quantdrop.hfconfig import inventory_from_config
from quantdrop.memory import compute_buffer_bytes, kv_bytes_per_layer, layer_shapes
from tests.reference import llama_cpp_sizes
from tests.synthetic_gguf import write_gguf

MiB = 1 << 20
TINY_V3 = {  # DeepSeek-V3's structure at toy size
    "model_type": "deepseek_v3",
    "architectures": ["DeepseekV3ForCausalLM"],
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 32,
    "kv_lora_rank": 32,
    "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 16,
    "v_head_dim": 24,
    "intermediate_size": 96,
    "moe_intermediate_size": 32,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "first_k_dense_replace": 1,
    "num_hidden_layers": 3,
    "vocab_size": 256,
    "topk_method": "noaux_tc",
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
    "num_nextn_predict_layers": 1,
}
RUNS = [(4096, True), (16384, False)]  # (n_ctx, flash attention)


def deepseek_metadata(mla_split: bool, n_head_kv: int, key_length: int, value_length: int):
    """What convert_hf_to_gguf.py writes (DeepseekV2Model.set_gguf_parameters)."""
    c = TINY_V3

    def write(w: GGUFWriter) -> None:
        w.add_context_length(c["max_position_embeddings"])
        w.add_embedding_length(c["hidden_size"])
        w.add_block_count(c["num_hidden_layers"])
        w.add_feed_forward_length(c["intermediate_size"])
        w.add_head_count(c["num_attention_heads"])
        w.add_head_count_kv(n_head_kv)
        w.add_layer_norm_rms_eps(c["rms_norm_eps"])
        w.add_leading_dense_block_count(c["first_k_dense_replace"])
        w.add_vocab_size(c["vocab_size"])
        w.add_q_lora_rank(c["q_lora_rank"])
        w.add_kv_lora_rank(c["kv_lora_rank"])
        w.add_key_length(key_length)
        w.add_value_length(value_length)
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

    return write


@pytest.mark.parametrize(("mla_split", "layout"), [(False, "full"), (True, "latent")])
def test_llama_cpp_loads_it_and_allocates_our_kv_cache(tmp_path: Path, mla_split: bool, layout: str) -> None:
    inv = inventory_from_config(TINY_V3, mla_split=mla_split)
    hp = inv.hparams
    path = tmp_path / f"tiny-{layout}.gguf"
    write_gguf(inv, path, deepseek_metadata(mla_split, hp.n_head_kv, hp.key_length, hp.value_length))
    for (n_ctx, flash_attn), logged in zip(RUNS, llama_cpp_sizes(path, RUNS), strict=True):
        assert logged["cells"] == [n_ctx]
        ours = kv_bytes_per_layer(inv, ctx=n_ctx, layout="auto")
        assert sum(ours) / MiB == pytest.approx(logged["kv_mib"], abs=0.005)
        if layout == "latent":  # K = kv_lora_rank + qk_rope for one head, and no V
            assert sum(ours) == 3 * n_ctx * (32 + 16) * 2 and logged["v_mib"] == 0
        else:  # every head's K (nope + rope) and V
            assert sum(ours) == 3 * n_ctx * 4 * ((16 + 16) + 24) * 2 and logged["v_mib"] > 0
        estimate = compute_buffer_bytes(inv, layer_shapes(inv), has_output=True, ctx=n_ctx, flash_attn=flash_attn)
        assert estimate / MiB == pytest.approx(logged["compute_mib"], rel=0.06)
