"""Memory configurations llama.cpp refuses are refused by plan (and through plan's one check, by tune and
the study), with llama.cpp's reason; the reference is llama.cpp itself, asked on the embedded model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.plan import check_options, plan
from tests.hostile.cli import assert_clean_failure, run

REASON = "quantized V cache requires flash_attn to be enabled"  # llama.cpp's own words
PROBE = """
import sys, llama_cpp
types = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": llama_cpp.GGML_TYPE_Q4_0}
model = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), llama_cpp.llama_model_default_params())
for run in sys.argv[2:]:
    kv, fa = run.split(":")
    p = llama_cpp.llama_context_default_params()
    p.n_ctx, p.n_batch, p.n_ubatch, p.n_threads = 512, 512, 512, 1
    p.type_k = p.type_v = types[kv]
    p.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if fa == "1"
                         else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    ctx = llama_cpp.llama_init_from_model(model, p)
    print(run, "refused" if not ctx else "ok", flush=True)
    if ctx:
        llama_cpp.llama_free(ctx)
"""
CONFIGS = [(kv, fa) for kv in ("f16", "q8_0", "q4_0") for fa in (True, False)]


@pytest.fixture(scope="module")
def llama_cpp_verdicts(demo_model: Path) -> tuple[dict[tuple[str, bool], bool], str]:
    """Whether llama.cpp creates a context for each (KV type, flash attention), and its log."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(demo_model), *(f"{kv}:{int(fa)}" for kv, fa in CONFIGS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdicts = dict(line.split() for line in proc.stdout.splitlines())
    return {(kv, fa): verdicts[f"{kv}:{int(fa)}"] == "ok" for kv, fa in CONFIGS}, proc.stderr


@pytest.mark.parametrize(("kv", "fa"), CONFIGS)
def test_plan_refuses_exactly_what_llama_cpp_refuses(
    demo_model: Path, llama_cpp_verdicts: tuple, kv: str, fa: bool
) -> None:
    accepted, log = llama_cpp_verdicts
    if accepted[(kv, fa)]:
        assert plan(demo_model, "as-is", ctx=512, kv_type=kv, flash_attn=fa).recipes
        return
    assert REASON in log  # llama.cpp's reason is the one we quote
    with pytest.raises(QuantdropError, match=REASON):
        plan(demo_model, "as-is", ctx=512, kv_type=kv, flash_attn=fa)


def test_the_cli_refuses_it_in_one_line(demo_model: Path) -> None:
    proc = run("plan", demo_model, "--kv-type", "q8_0", "--flash-attn", "no", timeout=60)
    assert_clean_failure(proc, "--kv-type q8_0", "--flash-attn no", REASON)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"headroom_gib": float("nan")}, "--headroom-gib must be a finite number"),
        ({"overhead_gib": float("-inf")}, "--overhead-gib must be a finite number"),
        ({"overhead_gib": -1.0}, "--overhead-gib must be a finite number of GiB, 0 or more"),
        ({"ctx": 0}, "--ctx, --parallel and --n-ubatch must be positive"),
        ({"kv_type": "q5_1"}, "unknown --kv-type 'q5_1'"),
    ],
)
def test_other_nonsense_is_refused_by_the_same_check(kwargs: dict, message: str) -> None:
    options = dict(kv_type="f16", flash_attn=True, ctx=4096, parallel=1, n_ubatch=512) | kwargs
    with pytest.raises(QuantdropError, match=message):
        check_options(**options)


def test_the_study_checks_before_any_work(tmp_path: Path, demo_model: Path) -> None:
    out = tmp_path / "study"
    proc = run("study", demo_model, "--ctx", "0", "--skip-eval", "--out", out, timeout=60)
    assert_clean_failure(proc, "--ctx")
    assert not out.exists()


def test_a_head_size_the_cache_block_does_not_divide_is_refused_like_llama_cpp(tmp_path: Path) -> None:
    """Head size 80 (160 wide, 2 heads): a q8_0 row of 160 is fine, but llama.cpp's flash attention needs
    the 32-element block to divide each head, and refuses the context; so does plan."""
    from quantdrop.hfconfig import inventory_from_config
    from tests.synthetic_gguf import write_gguf

    from .test_tiny_models_in_llama_cpp import BASE, TINY, metadata

    config = {**BASE, **TINY["llama"], "hidden_size": 160, "num_attention_heads": 2, "num_key_value_heads": 2}
    inv = inventory_from_config(config)
    path = tmp_path / "head80.gguf"
    write_gguf(inv, path, metadata(config))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), "q8_0:1", "f16:1"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["q8_0:1", "refused", "f16:1", "ok"]
    assert "does not divide n_embd_head_k=80" in proc.stderr
    with pytest.raises(QuantdropError, match=r"K cache type q8_0 with block size 32 does not divide n_embd_head_k=80"):
        plan(inv, "as-is", ctx=512, kv_type="q8_0")
    assert plan(inv, "as-is", ctx=512, kv_type="f16").recipes


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--devices", "100000000xH100-80G"], ["--devices", "at most 4096"]),
        (["--headroom-gib", "nan"], ["--headroom-gib"]),
        (["--overhead-gib=-inf"], ["--overhead-gib"]),
        (["--devices", "2xcpu-32G"], ["a CPU host is a device set of its own"]),
    ],
)
def test_plan_cli_refuses_nonsense_at_once(demo_model: Path, args: list[str], needles: list[str]) -> None:
    """Issue 10, items 9 and 11: a huge device count ran out of memory; NaN/inf budgets were accepted."""
    assert_clean_failure(run("plan", demo_model, *args, timeout=60), *needles)


@pytest.mark.parametrize("switch", ["mla_split", "flash_attn", "swa_full", "mmap"])
def test_switches_are_bools_and_the_old_strings_are_refused(switch: str) -> None:
    """`mla_split="no"` used to mean False; a bare string would now be truthy, so it is refused, not guessed."""
    config = Path(__file__).parents[1] / "fixtures/configs/qwen2.5-0.5b.json"
    with pytest.raises(QuantdropError, match=f"{switch} must be True or False"):
        plan(config, "Q4_K_M", **{switch: "no"})
    assert plan(config, "Q4_K_M", **{switch: False}).recipes
