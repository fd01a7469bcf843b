"""Small fixtures for the tune tests: a synthetic model and an imatrix in llama.cpp's GGUF format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from quantdrop.inventory import read_gguf_inventory
from quantdrop.recipes.llamacpp import tensor_allows_quantization
from tests.synthetic_gguf import write_synthetic


def synthetic_model(tmp: Path, arch: str = "llama", n_layer: int = 4) -> Path:
    return write_synthetic(tmp / f"{arch}.gguf", arch, n_layer=n_layer)


def write_imatrix(model: Path, dst: Path, seed: int = 1) -> Path:
    """`<name>.in_sum2` (n_expert x n_per_row sums) and `<name>.counts` per matmul weight, as
    llama-imatrix writes them (tools/imatrix/imatrix.cpp save_imatrix); random but fixed values."""
    rng = np.random.default_rng(seed)
    w = GGUFWriter(dst, "imatrix")
    w.add_array("imatrix.datasets", ["synthetic"])
    w.add_uint32("imatrix.chunk_count", 4)
    w.add_uint32("imatrix.chunk_size", 512)
    for t in read_gguf_inventory(model).tensors:
        if not tensor_allows_quantization(t) or t.name == "token_embd.weight":
            continue
        n_expert = t.shape[2] if len(t.shape) > 2 else 1
        counts = rng.integers(100, 2000, size=(n_expert, 1)).astype(np.float32)
        sums = (rng.gamma(0.5, 2.0, size=(n_expert, t.shape[0])) * counts).astype(np.float32)
        w.add_tensor(f"{t.name}.in_sum2", sums)
        w.add_tensor(f"{t.name}.counts", counts)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst
