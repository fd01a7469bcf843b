"""Importance-matrix files: llama.cpp's GGUF imatrix (read and write) and the legacy `.dat` (read).

The one reader of imatrix files: `quantize --imatrix` and `quantdrop imatrix --show/--convert` both
call `read_imatrix`. Formats as llama.cpp writes and reads them (the version llama-cpp-python 0.3.36
vendors): tools/imatrix/imatrix.cpp `save_imatrix` / `save_imatrix_legacy`, common/imatrix-loader.cpp
`common_imatrix_load`, tools/quantize/quantize.cpp `load_imatrix` (normalization).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType

from quantdrop.errors import QuantdropError
from quantdrop.ggufio import GGUF_MAGIC, GGUFStreamWriter, pack_field, read_header, read_tensor
from quantdrop.tempfiles import sweep_stale
from quantdrop.util import atomic_output

F32 = GGMLQuantizationType.F32
_EXEMPT = ("token_embd.weight", "per_layer_token_embd.weight")  # llama-quant.cpp skips a mismatch there


@dataclass
class Imatrix:
    """Raw statistics per weight: `sums[name]` (n_mat, n_cols) sums of squared activations per input
    column, `counts[name]` (n_mat,) rows seen (one per expert for MUL_MAT_ID, else one)."""

    sums: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)
    chunk_count: int = 0
    chunk_size: int = 0
    legacy: bool = False  # a .dat: sums are (raw / count) * ncall and counts are {ncall}

    def normalized(self) -> dict[str, np.ndarray]:
        """Per-column mean squared activation, flattened, as quantize.cpp `load_imatrix` gives
        llama_model_quantize: sums / count per expert, ones for an expert never routed to."""
        out = {}
        for name, s in self.sums.items():
            c = self.counts[name].astype(np.float32)
            if self.legacy:
                ncall = float(c[0]) if c.size else 0.0
                norm = (s / np.float32(ncall) if ncall > 0 else s).astype(np.float32)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    norm = np.where(
                        c[:, None] > 0, s.astype(np.float32) / np.where(c > 0, c, 1)[:, None], np.float32(1)
                    ).astype(np.float32)
            if not np.isfinite(norm).all():
                raise QuantdropError(f"imatrix contains non-finite values for {name}")
            out[name] = norm.reshape(-1)
        return out

    def to_gguf_counts(self, chunk_size: int) -> Imatrix:
        """A legacy file as raw sums and counts (imatrix.cpp `load_imatrix`, is_legacy branch)."""
        if not self.legacy:
            return self
        sums = {n: s.astype(np.float64) * chunk_size for n, s in self.sums.items()}
        counts = {n: np.full(1, int(c[0]) * chunk_size, dtype=np.int64) for n, c in self.counts.items()}
        return Imatrix(sums, counts, list(self.datasets), self.chunk_count, chunk_size, legacy=False)


def read_imatrix(path: str | os.PathLike[str]) -> Imatrix:
    """Either format, told apart by the GGUF magic (as common_imatrix_load does)."""
    p = Path(path)
    if not p.is_file():
        raise QuantdropError(f"imatrix file not found: {p}")
    with p.open("rb") as fh:
        magic = fh.read(4)
    return _read_gguf(p) if magic == GGUF_MAGIC else _read_legacy(p)


def _read_f32(path: Path, offset: int, nbytes: int) -> np.ndarray:
    return read_tensor(path, offset, nbytes).view(np.float32)


def _read_gguf(path: Path) -> Imatrix:
    header = read_header(path)
    tensors = {t.name: t for t in header.tensors}
    names = sorted(n[: -len(".in_sum2")] for n in tensors if n.endswith(".in_sum2"))
    if not names:
        raise QuantdropError(f"{path}: not an imatrix in llama.cpp's GGUF format (no *.in_sum2 tensors)")
    for key in ("imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"):
        if key not in header.fields:  # llama-quantize refuses such a file too ("missing imatrix metadata")
            raise QuantdropError(f"{path}: imatrix metadata key {key} is missing")
    im = Imatrix(
        datasets=[str(d) for d in header.fields["imatrix.datasets"]],
        chunk_count=int(header.fields["imatrix.chunk_count"]),
        chunk_size=int(header.fields["imatrix.chunk_size"]),
    )
    for name in names:
        s_t, c_t = tensors[name + ".in_sum2"], tensors.get(name + ".counts")
        if c_t is None:
            raise QuantdropError(f"{path}: imatrix entry {name} has no counts")
        if s_t.type != F32 or c_t.type != F32:
            raise QuantdropError(f"{path}: sums and counts for {name} must be F32")
        counts = _read_f32(path, c_t.offset, c_t.nbytes)
        sums = _read_f32(path, s_t.offset, s_t.nbytes)
        if counts.size == 0 or sums.size % counts.size:
            raise QuantdropError(f"{path}: {name} has {sums.size} sums for {counts.size} counts")
        im.sums[name] = sums.reshape(counts.size, -1)
        im.counts[name] = np.rint(counts).astype(np.int64)  # std::lround, as the loader does
    return im


def _read_legacy(path: Path) -> Imatrix:
    """common_imatrix_load_legacy: n_entries, then per entry (name, ncall, nval, values), then an
    optional trailer (chunk count, dataset name)."""
    buf = path.read_bytes()
    pos = 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(buf):
            raise QuantdropError(f"{path}: not an imatrix (neither GGUF nor a complete legacy .dat file)")
        pos += size
        return struct.unpack_from(fmt, buf, pos - size)

    (n_entries,) = take("<i")
    if n_entries < 1 or n_entries > len(buf) // 12:
        raise QuantdropError(f"{path}: not an imatrix (neither GGUF nor a legacy .dat with entries)")
    im = Imatrix(legacy=True)
    for _ in range(n_entries):
        (length,) = take("<i")
        if length < 1 or length > 4096:
            raise QuantdropError(f"{path}: not an imatrix (bad entry name length {length})")
        name = take(f"<{length}s")[0].decode("utf-8", "replace")
        ncall, nval = take("<ii")
        if nval < 1:
            raise QuantdropError(f"{path}: entry {name} has no values")
        im.sums[name] = np.array(take(f"<{nval}f"), dtype=np.float32).reshape(1, nval)
        im.counts[name] = np.array([ncall], dtype=np.int64)
    if pos + 4 <= len(buf):
        (im.chunk_count,) = take("<i")
        if pos + 4 <= len(buf):
            (length,) = take("<i")
            if 0 < length <= len(buf) - pos:
                im.datasets.append(take(f"<{length}s")[0].decode("utf-8", "replace"))
    return im


def check_matches(
    normalized: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]], path: str | os.PathLike[str]
) -> None:
    """One line naming the first mismatch when an imatrix is not the model's: an entry whose size is
    not columns x experts of the tensor it names (llama-quant.cpp refuses those too), or no entry
    naming any tensor of the model at all. token_embd is exempt, as llama.cpp ignores it."""
    matched = 0
    for name in sorted(normalized):
        shape = shapes.get(name)
        if shape is None:
            continue
        matched += 1
        if not _fits(normalized[name], shape) and name not in _EXEMPT:
            raise QuantdropError(
                f"{path} is not this model's imatrix: {name} has {normalized[name].size} values, "
                f"the model's tensor has {shape[0]} columns x {_experts(shape)} experts"
            )
    if not matched and normalized:
        first = sorted(normalized)[0]
        raise QuantdropError(
            f"{path} is not this model's imatrix: its first entry {first} names no tensor of the model"
        )


def importance_rows(imatrix: dict[str, np.ndarray] | None, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The (n_expert, n_per_row) column importances of tensor `name`, or None: no imatrix, no entry, or
    a token_embd entry that does not fit (llama-quant.cpp ignores that one; any other misfit is refused)."""
    if imatrix is None or name not in imatrix:
        return None
    im = imatrix[name]
    if not _fits(im, shape):
        if name in _EXEMPT:
            return None
        raise QuantdropError(f"imatrix size {im.size} does not match {name} ({shape[0]} x {_experts(shape)})")
    return im.reshape(_experts(shape), shape[0])


def _experts(shape: tuple[int, ...]) -> int:
    """A tensor's expert count: its third dimension (ggml order), one for a dense weight."""
    return shape[2] if len(shape) > 2 else 1


def _fits(entry: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether an imatrix entry holds one importance per input column per expert of the tensor."""
    return entry.size == shape[0] * _experts(shape)


def read_normalized(
    path: str | os.PathLike[str], shapes: dict[str, tuple[int, ...]] | None = None
) -> dict[str, np.ndarray]:
    """An imatrix file (llama.cpp's GGUF or legacy .dat), normalized as tools/quantize/quantize.cpp
    load_imatrix does; checked against the model's tensor `shapes` when given."""
    normalized = read_imatrix(path).normalized()
    if shapes is not None:
        check_matches(normalized, shapes, path)
    return normalized


def _dims(*ne: int) -> tuple[int, ...]:
    """gguf writes ggml_n_dims dimensions: trailing ones dropped, at least one kept."""
    n = len(ne)
    while n > 1 and ne[n - 1] == 1:
        n -= 1
    return ne[:n]


def write_imatrix(im: Imatrix, path: str | os.PathLike[str]) -> Path:
    """llama.cpp's GGUF imatrix (imatrix.cpp `save_imatrix`): general.type, imatrix.datasets,
    imatrix.chunk_count, imatrix.chunk_size; per weight, in name order, `<name>.in_sum2`
    (n_cols x n_mat) and `<name>.counts` (1 x n_mat), both F32. Written to a temporary file,
    fsynced and renamed, so a reader never sees half a file."""
    if im.legacy:
        raise QuantdropError("convert a legacy imatrix with to_gguf_counts() before writing it as GGUF")
    out = Path(path)
    fields = [
        pack_field("general.type", "imatrix", GGUFValueType.STRING),
        pack_field("imatrix.datasets", list(im.datasets), GGUFValueType.ARRAY, GGUFValueType.STRING),
        pack_field("imatrix.chunk_count", int(im.chunk_count), GGUFValueType.UINT32),
        pack_field("imatrix.chunk_size", int(im.chunk_size), GGUFValueType.UINT32),
    ]
    names = sorted(im.sums)
    tensors = []
    for name in names:
        n_mat, n_cols = im.sums[name].shape
        tensors += [(f"{name}.in_sum2", _dims(n_cols, n_mat), F32), (f"{name}.counts", _dims(1, n_mat), F32)]
    sweep_stale(out.parent)  # temporaries of runs killed with SIGKILL
    with atomic_output(out) as fh:
        w = GGUFStreamWriter(fh, fields, tensors)
        for name in names:
            for arr in (im.sums[name], im.counts[name]):
                w.write(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
                w.end_tensor()
        w.finish()
    return out
