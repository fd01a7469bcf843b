"""A fast GGUF header reader and a streaming GGUF writer.

gguf-py's GGUFReader builds a memmap view for every part of every metadata field, which takes
seconds on a tokenizer with 100k entries; planning a 671B model must be instant. This reader parses
the header (metadata + tensor infos) in one pass over a bounded prefix of the file, keeps each
metadata entry's raw bytes (so a writer can copy it verbatim), and never maps the tensor data.
Format: GGUF v2/v3 as specified in ggml's docs/gguf.md (little-endian only).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import gguf
import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, Keys

from quantdrop.errors import QuantdropError

GGUF_MAGIC = struct.pack("<I", gguf.GGUF_MAGIC)  # the file's first four bytes, b"GGUF"
DEFAULT_ALIGNMENT = gguf.GGUF_DEFAULT_ALIGNMENT
WRITE_VERSION = 3  # the GGUF version the stream writer's layout is (ggml's docs/gguf.md, v3)
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64  # ggml.h: a tensor name and its NUL fit in 64 bytes
_SCALAR = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
_NUMPY = {
    GGUFValueType.UINT8: np.uint8,
    GGUFValueType.INT8: np.int8,
    GGUFValueType.UINT16: np.uint16,
    GGUFValueType.INT16: np.int16,
    GGUFValueType.UINT32: np.uint32,
    GGUFValueType.INT32: np.int32,
    GGUFValueType.FLOAT32: np.float32,
    GGUFValueType.BOOL: np.bool_,
    GGUFValueType.UINT64: np.uint64,
    GGUFValueType.INT64: np.int64,
    GGUFValueType.FLOAT64: np.float64,
}


def row_bytes(qtype: GGMLQuantizationType, n_per_row: int) -> int:
    """Bytes of one row, from gguf's own size table (ggml_row_size)."""
    block, type_size = GGML_QUANT_SIZES[qtype]
    return n_per_row // block * type_size


def tensor_bytes(qtype: GGMLQuantizationType, shape: tuple[int, ...]) -> int:
    n_rows = 1
    for d in shape[1:]:
        n_rows *= d
    return n_rows * row_bytes(qtype, shape[0])


class _Truncated(Exception):
    pass


@dataclass(frozen=True)
class TensorEntry:
    name: str
    shape: tuple[int, ...]  # ggml order: shape[0] is the row length
    type: GGMLQuantizationType
    offset: int  # absolute offset of the data in the file
    nbytes: int


@dataclass
class GGUFHeader:
    path: Path
    version: int
    fields: dict[str, Any]  # decoded values (numeric arrays as numpy arrays)
    raw_fields: dict[str, bytes]  # each entry's bytes exactly as stored (key, type, value)
    tensors: list[TensorEntry]
    alignment: int
    data_offset: int
    file_size: int


class _Cursor:
    """Parses a prefix of the file: headers are small, the tensor data after them is never read.

    The prefix starts at 16 MiB and doubles (the parse restarts) when a header is larger.
    """

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise _Truncated
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise _Truncated
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return v

    def string(self) -> str:
        return self.take(self.unpack("<Q")).decode("utf-8", "replace")

    def strings(self, count: int) -> list[str]:
        """A tight loop for tokenizer-sized string arrays."""
        buf, pos, size, out = self.buf, self.pos, len(self.buf), []
        unpack_from = struct.unpack_from
        for _ in range(count):
            if pos + 8 > size:
                raise _Truncated
            (n,) = unpack_from("<Q", buf, pos)
            pos += 8
            if pos + n > size:
                raise _Truncated
            out.append(buf[pos : pos + n].decode("utf-8", "replace"))
            pos += n
        self.pos = pos
        return out

    def value(self, vtype: GGUFValueType) -> Any:
        if vtype == GGUFValueType.STRING:
            return self.string()
        if vtype == GGUFValueType.ARRAY:
            sub = GGUFValueType(self.unpack("<I"))
            count = self.unpack("<Q")
            if sub in _NUMPY:
                dt = np.dtype(_NUMPY[sub]).newbyteorder("<")
                return np.frombuffer(self.take(count * dt.itemsize), dtype=dt)
            if sub == GGUFValueType.STRING:
                return self.strings(count)
            return [self.value(sub) for _ in range(count)]
        return self.unpack(_SCALAR[vtype])


def _parse(p: Path, buf: bytes) -> tuple[int, dict[str, Any], dict[str, bytes], list[tuple], int]:
    cur = _Cursor(buf)
    cur.pos = 4
    version = cur.unpack("<I")
    if version not in (2, 3):
        raise QuantdropError(f"{p}: unsupported GGUF version {version}")
    n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
    if n_tensors > 1 << 24 or n_kv > 1 << 24:
        raise QuantdropError(f"{p}: corrupt GGUF header ({n_tensors} tensors, {n_kv} keys)")
    fields, raw = {}, {}
    for _ in range(n_kv):
        start = cur.pos
        key = cur.string()
        if key in fields:  # gguf.cpp: "duplicate key"
            raise QuantdropError(f"{p}: corrupt GGUF: metadata key {key!r} appears twice")
        try:
            vtype = GGUFValueType(cur.unpack("<I"))
            fields[key] = cur.value(vtype)
        except ValueError:
            raise QuantdropError(f"{p}: corrupt GGUF metadata at key {key!r}") from None
        raw[key] = buf[start : cur.pos]
    infos, names = [], set()
    for _ in range(n_tensors):
        name = cur.string()
        if name in names:  # gguf.cpp: "duplicate tensor name"
            raise QuantdropError(f"{p}: corrupt GGUF: tensor name {name!r} appears twice")
        names.add(name)
        n_dims = cur.unpack("<I")
        if not 1 <= n_dims <= GGML_MAX_DIMS:
            raise QuantdropError(f"{p}: corrupt tensor info for {name!r} ({n_dims} dimensions, expected 1 to 4)")
        shape = tuple(cur.unpack("<Q") for _ in range(n_dims))
        qtype_id = cur.unpack("<I")
        try:
            qtype = GGMLQuantizationType(qtype_id)
        except ValueError:
            raise QuantdropError(f"{p}: tensor {name!r} has an unknown ggml type ({qtype_id})") from None
        infos.append((name, shape, qtype, cur.unpack("<Q")))
    return version, fields, raw, infos, cur.pos


def _check_tensor_info(p: Path, name: str, shape: tuple[int, ...], qtype: GGMLQuantizationType) -> None:
    """gguf.cpp's per-tensor checks (gguf_init_from_file_impl): name length, sizes, type, block size."""
    if len(name.encode()) >= GGML_MAX_NAME:
        raise QuantdropError(f"{p}: tensor name {name[:80]!r} is too long (at most {GGML_MAX_NAME - 1} bytes)")
    if 0 in shape:
        raise QuantdropError(f"{p}: tensor {name!r} has a dimension of 0 (shape {list(shape)})")
    n = 1
    for d in shape:
        n *= d
    if n >= 1 << 63:
        raise QuantdropError(f"{p}: tensor {name!r} has too many elements (shape {list(shape)})")
    if qtype not in GGML_QUANT_SIZES:
        raise QuantdropError(f"{p}: tensor {name!r} has ggml type {qtype.name}, which has no known size")
    block = GGML_QUANT_SIZES[qtype][0]
    if shape[0] % block:
        raise QuantdropError(
            f"{p}: tensor {name!r} of type {qtype.name} has {shape[0]} elements per row, "
            f"not a multiple of its block size ({block})"
        )


def _alignment(p: Path, fields: dict[str, Any]) -> int:
    value = fields.get("general.alignment", DEFAULT_ALIGNMENT)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value & (value - 1):
        raise QuantdropError(f"{p}: general.alignment is {value!r}, expected a power of 2")
    return value


def _tensor_entries(p: Path, infos: list[tuple], alignment: int, data_offset: int, size: int) -> list[TensorEntry]:
    """Tensor infos -> entries, checked like llama.cpp's loader: each tensor's data starts where the
    previous one's padded data ends (gguf.cpp), aligned, and lies inside the file (llama-model-loader)."""
    entries, expected, previous = [], 0, None
    for name, shape, qtype, offset in infos:
        _check_tensor_info(p, name, shape, qtype)
        nbytes = tensor_bytes(qtype, shape)
        if offset % alignment:
            raise QuantdropError(
                f"{p}: tensor {name!r} has data offset {offset}, not a multiple of general.alignment ({alignment})"
            )
        if offset < expected:
            raise QuantdropError(
                f"{p}: corrupt GGUF: the data of tensor {name!r} (offset {offset}) overlaps "
                f"tensor {previous!r} (expected offset {expected})"
            )
        if offset > expected:
            raise QuantdropError(
                f"{p}: corrupt GGUF: tensor {name!r} has data offset {offset}, expected "
                f"{expected} (llama.cpp needs the tensors' data in order, without gaps)"
            )
        entry = TensorEntry(name, shape, qtype, data_offset + offset, nbytes)
        if entry.offset + nbytes > size:
            raise QuantdropError(f"{p}: truncated GGUF (tensor {name} ends past the end of the file)")
        entries.append(entry)
        expected, previous = offset + -(-nbytes // alignment) * alignment, name
    return entries


def check_gguf_file(path: str | os.PathLike[str]) -> Path:
    """`path` if it is a file that starts like a GGUF, else a one-line error (nothing else is read)."""
    p = Path(path)
    if not p.is_file():
        raise QuantdropError(f"model file not found: {p}")
    with p.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise QuantdropError(f"{p} is not a GGUF file")
    return p


def read_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Parse a GGUF header, with one-line errors for missing, non-GGUF and truncated files."""
    p = Path(path)
    if not p.exists():
        raise QuantdropError(f"{p}: no such file")
    if p.is_dir():
        raise QuantdropError(f"{p}: is a directory, not a GGUF file")
    size = p.stat().st_size
    with open(p, "rb") as fh:
        magic = fh.read(4)
        if magic != GGUF_MAGIC:
            raise QuantdropError(f"{p}: not a GGUF file (starts with {magic!r})")
        prefix = 16 << 20
        while True:
            fh.seek(0)
            buf = fh.read(prefix)
            try:
                version, fields, raw, infos, end = _parse(p, buf)
                break
            except _Truncated:
                if len(buf) >= size:
                    raise QuantdropError(f"{p}: truncated GGUF (the header ends early)") from None
                prefix *= 4
    alignment = _alignment(p, fields)
    data_offset = -(-end // alignment) * alignment
    tensors = _tensor_entries(p, infos, alignment, data_offset, size)
    return GGUFHeader(p, version, fields, raw, tensors, alignment, data_offset, size)


def _pack_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def pack_field(key: str, value: Any, vtype: GGUFValueType, sub: GGUFValueType | None = None) -> bytes:
    """One metadata entry (key, type, value) in GGUF's encoding."""
    out = _pack_string(key) + struct.pack("<I", vtype)
    if vtype == GGUFValueType.STRING:
        return out + _pack_string(value)
    if vtype == GGUFValueType.ARRAY:
        assert sub is not None
        out += struct.pack("<IQ", sub, len(value))
        if sub == GGUFValueType.STRING:
            return out + b"".join(_pack_string(v) for v in value)
        return out + b"".join(struct.pack(_SCALAR[sub], v) for v in value)
    return out + struct.pack(_SCALAR[vtype], value)


def field_key(entry: bytes) -> str:
    """The key of one packed metadata entry (its first string)."""
    (n,) = struct.unpack_from("<Q", entry, 0)
    return entry[8 : 8 + n].decode("utf-8", "replace")


# keys a rewritten file never copies from its source: the architecture goes first, the file type and
# quantization version describe the new tensors, and the alignment and split keys the old file's layout
REWRITTEN_KEYS = frozenset(
    {
        Keys.General.ARCHITECTURE,
        Keys.General.FILE_TYPE,
        Keys.General.QUANTIZATION_VERSION,
        Keys.General.ALIGNMENT,
        Keys.Split.LLM_KV_SPLIT_NO,
        Keys.Split.LLM_KV_SPLIT_COUNT,
        Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT,
    }
)


def rewritten_metadata(header: GGUFHeader, ours: Sequence[bytes] = ()) -> list[bytes]:
    """The source's metadata, byte for byte, minus the keys we (re)write: the architecture first, then
    the source's keys, then `ours`, each key once. A source that quantdrop wrote carries our keys
    already; copying them too would make a file llama.cpp refuses."""
    arch = pack_field(Keys.General.ARCHITECTURE, header.fields[Keys.General.ARCHITECTURE], GGUFValueType.STRING)
    rewritten = REWRITTEN_KEYS | {field_key(f) for f in ours}
    return [arch, *(raw for key, raw in header.raw_fields.items() if key not in rewritten), *ours]


def _refuse_duplicates(what: str, names: list[str]) -> None:
    """llama.cpp refuses a GGUF with a repeated key or tensor name (gguf.cpp): never write one."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise QuantdropError(
                f"refusing to write a GGUF with the {what} {name!r} twice (llama.cpp could not load it)"
            )
        seen.add(name)


class GGUFStreamWriter:
    """Writes header, metadata and tensor infos up front, then each tensor's data in order, padded.

    The tensor order and sizes are fixed at construction, so every offset is known before any data
    is written; `end_tensor` checks that each tensor gets exactly its planned byte count, and
    `finish` that every planned tensor was written. Like gguf-py's GGUFWriter (its WriterState), it
    is a small state machine that refuses out-of-order calls: data after the last planned tensor or
    after `finish`. Used as a context manager, a clean exit calls `finish`; write into
    `util.atomic_output` so a refused file never appears.
    """

    def __init__(
        self,
        fh: BinaryIO,
        fields: list[bytes],
        tensors: list[tuple[str, tuple[int, ...], GGMLQuantizationType]],
        alignment: int = DEFAULT_ALIGNMENT,
    ) -> None:
        self.fh, self.alignment = fh, alignment
        _refuse_duplicates("metadata key", [field_key(f) for f in fields])
        _refuse_duplicates("tensor name", [name for name, _, _ in tensors])
        self.sizes = [tensor_bytes(t, shape) for _, shape, t in tensors]
        self.names = [name for name, _, _ in tensors]
        head = bytearray(GGUF_MAGIC + struct.pack("<IQQ", WRITE_VERSION, len(tensors), len(fields)))
        for f in fields:
            head += f
        offset = 0
        for (name, shape, qtype), nbytes in zip(tensors, self.sizes, strict=True):
            head += _pack_string(name) + struct.pack("<I", len(shape))
            head += b"".join(struct.pack("<Q", d) for d in shape)
            head += struct.pack("<IQ", qtype, offset)
            offset += -(-nbytes // alignment) * alignment
        head += b"\0" * (-len(head) % alignment)
        fh.write(head)
        self.next, self.written, self._current = 0, 0, 0
        self.finished = False

    def __enter__(self) -> GGUFStreamWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.finish()

    def _check_open(self, what: str) -> None:
        if self.finished:
            raise QuantdropError(f"GGUF writer: {what} after finish()")
        if self.next >= len(self.names):
            raise QuantdropError(f"GGUF writer: {what} after the last of the {len(self.names)} planned tensors")

    def write(self, chunk: bytes | memoryview | np.ndarray) -> None:
        """Append bytes of the current tensor."""
        self._check_open("tensor data")
        self._current += self.fh.write(chunk)

    def end_tensor(self) -> None:
        """Check the current tensor got exactly its planned size, pad it, and move to the next."""
        self._check_open("end_tensor()")
        name, expected = self.names[self.next], self.sizes[self.next]
        if self._current != expected:
            raise QuantdropError(f"{name}: {self._current} bytes written, {expected} planned")
        self.fh.write(b"\0" * (-self._current % self.alignment))
        self.next += 1
        self.written += self._current
        self._current = 0

    def finish(self) -> None:
        """Check that every planned tensor was written (a missing last tensor is an error, not a short
        file), flush, and refuse any later call."""
        if self.finished:
            return
        if self.next < len(self.names) or self._current:
            missing = self.names[self.next :]
            raise QuantdropError(
                f"GGUF writer closed after {self.next} of {len(self.names)} planned tensors "
                f"(missing: {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
            )
        self.fh.flush()
        self.finished = True


def read_tensor(path: str | os.PathLike[str], offset: int, nbytes: int) -> np.ndarray:
    """Bytes of the file at [offset, offset+nbytes) as uint8, read with pread (no mapping kept)."""
    with open(path, "rb", buffering=0) as fh:
        data = os.pread(fh.fileno(), nbytes, offset)
    if len(data) != nbytes:
        raise QuantdropError(f"{path}: unexpected end of file")
    return np.frombuffer(data, dtype=np.uint8)
