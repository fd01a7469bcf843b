"""ggml's own quantization kernels, bound with ctypes from llama-cpp-python's libggml-base.

ctypes releases the GIL during each foreign call, so row chunks quantize in parallel threads.
"""

from __future__ import annotations

import ctypes
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize

from quantdrop.errors import QuantdropError

MAX_THREADS = 512  # ggml.h: GGML_MAX_N_THREADS
FLOAT_SOURCES = (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16)


def check_threads(threads: int | None) -> int | None:
    """--threads: None (all cores) or 1 to MAX_THREADS; 0, negatives and thousands are refused."""
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS
    ):
        raise QuantdropError(f"--threads {threads}: expected 1 to {MAX_THREADS} (leave it out for all cores)")
    return threads


_SYMBOLS = (
    "ggml_quantize_chunk",
    "ggml_quantize_init",
    "ggml_quantize_requires_imatrix",
    "ggml_row_size",
    "ggml_validate_row_data",
    "ggml_type_name",
    "ggml_blck_size",
    "ggml_type_size",
)


def _library_path() -> Path:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise QuantdropError("llama-cpp-python is not installed (pip install llama-cpp-python)")
    path = Path(next(iter(spec.submodule_search_locations))) / "lib" / "libggml-base.so"
    if not path.exists():
        raise QuantdropError(f"{path}: ggml's library is missing from the llama-cpp-python install")
    return path


@cache
def ggml() -> ctypes.CDLL:
    """The library, with its symbols checked and typed, and gguf's type table checked against it."""
    path = _library_path()
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        raise QuantdropError(f"cannot load {path}: {err}") from None
    missing = [s for s in _SYMBOLS if not hasattr(lib, s)]
    if missing:
        raise QuantdropError(f"{path} lacks {', '.join(missing)}: llama-cpp-python too old or too new")
    _declare(lib)
    _check_type_table(lib, path)
    _check_type_traits(lib, path)
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    """The argument and result types of the symbols quantdrop calls."""
    c_i64, c_sz = ctypes.c_int64, ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        c_i64,
        c_i64,
        c_i64,
        ctypes.c_void_p,
    ]
    lib.ggml_quantize_chunk.restype = c_sz
    lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    lib.ggml_quantize_init.restype = None
    lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
    lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
    lib.ggml_row_size.argtypes = [ctypes.c_int, c_i64]
    lib.ggml_row_size.restype = c_sz
    lib.ggml_validate_row_data.argtypes = [ctypes.c_int, ctypes.c_void_p, c_sz]
    lib.ggml_validate_row_data.restype = ctypes.c_bool
    lib.ggml_type_name.argtypes = [ctypes.c_int]
    lib.ggml_type_name.restype = ctypes.c_char_p
    lib.ggml_blck_size.argtypes = [ctypes.c_int]
    lib.ggml_blck_size.restype = ctypes.c_int64
    lib.ggml_type_size.argtypes = [ctypes.c_int]
    lib.ggml_type_size.restype = c_sz


def _check_type_table(lib: ctypes.CDLL, path: Path) -> None:
    """gguf's table (GGML_QUANT_SIZES) agrees with the library on the name, block and type size of a few types."""
    for qtype in (
        GGMLQuantizationType.Q2_K,
        GGMLQuantizationType.Q4_K,
        GGMLQuantizationType.Q8_0,
        GGMLQuantizationType.IQ2_XXS,
    ):
        block, size = GGML_QUANT_SIZES[qtype]
        name = (lib.ggml_type_name(qtype) or b"").decode()
        if name.upper() != qtype.name or lib.ggml_blck_size(qtype) != block or lib.ggml_type_size(qtype) != size:
            raise QuantdropError(
                f"gguf's type table disagrees with {path} on {qtype.name}: "
                "install matching gguf and llama-cpp-python versions"
            )


class _TypeTraits(ctypes.Structure):
    """struct ggml_type_traits (ggml/include/ggml.h of the llama.cpp that llama-cpp-python 0.3.36 vendors)."""

    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),
        ("from_float_ref", ctypes.c_void_p),
    ]


_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def _check_type_traits(lib: ctypes.CDLL, path: Path) -> None:
    """ggml_get_type_traits: checked against ggml_type_name/blck_size/type_size, so a changed struct
    layout is a clear error at load and never a wrong dequantization."""
    if not hasattr(lib, "ggml_get_type_traits"):
        raise QuantdropError(f"{path} lacks ggml_get_type_traits: llama-cpp-python too old or too new")
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
    lib.ggml_get_type_traits.restype = ctypes.POINTER(_TypeTraits)
    for qtype in (GGMLQuantizationType.Q2_K, GGMLQuantizationType.Q5_0, GGMLQuantizationType.Q8_0):
        tr = lib.ggml_get_type_traits(qtype).contents
        if (
            tr.type_name != lib.ggml_type_name(qtype)
            or tr.blck_size != lib.ggml_blck_size(qtype)
            or tr.type_size != lib.ggml_type_size(qtype)
            or not tr.is_quantized
            or not tr.to_float
        ):
            raise QuantdropError(
                f"{path}: struct ggml_type_traits is not laid out as expected "
                "(install the llama-cpp-python version quantdrop supports)"
            )


@cache
def _to_float(qtype: GGMLQuantizationType) -> Callable[[int, int, int], None]:
    tr = ggml().ggml_get_type_traits(qtype).contents
    if not tr.to_float:
        raise QuantdropError(f"ggml has no dequantization for {qtype.name}")
    return _TO_FLOAT(tr.to_float)


def dequantize_rows(qtype: GGMLQuantizationType, data: np.ndarray, n_per_row: int) -> np.ndarray:
    """ggml's own `to_float` (its type traits): quantized rows -> C-contiguous float32 (n_rows x n_per_row)."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    n_rows = data.nbytes // row_size(qtype, n_per_row)
    out = np.empty((n_rows, n_per_row), dtype=np.float32)
    _to_float(qtype)(data.ctypes.data, out.ctypes.data, n_rows * n_per_row)
    return out


def requires_imatrix(qtype: GGMLQuantizationType) -> bool:
    return bool(ggml().ggml_quantize_requires_imatrix(qtype))


def row_size(qtype: GGMLQuantizationType, n_per_row: int) -> int:
    return int(ggml().ggml_row_size(qtype, n_per_row))


def prepare(qtype: GGMLQuantizationType) -> None:
    """ggml_quantize_init: builds the IQ types' lookup tables once, before threads use them."""
    ggml().ggml_quantize_init(qtype)


def quantize_rows(
    qtype: GGMLQuantizationType, rows: np.ndarray, out: memoryview | np.ndarray, imatrix: np.ndarray | None = None
) -> int:
    """Quantize a contiguous float32 block of rows (n_rows x n_per_row) into `out`; returns bytes written.

    `imatrix` holds one importance per column (n_per_row floats) or None.
    """
    if rows.dtype != np.float32 or not rows.flags.c_contiguous or rows.ndim != 2:
        raise ValueError("rows must be a C-contiguous float32 matrix")
    n_rows, n_per_row = rows.shape
    dst = np.frombuffer(out, dtype=np.uint8) if not isinstance(out, np.ndarray) else out
    need = n_rows * row_size(qtype, n_per_row)
    if dst.nbytes < need:
        raise ValueError(f"output buffer holds {dst.nbytes} bytes, {need} needed")
    imat_ptr = None
    if imatrix is not None:
        imatrix = np.ascontiguousarray(imatrix, dtype=np.float32)
        imat_ptr = imatrix.ctypes.data
    written = ggml().ggml_quantize_chunk(qtype, rows.ctypes.data, dst.ctypes.data, 0, n_rows, n_per_row, imat_ptr)
    return int(written)


def validate(qtype: GGMLQuantizationType, data: np.ndarray) -> bool:
    """ggml_validate_row_data: false when the quantized data holds NaN/Inf scales."""
    return bool(ggml().ggml_validate_row_data(qtype, data.ctypes.data, data.nbytes))


def to_f32(raw: np.ndarray, qtype: GGMLQuantizationType, n_per_row: int) -> np.ndarray:
    """Source rows (as stored) -> C-contiguous float32 rows, exactly as ggml converts them."""
    if qtype == GGMLQuantizationType.F32:
        return np.ascontiguousarray(raw.view(np.float32).reshape(-1, n_per_row))
    if qtype == GGMLQuantizationType.F16:
        return raw.view(np.float16).reshape(-1, n_per_row).astype(np.float32)
    if qtype == GGMLQuantizationType.BF16:
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(-1, n_per_row)
    return np.ascontiguousarray(dequantize(raw.view(np.uint8), qtype).reshape(-1, n_per_row), dtype=np.float32)
