"""The tests' one writer of synthetic GGUF models: an HF config -> `quantdrop.hfconfig`'s inventory (the
tensors llama.cpp's converter would write) -> a GGUF with those tensors, made-up weights and metadata.

`write_gguf` writes any inventory (zero weights by default, so llama.cpp can load and size it);
`write_synthetic` and `write_moe` are the random-weight models of real architectures that llama.cpp's
quantizer and imatrix tool serve as references for, so no model is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from gguf import ExpertGatingFuncType, GGUFWriter, TokenType
from gguf import GGMLQuantizationType as T

from quantdrop.hfconfig import inventory_from_config
from quantdrop.inventory import ModelInventory, TensorInfo

Weights = Callable[[TensorInfo], np.ndarray]
Metadata = Callable[[GGUFWriter], None]

EMBD, FF, VOCAB, HEAD = 256, 512, 512, 32  # write_synthetic's sizes
N_EXPERT, N_USED, N_LAYER = 4, 2, 2  # write_moe's experts and layers


# ---------------------------------------------------------------------------------------- weights


def zero_weights(t: TensorInfo) -> np.ndarray:
    """F32 tensors all ones (norms stay sane), F16/BF16 two zero bytes per element (numpy order)."""
    shape = tuple(reversed(t.shape))
    return np.ones(shape, np.float32) if t.type == T.F32 else np.zeros(shape, np.uint16)


def random_weights(seed: int, scale: float, ones_for_norms: bool = False) -> Weights:
    """Seeded noise: F32 tensors (norms, biases, routers) standard normal (norms all ones if asked),
    the F16 weights normal with std `scale`. Drawn in the order the tensors are written."""
    rng = np.random.default_rng(seed)

    def make(t: TensorInfo) -> np.ndarray:
        shape = tuple(reversed(t.shape))
        if t.type == T.F32:
            norm = ones_for_norms and t.name.endswith("norm.weight")
            return np.ones(shape, np.float32) if norm else rng.standard_normal(shape).astype(np.float32)
        if t.type != T.F16:
            raise ValueError(f"{t.name}: random weights are F32 or F16, not {t.type.name}")
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    return make


# -------------------------------------------------------------------------------------- tokenizers


def byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode alphabet: a complete byte-level BPE vocabulary of 256 tokens."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


def gpt2_tokenizer(w: GGUFWriter, n_vocab: int) -> None:
    """A byte-level BPE vocabulary of n_vocab tokens (the bytes, then placeholders), one merge."""
    w.add_tokenizer_model("gpt2")
    w.add_token_list(byte_tokens() + [f"<extra_{i}>" for i in range(n_vocab - 256)])
    w.add_token_types([1] * n_vocab)
    w.add_token_merges(["! !"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)


def spm_vocab() -> tuple[list[str], list[float], list[int]]:
    """A byte-fallback SentencePiece vocabulary: specials, the 256 bytes, ASCII pieces."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    words = ["\u2581"] + [chr(c) for c in range(0x21, 0x7F)] + ["\u2581" + chr(c) for c in range(0x61, 0x7B)]
    tokens += words
    types += [TokenType.NORMAL] * len(words)
    scores = [0.0] * 3 + [-1000.0] * 256 + [-float(i) for i in range(len(words))]
    return tokens, scores, [int(t) for t in types]


def spm_tokenizer(w: GGUFWriter, n_vocab: int) -> None:
    tokens, scores, types = spm_vocab()
    assert n_vocab == len(tokens), f"an SPM model needs vocab_size {len(tokens)}"
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)


TOKENIZERS: dict[str, Callable[[GGUFWriter, int], None]] = {"gpt2": gpt2_tokenizer, "spm": spm_tokenizer}


# ------------------------------------------------------------------------------------------ writer


def write_gguf(
    inv: ModelInventory,
    path: Path,
    metadata: Metadata | None = None,
    *,
    tokenizer: str | None = "gpt2",
    weights: Weights = zero_weights,
    name: str | None = None,
    file_type: int | None = None,
) -> Path:
    """A GGUF of `inv`'s tensors in its order: general.name and file type if given, `metadata(writer)`,
    a tokenizer of the model's vocabulary size (None: no tokenizer), the weights `weights` makes."""
    w = GGUFWriter(path, inv.hparams.arch)
    if name is not None:
        w.add_name(name)
    if file_type is not None:
        w.add_file_type(file_type)
    if metadata is not None:
        metadata(w)
    if tokenizer is not None:
        TOKENIZERS[tokenizer](w, inv.hparams.n_vocab)
    for t in inv.tensors:
        data = weights(t)
        if data.dtype == np.uint16:  # raw F16/BF16 bytes
            w.add_tensor(t.name, data, raw_shape=data.shape, raw_dtype=t.type)
        else:
            w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def hparam_fields(values: dict[str, Any]) -> Metadata:
    """`{arch}.KEY` entries: bools as bool, ints as uint32, the rest as float32."""

    def write(w: GGUFWriter) -> None:
        for key, value in values.items():
            full = f"{w.arch}.{key}"
            if isinstance(value, bool):
                w.add_bool(full, value)
            elif isinstance(value, int):
                w.add_uint32(full, value)
            else:
                w.add_float32(full, float(value))

    return write


def converter_fields(config: dict[str, Any], inv: ModelInventory) -> dict[str, Any]:
    """The hyper-parameter keys these models carry, from the config and the inventory built from it."""
    hp = inv.hparams
    kv: dict[str, Any] = {
        "block_count": hp.n_layer,
        "context_length": hp.n_ctx_train,
        "embedding_length": hp.n_embd,
        "feed_forward_length": hp.extra["feed_forward_length"],
        "attention.head_count": hp.n_head,
        "attention.head_count_kv": hp.n_head_kv,
    }
    if hp.arch == "deepseek2":
        kv.update(
            {
                "expert_count": hp.n_expert,
                "expert_used_count": hp.n_expert_used,
                "expert_shared_count": hp.extra["expert_shared_count"],
                "leading_dense_block_count": hp.n_leading_dense,
                "expert_feed_forward_length": hp.extra["expert_feed_forward_length"],
                "attention.q_lora_rank": hp.extra["q_lora_rank"],
                "attention.kv_lora_rank": hp.kv_lora_rank,
                "attention.key_length": hp.key_length,
                "attention.value_length": hp.value_length,
                "rope.dimension_count": hp.rope_dim,
                "expert_weights_scale": config["routed_scaling_factor"],
                "expert_weights_norm": config["norm_topk_prob"],
                "expert_gating_func": int(ExpertGatingFuncType[config["scoring_func"].upper()]),
                "vocab_size": hp.n_vocab,
            }
        )
    elif hp.n_expert:
        kv.update(
            {"expert_count": hp.n_expert, "expert_used_count": hp.n_expert_used, "rope.dimension_count": hp.rope_dim}
        )
    if "head_dim" in config:
        kv.update({"attention.key_length": config["head_dim"], "attention.value_length": config["head_dim"]})
    if hp.sliding_window:
        kv["attention.sliding_window"] = hp.sliding_window
    kv["rope.freq_base"] = float(config["rope_theta"])
    kv["attention.layer_norm_rms_epsilon"] = float(config["rms_norm_eps"])
    return kv


# ----------------------------------------------------------------------------- the random models

_DENSE = {
    "hidden_size": EMBD,
    "intermediate_size": FF,
    "vocab_size": VOCAB,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "torch_dtype": "float16",
    "tie_word_embeddings": False,
}
_SYNTHETIC: dict[str, dict[str, Any]] = {
    "llama": {"model_type": "llama"},
    "qwen2": {"model_type": "qwen2"},
    "qwen3": {"model_type": "qwen3", "head_dim": HEAD},
    "gemma3": {"model_type": "gemma3_text", "head_dim": HEAD, "sliding_window": 512, "tie_word_embeddings": True},
    "deepseek2": {
        "model_type": "deepseek_v3",
        "num_key_value_heads": 8,
        "q_lora_rank": 128,
        "kv_lora_rank": 64,
        "qk_nope_head_dim": 64,
        "qk_rope_head_dim": 32,
        "v_head_dim": 64,
        "n_routed_experts": 8,
        "num_experts_per_tok": 2,
        "n_shared_experts": 1,
        "first_k_dense_replace": 1,
        "moe_intermediate_size": 256,
        "topk_method": "noaux_tc",
        "routed_scaling_factor": 2.5,
        "norm_topk_prob": True,
        "scoring_func": "sigmoid",
    },
}
MOE_CONFIG = {
    "model_type": "mixtral",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_local_experts": N_EXPERT,
    "num_experts_per_tok": N_USED,
    "num_hidden_layers": N_LAYER,
    "vocab_size": len(spm_vocab()[0]),
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "torch_dtype": "float16",
    "tie_word_embeddings": False,
}


def synthetic_config(arch: str, n_layer: int) -> dict[str, Any]:
    """The HF config of write_synthetic's model of `arch` (llama, qwen2, qwen3, gemma3, deepseek2)."""
    return {**_DENSE, **_SYNTHETIC[arch], "num_hidden_layers": n_layer}


def write_from_config(
    path: Path,
    config: dict[str, Any],
    *,
    seed: int,
    scale: float,
    tokenizer: str | None,
    name: str,
    ones_for_norms: bool = False,
) -> Path:
    """An F16 model of `config` (attn_kv_b kept whole, as the converter of early 2025) with random weights."""
    inv = inventory_from_config(config, mla_split=False, src_type="F16")
    return write_gguf(
        inv,
        path,
        hparam_fields(converter_fields(config, inv)),
        tokenizer=tokenizer,
        weights=random_weights(seed, scale, ones_for_norms),
        name=name,
        file_type=1,
    )


def write_synthetic(path: Path, arch: str, n_layer: int = 16, seed: int = 0, tokenizer: bool = False) -> Path:
    """A random F16 model of a real architecture. `tokenizer`: add a vocabulary, so that llama.cpp can
    load the file (and its quantized versions)."""
    return write_from_config(
        path,
        synthetic_config(arch, n_layer),
        seed=seed,
        scale=0.02,
        tokenizer="gpt2" if tokenizer else None,
        name=f"synthetic-{arch}",
    )


def write_moe(path: Path, seed: int = 0) -> Path:
    """A tiny MoE llama.cpp can run (Mixtral's layout: 4 experts, 2 used; a byte-fallback SentencePiece
    vocabulary), so that `quantdrop imatrix` sees MUL_MAT_ID."""
    return write_from_config(
        path, MOE_CONFIG, seed=seed, scale=0.1, tokenizer="spm", name="synthetic-moe", ones_for_norms=True
    )
