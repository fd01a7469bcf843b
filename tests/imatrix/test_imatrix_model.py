"""`quantdrop imatrix` on real models: what it collects, MoE experts, resume after kill -9, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from quantdrop.imatrix import imatrix
from quantdrop.imatrix_io import read_imatrix
from tests.hostile.cli import assert_clean_failure, cli_env, run
from tests.imatrix.conftest import CTX
from tests.synthetic_gguf import N_EXPERT, N_LAYER, N_USED, write_moe


def test_every_matmul_weight_with_its_rows(demo_imatrix: Path) -> None:
    im = read_imatrix(demo_imatrix)
    # SmolLM2-135M: 30 blocks x (q, k, v, output, gate, up, down); token_embd is a row lookup, not a matmul
    assert len(im.sums) == 30 * 7 and im.chunk_count == 3 and im.chunk_size == CTX
    assert all(c.tolist() == [3 * CTX] for c in im.counts.values())
    for i in (0, 17, 29):
        p = f"blk.{i}."
        # q, k and v multiply the same activations, as do gate and up: identical sums, bit for bit
        np.testing.assert_array_equal(im.sums[p + "attn_q.weight"], im.sums[p + "attn_k.weight"])
        np.testing.assert_array_equal(im.sums[p + "attn_q.weight"], im.sums[p + "attn_v.weight"])
        np.testing.assert_array_equal(im.sums[p + "ffn_gate.weight"], im.sums[p + "ffn_up.weight"])
        assert im.sums[p + "ffn_down.weight"].shape == (1, 1536) and (im.sums[p + "ffn_down.weight"] > 0).all()


def test_moe_sums_and_counts_per_expert(tmp_path: Path, wiki_text: Path) -> None:
    model = write_moe(tmp_path / "moe.gguf")
    out = imatrix(model, tmp_path / "moe.imatrix.gguf", text=wiki_text, ctx=CTX, chunks=4, threads=1)
    im = read_imatrix(out.path)
    for i in range(N_LAYER):
        for kind in ("gate", "up", "down"):
            counts = im.counts[f"blk.{i}.ffn_{kind}_exps.weight"]
            assert counts.shape == (N_EXPERT,) and counts.sum() == 4 * CTX * N_USED  # each token, each slot
            assert len(set(counts.tolist())) > 1  # routing differs between experts
        np.testing.assert_array_equal(
            im.counts[f"blk.{i}.ffn_gate_exps.weight"], im.counts[f"blk.{i}.ffn_down_exps.weight"]
        )
        assert im.sums[f"blk.{i}.ffn_up_exps.weight"].shape == (N_EXPERT, 64)
        assert im.counts[f"blk.{i}.ffn_gate_inp.weight"].tolist() == [4 * CTX]  # the router is dense


def test_kill_9_then_resume_gives_the_same_file(demo_model: Path, wiki_text: Path, tmp_path: Path) -> None:
    args = [str(demo_model), "--text", str(wiki_text), "--ctx", str(CTX), "--chunks", "12", "--threads", "2"]
    whole = tmp_path / "whole.gguf"
    assert run("imatrix", *args, "-o", whole, timeout=300).returncode == 0
    part = tmp_path / "killed.gguf"
    ckpt = tmp_path / "killed.gguf.partial.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantdrop.cli", "imatrix", *args, "-o", str(part)],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and not part.exists(), "the run finished before it could be killed"
    resumed = run("imatrix", *args, "-o", part, "--resume", timeout=300)
    assert resumed.returncode == 0 and "resumed after" in resumed.stdout, resumed.stderr
    assert part.read_bytes() == whole.read_bytes()
    assert not ckpt.exists()


def test_not_a_gguf(tmp_path: Path, wiki_text: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")
    before = {p.name for p in tmp_path.iterdir()}
    proc = run("imatrix", fake, "--text", wiki_text, "-o", tmp_path / "out.gguf")
    assert_clean_failure(proc, "model.gguf", "not a GGUF")
    assert {p.name for p in tmp_path.iterdir()} == before


def test_too_short_text_names_the_minimum(demo_model: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("Only a few words here.")
    proc = run("imatrix", demo_model, "--text", short, "-o", tmp_path / "out.gguf")
    assert_clean_failure(proc, "short.txt", "needs at least 1024")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    assert_clean_failure(run("imatrix", demo_model, "--text", empty, "-o", tmp_path / "out.gguf"), "empty")
    assert not (tmp_path / "out.gguf").exists()


def test_quantized_model_is_allowed_with_a_note(tmp_path: Path, wiki_text: Path) -> None:
    from quantdrop.demo_model import packaged_q4_1

    proc = run(
        "imatrix",
        packaged_q4_1(),
        "--text",
        wiki_text,
        "--ctx",
        str(CTX),
        "--chunks",
        "2",
        "-o",
        tmp_path / "q.gguf",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "is quantized (Q4_1" in proc.stderr and "F16/BF16 source gives the reference" in proc.stderr
    assert len(read_imatrix(tmp_path / "q.gguf").sums) == 210


def test_another_models_imatrix_given_to_quantize(demo_imatrix: Path, tmp_path: Path) -> None:
    from tests.synthetic_gguf import write_synthetic

    other = write_synthetic(tmp_path / "llama.gguf", "llama", n_layer=2)
    proc = run("quantize", other, tmp_path / "out.gguf", "--recipe", "Q4_K_M", "--imatrix", demo_imatrix)
    assert_clean_failure(proc, str(demo_imatrix), "blk.0.attn_k.weight has 576 values", "256 columns")
    assert not (tmp_path / "out.gguf").exists()


def test_show_statistics(demo_imatrix: Path, tmp_path: Path) -> None:
    model = write_moe(tmp_path / "moe.gguf")  # another model: every weight of it is reported uncovered
    proc = run("imatrix", "--show", demo_imatrix, model)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "210 entries, 3 chunks of 64" in lines[0]
    rows = [line.split() for line in lines[3:] if line.startswith("blk.")]
    assert len(rows) == 210 and all(float(r[1]) > 0 for r in rows)
    assert "warning: blk.0.ffn_up_exps.weight of moe.gguf is not covered by this imatrix" in proc.stdout


@pytest.mark.parametrize("flag", ["--chunks", "--ctx"])
def test_bad_numbers(demo_model: Path, wiki_text: Path, tmp_path: Path, flag: str) -> None:
    proc = run("imatrix", demo_model, "--text", wiki_text, flag, "0", "-o", tmp_path / "out.gguf")
    assert_clean_failure(proc, flag)
