"""What a model is made of: hyper-parameters and the GGUF tensor list, without any weights.

The same `ModelInventory` comes from a GGUF header (`read_gguf_inventory`, split models included)
or from an HF `config.json` (`quantdrop.hfconfig.inventory_from_config`), so the recipe resolver,
the quantizer and the planner all work from one description. `load(path)` is the one entry point
that tells them apart: a GGUF, a config.json, or a model directory holding either.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from gguf import GGMLQuantizationType

from quantdrop.errors import QuantdropError
from quantdrop.ggufio import GGUF_MAGIC, GGUFHeader, read_header, row_bytes, tensor_bytes

__all__ = [
    "Hparams",
    "ModelInventory",
    "ModelSource",
    "TensorInfo",
    "hparams_from_fields",
    "inventory_from_header",
    "load",
    "locate",
    "read_gguf_inventory",
    "row_bytes",
    "tensor_bytes",
    "type_from_name",
]


def type_from_name(name: str) -> GGMLQuantizationType:
    """`"q4_k"` / `"Q4_K"` -> GGMLQuantizationType.Q4_K, or a one-line error listing the known types."""
    try:
        return GGMLQuantizationType[name.strip().upper()]
    except KeyError:
        known = ", ".join(t.name for t in GGMLQuantizationType)
        raise QuantdropError(f"unknown ggml type {name!r} (known: {known})") from None


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as GGUF stores it. `shape` is in ggml order: shape[0] is the row length (ne[0])."""

    name: str
    shape: tuple[int, ...]
    type: GGMLQuantizationType

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

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


MAX_LAYERS = 10_000  # far beyond any released model (405B: 126); the planner loops over layers


def hparams_from_fields(fields: dict[str, Any], where: str = "GGUF") -> Hparams:
    """Hyper-parameters from GGUF metadata (per-layer arrays such as head_count_kv: their largest)."""
    arch = fields.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise QuantdropError(f"{where}: no general.architecture key")

    def get(key: str, default: int = 0) -> int:
        v = fields.get(f"{arch}.{key}")
        if v is None:
            return default
        if not isinstance(v, (int, float, bool)):
            v = max(v) if len(v) else default
        return int(v)

    tokens = fields.get("tokenizer.ggml.tokens")
    n_head = get("attention.head_count")
    if not 0 <= get("block_count") <= MAX_LAYERS:
        raise QuantdropError(f"{where}: {arch}.block_count = {get('block_count')}: expected 0 to {MAX_LAYERS}")
    return Hparams(
        arch=arch,
        n_layer=get("block_count"),
        n_embd=get("embedding_length"),
        n_head=n_head,
        n_head_kv=get("attention.head_count_kv", n_head),
        n_ctx_train=get("context_length"),
        n_expert=get("expert_count"),
        n_expert_used=get("expert_used_count"),
        n_vocab=len(tokens) if tokens is not None else get("vocab_size"),
        key_length=get("attention.key_length"),
        value_length=get("attention.value_length"),
        kv_lora_rank=get("attention.kv_lora_rank"),
        rope_dim=get("rope.dimension_count"),
        n_leading_dense=get("leading_dense_block_count"),
        sliding_window=get("attention.sliding_window"),
    )


def inventory_from_header(header: GGUFHeader) -> ModelInventory:
    """The inventory of one GGUF file from its parsed header (only this file's tensors)."""
    tensors = tuple(TensorInfo(t.name, t.shape, t.type) for t in header.tensors)
    name = header.fields.get("general.name")
    label = name if isinstance(name, str) and name else header.path.stem
    return ModelInventory(
        name=label,
        hparams=hparams_from_fields(header.fields, str(header.path)),
        tensors=tensors,
        source=str(header.path),
    )


_SPLIT = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$")  # llama.cpp's gguf-split: PREFIX-%05d-of-%05d.gguf


def split_count(header: GGUFHeader) -> int:
    """How many shards the GGUF this header opens has (1: not split)."""
    return int(header.fields.get("split.count", 1) or 1)


def read_gguf_inventory(path: str | os.PathLike[str]) -> ModelInventory:
    """The inventory of a GGUF from its headers only (the tensor data is never touched).

    A split model (`*-00001-of-00009.gguf`): the first shard carries the metadata; the tensor infos of
    the following shards are appended in order."""
    p = Path(path)
    header = read_header(p)
    inv = inventory_from_header(header)
    count, m = split_count(header), _SPLIT.match(p.name)
    if count <= 1 or not m:
        return inv
    tensors = list(inv.tensors)
    for i in range(2, count + 1):
        shard = read_header(p.with_name(f"{m.group(1)}-{i:05d}-of-{count:05d}.gguf"))
        tensors += [TensorInfo(t.name, t.shape, t.type) for t in shard.tensors]
    return replace(inv, tensors=tuple(tensors))


@dataclass(frozen=True)
class ModelSource:
    """What a model path names: a GGUF file (the first shard of a split one) or an HF config
    (a config.json, or a model directory holding one)."""

    path: Path
    kind: Literal["gguf", "config"]


def _gguf_in(folder: Path) -> Path | None:
    """The one model GGUF of a folder (a split model: its first shard); None when it has none."""

    def is_model(f: Path) -> bool:
        m = _SPLIT.match(f.name)
        return f.is_file() and not f.name.endswith(".imatrix.gguf") and (m is None or m.group(2) == "00001")

    models = sorted(f for f in folder.glob("*.gguf") if is_model(f))
    if len(models) > 1:
        names = ", ".join(f.name for f in models[:4]) + (", ..." if len(models) > 4 else "")
        raise QuantdropError(f"{folder}: holds {len(models)} GGUF models ({names}): name the file")
    return models[0] if models else None


def locate(path: str | os.PathLike[str]) -> ModelSource:
    """Tell what a model path is, with a one-line error for anything that is none of: a GGUF file, a
    config.json (any `*.json`), or a model directory with a config.json or one GGUF model in it."""
    p = Path(path)
    if not p.exists():
        raise QuantdropError(f"{p}: no such file or directory")
    if p.is_dir():
        if (p / "config.json").is_file():
            return ModelSource(p, "config")
        gguf = _gguf_in(p)
        if gguf is None:
            raise QuantdropError(f"{p}: a directory with neither a config.json nor a GGUF file in it")
        return ModelSource(gguf, "gguf")
    if p.suffix.lower() == ".json":
        return ModelSource(p, "config")
    what = "not a GGUF file, a config.json or a model directory"
    if not p.is_file():
        raise QuantdropError(f"{p}: {what} (a special file)")
    with open(p, "rb") as fh:
        start = fh.read(4)
    if start != GGUF_MAGIC:
        raise QuantdropError(f"{p}: {what} (starts with {start!r})")
    return ModelSource(p, "gguf")


def load(path: str | os.PathLike[str], *, mla_split: bool = True) -> ModelInventory:
    """The inventory of MODEL: a GGUF (header only, all shards of a split one), an HF config.json, or a
    model directory (its config.json, else its GGUF). `mla_split`: for DeepSeek configs, see
    `quantdrop.hfconfig.inventory_from_config`."""
    source = locate(path)
    if source.kind == "gguf":
        return read_gguf_inventory(source.path)
    from quantdrop.hfconfig import inventory_from_config  # hfconfig builds on this module

    return inventory_from_config(source.path, mla_split=mla_split)
