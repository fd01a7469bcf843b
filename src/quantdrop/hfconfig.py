"""An HF `config.json` -> the `ModelInventory` that llama.cpp's converter would write, without weights.

Mirrors `convert_hf_to_gguf.py` (llama.cpp, `conversion/{base,llama,qwen,gemma,deepseek}.py`):
the HF checkpoint's tensor list is rebuilt from the config, then the converter's steps are
replayed in order: experts stacked into one 3-D tensor per projection (`*_exps`), DeepSeek's MTP
layer skipped and `kv_b_proj` split into `attn_k_b`/`attn_v_b` (`mla_split=True`, today's
converter) or kept as `attn_kv_b` (the converter of early 2025), tied `lm_head` dropped, llama3
`rope_freqs` generated. Names come from gguf-py's own `TensorNameMap`; shapes are in ggml order
(reversed torch order); types follow `prepare_tensors`: F32 for 1-D tensors, norms, routers and
biases, the checkpoint's float type (BF16/F16) for every other 2-D+ tensor.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gguf
from gguf import GGMLQuantizationType as T

from quantdrop.errors import QuantdropError
from quantdrop.inventory import MAX_LAYERS, Hparams, ModelInventory, TensorInfo

Shape = tuple[int, ...]  # torch order, as the checkpoint stores it
HfTensor = tuple[str, Shape]

# HF model_type -> (gguf arch, builder name); the converter class named in the comment
ARCHITECTURES: dict[str, gguf.MODEL_ARCH] = {
    "llama": gguf.MODEL_ARCH.LLAMA,  # LlamaModel
    "mistral": gguf.MODEL_ARCH.LLAMA,  # LlamaModel
    "mixtral": gguf.MODEL_ARCH.LLAMA,  # LlamaModel (experts merged)
    "qwen2": gguf.MODEL_ARCH.QWEN2,  # Qwen2Model
    "qwen3": gguf.MODEL_ARCH.QWEN3,  # Qwen3Model
    "qwen2_moe": gguf.MODEL_ARCH.QWEN2MOE,  # Qwen2MoeModel
    "qwen3_moe": gguf.MODEL_ARCH.QWEN3MOE,  # Qwen3MoeModel
    "gemma2": gguf.MODEL_ARCH.GEMMA2,  # Gemma2Model
    "gemma3": gguf.MODEL_ARCH.GEMMA3,  # Gemma3Model (text tower only; the vision tower is the mmproj)
    "gemma3_text": gguf.MODEL_ARCH.GEMMA3,
    "deepseek_v2": gguf.MODEL_ARCH.DEEPSEEK2,  # DeepseekV2Model
    "deepseek_v3": gguf.MODEL_ARCH.DEEPSEEK2,  # DeepseekV2Model (V3 and R1 share it)
}

# transformers' config defaults for keys that released configs often leave out
_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "vocab_size": 262208,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
    },
    "gemma2": {"tie_word_embeddings": True},
}
_TIED_BY_DEFAULT = {"gemma2", "gemma3", "gemma3_text"}

# float types a checkpoint declares -> what the converter writes with `--outtype auto`
_SRC_TYPES = {"bfloat16": T.BF16, "float16": T.F16, "float32": T.F16}

# the tensors `prepare_tensors` always keeps in F32 (besides 1-D tensors, norms and non-weights)
_F32_KINDS = (
    gguf.MODEL_TENSOR.FFN_GATE_INP,
    gguf.MODEL_TENSOR.FFN_GATE_INP_SHEXP,
    gguf.MODEL_TENSOR.POS_EMBD,
    gguf.MODEL_TENSOR.TOKEN_TYPES,
)


def supported_architectures() -> list[str]:
    return sorted(ARCHITECTURES)


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read `config.json` from a file or an HF model directory."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise QuantdropError(f"{p}: no such file")
    try:
        with open(p, encoding="utf-8") as fh:
            config = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise QuantdropError(f"{p}: not a JSON config ({err})") from None
    if not isinstance(config, dict):
        raise QuantdropError(f"{p}: not a JSON object")
    return config


# the integer fields the inventory is built from: (minimum, maximum), far beyond any released model
# (405B: 126 layers, hidden 16384; Gemma 3: a vocabulary of 262k) and small enough to plan instantly
_BIG = 1 << 20
FIELD_LIMITS: dict[str, tuple[int, int]] = {
    "num_hidden_layers": (1, MAX_LAYERS),
    "hidden_size": (1, _BIG),
    "intermediate_size": (1, 1 << 22),
    "moe_intermediate_size": (1, 1 << 22),
    "shared_expert_intermediate_size": (0, 1 << 22),
    "num_attention_heads": (1, 1 << 14),
    "num_key_value_heads": (1, 1 << 14),
    "head_dim": (1, 1 << 16),
    "vocab_size": (1, 1 << 24),
    "max_position_embeddings": (0, 1 << 32),
    "num_local_experts": (1, 1 << 16),
    "num_experts": (1, 1 << 16),
    "n_routed_experts": (0, 1 << 16),
    "num_experts_per_tok": (0, 1 << 16),
    "n_shared_experts": (0, 1 << 10),
    "first_k_dense_replace": (0, 10_000),
    "moe_layer_freq": (1, 10_000),
    "decoder_sparse_step": (1, 10_000),
    "qk_nope_head_dim": (1, 1 << 16),
    "qk_rope_head_dim": (1, 1 << 16),
    "v_head_dim": (1, 1 << 16),
    "kv_lora_rank": (1, 1 << 16),
    "q_lora_rank": (1, 1 << 16),
    "sliding_window": (0, 1 << 32),
    "sliding_window_pattern": (0, 10_000),
}


def config_int(value: Any, key: str, source: str) -> int:
    """The one check of a config.json count: an integer (JSON true/31.5/"32" are not) within FIELD_LIMITS."""
    lo, hi = FIELD_LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise QuantdropError(f"{source}: {key} = {json.dumps(value)}: expected an integer from {lo} to {hi}")
    return value


class _Config:
    """The merged config (text_config on top, like the converter) with one-line errors for missing keys."""

    def __init__(self, raw: dict[str, Any], source: str):
        self.source = source
        model_type = str(raw.get("model_type", "")).lower()
        text = raw.get("text_config")
        if isinstance(text, dict):
            model_type = str(text.get("model_type", model_type)).lower() or model_type
            raw = {**raw, **text}
        if model_type not in ARCHITECTURES:
            known = ", ".join(supported_architectures())
            raise QuantdropError(
                f"{source}: unsupported architecture {model_type or '(no model_type)'!r} (supported: {known})"
            )
        self.model_type = model_type
        self.d = {**_DEFAULTS.get(model_type, {}), **raw}

    def _checked(self, key: str, value: Any) -> Any:
        return config_int(value, key, self.source) if key in FIELD_LIMITS else value

    def __getitem__(self, key: str) -> Any:
        value = self.d.get(key)
        if value is None:
            raise QuantdropError(f"{self.source}: config has no {key!r} (needed for {self.model_type})")
        return self._checked(key, value)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.d.get(key)
        return default if value is None else self._checked(key, value)

    def first(self, *keys: str) -> Any:
        for key in keys:
            if self.d.get(key) is not None:
                return self._checked(key, self.d[key])
        raise QuantdropError(
            f"{self.source}: config has none of {', '.join(repr(k) for k in keys)} (needed for {self.model_type})"
        )


# ---------------------------------------------------------------------------------------------
# the checkpoint's tensors, per architecture (torch shapes [out, in], names as HF writes them)
# ---------------------------------------------------------------------------------------------


def _attention(
    c: _Config, p: str, *, bias_qkv: bool = False, bias_o: bool = False, qk_norm: bool = False
) -> list[HfTensor]:
    n_embd, n_head = c["hidden_size"], c["num_attention_heads"]
    n_head_kv = c.get("num_key_value_heads", n_head)
    head_dim = c.get("head_dim") or n_embd // n_head
    out = [
        (f"{p}.self_attn.q_proj.weight", (n_head * head_dim, n_embd)),
        (f"{p}.self_attn.k_proj.weight", (n_head_kv * head_dim, n_embd)),
        (f"{p}.self_attn.v_proj.weight", (n_head_kv * head_dim, n_embd)),
        (f"{p}.self_attn.o_proj.weight", (n_embd, n_head * head_dim)),
    ]
    if bias_qkv:
        out += [
            (f"{p}.self_attn.q_proj.bias", (n_head * head_dim,)),
            (f"{p}.self_attn.k_proj.bias", (n_head_kv * head_dim,)),
            (f"{p}.self_attn.v_proj.bias", (n_head_kv * head_dim,)),
        ]
    if bias_o:
        out.append((f"{p}.self_attn.o_proj.bias", (n_embd,)))
    if qk_norm:
        out += [(f"{p}.self_attn.q_norm.weight", (head_dim,)), (f"{p}.self_attn.k_norm.weight", (head_dim,))]
    return out


def _mlp(p: str, n_embd: int, n_ff: int, stem: str = "mlp") -> list[HfTensor]:
    return [
        (f"{p}.{stem}.gate_proj.weight", (n_ff, n_embd)),
        (f"{p}.{stem}.up_proj.weight", (n_ff, n_embd)),
        (f"{p}.{stem}.down_proj.weight", (n_embd, n_ff)),
    ]


def _experts(p: str, n_expert: int, n_embd: int, n_ff: int, stem: str, names: tuple[str, str, str]) -> list[HfTensor]:
    """A block's expert projections, already stacked as the converter does (torch.stack over experts, dim 0).

    names = the checkpoint's (gate, up, down) projection names; the stacked tensor keeps the per-expert
    name without the expert index, which sorts into the same place in the block.
    """
    gate, up, down = names
    return [
        (f"{p}.{stem}.{gate}.weight", (n_expert, n_ff, n_embd)),
        (f"{p}.{stem}.{up}.weight", (n_expert, n_ff, n_embd)),
        (f"{p}.{stem}.{down}.weight", (n_expert, n_embd, n_ff)),
    ]


def _norms(p: str, n_embd: int, *names: str) -> list[HfTensor]:
    return [(f"{p}.{n}.weight", (n_embd,)) for n in names]


def _llama_layer(c: _Config, il: int) -> list[HfTensor]:
    p, n_embd = f"model.layers.{il}", c["hidden_size"]
    out = _norms(p, n_embd, "input_layernorm", "post_attention_layernorm")
    bias = bool(c.get("attention_bias", False))
    out += _attention(c, p, bias_qkv=bias, bias_o=bias)
    if c.model_type == "mixtral":
        n_expert = c["num_local_experts"]
        out.append((f"{p}.block_sparse_moe.gate.weight", (n_expert, n_embd)))
        out += _experts(p, n_expert, n_embd, c["intermediate_size"], "block_sparse_moe.experts", ("w1", "w3", "w2"))
    else:
        out += _mlp(p, n_embd, c["intermediate_size"])
    return out


def _qwen_layer(c: _Config, il: int) -> list[HfTensor]:
    p, n_embd = f"model.layers.{il}", c["hidden_size"]
    out = _norms(p, n_embd, "input_layernorm", "post_attention_layernorm")
    out += _attention(
        c, p, bias_qkv=c.model_type in ("qwen2", "qwen2_moe"), qk_norm=c.model_type in ("qwen3", "qwen3_moe")
    )
    if c.model_type not in ("qwen2_moe", "qwen3_moe"):
        return out + _mlp(p, n_embd, c["intermediate_size"])
    # Qwen2MoeSparseMoeBlock / Qwen3MoeSparseMoeBlock: dense MLP on mlp_only_layers and off the sparse step
    step = c.get("decoder_sparse_step", 1)
    if il in c.get("mlp_only_layers", []) or (il + 1) % step != 0:
        return out + _mlp(p, n_embd, c["intermediate_size"])
    n_expert = c.first("num_experts", "num_local_experts")
    out.append((f"{p}.mlp.gate.weight", (n_expert, n_embd)))
    out += _experts(
        p, n_expert, n_embd, c["moe_intermediate_size"], "mlp.experts", ("gate_proj", "up_proj", "down_proj")
    )
    if c.model_type == "qwen2_moe" and c.get("shared_expert_intermediate_size"):
        out += _mlp(p, n_embd, c["shared_expert_intermediate_size"], stem="mlp.shared_expert")
        out.append((f"{p}.mlp.shared_expert_gate.weight", (1, n_embd)))
    return out


def _gemma_layer(c: _Config, il: int) -> list[HfTensor]:
    p, n_embd = f"model.layers.{il}", c["hidden_size"]
    out = _norms(
        p,
        n_embd,
        "input_layernorm",
        "post_attention_layernorm",
        "pre_feedforward_layernorm",
        "post_feedforward_layernorm",
    )
    out += _attention(c, p, qk_norm=c.model_type != "gemma2")
    return out + _mlp(p, n_embd, c["intermediate_size"])


def _deepseek_layer(c: _Config, il: int) -> list[HfTensor]:
    p, n_embd, n_head = f"model.layers.{il}", c["hidden_size"], c["num_attention_heads"]
    nope, rope, v_dim, kv_rank = (
        c["qk_nope_head_dim"],
        c["qk_rope_head_dim"],
        c["v_head_dim"],
        c.get("kv_lora_rank", 512),
    )
    out = _norms(p, n_embd, "input_layernorm", "post_attention_layernorm")
    q_rank = c.get("q_lora_rank")
    if q_rank:
        out += [
            (f"{p}.self_attn.q_a_proj.weight", (q_rank, n_embd)),
            (f"{p}.self_attn.q_a_layernorm.weight", (q_rank,)),
            (f"{p}.self_attn.q_b_proj.weight", (n_head * (nope + rope), q_rank)),
        ]
    else:
        out.append((f"{p}.self_attn.q_proj.weight", (n_head * (nope + rope), n_embd)))
    out += [
        (f"{p}.self_attn.kv_a_proj_with_mqa.weight", (kv_rank + rope, n_embd)),
        (f"{p}.self_attn.kv_a_layernorm.weight", (kv_rank,)),
        (f"{p}.self_attn.kv_b_proj.weight", (n_head * (nope + v_dim), kv_rank)),
        (f"{p}.self_attn.o_proj.weight", (n_embd, n_head * v_dim)),
    ]
    n_expert = c.get("n_routed_experts")
    first_dense = c.get("first_k_dense_replace", 0 if n_expert else c["num_hidden_layers"])
    step = c.get("moe_layer_freq", 1)
    if not n_expert or il < first_dense or il % step != 0:
        return out + _mlp(p, n_embd, c["intermediate_size"])
    n_ff = c["moe_intermediate_size"]
    out.append((f"{p}.mlp.gate.weight", (n_expert, n_embd)))
    if c.get("topk_method") == "noaux_tc":  # V3/R1: the router's score-correction bias
        out.append((f"{p}.mlp.gate.e_score_correction_bias", (n_expert,)))
    out += _experts(p, n_expert, n_embd, n_ff, "mlp.experts", ("gate_proj", "up_proj", "down_proj"))
    if c.get("n_shared_experts"):
        out += _mlp(p, n_embd, n_ff * c["n_shared_experts"], stem="mlp.shared_experts")
    return out


_LAYERS: dict[gguf.MODEL_ARCH, Callable[[_Config, int], list[HfTensor]]] = {
    gguf.MODEL_ARCH.LLAMA: _llama_layer,
    gguf.MODEL_ARCH.QWEN2: _qwen_layer,
    gguf.MODEL_ARCH.QWEN3: _qwen_layer,
    gguf.MODEL_ARCH.QWEN2MOE: _qwen_layer,
    gguf.MODEL_ARCH.QWEN3MOE: _qwen_layer,
    gguf.MODEL_ARCH.GEMMA2: _gemma_layer,
    gguf.MODEL_ARCH.GEMMA3: _gemma_layer,
    gguf.MODEL_ARCH.DEEPSEEK2: _deepseek_layer,
}


def _is_tied(c: _Config) -> bool:
    return bool(c.get("tie_word_embeddings", c.model_type in _TIED_BY_DEFAULT))


def _n_vocab_rows(c: _Config, model_dir: Path | None) -> int:
    """Gemma3's converter drops the padding rows of token_embd past the tokenizer's real vocabulary."""
    n_vocab = c["vocab_size"]
    tokenizer = model_dir / "tokenizer.json" if model_dir is not None else None
    if c.model_type.startswith("gemma3") and tokenizer is not None and tokenizer.is_file():
        with open(model_dir / "tokenizer.json", encoding="utf-8") as fh:
            tok = json.load(fh)
        n_vocab = min(n_vocab, len(tok["model"]["vocab"]) + len(tok.get("added_tokens", [])))
    return n_vocab


def _rope_freqs(c: _Config) -> list[HfTensor]:
    """LlamaModel.generate_extra_tensors: llama3 rope scaling adds one F32 tensor of head_dim/2 factors."""
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
    if str(rope.get("rope_type", rope.get("type", ""))).lower() != "llama3":
        return []
    head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    return [("rope_freqs", (head_dim // 2,))]


SINGLE_FILE_BYTES = 5 * 10**9  # transformers' save_pretrained: max_shard_size="5GB"


def _checkpoint(c: _Config, arch: gguf.MODEL_ARCH, model_dir: Path | None) -> list[HfTensor]:
    """The checkpoint's tensors in the order the converter reads them.

    Generated tensors (rope_freqs) come first. A single-file checkpoint lists its tensors sorted by
    name (so blk.10 comes before blk.2, as in real GGUFs of small models); a sharded one goes shard by
    shard, which for the large models here is block order (a block's own tensors still sorted).
    """
    n_embd = c["hidden_size"]
    extra = _rope_freqs(c) if arch == gguf.MODEL_ARCH.LLAMA else []
    layer = _LAYERS[arch]
    body = [("model.embed_tokens.weight", (_n_vocab_rows(c, model_dir), n_embd))]
    for il in range(c["num_hidden_layers"]):  # MTP layers (index >= num_hidden_layers) are not converted
        body += sorted(layer(c, il))
    body.append(("model.norm.weight", (n_embd,)))
    if not _is_tied(c) and not c.model_type.startswith("gemma"):
        body.append(("lm_head.weight", (c["vocab_size"], n_embd)))
    n_bytes = 2 * sum(math.prod(shape) for _, shape in body)
    return extra + (sorted(body) if n_bytes <= SINGLE_FILE_BYTES else body)


def _converted(c: _Config, block: list[HfTensor], mla_split: bool) -> Iterator[HfTensor]:
    """modify_tensors: rename Mixtral's stacked experts, split DeepSeek's kv_b_proj."""
    for name, shape in block:
        m = re.match(r"model\.layers\.(\d+)\.block_sparse_moe\.experts\.(w[123])\.weight$", name)
        if m:  # LlamaModel: merged_name = f"layers.{bid}.feed_forward.experts.{wid}.weight"
            yield f"layers.{m.group(1)}.feed_forward.experts.{m.group(2)}.weight", shape
        elif name.endswith("kv_b_proj.weight") and mla_split:
            n_head, nope, v_dim = c["num_attention_heads"], c["qk_nope_head_dim"], c["v_head_dim"]
            kv_rank = shape[1]
            yield name.replace("kv_b_proj", "k_b_proj"), (n_head, kv_rank, nope)  # k_b is transposed
            yield name.replace("kv_b_proj", "v_b_proj"), (n_head, v_dim, kv_rank)
        else:
            yield name, shape


def _gguf_type(name: str, kind: gguf.MODEL_TENSOR | None, n_dims: int, src: T) -> T:
    """prepare_tensors' choice of type for one tensor."""
    if n_dims <= 1 or name.endswith("_norm.weight"):
        return T.F32
    if kind in _F32_KINDS or not name.endswith((".weight", ".lora_a", ".lora_b")):
        return T.F32
    return src


def _src_type(c: _Config) -> T:
    dtype = str(c.get("torch_dtype", c.get("dtype", "bfloat16"))).removeprefix("torch.")
    return _SRC_TYPES.get(dtype, T.F16)


def _hparams(c: _Config, arch: gguf.MODEL_ARCH, mla_split: bool) -> Hparams:
    n_embd, n_head = c["hidden_size"], c["num_attention_heads"]
    n_head_kv = c.get("num_key_value_heads", n_head)
    head_dim = c.get("head_dim") or n_embd // n_head
    common = dict(
        arch=gguf.MODEL_ARCH_NAMES[arch],
        n_layer=c["num_hidden_layers"],
        n_embd=n_embd,
        n_head=n_head,
        n_ctx_train=int(c.get("max_position_embeddings", 0)),
        n_vocab=c["vocab_size"],
    )
    if arch == gguf.MODEL_ARCH.DEEPSEEK2:
        return _deepseek_hparams(c, common, n_head_kv, mla_split)
    is_moe = c.model_type.endswith(("moe", "mixtral"))
    n_expert = c.get("num_local_experts", c.get("num_experts", 0)) if is_moe else 0
    sliding, pattern = _sliding_window(c, arch)
    extra = {
        "feed_forward_length": c.get("intermediate_size", 0),
        "expert_feed_forward_length": c.get("moe_intermediate_size", 0),
    }
    return Hparams(
        **common,
        n_head_kv=n_head_kv,
        key_length=head_dim,
        value_length=head_dim,
        n_expert=n_expert,
        n_expert_used=c.get("num_experts_per_tok", 0) if n_expert else 0,
        rope_dim=head_dim,
        sliding_window=sliding,
        sliding_window_pattern=pattern,
        extra=extra,
    )


def _deepseek_hparams(c: _Config, common: dict[str, Any], n_head_kv: int, mla_split: bool) -> Hparams:
    """DeepSeek V2/V3 (MLA): the KV cache's heads and lengths depend on the converter's split of kv_b."""
    nope, rope, v_dim = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    kv_rank = c.get("kv_lora_rank", 512)
    n_expert = c.get("n_routed_experts", 0)
    first_dense = c.get("first_k_dense_replace", 0 if n_expert else c["num_hidden_layers"])
    extra = {
        "key_length_mla": nope + rope,
        "value_length_mla": v_dim,
        "q_lora_rank": c.get("q_lora_rank") or 0,
        "expert_shared_count": c.get("n_shared_experts", 0),
        "mla_split": mla_split,
        "feed_forward_length": c["intermediate_size"],
        "expert_feed_forward_length": c.get("moe_intermediate_size", 0),
    }
    if mla_split:  # today's converter: MQA with one wide latent head
        kv = dict(n_head_kv=1, key_length=kv_rank + rope, value_length=kv_rank)
    else:  # the converter of early 2025: all heads, decompressed
        kv = dict(n_head_kv=n_head_kv, key_length=nope + rope, value_length=v_dim)
    return Hparams(
        **common,
        **kv,
        n_expert=n_expert,
        n_expert_used=c.get("num_experts_per_tok", 0),
        kv_lora_rank=kv_rank,
        rope_dim=rope,
        n_leading_dense=first_dense,
        extra=extra,
    )


def _sliding_window(c: _Config, arch: gguf.MODEL_ARCH) -> tuple[int, int]:
    """Gemma 2/3's sliding-window attention: the window and the layer pattern (0, 0: none)."""
    if arch == gguf.MODEL_ARCH.GEMMA2:
        return c.get("sliding_window", 4096), 2  # llama.cpp: hparams.set_swa_pattern(2)
    if arch == gguf.MODEL_ARCH.GEMMA3:
        sliding, pattern = c.get("sliding_window", 4096), c.get("sliding_window_pattern", 6)
        if c.get("layer_types"):  # newer configs list each layer's attention instead of a pattern
            types = c["layer_types"]
            pattern = types.index("full_attention") + 1 if "full_attention" in types else 0
        return sliding, pattern
    return 0, 0


def _check_heads(c: _Config) -> None:
    """llama.cpp's GQA needs n_head to be a multiple of n_head_kv, and a head at least one wide."""
    n_head = c["num_attention_heads"]
    n_head_kv = c.get("num_key_value_heads", n_head)
    if n_head_kv > n_head or n_head % n_head_kv:
        raise QuantdropError(
            f"{c.source}: num_key_value_heads = {n_head_kv} does not divide "
            f"num_attention_heads = {n_head} (expected a divisor, e.g. {_divisor(n_head)})"
        )
    if not c.get("head_dim") and c.model_type not in ("deepseek_v2", "deepseek_v3") and c["hidden_size"] < n_head:
        raise QuantdropError(
            f"{c.source}: hidden_size = {c['hidden_size']} is smaller than "
            f"num_attention_heads = {n_head} (each head would be 0 wide)"
        )


def _divisor(n: int) -> int:
    return next(d for d in (8, 4, 2, 1) if n % d == 0)


def inventory_from_config(
    config: str | os.PathLike[str] | dict[str, Any],
    *,
    mla_split: bool = True,
    src_type: str | None = None,
    name: str | None = None,
) -> ModelInventory:
    """The GGUF inventory llama.cpp's converter would write for this config (no weights needed).

    `config`: a config.json path, an HF model directory, or the parsed dict. `mla_split` (DeepSeek only):
    split attn_kv_b into attn_k_b/attn_v_b like today's converter, or keep it (early 2025).
    `src_type`: the converter's output type for 2-D weights (default: from the config's torch_dtype).
    """
    model_dir: Path | None = None
    if isinstance(config, dict):
        raw, source = config, "config"
    else:
        p = Path(config)
        model_dir = p if p.is_dir() else p.parent
        raw, source = load_config(p), str(p)
    c = _Config(raw, source)
    _check_heads(c)
    arch = ARCHITECTURES[c.model_type]
    src = T[src_type.upper()] if src_type else _src_type(c)
    tmap = gguf.get_tensor_name_map(arch, c["num_hidden_layers"])
    tensors: list[TensorInfo] = []
    for hf_name, shape in _converted(c, _checkpoint(c, arch, model_dir), mla_split):
        hf_name = hf_name.replace("e_score_correction_bias", "e_score_correction.bias")  # filter_tensors
        mapped = tmap.get_type_and_name(hf_name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise QuantdropError(
                f"{source}: llama.cpp's {gguf.MODEL_ARCH_NAMES[arch]} has no tensor for "
                f"{hf_name} (its converter cannot convert this config)"
            )
        kind, gguf_name = mapped
        if kind == gguf.MODEL_TENSOR.ROPE_FREQS:
            gguf_name += ".weight"
        ggml_shape = tuple(reversed(shape))
        tensors.append(TensorInfo(gguf_name, ggml_shape, _gguf_type(gguf_name, kind, len(shape), src)))
    if name:
        label = name
    elif raw.get("_name_or_path"):
        label = str(raw["_name_or_path"])
    elif isinstance(config, dict):
        label = c.model_type
    else:  # model_dir/config.json -> the directory's name; some-model.json -> its stem
        p = Path(config)
        label = p.name if p.is_dir() else (p.parent.name if p.name == "config.json" else p.stem)
    return ModelInventory(name=label, hparams=_hparams(c, arch, mla_split), tensors=tuple(tensors), source=source)
