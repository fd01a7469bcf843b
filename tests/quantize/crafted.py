"""Hand-made GGUFs with exactly the defect a test wants: repeated names, odd offsets, bad shapes.

Built byte by byte (GGUF v3, ggml's docs/gguf.md) rather than with gguf-py's writer, which refuses
most of these defects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType

from quantdrop.ggufio import pack_field, tensor_bytes


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]  # ggml order
    type: int = GGMLQuantizationType.F32
    offset: int | None = None  # relative to the data section; None: right after the previous one


def _pad(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def llama_fields(n_layer: int = 1, embd: int = 32) -> list[bytes]:
    """The hyper-parameters a llama needs to be planned and resolved."""
    u32 = GGUFValueType.UINT32
    return [
        pack_field("general.architecture", "llama", GGUFValueType.STRING),
        pack_field("llama.block_count", n_layer, u32),
        pack_field("llama.embedding_length", embd, u32),
        pack_field("llama.attention.head_count", 4, u32),
        pack_field("llama.attention.head_count_kv", 4, u32),
        pack_field("llama.context_length", 128, u32),
    ]


def write_crafted(
    path: Path,
    tensors: list[Tensor],
    fields: list[bytes] | None = None,
    alignment: int = 32,
    truncate: int = 0,
    noise: bool = False,
) -> Path:
    """A GGUF with these tensor infos (data: zeros, or small F16 noise that takes real work to quantize),
    `truncate` bytes cut off the end."""
    fields = llama_fields() if fields is None else fields
    head = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(fields)))
    for f in fields:
        head += f
    offset, end = 0, 0
    for t in tensors:
        at = offset if t.offset is None else t.offset
        name = t.name.encode()
        head += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(t.shape))
        head += b"".join(struct.pack("<Q", d) for d in t.shape) + struct.pack("<IQ", t.type, at)
        try:
            nbytes = tensor_bytes(GGMLQuantizationType(t.type), t.shape)
        except (ValueError, KeyError):
            nbytes = 64
        offset = _pad(at + nbytes, alignment)
        end = max(end, at + nbytes)
    head += b"\0" * (-len(head) % alignment)
    n = _pad(end, alignment)
    rng = np.random.default_rng(0)
    data = (rng.standard_normal(n // 2, np.float32) * 0.02).astype(np.float16).tobytes() if noise else bytes(n)
    blob = bytes(head) + data
    path.write_bytes(blob[: len(blob) - truncate] if truncate else blob)
    return path


def good_tensors() -> list[Tensor]:
    """A well-formed minimal llama block: what the defects are made from."""
    return [
        Tensor("token_embd.weight", (32, 64), GGMLQuantizationType.F16),
        Tensor("output_norm.weight", (32,)),
        Tensor("blk.0.attn_q.weight", (32, 32), GGMLQuantizationType.F16),
        Tensor("blk.0.ffn_down.weight", (64, 32), GGMLQuantizationType.F16),
    ]
