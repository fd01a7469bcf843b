"""Tiny synthetic GGUFs of real architectures (random F16 weights, llama.cpp's tensor names and
hyper-parameter keys), so llama.cpp's own quantizer can be the reference for every architecture
without downloading a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter

EMBD, FF, VOCAB, HEAD = 256, 512, 512, 32


def _layers(arch: str, n_layer: int) -> tuple[dict[str, tuple[int, ...]], dict[str, object]]:
    """(tensor name -> numpy shape, hparams) as llama.cpp's converter writes them."""
    t: dict[str, tuple[int, ...]] = {"token_embd.weight": (VOCAB, EMBD), "output_norm.weight": (EMBD,)}
    n_head, n_head_kv = 8, 2
    kv: dict[str, object] = {"block_count": n_layer, "context_length": 4096, "embedding_length": EMBD,
                             "feed_forward_length": FF, "attention.head_count": n_head,
                             "attention.head_count_kv": n_head_kv, "rope.freq_base": 10000.0,
                             "attention.layer_norm_rms_epsilon": 1e-6}
    if arch != "gemma3":
        t["output.weight"] = (VOCAB, EMBD)
    for i in range(n_layer):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = (EMBD,)
        t[p + "ffn_norm.weight"] = (EMBD,)
        if arch == "deepseek2":
            t[p + "attn_q_a.weight"] = (128, EMBD)
            t[p + "attn_q_a_norm.weight"] = (128,)
            t[p + "attn_q_b.weight"] = (n_head * 96, 128)
            t[p + "attn_kv_a_mqa.weight"] = (64 + 32, EMBD)
            t[p + "attn_kv_a_norm.weight"] = (64,)
            t[p + "attn_kv_b.weight"] = (n_head * (64 + 64), 64)
            t[p + "attn_output.weight"] = (EMBD, n_head * 64)
            if i < 1:
                t[p + "ffn_gate.weight"] = (FF, EMBD)
                t[p + "ffn_up.weight"] = (FF, EMBD)
                t[p + "ffn_down.weight"] = (EMBD, FF)
            else:
                t[p + "ffn_gate_inp.weight"] = (8, EMBD)
                t[p + "exp_probs_b.bias"] = (8,)
                t[p + "ffn_gate_exps.weight"] = (8, 256, EMBD)
                t[p + "ffn_up_exps.weight"] = (8, 256, EMBD)
                t[p + "ffn_down_exps.weight"] = (8, EMBD, 256)
                t[p + "ffn_gate_shexp.weight"] = (256, EMBD)
                t[p + "ffn_up_shexp.weight"] = (256, EMBD)
                t[p + "ffn_down_shexp.weight"] = (EMBD, 256)
            continue
        hd = HEAD
        t[p + "attn_q.weight"] = (n_head * hd, EMBD)
        t[p + "attn_k.weight"] = (n_head_kv * hd, EMBD)
        t[p + "attn_v.weight"] = (n_head_kv * hd, EMBD)
        t[p + "attn_output.weight"] = (EMBD, n_head * hd)
        t[p + "ffn_gate.weight"] = (FF, EMBD)
        t[p + "ffn_up.weight"] = (FF, EMBD)
        t[p + "ffn_down.weight"] = (EMBD, FF)
        if arch == "qwen2":
            t[p + "attn_q.bias"] = (n_head * hd,)
            t[p + "attn_k.bias"] = (n_head_kv * hd,)
            t[p + "attn_v.bias"] = (n_head_kv * hd,)
        if arch in ("qwen3", "gemma3"):
            t[p + "attn_q_norm.weight"] = (hd,)
            t[p + "attn_k_norm.weight"] = (hd,)
        if arch == "gemma3":
            t[p + "post_attention_norm.weight"] = (EMBD,)
            t[p + "post_ffw_norm.weight"] = (EMBD,)
    if arch == "deepseek2":
        kv.update({"attention.head_count_kv": n_head, "expert_count": 8, "expert_used_count": 2,
                   "expert_shared_count": 1, "leading_dense_block_count": 1, "expert_feed_forward_length": 256,
                   "attention.q_lora_rank": 128, "attention.kv_lora_rank": 64, "attention.key_length": 96,
                   "attention.value_length": 64, "rope.dimension_count": 32, "expert_weights_scale": 2.5,
                   "expert_weights_norm": True, "expert_gating_func": 2, "vocab_size": VOCAB})
    if arch in ("qwen3", "gemma3"):
        kv["attention.key_length"] = HEAD
        kv["attention.value_length"] = HEAD
    if arch == "gemma3":
        kv["attention.sliding_window"] = 512
    return t, kv


def _add_tokenizer(w: GGUFWriter) -> None:
    """A byte-level BPE vocabulary of VOCAB tokens (one per token_embd row), so llama.cpp can load the model."""
    from tests.plan.tiny_gguf import byte_tokens

    tokens = byte_tokens() + [f"<extra_{i}>" for i in range(VOCAB - 256)]
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([1] * VOCAB)
    w.add_token_merges(["! !"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)


def write_synthetic(path: Path, arch: str, n_layer: int = 16, seed: int = 0, tokenizer: bool = False) -> Path:
    """`tokenizer`: add a vocabulary, so that llama.cpp can load the file (and its quantized versions)."""
    tensors, hparams = _layers(arch, n_layer)
    rng = np.random.default_rng(seed)
    w = GGUFWriter(path, arch)
    w.add_name(f"synthetic-{arch}")
    w.add_file_type(1)
    if tokenizer:
        _add_tokenizer(w)
    for key, value in hparams.items():
        full = f"{arch}.{key}"
        if isinstance(value, bool):
            w.add_bool(full, value)
        elif isinstance(value, int):
            w.add_uint32(full, value)
        else:
            w.add_float32(full, float(value))
    for name, shape in tensors.items():
        if len(shape) == 1 or "ffn_gate_inp" in name:
            data = rng.standard_normal(shape).astype(np.float32)
        else:
            data = (rng.standard_normal(shape) * 0.02).astype(np.float16)
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
