"""A GGUF with an inventory's tensors (zero weights) and a model's metadata, for llama.cpp to load."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter

from quantdrop.inventory import ModelInventory


def byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode alphabet: a complete byte-level BPE vocabulary of 256 tokens."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


def write_gguf(inv: ModelInventory, path: Path, metadata: Callable[[GGUFWriter], None]) -> None:
    w = GGUFWriter(path, inv.hparams.arch)
    metadata(w)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(byte_tokens())
    w.add_token_types([1] * 256)
    w.add_token_merges(["! !"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    for t in inv.tensors:
        numpy_shape = tuple(reversed(t.shape))
        if t.type == T.F32:
            w.add_tensor(t.name, np.ones(numpy_shape, np.float32))
        else:  # F16/BF16: two bytes of zeros per element
            w.add_tensor(t.name, np.zeros(numpy_shape, np.uint16), raw_shape=numpy_shape, raw_dtype=t.type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


PROBE = """
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
    proc = subprocess.run([sys.executable, "-c", PROBE, str(path), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = []
    for log in proc.stderr.split("@@RUN ")[1:]:
        kv = re.findall(r"llama_kv_cache: size =\s+([\d.]+) MiB \(\s*(\d+) cells.*V \(\w+\):\s+([\d.]+) MiB",
                        log)
        compute = re.search(r"CPU compute buffer size =\s+([\d.]+) MiB", log)
        assert kv and compute, log[-3000:]
        out.append({"kv_mib": sum(float(k[0]) for k in kv), "v_mib": sum(float(k[2]) for k in kv),
                    "cells": [int(k[1]) for k in kv], "compute_mib": float(compute.group(1))})
    assert len(out) == len(runs)
    return out
