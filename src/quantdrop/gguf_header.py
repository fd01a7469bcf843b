"""A GGUF's inventory from its header alone, fast: the key/values the planner needs and the tensor infos.

gguf-py's GGUFReader parses every element of every array (a tokenizer's 100k+ strings) into numpy
views, which takes seconds; here arrays are skipped by their lengths, so a header of any model reads in
milliseconds and no tensor data is touched. Format: ggml/docs/gguf.md (little-endian GGUF v2/v3).
Split models (`*-00001-of-00009.gguf`, llama.cpp's gguf-split) are read across all their shards.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from pathlib import Path
from typing import Any

from gguf import GGMLQuantizationType

from quantdrop.errors import QuantdropError
from quantdrop.inventory import Hparams, ModelInventory, TensorInfo

# GGUFValueType -> struct format of one scalar
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_SPLIT = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$")


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise QuantdropError(f"{self.path}: truncated GGUF header")
        value = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return value[0] if len(value) == 1 else value

    def string(self) -> str:
        n = self.unpack("Q")
        if self.pos + n > len(self.buf):
            raise QuantdropError(f"{self.path}: truncated GGUF header")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", "replace")
        self.pos += n
        return s

    def value(self, vtype: int, keep: bool) -> Any:
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype != _ARRAY:
            raise QuantdropError(f"{self.path}: corrupt GGUF (value type {vtype})")
        itype, count = self.unpack("I"), self.unpack("Q")
        if itype in _SCALAR:
            size = struct.calcsize("<" + _SCALAR[itype])
            if keep and count <= 4096:  # per-layer arrays (head counts); tokenizer arrays are skipped
                values = list(struct.unpack_from(f"<{count}{_SCALAR[itype]}", self.buf, self.pos))
                self.pos += size * count
                return values
            self.pos += size * count
            return _Skipped(count)
        for _ in range(count):  # arrays of strings (tokens, merges) or nested arrays: walk the lengths
            self.value(itype, keep=False)
        return _Skipped(count)


class _Skipped:
    """An array whose elements were skipped; only its length is known."""

    def __init__(self, count: int):
        self.count = count

    def __len__(self) -> int:
        return self.count


def _read(path: Path) -> tuple[dict[str, Any], list[TensorInfo], int]:
    """(key/values, tensor infos, end of the tensor data) of one GGUF file."""
    if not path.exists():
        raise QuantdropError(f"{path}: no such file")
    if path.is_dir():
        raise QuantdropError(f"{path}: is a directory, not a GGUF file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise QuantdropError(f"{path}: not a GGUF file")
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        cur = _Cursor(buf, path)
        cur.pos = 4
        version, n_tensors, n_kv = cur.unpack("I"), cur.unpack("Q"), cur.unpack("Q")
        if version not in (2, 3):
            raise QuantdropError(f"{path}: unsupported GGUF version {version}")
        kv: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            kv[key] = cur.value(cur.unpack("I"), keep=True)
        tensors, offsets = [], []
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.unpack("I")
            shape = tuple(cur.unpack("Q") for _ in range(n_dims))
            qtype, offset = cur.unpack("I"), cur.unpack("Q")
            try:
                t = TensorInfo(name, shape, GGMLQuantizationType(qtype))
            except ValueError:
                raise QuantdropError(f"{path}: tensor {name} has unknown type {qtype}") from None
            tensors.append(t)
            offsets.append(offset)
        align = int(kv.get("general.alignment", 32))
        data_start = (cur.pos + align - 1) // align * align
    finally:
        buf.close()
    for t, off in zip(tensors, offsets, strict=True):
        if data_start + off + t.nbytes > size:
            raise QuantdropError(f"{path}: truncated GGUF (tensor {t.name} ends past the end of the file)")
    return kv, tensors, size


def _shards(path: Path, kv: dict[str, Any]) -> list[Path]:
    count = int(kv.get("split.count", 1) or 1)
    m = _SPLIT.match(path.name)
    if count <= 1 or not m:
        return []
    return [path.with_name(f"{m.group(1)}-{i:05d}-of-{count:05d}.gguf") for i in range(2, count + 1)]


def _hparams(kv: dict[str, Any], path: Path) -> Hparams:
    """The same keys as quantdrop.inventory.hparams_from_reader (per-layer arrays: their largest value)."""
    arch = kv.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise QuantdropError(f"{path}: GGUF has no general.architecture key")

    def get(key: str, default: Any = 0) -> int:
        v = kv.get(f"{arch}.{key}", default)
        if isinstance(v, list):
            v = max(v) if v else default
        return int(v) if not isinstance(v, _Skipped) else default

    tokens = kv.get("tokenizer.ggml.tokens")
    n_head = get("attention.head_count")
    return Hparams(
        arch=arch, n_layer=get("block_count"), n_embd=get("embedding_length"), n_head=n_head,
        n_head_kv=get("attention.head_count_kv", n_head), n_ctx_train=get("context_length"),
        n_expert=get("expert_count"), n_expert_used=get("expert_used_count"),
        n_vocab=len(tokens) if tokens is not None else get("vocab_size"),
        key_length=get("attention.key_length"), value_length=get("attention.value_length"),
        kv_lora_rank=get("attention.kv_lora_rank"),
        rope_dim=get("rope.dimension_count"), n_leading_dense=get("leading_dense_block_count"),
        sliding_window=get("attention.sliding_window"))


def read_gguf_header(path: str | os.PathLike[str]) -> ModelInventory:
    """The inventory of a GGUF (all shards of a split one) from the headers only."""
    p = Path(path)
    kv, tensors, _ = _read(p)
    for shard in _shards(p, kv):
        tensors += _read(shard)[1]
    name = kv.get("general.name")
    label = name if isinstance(name, str) and name else p.stem
    return ModelInventory(name=label, hparams=_hparams(kv, p), tensors=tuple(tensors), source=str(p))
