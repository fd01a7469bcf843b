"""llama.cpp's own tensor-type rules, ported from `src/llama-quant.cpp` of the llama.cpp that
llama-cpp-python 0.3.36 builds (functions named after their C++ originals).

Only the rules for the ftypes we offer as presets are ported (Q8_0, Q6_K, Q5_K_*, Q4_K_*, Q3_K_*,
Q2_K, Q2_K_S, Q4_0/Q4_1/Q5_0/Q5_1); the IQ mixes are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto

from gguf import GGML_QUANT_SIZES, LlamaFileType
from gguf import GGMLQuantizationType as T

from quantdrop.errors import QuantdropError
from quantdrop.inventory import Hparams, TensorInfo

# the preset ftypes: gguf's own llama_ftype values (gguf.LlamaFileType, include/llama.h) and each one's
# default tensor type (llama_ftype_get_default_type: the name without its _S/_M/_L size suffix)
_PRESET_FTYPES = (
    "F32",
    "F16",
    "Q4_0",
    "Q4_1",
    "Q8_0",
    "Q5_0",
    "Q5_1",
    "Q2_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "Q4_K_S",
    "Q4_K_M",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
    "Q2_K_S",
    "BF16",
)


def _ftype(name: str) -> tuple[int, T]:
    value = LlamaFileType.ALL_F32 if name == "F32" else LlamaFileType[f"MOSTLY_{name}"]
    return int(value), T[re.sub(r"_[SML]$", "", name)]


FTYPES: dict[str, tuple[int, T]] = {name: _ftype(name) for name in _PRESET_FTYPES}

QUANTIZED = {t for t in T if t not in (T.F32, T.F16, T.BF16, T.F64, T.I8, T.I16, T.I32, T.I64)}

# tensor_type_fallback: a row length that is not a multiple of the block size falls back to these
_FALLBACK = {
    T.IQ1_S: T.IQ4_NL,
    T.IQ1_M: T.IQ4_NL,
    T.IQ2_XXS: T.IQ4_NL,
    T.IQ2_XS: T.IQ4_NL,
    T.IQ2_S: T.IQ4_NL,
    T.IQ3_XXS: T.IQ4_NL,
    T.IQ3_S: T.IQ4_NL,
    T.IQ4_XS: T.IQ4_NL,
    T.Q2_K: T.Q4_0,
    T.Q3_K: T.Q4_0,
    T.TQ1_0: T.Q4_0,
    T.TQ2_0: T.Q4_0,
    T.Q4_K: T.Q5_0,
    T.Q5_K: T.Q5_1,
    T.Q6_K: T.Q8_0,
}


class Category(Enum):
    """tensor_category: broad roles, found by substring like llama.cpp does."""

    TOKEN_EMBD = auto()
    ATTENTION_Q = auto()
    ATTENTION_V = auto()
    ATTENTION_K = auto()
    ATTENTION_QKV = auto()
    ATTENTION_KV_B = auto()
    ATTENTION_OUTPUT = auto()
    FFN_UP = auto()
    FFN_GATE = auto()
    FFN_DOWN = auto()
    OUTPUT = auto()
    OTHER = auto()


_CATEGORY_SUBSTRINGS = (
    ("attn_qkv.weight", Category.ATTENTION_QKV),
    ("attn_kv_b.weight", Category.ATTENTION_KV_B),
    ("attn_v.weight", Category.ATTENTION_V),
    ("attn_k.weight", Category.ATTENTION_K),
    ("attn_q.weight", Category.ATTENTION_Q),
    ("attn_output.weight", Category.ATTENTION_OUTPUT),
    ("ffn_up", Category.FFN_UP),
    ("ffn_gate", Category.FFN_GATE),
    ("ffn_down", Category.FFN_DOWN),
)
_ATTN_V_LIKE = {Category.ATTENTION_V, Category.ATTENTION_QKV, Category.ATTENTION_KV_B}


def is_token_embd(name: str) -> bool:
    return name in ("token_embd.weight", "per_layer_token_embd.weight")


def tensor_category(name: str) -> Category:
    if name == "output.weight":
        return Category.OUTPUT
    if is_token_embd(name):
        return Category.TOKEN_EMBD
    for sub, cat in _CATEGORY_SUBSTRINGS:
        if sub in name:
            return cat
    return Category.OTHER


_NOT_QUANTIZED_SUBSTRINGS = (
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
)


def tensor_allows_quantization(t: TensorInfo) -> bool:
    """tensor_allows_quantization: 2-D/3-D weights only; norms, routers, position embeddings stay."""
    if t.n_dims < 2 or not t.name.endswith("weight"):
        return False
    if t.name in ("position_embd.weight", "token_types.weight"):
        return False
    return not any(s in t.name for s in _NOT_QUANTIZED_SUBSTRINGS)


def block_size(qtype: T) -> int:
    return GGML_QUANT_SIZES[qtype][0]


def tensor_type_fallback(t: TensorInfo, target: T) -> T:
    """tensor_type_fallback: demote a type whose block does not divide the row length."""
    ncols = t.shape[0]
    if ncols % block_size(target) == 0:
        return target
    fallback = _FALLBACK.get(target)
    if fallback is None:
        if block_size(target) > 32:
            raise QuantdropError(f"no tensor type fallback is defined for type {target.name} ({t.name})")
        fallback = target
    if ncols % block_size(fallback) != 0:
        fallback = T.F16
    return fallback


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


_BLK = re.compile(r"^blk\.(\d+)\.")


def layer_of(name: str) -> int | None:
    m = _BLK.match(name)
    return int(m.group(1)) if m else None


@dataclass
class QuantState:
    """quantize_state_impl: the counters the heuristic advances as it walks the tensors in order."""

    hp: Hparams
    n_attention_wv: int = 0
    n_layer: int = 0
    i_attention_wv: int = 0
    i_ffn_down: int = 0
    i_ffn_gate: int = 0
    i_ffn_up: int = 0
    has_imatrix: bool = False
    has_tied_embeddings: bool = True
    is_70b: bool = False

    @classmethod
    def for_tensors(cls, hp: Hparams, names: list[str], has_imatrix: bool = False) -> QuantState:
        """init_quantize_state_counters."""
        qs = cls(hp=hp, has_imatrix=has_imatrix, n_layer=hp.n_layer)
        qs.n_attention_wv = sum(tensor_category(n) in _ATTN_V_LIKE for n in names)
        qs.has_tied_embeddings = "output.weight" not in names
        # llama_model::type == LLM_TYPE_70B, as llama_quant_model_from_metadata infers it
        qs.is_70b = hp.arch == "llama" and hp.n_layer == 80 and hp.n_head != hp.n_head_kv
        return qs

    def layer_info(self, counter: int, name: str) -> tuple[int, int]:
        if max(1, self.hp.n_expert) > 1:  # experts are not consecutive: parse the layer from the name
            layer = layer_of(name)
            if layer is None:
                raise QuantdropError(f"failed to determine layer for tensor {name}")
            return layer, self.n_layer
        return counter, self.n_layer


def llama_tensor_get_type_impl(qs: QuantState, new_type: T, t: TensorInfo, ftype: str, cat: Category) -> T:
    """llama_tensor_get_type_impl for the K-quant and legacy ftypes (the IQ mixes are not ported)."""
    hp, name, arch = qs.hp, t.name, qs.hp.arch
    falcon = arch == "falcon"
    n_expert = hp.n_expert
    if cat == Category.OUTPUT or (qs.has_tied_embeddings and cat == Category.TOKEN_EMBD):
        if falcon or t.shape[0] % block_size(new_type) != 0:
            new_type = T.Q8_0
        elif new_type != T.Q8_0:
            new_type = T.Q6_K
    elif cat == Category.TOKEN_EMBD:
        pass  # only the IQ/TQ mixes change it
    elif cat in _ATTN_V_LIKE:
        if ftype == "Q2_K":
            new_type = T.Q4_K if hp.n_gqa >= 4 else T.Q3_K
        elif ftype == "Q2_K_S" and hp.n_gqa >= 4:
            new_type = T.Q4_K
        elif ftype == "Q3_K_M":
            new_type = T.Q5_K if qs.i_attention_wv < 2 else T.Q4_K
        elif ftype == "Q3_K_L":
            new_type = T.Q5_K
        elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(qs.i_attention_wv, qs.n_attention_wv):
            new_type = T.Q6_K
        elif ftype == "Q4_K_S" and qs.i_attention_wv < 4:
            new_type = T.Q5_K
        if qs.is_70b and new_type in (T.Q3_K, T.Q4_K):
            new_type = T.Q5_K
        if n_expert == 8:
            new_type = T.Q8_0
        qs.i_attention_wv += 1
    elif cat == Category.ATTENTION_K:
        if n_expert == 8:
            new_type = T.Q8_0
    elif cat == Category.ATTENTION_Q:
        pass  # only the IQ3 mixes change it
    elif cat == Category.FFN_DOWN:
        i_layer, n_layer = qs.layer_info(qs.i_ffn_down, name)
        if ftype == "Q2_K":
            new_type = T.Q3_K
        elif ftype == "Q2_K_S":
            if i_layer < n_layer // 8:
                new_type = T.Q4_K
        elif ftype == "Q3_K_M":
            if i_layer < n_layer // 16:
                new_type = T.Q5_K
            elif not falcon or use_more_bits(i_layer, n_layer):
                new_type = T.Q4_K
            else:
                new_type = T.Q3_K
        elif ftype == "Q3_K_L":
            new_type = T.Q4_K if falcon else T.Q5_K
        elif ftype == "Q4_K_M":
            if falcon:
                new_type = T.Q6_K if i_layer < n_layer // 16 else T.Q5_K if use_more_bits(i_layer, n_layer) else T.Q4_K
            elif use_more_bits(i_layer, n_layer):
                new_type = T.Q6_K
        elif ftype == "Q5_K_M" and use_more_bits(i_layer, n_layer):
            new_type = T.Q6_K
        elif ftype == "Q4_K_S" and not falcon and i_layer < n_layer // 8:
            new_type = T.Q5_K
        elif ftype in ("Q4_0", "Q5_0") and qs.has_imatrix and i_layer < n_layer // 8:
            new_type = T.Q4_1 if ftype == "Q4_0" else T.Q5_1
        qs.i_ffn_down += 1
    elif cat == Category.ATTENTION_OUTPUT:
        if not falcon:
            if n_expert == 8:
                if ftype in ("Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M"):
                    new_type = T.Q5_K
            elif ftype == "Q2_K":
                new_type = T.Q3_K
            elif ftype == "Q3_K_M":
                new_type = T.Q4_K
            elif ftype == "Q3_K_L":
                new_type = T.Q5_K
        elif ftype == "Q3_K_L":
            new_type = T.Q4_K
    elif cat == Category.ATTENTION_QKV:
        if ftype in ("Q3_K_M", "Q3_K_L"):
            new_type = T.Q4_K
        elif ftype == "Q4_K_M":
            new_type = T.Q5_K
        elif ftype == "Q5_K_M":
            new_type = T.Q6_K
    elif cat == Category.FFN_GATE:
        qs.layer_info(qs.i_ffn_gate, name)
        qs.i_ffn_gate += 1
    elif cat == Category.FFN_UP:
        qs.layer_info(qs.i_ffn_up, name)
        qs.i_ffn_up += 1
    return new_type


def requires_imatrix(name: str, qtype: T, ftype: str | None) -> bool:
    """tensor_requires_imatrix: the IQ1/IQ2/IQ3_XXS types (and Q2_K inside a Q2_K_S mix)."""
    if is_token_embd(name) or name == "output.weight":
        return False
    if qtype in (T.IQ3_XXS, T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ1_M, T.IQ1_S):
        return True
    return qtype == T.Q2_K and ftype == "Q2_K_S"


def llama_order(names: list[str]) -> list[str]:
    """llama_model_loader's weights_map order: by block number (non-block tensors first), then name."""

    def key(n: str) -> tuple[int, str]:
        layer = layer_of(n)
        return (-1 if layer is None else layer, n)

    return sorted(names, key=key)
