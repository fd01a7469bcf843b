"""KV cache and compute buffer against what llama.cpp itself allocates (logged sizes, embedded model)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from quantdrop.inventory import read_gguf_inventory
from quantdrop.memory import compute_buffer_bytes, kv_bytes_per_layer, layer_shapes
from tests.real_model import ABSENT
from tests.real_model import QWEN_Q4 as QWEN

MiB = 1 << 20

# (n_ctx, flash attention, KV type) loaded by llama.cpp, all in one child process whose C-level log
# (stderr) is read whole; a marker line separates the runs.
RUNS = [
    (4096, False, "f16"),
    (4096, True, "q8_0"),
    (4096, True, "q4_0"),
    (1000, False, "f16"),
    (4096, True, "f16"),
    (16384, False, "f16"),
]
PROBE = """
import os, sys, llama_cpp
types = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": llama_cpp.GGML_TYPE_Q4_0}
for run in sys.argv[2:]:
    n_ctx, flash, kv = run.split(":")
    os.write(2, f"@@RUN {run}\\n".encode())
    m = llama_cpp.Llama(sys.argv[1], n_ctx=int(n_ctx), n_batch=512, n_ubatch=512, n_threads=1,
                        type_k=types[kv], type_v=types[kv], flash_attn=flash == "1", verbose=True)
    del m
"""


@pytest.fixture(scope="module")
def llama_cpp_logs(demo_model: Path) -> dict[tuple[int, bool, str], tuple[float, float]]:
    """(KV buffer MiB, compute buffer MiB) as llama.cpp logs them, per run."""
    args = [f"{n}:{int(fa)}:{kv}" for n, fa, kv in RUNS]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(demo_model), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = {}
    for run, chunk in zip(RUNS, proc.stderr.split("@@RUN ")[1:], strict=True):
        kv_mib = re.search(r"llama_kv_cache:\s+CPU KV buffer size =\s+([\d.]+) MiB", chunk)
        cb_mib = re.search(r"CPU compute buffer size =\s+([\d.]+) MiB", chunk)
        assert kv_mib and cb_mib, chunk[-2000:]
        out[run] = (float(kv_mib.group(1)), float(cb_mib.group(1)))
    return out


@pytest.mark.parametrize(("kv", "flash_attn"), [("f16", False), ("q8_0", True), ("q4_0", True)])
def test_kv_cache_equals_llama_cpp(demo_model: Path, llama_cpp_logs: dict, kv: str, flash_attn: bool) -> None:
    logged, _ = llama_cpp_logs[(4096, flash_attn, kv)]
    ours = sum(kv_bytes_per_layer(read_gguf_inventory(demo_model), ctx=4096, kv_type_name=kv))
    assert ours / MiB == pytest.approx(logged, abs=0.005)  # the log prints 2 decimals


def test_kv_cells_are_padded_like_llama_cpp(demo_model: Path, llama_cpp_logs: dict) -> None:
    logged, _ = llama_cpp_logs[(1000, False, "f16")]  # llama.cpp pads n_ctx to a multiple of 256 cells
    ours = sum(kv_bytes_per_layer(read_gguf_inventory(demo_model), ctx=1000))
    assert ours / MiB == pytest.approx(logged, abs=0.005)


@pytest.mark.parametrize(("n_ctx", "flash_attn"), [(4096, True), (16384, False)])
def test_compute_buffer_estimate_is_close_to_llama_cpp(
    demo_model: Path, llama_cpp_logs: dict, n_ctx: int, flash_attn: bool
) -> None:
    """At 16K without flash attention the KQ scores dominate; at 4K the logits do."""
    _, logged = llama_cpp_logs[(n_ctx, flash_attn, "f16")]
    inv = read_gguf_inventory(demo_model)
    ours = compute_buffer_bytes(inv, layer_shapes(inv), has_output=True, ctx=n_ctx, flash_attn=flash_attn)
    assert ours / MiB == pytest.approx(logged, rel=0.03)


PARALLEL_PROBE = """
import os, sys, llama_cpp
model = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), llama_cpp.llama_model_default_params())
for run in sys.argv[2:]:
    n_ctx, n_seq = (int(x) for x in run.split(":"))
    os.write(2, f"@@RUN {run}\\\\n".encode())
    params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_seq_max, params.n_batch, params.n_ubatch, params.n_threads = n_ctx, n_seq, 512, 512, 1
    llama_cpp.llama_free(llama_cpp.llama_init_from_model(model, params))
"""


@pytest.mark.parametrize(("ctx", "parallel"), [(1000, 3), (300, 3)])
def test_parallel_sequences_as_llama_cpp(demo_model: Path, ctx: int, parallel: int) -> None:
    """`parallel` sequences of `ctx` tokens = llama.cpp's n_ctx = ctx x parallel, n_seq_max = parallel
    (as llama-server -c / -np): one stream of pad(ctx, 256) cells per sequence."""
    proc = subprocess.run(
        [sys.executable, "-c", PARALLEL_PROBE, str(demo_model), f"{ctx * parallel}:{parallel}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(
        r"llama_kv_cache: size =\s+([\d.]+) MiB \(\s*(\d+) cells,\s+\d+ layers,\s+(\d+)/(\d+) seqs", proc.stderr
    )
    assert m, proc.stderr[-2000:]
    ours = sum(kv_bytes_per_layer(read_gguf_inventory(demo_model), ctx=ctx, parallel=parallel))
    assert ours / MiB == pytest.approx(float(m.group(1)), abs=0.005)


@pytest.mark.parametrize(
    ("n_ctx", "flash_attn", "kv"),
    [(4096, True, "f16"), (4096, True, "q8_0"), (4096, True, "q4_0"), (16384, False, "f16")],
)
def test_compute_buffer_equals_llama_cpp(
    demo_model: Path, llama_cpp_logs: dict, n_ctx: int, flash_attn: bool, kv: str
) -> None:
    """Issue 16: with flash attention and an f16 cache the logits sit above 2 residual-sized slots, not 3
    (3 with a Hadamard-rotated quantized cache or the score matrix); to the log's 2 decimals."""
    _, logged = llama_cpp_logs[(n_ctx, flash_attn, kv)]
    inv = read_gguf_inventory(demo_model)
    ours = compute_buffer_bytes(
        inv, layer_shapes(inv), has_output=True, ctx=n_ctx, flash_attn=flash_attn, kv_type_name=kv
    )
    assert ours / MiB == pytest.approx(logged, abs=0.01)


def test_small_context_without_flash_attention_is_one_slot_high_at_most(demo_model: Path, llama_cpp_logs: dict) -> None:
    """The documented bound: never below llama.cpp, at most one [n_embd, tokens] f32 slot above it."""
    _, logged = llama_cpp_logs[(1000, False, "f16")]
    inv = read_gguf_inventory(demo_model)
    ours = compute_buffer_bytes(inv, layer_shapes(inv), has_output=True, ctx=1000, flash_attn=False)
    assert logged * MiB - 0.01 * MiB <= ours <= logged * MiB + 512 * inv.hparams.n_embd * 4 + 0.01 * MiB


@pytest.mark.slow
@pytest.mark.skipif(not QWEN.exists(), reason=ABSENT)
def test_kv_and_compute_buffer_equal_llama_cpp_on_the_1_5b_model() -> None:
    runs = [
        (8192, True, "f16"),
        (8192, True, "q8_0"),
        (8192, False, "f16"),
        (32768, True, "f16"),
        (32768, True, "q8_0"),
        (32768, False, "f16"),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(QWEN), *(f"{n}:{int(fa)}:{kv}" for n, fa, kv in runs)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    inv = read_gguf_inventory(QWEN)
    for (n_ctx, fa, kv), chunk in zip(runs, proc.stderr.split("@@RUN ")[1:], strict=True):
        kv_mib = float(re.search(r"llama_kv_cache:\s+CPU KV buffer size =\s+([\d.]+) MiB", chunk).group(1))
        cb_mib = float(re.search(r"CPU compute buffer size =\s+([\d.]+) MiB", chunk).group(1))
        assert sum(kv_bytes_per_layer(inv, ctx=n_ctx, kv_type_name=kv)) / MiB == pytest.approx(kv_mib, abs=0.005)
        ours = compute_buffer_bytes(inv, layer_shapes(inv), has_output=True, ctx=n_ctx, flash_attn=fa, kv_type_name=kv)
        assert ours / MiB == pytest.approx(cb_mib, abs=0.01), (n_ctx, fa, kv)
