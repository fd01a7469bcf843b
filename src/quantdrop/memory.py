"""Memory beyond the weights, term by term, as llama.cpp allocates it (src/ as vendored by llama-cpp-python).

KV cache (`llama_kv_cache`, src/llama-kv-cache.cpp): per layer one K tensor of `n_embd_k_gqa x cells`
and one V tensor of `n_embd_v_gqa x cells`, each `ggml_row_size(type, n_embd) * cells` bytes.
  * cells: llama_context pads n_ctx to 256; with `parallel` sequences each sequence gets its own
    stream of pad(ctx, 256) cells (kv_unified = false, llama.cpp's default). Sliding-window layers
    (Gemma 2/3, `llama_kv_cache_iswa`) keep pad(min(cells, n_swa + n_ubatch), 256) cells per stream,
    unless `swa_full` (llama-server and llama-cli default to swa_full = false, common/common.h; the
    library's llama_context_default_params, hence llama-cpp-python, to true).
  * widths: n_head_kv x head size for ordinary attention. DeepSeek (MLA) has two layouts:
    `full`  = every head's decompressed K (qk_nope + qk_rope) and V (v_head_dim), how llama.cpp cached
              DeepSeek before its MLA change (and still does for GGUFs with one attn_kv_b);
    `latent`= MLA's compressed cache, K = kv_lora_rank + qk_rope for one head and no V tensor (V is a
              view of K: `has_v = !is_mla`), how llama.cpp caches GGUFs with attn_k_b/attn_v_b.
Compute buffer (`graph_reserve`, src/llama-context.cpp): ggml-alloc's peak for the worst-case graph,
one ubatch of min(n_ubatch, n_ctx) tokens attending to every cell. Estimated per device as the larger
of two moments:
  * while its blocks run: the KQ mask(s) [cells, tokens] (f32, f16 under flash attention), the
    residual stream (3 x tokens x n_embd f32) and the largest block step, either attention (Q, the
    current K/V rows, the output and, without flash attention, the f32 score matrix
    KQ = cells x tokens x n_head, the term that grows with the context; softmax runs in place) or the
    feed-forward (gate and up activations, per used expert for MoE, plus router logits);
  * on the device holding the output layer: the logits, n_vocab x tokens f32, above 2 residual-sized
    slots (3 without flash attention or with a Hadamard-rotated quantized cache: _logits_moment_streams).
The tests compare both terms with what llama.cpp logs: KV to the byte, the compute buffer within a
few percent (llama.cpp's CPU backend, several architectures, with and without flash attention).
Runtime overhead per device (CUDA context, BLAS workspaces, the backend's pool) is a property of the
device (devices.toml), added by the planner.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gguf import GGMLQuantizationType

from quantdrop.errors import QuantdropError
from quantdrop.inventory import ModelInventory, row_bytes, type_from_name
from quantdrop.recipes.llamacpp import layer_of

KvLayout = Literal["auto", "full", "latent"]
KV_TYPES = ("f16", "q8_0", "q4_0")
F32 = 4
CTX_PAD = 256  # llama_context: cparams.n_ctx = GGML_PAD(cparams.n_ctx, 256)

# llama.cpp's hard-coded sliding-window patterns where the GGUF carries none (llama_model::load_hparams)
SWA_PATTERN = {"gemma2": 2, "gemma3": 6}


def _pad(n: int, to: int = CTX_PAD) -> int:
    return (n + to - 1) // to * to


@dataclass(frozen=True)
class LayerShape:
    """What one block needs beyond its weights, read off the inventory's tensor shapes."""

    index: int
    k_width: int  # elements of K cached per token (n_embd_k_gqa)
    v_width: int  # elements of V cached per token (0: MLA caches no V)
    swa: bool
    n_head: int
    head_k: int  # per-head size of Q.K (what the score matrix contracts over)
    head_v: int
    n_ff: int  # dense feed-forward width (0 in an MoE block)
    n_ff_exp: int  # one expert's width
    n_expert: int
    n_expert_used: int
    n_ff_shexp: int


def _shape(inv: ModelInventory, name: str) -> tuple[int, ...] | None:
    for t in inv.tensors:
        if t.name == name:
            return t.shape
    return None


def is_mla(inv: ModelInventory) -> bool:
    """A DeepSeek GGUF with attn_k_b/attn_v_b: llama.cpp runs MLA and caches the latent."""
    return inv.hparams.arch.startswith("deepseek2") and any(t.name.endswith(".attn_k_b.weight") for t in inv.tensors)


def resolve_layout(inv: ModelInventory, layout: KvLayout) -> str:
    """`auto` follows the model: latent for MLA GGUFs (mla-split yes), else full; `gqa` for other archs."""
    if layout not in ("auto", "full", "latent"):
        raise QuantdropError(f"unknown --kv-layout {layout!r} (one of: auto, full, latent)")
    if not inv.hparams.arch.startswith("deepseek2"):
        return "gqa"
    if layout == "auto":
        return "latent" if is_mla(inv) else "full"
    return layout


def layer_shapes(inv: ModelInventory, layout: KvLayout = "auto") -> list[LayerShape]:
    """One LayerShape per block, from the tensors (works for a GGUF header and a config alike)."""
    hp = inv.hparams
    kind = resolve_layout(inv, layout)
    by_layer: dict[int, dict[str, tuple[int, ...]]] = {}
    for t in inv.tensors:
        if (il := layer_of(t.name)) is not None:
            rest = t.name.split(".", 2)[2]
            by_layer.setdefault(il, {})[rest.removesuffix(".weight")] = t.shape
    pattern = hp.sliding_window_pattern or SWA_PATTERN.get(hp.arch, 0)
    shapes = []
    for il in range(hp.n_layer):
        ts = by_layer.get(il, {})
        n_head = hp.n_head
        if kind == "gqa":
            head_k, head_v = hp.head_dim_k, hp.head_dim_v
            k_width, v_width = hp.n_head_kv * head_k, hp.n_head_kv * head_v
        else:  # DeepSeek: sizes from the projections, valid for both converter layouts
            q = ts.get("attn_q_b") or ts.get("attn_q")
            out = ts.get("attn_output")
            kv_a = ts.get("attn_kv_a_mqa")
            if q is None or out is None or kv_a is None:
                raise QuantdropError(f"{inv.source or inv.name}: block {il} lacks the MLA projections")
            qk_head, v_head = q[1] // n_head, out[0] // n_head
            if kind == "full":
                head_k, head_v = qk_head, v_head
                k_width, v_width = n_head * qk_head, n_head * v_head
            else:  # latent: one head of kv_lora_rank + qk_rope; scores contract over it too
                head_k = head_v = kv_a[1]
                k_width, v_width = kv_a[1], 0
        swa = bool(hp.sliding_window) and pattern > 0 and il % pattern < pattern - 1  # set_swa_pattern
        up, up_exps, up_sh = ts.get("ffn_up"), ts.get("ffn_up_exps"), ts.get("ffn_up_shexp")
        shapes.append(
            LayerShape(
                index=il,
                k_width=k_width,
                v_width=v_width,
                swa=swa,
                n_head=n_head,
                head_k=head_k,
                head_v=head_v,
                n_ff=up[1] if up else 0,
                n_ff_exp=up_exps[1] if up_exps else 0,
                n_expert=up_exps[2] if up_exps else 0,
                n_expert_used=hp.n_expert_used if up_exps else 0,
                n_ff_shexp=up_sh[1] if up_sh else 0,
            )
        )
    return shapes


def n_vocab(inv: ModelInventory) -> int:
    """Rows of the output projection (token_embd when tied): the logits' width."""
    for name in ("output.weight", "token_embd.weight"):
        shape = _shape(inv, name)
        if shape is not None and len(shape) == 2:
            return shape[1]
    return inv.hparams.n_vocab


def kv_type(name: str) -> GGMLQuantizationType:
    if name.lower() not in KV_TYPES:
        raise QuantdropError(f"unknown --kv-type {name!r} (one of: {', '.join(KV_TYPES)})")
    return type_from_name(name)


def check_kv_heads(layers: list[LayerShape], kv_type_name: str) -> None:
    """llama.cpp (src/llama-context.cpp, llama_init_from_model) refuses a quantized K/V cache under flash
    attention whose block size does not divide the head size; the same here, in llama.cpp's words."""
    from gguf import GGML_QUANT_SIZES

    qtype = kv_type(kv_type_name)
    block = GGML_QUANT_SIZES[qtype][0]
    for ly in layers:
        for what, head, used in (("k", ly.head_k, True), ("v", ly.head_v, ly.v_width > 0)):
            if used and head % block:
                raise QuantdropError(
                    f"--kv-type {kv_type_name.lower()}: llama.cpp refuses it for this model "
                    f"({what.upper()} cache type {qtype.name.lower()} with block size {block} "
                    f"does not divide n_embd_head_{what}={head}); use --kv-type f16"
                )


def kv_cells(
    layer: LayerShape, inv: ModelInventory, ctx: int, parallel: int, n_ubatch: int, swa_full: bool = False
) -> int:
    """Cells llama.cpp allocates for one layer across all sequences (see the module docstring)."""
    if ctx < 1 or parallel < 1:
        raise QuantdropError(f"context and parallel must be positive (ctx={ctx}, parallel={parallel})")
    per_seq = _pad(ctx)
    if layer.swa and not swa_full:
        per_seq = _pad(min(per_seq, inv.hparams.sliding_window + n_ubatch))
    return per_seq * parallel


def _row(qtype: GGMLQuantizationType, width: int, what: str) -> int:
    from gguf import GGML_QUANT_SIZES

    block = GGML_QUANT_SIZES[qtype][0]
    if width % block:
        raise QuantdropError(
            f"a {what} row of {width} elements cannot be stored as {qtype.name} (block size {block}); use --kv-type f16"
        )
    return row_bytes(qtype, width)


def kv_bytes_per_layer(
    inv: ModelInventory,
    *,
    ctx: int,
    parallel: int = 1,
    kv_type_name: str = "f16",
    layout: KvLayout = "auto",
    n_ubatch: int = 512,
    swa_full: bool = False,
    shapes: list[LayerShape] | None = None,
) -> list[int]:
    """Bytes of K plus V cache for each layer: ggml_row_size(type, width) x cells."""
    qtype = kv_type(kv_type_name)
    out = []
    for layer in shapes or layer_shapes(inv, layout):
        cells = kv_cells(layer, inv, ctx, parallel, n_ubatch, swa_full)
        v = _row(qtype, layer.v_width, "V") if layer.v_width else 0
        out.append((_row(qtype, layer.k_width, "K") + v) * cells)
    return out


def attn_rotation(layers: list[LayerShape], kv_type_name: str) -> bool:
    """llama.cpp rotates a quantized K/V cache with a Hadamard matrix (src/llama-kv-cache.cpp, attn_rot_k /
    attn_rot_v: ggml_is_quantized(type) and head size % 64 == 0): extra Q/K/V-sized tensors per block."""
    if kv_type(kv_type_name) in (GGMLQuantizationType.F16, GGMLQuantizationType.F32):
        return False
    return any(ly.head_k % 64 == 0 or (ly.v_width and ly.head_v % 64 == 0) for ly in layers)


def compute_buffer_bytes(
    inv: ModelInventory,
    layers: list[LayerShape],
    *,
    has_output: bool,
    ctx: int,
    parallel: int = 1,
    n_ubatch: int = 512,
    flash_attn: bool = True,
    swa_full: bool = False,
    kv_type_name: str = "f16",
) -> int:
    """Estimated compute buffer of one device holding `layers` (and the output layer if `has_output`)."""
    hp = inv.hparams
    n_cells = _pad(ctx) * parallel
    tokens = min(n_ubatch, n_cells)  # graph_reserve: n_tokens = min(n_ctx, n_ubatch)
    n_embd = hp.n_embd
    if not layers and not has_output:
        return 0
    masks = sorted({kv_cells(ly, inv, ctx, 1, n_ubatch, swa_full) for ly in layers})  # one mask per cache
    # while the blocks run: the KQ mask(s) [n_kv, tokens], f32 (f16 under flash attention)
    masks_bytes = sum(m * tokens * (2 if flash_attn else F32) for m in masks) if layers else 0
    residual = 3 * tokens * n_embd * F32  # the stream, its norm, the block's output
    block_peak = 0
    for ly in layers:
        n_kv = kv_cells(ly, inv, ctx, 1, n_ubatch, swa_full)
        q = tokens * ly.n_head * ly.head_k * F32
        cur_kv = tokens * (ly.k_width + ly.v_width) * F32
        out = tokens * ly.n_head * ly.head_v * F32
        scores = 0 if flash_attn else n_kv * tokens * ly.n_head * F32
        attn = q + cur_kv + out + scores
        if ly.n_expert:
            ffn = (
                2 * tokens * ly.n_expert * F32  # router logits and probabilities
                + 2 * tokens * ly.n_expert_used * ly.n_ff_exp * F32  # gate, up per used expert
                + tokens * ly.n_expert_used * n_embd * F32  # expert outputs before the weighted sum
                + 2 * tokens * ly.n_ff_shexp * F32
            )
        else:
            ffn = 2 * tokens * ly.n_ff * F32
        block_peak = max(block_peak, attn, ffn)
    peak = masks_bytes + residual + block_peak if layers else 0
    if has_output:  # logits [n_vocab, tokens] f32 (graph_reserve: all outputs), see _logits_moment
        peak = max(
            peak,
            tokens * n_vocab(inv) * F32
            + _logits_moment_streams(layers, flash_attn, kv_type_name) * tokens * n_embd * F32,
        )
    return peak


def _logits_moment_streams(layers: list[LayerShape], flash_attn: bool, kv_type_name: str) -> int:
    """Residual-sized [n_embd, tokens] f32 slots below the logits when ggml-alloc places them.

    The logits are larger than any hole, so they go above the highest live tensor: the output norm,
    above the hole the last residual stream leaves (2 slots). Measured with llama.cpp's CPU log: 2 with
    flash attention and an unrotated (f16) cache (SmolLM2-135M 256-16K, Qwen2.5-1.5B 512-32K); the
    score matrix (no flash attention) and the Hadamard-rotated Q/K/V of a quantized cache fragment the
    last block and push them one slot up (3) from a few thousand cells on, so 3 there: exact at those
    contexts and one slot (tokens x n_embd x 4 bytes) high below. Not modelled: ggml-alloc's isolated
    fragmentation spikes (SmolLM2, flash attention: f16 at 2048 cells, q8_0 at 768/1024 cells, 3-4 %
    above this estimate), which only a simulation of ggml-alloc over the exact graph would predict."""
    return 3 if not flash_attn or attn_rotation(layers, kv_type_name) else 2


# ---------------------------------------------------------------------------------------------
# CPU_REPACK (ggml/src/ggml-cpu/repack.cpp, ggml_repack_get_optimal_repack_type)
# ---------------------------------------------------------------------------------------------
# On the CPU backend llama.cpp puts every weight that a matrix product reads (MUL_MAT on a 2-D weight,
# MUL_MAT_ID on 3-D experts) into the extra buffer type CPU_REPACK when repack.cpp has an interleaved
# layout for its type on this CPU and its row count divides the interleave: a copy of the weight
# (ggml_nbytes, 32-byte aligned), next to the mmapped file. Per type, the (features, interleave) pairs
# repack.cpp tries in order (x86: avx2, avx512; ARM: dotprod = NEON + dotprod, i8mm = NEON + int8
# matmul). Not modelled: SVE, RISC-V V, s390 VXE, and AMX builds (whose AMX buffer comes first).
REPACK_RULES: dict[GGMLQuantizationType, tuple[tuple[str, int], ...]] = {
    GGMLQuantizationType.Q4_0: (("avx2", 8), ("i8mm", 4), ("dotprod", 4)),
    GGMLQuantizationType.Q4_K: (("avx2", 8), ("i8mm", 8), ("dotprod", 8)),
    GGMLQuantizationType.Q2_K: (("avx512", 8),),
    GGMLQuantizationType.Q5_K: (("i8mm", 8), ("dotprod", 8)),
    GGMLQuantizationType.Q6_K: (("i8mm", 8), ("dotprod", 8)),
    GGMLQuantizationType.IQ4_NL: (("avx2", 8), ("dotprod", 4)),
    GGMLQuantizationType.MXFP4: (("avx2", 8), ("dotprod", 4)),
    GGMLQuantizationType.Q8_0: (("i8mm", 4), ("dotprod", 4)),
    GGMLQuantizationType.Q1_0: (("i8mm", 4), ("dotprod", 4)),
}
TENSOR_ALIGNMENT = 32  # ggml-cpu: the repack buffer's alignment
# weights llama.cpp reads with GET_ROWS or a convolution, never a matrix product (src/llama-arch.cpp)
_NOT_MATMUL = ("token_embd", "position_embd", "token_types", "per_layer_token_embd", "conv")


def repack_interleave(qtype: GGMLQuantizationType, features: frozenset[str]) -> int | None:
    """Rows repack.cpp interleaves for this type on a CPU with `features`; None: not repacked."""
    for feature, rows in REPACK_RULES.get(qtype, ()):
        if feature in features:
            return rows
    return None


def cpu_repack_bytes(tensors: list[tuple[str, GGMLQuantizationType, tuple[int, ...]]], features: frozenset[str]) -> int:
    """Bytes of llama.cpp's CPU_REPACK buffer for these weights (name, type, ggml shape). A tied
    embedding (no output.weight) is read by the output's MUL_MAT as a duplicate: it counts too."""
    names = {name for name, _, _ in tensors}
    total = 0
    for name, qtype, shape in tensors:
        dims = len(shape)
        while dims > 1 and shape[dims - 1] == 1:
            dims -= 1
        matmul = dims == 2 or (dims == 3 and "_exps" in name)
        if name == "token_embd.weight" and "output.weight" not in names:
            matmul = dims == 2  # llama.cpp's TENSOR_DUPLICATED output layer
        elif any(k in name for k in _NOT_MATMUL):
            matmul = False
        rows = repack_interleave(qtype, features)
        if matmul and rows and shape[1] % rows == 0:
            total += _pad(row_bytes(qtype, shape[0]) * math.prod(shape[1:]), TENSOR_ALIGNMENT)
    return total


def local_cpu_features() -> frozenset[str]:
    """The repack-relevant features of the llama.cpp build on this machine (llama_print_system_info,
    which reports what ggml-cpu was compiled for: a native build = this CPU); /proc/cpuinfo otherwise."""
    try:
        import llama_cpp

        flags = {f.lower() for f in re.findall(r"(\w+) = 1", llama_cpp.llama_print_system_info().decode())}
    except (ImportError, OSError, AttributeError):
        return _cpuinfo_features()
    if "repack" not in flags:
        return frozenset()  # built without GGML_USE_CPU_REPACK
    names = {"avx2": "avx2", "avx512": "avx512", "dotprod": "dotprod", "matmul_int8": "i8mm"}
    return frozenset(v for k, v in names.items() if k in flags)


def _cpuinfo_features() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, flags=re.MULTILINE)
    flags = set(m.group(1).split()) if m else set()
    names = {"avx2": "avx2", "avx512f": "avx512", "asimddp": "dotprod", "i8mm": "i8mm"}
    return frozenset(v for k, v in names.items() if k in flags)
