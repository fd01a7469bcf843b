"""What a model is made of: hyper-parameters and the GGUF tensor list, without any weights.

The same `ModelInventory` comes from a GGUF header (`read_gguf_inventory`) or from an HF
`config.json` (`quantdrop.hfconfig.inventory_from_config`), so the recipe resolver, the quantizer
and the planner all work from one description.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType

from quantdrop.errors import QuantdropError


def type_from_name(name: str) -> GGMLQuantizationType:
    """`"q4_k"` / `"Q4_K"` -> GGMLQuantizationType.Q4_K, or a one-line error listing the known types."""
    try:
        return GGMLQuantizationType[name.strip().upper()]
    except KeyError:
        known = ", ".join(t.name for t in GGMLQuantizationType)
        raise QuantdropError(f"unknown ggml type {name!r} (known: {known})") from None


def row_bytes(qtype: GGMLQuantizationType, n_per_row: int) -> int:
    """Bytes of one row, from gguf's own size table (ggml_row_size)."""
    block, type_size = GGML_QUANT_SIZES[qtype]
    return n_per_row // block * type_size


def tensor_bytes(qtype: GGMLQuantizationType, shape: tuple[int, ...]) -> int:
    n_rows = 1
    for d in shape[1:]:
        n_rows *= d
    return n_rows * row_bytes(qtype, shape[0])


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as GGUF stores it. `shape` is in ggml order: shape[0] is the row length (ne[0])."""

    name: str
    shape: tuple[int, ...]
    type: GGMLQuantizationType

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return tensor_bytes(self.type, self.shape)

    @property
    def n_dims(self) -> int:
        """ggml_n_dims: trailing 1-sized dimensions do not count."""
        dims = len(self.shape)
        while dims > 1 and self.shape[dims - 1] == 1:
            dims -= 1
        return dims


@dataclass(frozen=True)
class Hparams:
    """The hyper-parameters the recipes and the planner need, in llama.cpp's GGUF terms."""

    arch: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ctx_train: int = 0
    n_expert: int = 0
    n_expert_used: int = 0
    n_vocab: int = 0
    key_length: int = 0  # per-head K size (attention.key_length), 0 = n_embd / n_head
    value_length: int = 0
    kv_lora_rank: int = 0  # DeepSeek MLA: compressed KV rank (attention.kv_lora_rank)
    rope_dim: int = 0  # rope.dimension_count
    n_leading_dense: int = 0  # DeepSeek: leading_dense_block_count
    sliding_window: int = 0
    sliding_window_pattern: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def head_dim_k(self) -> int:
        return self.key_length or self.n_embd // max(1, self.n_head)

    @property
    def head_dim_v(self) -> int:
        return self.value_length or self.n_embd // max(1, self.n_head)

    @property
    def n_gqa(self) -> int:
        """llama_hparams::n_gqa(): query heads per KV head (0 when there are no KV heads)."""
        return self.n_head // self.n_head_kv if self.n_head_kv else 0


@dataclass(frozen=True)
class ModelInventory:
    """A model's hyper-parameters and tensors, in the order GGUF lists them."""

    name: str
    hparams: Hparams
    tensors: tuple[TensorInfo, ...]
    source: str = ""  # path of the GGUF or config it was read from

    @cached_property
    def n_params(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @cached_property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def tensor(self, name: str) -> TensorInfo:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)


def _field_value(reader: GGUFReader, key: str) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return None
    if f.types and f.types[0] == GGUFValueType.ARRAY:
        return [f.parts[i].tolist()[0] if f.types[-1] != GGUFValueType.STRING
                else bytes(f.parts[i]).decode("utf-8", "replace") for i in f.data]
    if f.types and f.types[0] == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8", "replace")
    return f.parts[f.data[0]].tolist()[0]


def open_gguf(path: str | os.PathLike[str]) -> GGUFReader:
    """GGUFReader with one-line errors for the usual bad inputs (missing, not GGUF, truncated)."""
    p = Path(path)
    if not p.exists():
        raise QuantdropError(f"{p}: no such file")
    if p.is_dir():
        raise QuantdropError(f"{p}: is a directory, not a GGUF file")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise QuantdropError(f"{p}: not a GGUF file (magic {magic!r})")
    try:
        reader = GGUFReader(p, "r")
    except (ValueError, IndexError, OSError, KeyError) as err:
        raise QuantdropError(f"{p}: corrupt or truncated GGUF ({err})") from None
    size = p.stat().st_size
    for t in reader.tensors:
        if int(t.data_offset) + int(t.n_bytes) > size:
            raise QuantdropError(f"{p}: truncated GGUF (tensor {t.name} ends past the end of the file)")
    return reader


def hparams_from_reader(reader: GGUFReader) -> Hparams:
    arch = _field_value(reader, "general.architecture")
    if not arch:
        raise QuantdropError("GGUF has no general.architecture key")

    def get(key: str, default: Any = 0) -> Any:
        v = _field_value(reader, f"{arch}.{key}")
        if isinstance(v, list):  # per-layer arrays (e.g. head_count_kv): take the largest
            v = max(v) if v else default
        return default if v is None else v

    tokens = reader.fields.get("tokenizer.ggml.tokens")
    n_vocab = len(tokens.data) if tokens is not None else int(get("vocab_size", 0))
    return Hparams(
        arch=arch,
        n_layer=int(get("block_count")),
        n_embd=int(get("embedding_length")),
        n_head=int(get("attention.head_count")),
        n_head_kv=int(get("attention.head_count_kv", get("attention.head_count"))),
        n_ctx_train=int(get("context_length")),
        n_expert=int(get("expert_count")),
        n_expert_used=int(get("expert_used_count")),
        n_vocab=n_vocab,
        key_length=int(get("attention.key_length")),
        value_length=int(get("attention.value_length")),
        kv_lora_rank=int(get("attention.kv_lora_rank")),
        rope_dim=int(get("rope.dimension_count")),
        n_leading_dense=int(get("leading_dense_block_count")),
        sliding_window=int(get("attention.sliding_window")),
    )


def read_gguf_inventory(path: str | os.PathLike[str], reader: GGUFReader | None = None) -> ModelInventory:
    """The inventory of a GGUF file from its header only (the tensor data is never touched)."""
    reader = reader or open_gguf(path)
    hp = hparams_from_reader(reader)
    tensors = tuple(
        TensorInfo(t.name, tuple(int(d) for d in t.shape), GGMLQuantizationType(int(t.tensor_type)))
        for t in reader.tensors
    )
    name = _field_value(reader, "general.name") or Path(path).stem
    return ModelInventory(name=str(name), hparams=hp, tensors=tensors, source=str(path))
