"""A tiny MoE GGUF llama.cpp can run: llama architecture with 4 experts (2 used), random F16
weights and a byte-fallback SentencePiece vocabulary, so `quantdrop imatrix` sees MUL_MAT_ID."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, TokenType

EMBD, FF, N_EXPERT, N_USED, N_LAYER = 64, 128, 4, 2, 2


def _vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    words = ["\u2581"] + [chr(c) for c in range(0x21, 0x7F)] + ["\u2581" + chr(c) for c in range(0x61, 0x7B)]
    tokens += words
    types += [TokenType.NORMAL] * len(words)
    scores = [0.0] * 3 + [-1000.0] * 256 + [-float(i) for i in range(len(words))]
    return tokens, scores, [int(t) for t in types]


def write_moe(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    w = GGUFWriter(path, "llama")
    w.add_name("synthetic-moe")
    w.add_file_type(1)
    for key, value in {"block_count": N_LAYER, "context_length": 2048, "embedding_length": EMBD,
                       "feed_forward_length": FF, "attention.head_count": 4, "attention.head_count_kv": 2,
                       "expert_count": N_EXPERT, "expert_used_count": N_USED, "rope.dimension_count": 16}.items():
        w.add_uint32(f"llama.{key}", value)
    w.add_float32("llama.rope.freq_base", 10000.0)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)

    def f16(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.1).astype(np.float16)

    w.add_tensor("token_embd.weight", f16(len(tokens), EMBD))
    w.add_tensor("output_norm.weight", np.ones(EMBD, dtype=np.float32))
    w.add_tensor("output.weight", f16(len(tokens), EMBD))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(EMBD, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", f16(EMBD, EMBD))
        w.add_tensor(p + "attn_k.weight", f16(EMBD // 2, EMBD))
        w.add_tensor(p + "attn_v.weight", f16(EMBD // 2, EMBD))
        w.add_tensor(p + "attn_output.weight", f16(EMBD, EMBD))
        w.add_tensor(p + "ffn_norm.weight", np.ones(EMBD, dtype=np.float32))
        w.add_tensor(p + "ffn_gate_inp.weight", rng.standard_normal((N_EXPERT, EMBD)).astype(np.float32))
        w.add_tensor(p + "ffn_gate_exps.weight", f16(N_EXPERT, FF, EMBD))
        w.add_tensor(p + "ffn_up_exps.weight", f16(N_EXPERT, FF, EMBD))
        w.add_tensor(p + "ffn_down_exps.weight", f16(N_EXPERT, EMBD, FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
