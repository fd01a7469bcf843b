"""Acceptance 5 of the quantize issue: each bad input is one clear line on stderr, a non-zero exit,
and no output (not even a partial or temporary file) left behind."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from tests.synthetic_gguf import write_synthetic


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("src") / "small.gguf", "llama", n_layer=4)


def run_cli(*args: str, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "quantdrop.cli", *args], capture_output=True, text=True, timeout=300, preexec_fn=preexec
    )


def assert_clean_failure(proc: subprocess.CompletedProcess, out_dir: Path, message: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and message in lines[0], lines[0]
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".") or p.name == "out.gguf"], list(out_dir.iterdir())


def test_missing_source(tmp_path: Path) -> None:
    proc = run_cli("quantize", str(tmp_path / "nope.gguf"), str(tmp_path / "out.gguf"), "--recipe", "Q4_K_M")
    assert_clean_failure(proc, tmp_path, "no such file")


def test_not_a_gguf(tmp_path: Path) -> None:
    src = tmp_path / "model.gguf"
    src.write_text("this is not a model\n")
    proc = run_cli("quantize", str(src), str(tmp_path / "out.gguf"), "--recipe", "Q4_K_M")
    assert_clean_failure(proc, tmp_path, "not a GGUF file")


@pytest.mark.parametrize(("keep", "message"), [(1000, "header ends early"), (-4096, "ends past the end")])
def test_truncated_gguf(small: Path, tmp_path: Path, keep: int, message: str) -> None:
    data = small.read_bytes()
    src = tmp_path / "cut.gguf"
    src.write_bytes(data[:keep])
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli("quantize", str(src), str(out / "out.gguf"), "--recipe", "Q4_K_M")
    assert_clean_failure(proc, out, message)


def test_unknown_recipe(small: Path, tmp_path: Path) -> None:
    proc = run_cli("quantize", str(small), str(tmp_path / "out.gguf"), "--recipe", "Q4_K_XXL")
    assert_clean_failure(proc, tmp_path, "unknown recipe 'Q4_K_XXL'")


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ('default = "q4_k"\n[[rules]]\npattern = "ffn_down"\ntype = "q4_k_xx"\n', "unknown ggml type 'q4_k_xx'"),
        ('default = "q4_k"\n[[rules]]\npattern = "ffn_(down"\ntype = "q6_k"\n', "invalid regex"),
        ('default = "q4_k"\n[[rules]]\npattern = "ffn_down"\ntype = "iq2_xxs"\n', "needs an importance matrix"),
    ],
)
def test_bad_recipe_file(small: Path, tmp_path: Path, recipe: str, message: str) -> None:
    f = tmp_path / "r.toml"
    f.write_text(recipe)
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli("quantize", str(small), str(out / "out.gguf"), "--recipe", str(f))
    assert_clean_failure(proc, out, message)


def test_existing_output_needs_force(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gguf"
    out.write_bytes(b"precious")
    proc = run_cli("quantize", str(small), str(out), "--recipe", "Q4_K_M")
    assert proc.returncode != 0 and "exists (pass --force" in proc.stderr
    assert out.read_bytes() == b"precious"
    assert run_cli("quantize", str(small), str(out), "--recipe", "Q4_K_M", "--force").returncode == 0
    assert out.read_bytes()[:4] == b"GGUF"


def test_no_space_is_refused_before_writing(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import import_module

    q = import_module("quantdrop.quantize")  # the module; `quantdrop.quantize` is the function
    monkeypatch.setattr(q.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(QuantdropError, match="not enough free space"):
        q.quantize(small, tmp_path / "out.gguf", recipe="Q4_K_M")
    assert list(tmp_path.iterdir()) == []


def test_running_out_of_space_mid_write_leaves_nothing(small: Path, tmp_path: Path) -> None:
    """The disk fills up while writing (a file-size limit makes write() fail with EFBIG)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli("quantize", str(small), str(out / "out.gguf"), "--recipe", "Q8_0", preexec=limit)
    assert_clean_failure(proc, out, "writing")
    assert os.listdir(out) == []
