"""References nobody here wrote: llama.cpp's own quantizer, called as llama-cpp-python built it."""

from __future__ import annotations

import ctypes
from pathlib import Path


def llama_cpp_quantize(src: Path, dst: Path, ftype: int, *, overrides: dict[str, str] | None = None,
                       imatrix: dict[str, object] | None = None, pure: bool = False, threads: int = 2) -> None:
    """llama.cpp's `llama_model_quantize` (as llama-cpp-python built it): the reference output."""
    import llama_cpp
    import numpy as np
    from gguf import GGMLQuantizationType

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    params.pure = pure
    keep = []
    if overrides:
        arr = (llama_cpp.llama_model_tensor_override * (len(overrides) + 1))()
        for i, (pattern, qtype) in enumerate(overrides.items()):
            arr[i].pattern = pattern.encode()
            arr[i].type = int(GGMLQuantizationType[qtype.upper()])
        arr[len(overrides)].pattern = None
        params.tt_overrides = ctypes.cast(arr, type(params.tt_overrides))
        keep.append(arr)
    if imatrix:
        arr = (llama_cpp.llama_model_imatrix_data * (len(imatrix) + 1))()
        for i, (name, values) in enumerate(imatrix.items()):
            v = np.ascontiguousarray(values, dtype=np.float32)
            keep.append(v)
            arr[i].name = name.encode()
            arr[i].data = v.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            arr[i].size = v.size
        arr[len(imatrix)].name = None
        params.imatrix = ctypes.cast(arr, type(params.imatrix))
        keep.append(arr)
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    assert rc == 0, f"llama_model_quantize failed with {rc}"


def tensor_bytes_by_name(path: Path) -> dict[str, tuple[str, bytes]]:
    import numpy as np
    from gguf import GGUFReader

    return {t.name: (t.tensor_type.name, np.asarray(t.data).reshape(-1).view(np.uint8).tobytes())
            for t in GGUFReader(path).tensors}
