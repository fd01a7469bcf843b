"""Every supported architecture, at toy size: llama.cpp loads the inventory built from the config
(every tensor name and shape checked by its loader) and allocates the KV cache we compute, sliding
windows included (Gemma 2/3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gguf import GGUFWriter

from quantdrop.hfconfig import inventory_from_config
from quantdrop.memory import compute_buffer_bytes, kv_bytes_per_layer, layer_shapes
from tests.reference import llama_cpp_sizes
from tests.synthetic_gguf import write_gguf

MiB = 1 << 20
BASE = {
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 96,
    "num_hidden_layers": 6,
    "vocab_size": 256,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}
TINY: dict[str, dict[str, Any]] = {
    "llama": {
        "model_type": "llama",
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    },
    "mixtral": {"model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen2": {"model_type": "qwen2", "tie_word_embeddings": True},
    "qwen3": {"model_type": "qwen3", "head_dim": 32},
    "qwen2_moe": {
        "model_type": "qwen2_moe",
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 48,
    },
    "qwen3_moe": {
        "model_type": "qwen3_moe",
        "head_dim": 32,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
    },
    "gemma2": {"model_type": "gemma2", "head_dim": 32, "sliding_window": 1024, "torch_dtype": "float32"},
    "gemma3": {"model_type": "gemma3_text", "head_dim": 32, "sliding_window": 512, "sliding_window_pattern": 6},
}


def metadata(c: dict[str, Any]):
    """The keys convert_hf_to_gguf.py writes that llama.cpp needs to load these models."""

    def write(w: GGUFWriter) -> None:
        w.add_context_length(c["max_position_embeddings"])
        w.add_embedding_length(c["hidden_size"])
        w.add_block_count(c["num_hidden_layers"])
        w.add_feed_forward_length(c["intermediate_size"])
        w.add_head_count(c["num_attention_heads"])
        w.add_head_count_kv(c["num_key_value_heads"])
        w.add_layer_norm_rms_eps(c["rms_norm_eps"])
        head_dim = c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])
        w.add_rope_dimension_count(head_dim)
        if "head_dim" in c:
            w.add_key_length(head_dim)
            w.add_value_length(head_dim)
        if n_expert := c.get("num_local_experts", c.get("num_experts")):
            w.add_expert_count(n_expert)
            w.add_expert_used_count(c["num_experts_per_tok"])
        if "moe_intermediate_size" in c:
            w.add_expert_feed_forward_length(c["moe_intermediate_size"])
        if "shared_expert_intermediate_size" in c:
            w.add_expert_shared_feed_forward_length(c["shared_expert_intermediate_size"])
        if "sliding_window" in c:
            w.add_sliding_window(c["sliding_window"])
        if c["model_type"] == "gemma2":
            w.add_attn_logit_softcapping(50.0)
            w.add_final_logit_softcapping(30.0)

    return write


@pytest.mark.parametrize("arch", sorted(TINY))
def test_llama_cpp_loads_it_and_allocates_our_kv_cache(tmp_path: Path, arch: str) -> None:
    config = {**BASE, **TINY[arch]}
    inv = inventory_from_config(config)
    path = tmp_path / f"{arch}.gguf"
    write_gguf(inv, path, metadata(config))
    runs = [(8192, True)]
    (logged,) = llama_cpp_sizes(path, runs)
    ours = kv_bytes_per_layer(inv, ctx=8192)
    assert sum(ours) / MiB == pytest.approx(logged["kv_mib"], abs=0.01)
    if arch.startswith("gemma"):  # the sliding-window layers keep pad(window + ubatch, 256) cells
        assert sorted(logged["cells"]) == sorted({8192, min(8192, config["sliding_window"] + 512)})
    estimate = compute_buffer_bytes(inv, layer_shapes(inv), has_output=True, ctx=8192, flash_attn=True)
    assert estimate / MiB == pytest.approx(logged["compute_mib"], rel=0.15)
