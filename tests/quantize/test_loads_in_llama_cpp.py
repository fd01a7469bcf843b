"""Every GGUF `quantize` writes loads in llama.cpp (issue 10, item 0): each preset from a float source,
and requantizing files quantdrop itself wrote (whose quantdrop.* keys must not be copied twice)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.ggufio import read_header
from quantdrop.quantize import quantize
from quantdrop.recipes import LLAMA_CPP_PRESETS, PAPER_PRESETS
from tests.synthetic_gguf import write_synthetic

LOAD = """
import sys, llama_cpp
for path in sys.argv[1:]:
    try:
        llama_cpp.Llama(path, n_ctx=32, n_threads=1, verbose=False).close()
        print("OK", path, flush=True)
    except Exception as err:
        print("FAIL", path, err, flush=True)
"""


def llama_cpp_loads(paths: list[Path]) -> dict[str, bool]:
    """Load each GGUF with llama.cpp (the full model, weights included) in one child process."""
    proc = subprocess.run([sys.executable, "-c", LOAD, *map(str, paths)], capture_output=True, text=True, timeout=300)
    status = {
        line.split()[1]: line.startswith("OK ")
        for line in proc.stdout.splitlines()
        if line.startswith(("OK ", "FAIL "))
    }
    assert len(status) == len(paths), f"llama.cpp died (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return status


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Each preset that needs no imatrix, then requantizations of our own Q8_0 and Q4_K_M."""
    folder = tmp_path_factory.mktemp("loads")
    src = write_synthetic(folder / "src.gguf", "llama", n_layer=4, tokenizer=True)
    out = []
    for name in LLAMA_CPP_PRESETS + PAPER_PRESETS:
        try:
            out.append(quantize(src, folder / f"{name}.gguf", recipe=name, threads=2).path)
        except QuantdropError as err:
            assert "importance matrix" in str(err), err
    for first, second in (("Q8_0", "Q4_K_M"), ("Q4_K_M", "Q8_0"), ("Q8_0", "Q8_0")):
        out.append(
            quantize(
                folder / f"{first}.gguf",
                folder / f"{first}-then-{second}.gguf",
                recipe=second,
                allow_requantize=True,
                threads=2,
            ).path
        )
    return out


def test_every_written_file_loads_in_llama_cpp(written: list[Path]) -> None:
    assert len(written) >= len(LLAMA_CPP_PRESETS) + 3
    status = llama_cpp_loads(written)
    assert all(status.values()), [p for p, ok in status.items() if not ok]


def test_requantized_file_has_each_key_once(written: list[Path]) -> None:
    """Our reader refuses a repeated key, like gguf.cpp; the recipe recorded is the last one applied."""
    header = read_header(next(p for p in written if p.name == "Q8_0-then-Q4_K_M.gguf"))
    assert header.fields["quantdrop.recipe.name"] == "Q4_K_M"
    assert header.fields["general.file_type"] == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
