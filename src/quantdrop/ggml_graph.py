"""ggml's graph nodes, read from a `cb_eval` callback through ctypes.

`struct ggml_tensor` is mirrored from the ggml.h that llama-cpp-python 0.3.36 builds
(vendor/llama.cpp/ggml/include/ggml.h); `check_layout()` proves the mirror against the library at
load (a tensor made by ggml_new_tensor_2d must read back with its shape, strides, name and data
pointer as ggml's own accessors report them) and op numbers are looked up by name with
ggml_op_name, so a different ggml fails with one clear error instead of reading garbage.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np

from quantdrop import kernels
from quantdrop.errors import QuantdropError

GGML_MAX_DIMS, GGML_MAX_SRC, GGML_MAX_NAME, GGML_MAX_OP_PARAMS = 4, 10, 64, 64
GGML_TYPE_F32, GGML_TYPE_I32 = 0, 26


class GGMLTensor(ctypes.Structure):
    pass


GGMLTensor._fields_ = [
    ("type", ctypes.c_int),
    ("buffer", ctypes.c_void_p),
    ("ne", ctypes.c_int64 * GGML_MAX_DIMS),
    ("nb", ctypes.c_size_t * GGML_MAX_DIMS),
    ("op", ctypes.c_int),
    ("op_params", ctypes.c_int32 * (GGML_MAX_OP_PARAMS // 4)),
    ("flags", ctypes.c_int32),
    ("src", ctypes.POINTER(GGMLTensor) * GGML_MAX_SRC),
    ("view_src", ctypes.POINTER(GGMLTensor)),
    ("view_offs", ctypes.c_size_t),
    ("data", ctypes.c_void_p),
    ("name", ctypes.c_char * GGML_MAX_NAME),
    ("extra", ctypes.c_void_p),
    ("padding", ctypes.c_char * 8),
]


class _InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


_P = ctypes.POINTER(GGMLTensor)
_SIGNATURES = {
    "ggml_op_name": ([ctypes.c_int], ctypes.c_char_p),
    "ggml_get_name": ([_P], ctypes.c_void_p),
    "ggml_get_data": ([_P], ctypes.c_void_p),
    "ggml_nbytes": ([_P], ctypes.c_size_t),
    "ggml_nrows": ([_P], ctypes.c_int64),
    "ggml_init": ([_InitParams], ctypes.c_void_p),
    "ggml_free": ([ctypes.c_void_p], None),
    "ggml_new_tensor_2d": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_int64], _P),
    "ggml_set_name": ([_P, ctypes.c_char_p], _P),
    "ggml_backend_buffer_is_host": ([ctypes.c_void_p], ctypes.c_bool),
    "ggml_backend_tensor_get": ([_P, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t], None),
}


class GGML:
    """The library's accessors, with the struct mirror and op numbers checked once."""

    def __init__(self) -> None:
        self.lib = kernels.ggml()
        for sym, (args, res) in _SIGNATURES.items():
            fn = getattr(self.lib, sym, None)
            if fn is None:
                raise QuantdropError(f"libggml-base lacks {sym}: llama-cpp-python too old or too new")
            fn.argtypes, fn.restype = args, res
        self.op_mul_mat = self._op("MUL_MAT")
        self.op_mul_mat_id = self._op("MUL_MAT_ID")
        self._check_layout()

    def _op(self, name: str) -> int:
        for i in range(1024):
            got = self.lib.ggml_op_name(i)
            if got is None:
                break
            if got.decode() == name:
                return i
        raise QuantdropError(f"ggml has no op named {name}: llama-cpp-python's ggml differs from 0.3.36's")

    def _check_layout(self) -> None:
        ctx = self.lib.ggml_init(_InitParams(1 << 16, None, False))
        if not ctx:
            raise QuantdropError("ggml_init failed")
        try:
            t = self.lib.ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 7, 3)
            self.lib.ggml_set_name(t, b"quantdrop.layout")
            s = t.contents
            ok = (
                s.type == GGML_TYPE_F32
                and tuple(s.ne) == (7, 3, 1, 1)
                and tuple(s.nb) == (4, 28, 84, 84)
                and s.name == b"quantdrop.layout"
                and self.lib.ggml_get_data(t) == s.data
                and self.lib.ggml_get_name(t) == ctypes.addressof(s) + GGMLTensor.name.offset
                and self.lib.ggml_nbytes(t) == 84
                and self.lib.ggml_nrows(t) == 3
            )
        finally:
            self.lib.ggml_free(ctx)
        if not ok:
            raise QuantdropError(
                "struct ggml_tensor of llama-cpp-python's ggml differs from the layout quantdrop "
                "reads (ggml.h of llama-cpp-python 0.3.36): install llama-cpp-python==0.3.36"
            )

    def array(self, t: GGMLTensor, dtype: type, keep: list[np.ndarray]) -> np.ndarray:
        """The tensor's data as a numpy view (ggml order reversed: shape (ne3, ne2, ne1, ne0)); copied
        to host memory first when it lives on a device (imatrix.cpp's ggml_backend_tensor_get)."""
        shape = tuple(reversed(t.ne))
        strides = tuple(reversed(t.nb))
        ptr = ctypes.pointer(t)
        nbytes = self.lib.ggml_nbytes(ptr)
        if t.buffer and not self.lib.ggml_backend_buffer_is_host(t.buffer):
            host = np.empty(nbytes, dtype=np.uint8)
            self.lib.ggml_backend_tensor_get(ptr, host.ctypes.data, 0, nbytes)
            keep.append(host)
            base = host.ctypes.data
        else:
            base = t.data
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(base))
        return np.ndarray(shape, dtype=dtype, buffer=raw, strides=strides)


@cache
def ggml() -> GGML:
    return GGML()
