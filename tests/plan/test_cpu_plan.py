"""CPU inference: the plan for a CPU host against the buffers llama.cpp's CPU backend itself reports
(CPU_Mapped weights, CPU_REPACK copy, KV cache, compute buffer), on the embedded model quantized here
and (slow) the real 1.5B Q4_K_M; repacking follows this machine's llama.cpp build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType as T

from quantdrop.devices import parse_devices
from quantdrop.memory import cpu_repack_bytes, local_cpu_features, repack_interleave
from quantdrop.plan import plan, render_table
from quantdrop.quantize import quantize
from tests.real_model import ABSENT
from tests.real_model import QWEN_Q4 as QWEN

MiB = 1 << 20
PROBE = """
import sys, llama_cpp
llama_cpp.Llama(sys.argv[1], n_ctx=int(sys.argv[2]), n_batch=512, n_ubatch=512, n_threads=1,
                flash_attn=sys.argv[3] == "1", use_mmap=sys.argv[4] == "1", verbose=True)
"""
BUFFERS = {
    "mapped": r"CPU_Mapped model buffer size =\s+([\d.]+) MiB",
    "weights": r"CPU model buffer size =\s+([\d.]+) MiB",  # --no-mmap: the weights not repacked
    "repack": r"CPU_REPACK model buffer size =\s+([\d.]+) MiB",
    "kv": r"llama_kv_cache:\s+CPU KV buffer size =\s+([\d.]+) MiB",
    "compute": r"CPU compute buffer size =\s+([\d.]+) MiB",
}


def llama_cpp_buffers(model: Path, ctx: int, flash_attn: bool, mmap: bool) -> dict[str, float]:
    """MiB per buffer as llama.cpp logs them when it loads `model` on the CPU (0 if it logs none)."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(model), str(ctx), str(int(flash_attn)), str(int(mmap))],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = {}
    for key, pattern in BUFFERS.items():
        m = re.search(pattern, proc.stderr)
        out[key] = float(m.group(1)) if m else 0.0
    assert (out["mapped"] if mmap else out["weights"]) and out["kv"] and out["compute"], proc.stderr[-3000:]
    return out


def check_against_llama_cpp(model: Path, ctx: int, flash_attn: bool, mmap: bool = True) -> None:
    logged = llama_cpp_buffers(model, ctx, flash_attn, mmap)
    p = plan(model, "as-is", ctx=ctx, flash_attn=flash_attn, devices="cpu", mmap=mmap)
    (fit,) = p.recipes[0].devices
    (host,) = parse_devices("cpu")[0].devices
    assert fit.host_bytes == 0 and fit.count == 1
    assert fit.cpu_repack_bytes / MiB == pytest.approx(logged["repack"], abs=0.005)  # the log's 2 decimals
    # CPU_Mapped maps the file span from the first to the last tensor it keeps: at most the weights;
    # without mmap the weights not repacked are read into a CPU buffer, the rest (and the repacked copy of
    # a tied embedding, the output layer's duplicate) into CPU_REPACK
    if mmap:
        assert logged["mapped"] <= p.recipes[0].size_bytes / MiB + 0.005
    else:
        r = p.recipes[0]
        planned_weights = fit.bytes_per_device - host.overhead_bytes - r.kv_cache_bytes - r.compute_buffer_bytes
        assert logged["weights"] + logged["repack"] == pytest.approx(planned_weights / MiB, abs=0.01)
    planned = fit.bytes_per_device - host.overhead_bytes  # llama.cpp's buffers only, no runtime estimate
    assert planned / MiB == pytest.approx(sum(logged.values()), rel=0.02)


@pytest.fixture(scope="module", params=["Q4_K_M", "q4_0"])
def quantized_demo(request: pytest.FixtureRequest, demo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """llama.cpp's Q4_K_M mix (Q4_K repacked, Q5_0/Q6_K/Q8_0 not) or all-q4_0 (repacked nearly whole)."""
    folder = tmp_path_factory.mktemp("cpu")
    recipe = request.param
    if recipe == "q4_0":
        recipe = str(folder / "q4_0.toml")
        Path(recipe).write_text('name = "q4_0"\ndefault = "q4_0"\n')
    out = folder / f"demo-{request.param}.gguf"
    quantize(demo_model, out, recipe=recipe, threads=2)
    return out


@pytest.mark.parametrize(("flash_attn", "mmap"), [(True, True), (False, True), (True, False)])
def test_cpu_plan_matches_llama_cpps_buffers_on_the_embedded_model(
    quantized_demo: Path, flash_attn: bool, mmap: bool
) -> None:
    if not local_cpu_features():
        pytest.skip("this llama.cpp build repacks nothing (no REPACK, or no AVX2/NEON dotprod)")
    check_against_llama_cpp(quantized_demo, 4096, flash_attn, mmap)


@pytest.mark.slow
@pytest.mark.skipif(not QWEN.exists(), reason=ABSENT)
@pytest.mark.parametrize(("ctx", "mmap"), [(4096, True), (32768, True), (4096, False)])
def test_cpu_plan_matches_llama_cpps_buffers_on_the_1_5b_model(ctx: int, mmap: bool) -> None:
    check_against_llama_cpp(QWEN, ctx, True, mmap)


def test_local_cpu_features_are_the_builds() -> None:
    """`--devices cpu` takes its features from the installed llama.cpp's own system info."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    features = parse_devices("cpu")[0].devices[0].cpu_features
    assert ("avx2" in features) == ("AVX2 = 1" in info and "REPACK = 1" in info)
    assert ("avx512" in features) == ("AVX512 = 1" in info and "REPACK = 1" in info)


def test_named_isas_follow_repack_cpp() -> None:
    """repack.cpp: Q4_K and Q4_0 repack with AVX2, Q2_K needs AVX-512, Q6_K and Q8_0 only on ARM."""
    isa = {
        name: parse_devices(f"cpu-{name}-32G")[0].devices[0].cpu_features
        for name in ("avx2", "avx512", "dotprod", "i8mm", "none")
    }
    assert parse_devices("cpu-32G")[0].devices[0].cpu_features == isa["avx2"]  # the documented default
    assert repack_interleave(T.Q4_K, isa["avx2"]) == 8 and repack_interleave(T.Q4_0, isa["avx2"]) == 8
    assert repack_interleave(T.Q2_K, isa["avx2"]) is None and repack_interleave(T.Q2_K, isa["avx512"]) == 8
    assert repack_interleave(T.Q6_K, isa["avx512"]) is None and repack_interleave(T.Q6_K, isa["dotprod"]) == 8
    assert repack_interleave(T.Q8_0, isa["i8mm"]) == 4 and repack_interleave(T.Q4_0, isa["dotprod"]) == 4
    assert all(repack_interleave(t, isa["none"]) is None for t in T)


def test_what_is_repacked() -> None:
    """Matrix-product weights only, rows divisible by the interleave; a tied embedding as the output."""
    f = frozenset({"avx2"})
    q4k = 144 * 8  # one Q4_K row of 2048 elements is 8 blocks of 144 bytes
    assert cpu_repack_bytes([("blk.0.ffn_up.weight", T.Q4_K, (2048, 16))], f) == 16 * q4k
    assert cpu_repack_bytes([("blk.0.ffn_up.weight", T.Q4_K, (2048, 12))], f) == 0  # 12 rows: not 8-aligned
    assert (
        cpu_repack_bytes([("token_embd.weight", T.Q4_K, (2048, 16)), ("output.weight", T.Q6_K, (2048, 16))], f) == 0
    )  # GET_ROWS; Q6_K on x86
    assert cpu_repack_bytes([("token_embd.weight", T.Q4_K, (2048, 16))], f) == 16 * q4k  # tied: the output
    assert cpu_repack_bytes([("blk.0.ffn_up_exps.weight", T.Q4_K, (2048, 16, 4))], f) == 4 * 16 * q4k


def test_a_cpu_host_holds_the_embedding_and_gpus_do_not_repack(quantized_demo: Path) -> None:
    p = plan(quantized_demo, "as-is", ctx=4096, devices="cpu-avx2-8G,cpu-none-8G,24G")
    avx2, plain, gpu = p.recipes[0].devices
    assert avx2.cpu_repack_bytes > 0 and plain.cpu_repack_bytes == gpu.cpu_repack_bytes == 0
    assert avx2.bytes_per_device - plain.bytes_per_device == avx2.cpu_repack_bytes
    assert plain.host_bytes == 0 and gpu.host_bytes > 0
    lines = [line for line in render_table(p).splitlines() if line.startswith("CPU_REPACK")]
    assert len(lines) == 1 and "1xcpu-avx2-8G" in lines[0] and "cpu-none" not in lines[0]
