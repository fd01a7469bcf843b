"""The embedded reference model's quantizations, made once per test session by llama.cpp itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reference import llama_cpp_quantize

# as `quantdrop` itself does (quantdrop.cli): OpenMP threads that spin while waiting starve a 2-core machine;
# read when llama.cpp's libgomp loads, so set before any test imports llama_cpp
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

RECIPES = ["Q8_0", "Q6_K", "Q4_K_M", "Q3_K_M", "Q2_K"]  # most bits to fewest


@pytest.fixture(scope="session")
def reference_gguf(demo_model: Path) -> Path:
    return demo_model


@pytest.fixture(scope="session")
def variants(reference_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The reference quantized by llama.cpp's llama_model_quantize (quantdrop.quantize is bit-identical)."""
    import llama_cpp

    out = tmp_path_factory.mktemp("variants")
    paths = {}
    for name in RECIPES:
        paths[name] = out / f"{name}.gguf"
        llama_cpp_quantize(reference_gguf, paths[name], getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}"))
    return paths
