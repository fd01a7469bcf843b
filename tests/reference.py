"""References nobody here wrote: llama.cpp's own quantizer, called as llama-cpp-python built it, and
the buffer sizes llama.cpp logs when it loads a model."""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from pathlib import Path


def llama_cpp_quantize(
    src: Path,
    dst: Path,
    ftype: int,
    *,
    overrides: dict[str, str] | None = None,
    imatrix: dict[str, object] | None = None,
    pure: bool = False,
    threads: int = 2,
) -> None:
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

    return {
        t.name: (t.tensor_type.name, np.asarray(t.data).reshape(-1).view(np.uint8).tobytes())
        for t in GGUFReader(path).tensors
    }


_SIZES_PROBE = """
import os, sys, llama_cpp
for run in sys.argv[2:]:
    n_ctx, flash = run.split(":")
    os.write(2, f"@@RUN {run}\\\\n".encode())
    m = llama_cpp.Llama(sys.argv[1], n_ctx=int(n_ctx), n_threads=1, flash_attn=flash == "1", swa_full=False,
                        verbose=True)
    del m
"""


def llama_cpp_sizes(path: Path | str, runs: list[tuple[int, bool]]) -> list[dict[str, float]]:
    """Load a GGUF in llama.cpp (one child process) for each (n_ctx, flash attention); what it logs."""
    args = [f"{n}:{int(fa)}" for n, fa in runs]
    proc = subprocess.run(
        [sys.executable, "-c", _SIZES_PROBE, str(path), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = []
    for log in proc.stderr.split("@@RUN ")[1:]:
        kv = re.findall(r"llama_kv_cache: size =\s+([\d.]+) MiB \(\s*(\d+) cells.*V \(\w+\):\s+([\d.]+) MiB", log)
        compute = re.search(r"CPU compute buffer size =\s+([\d.]+) MiB", log)
        assert kv and compute, log[-3000:]
        out.append(
            {
                "kv_mib": sum(float(k[0]) for k in kv),
                "v_mib": sum(float(k[2]) for k in kv),
                "cells": [int(k[1]) for k in kv],
                "compute_mib": float(compute.group(1)),
            }
        )
    assert len(out) == len(runs)
    return out
