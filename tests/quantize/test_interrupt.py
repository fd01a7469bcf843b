"""SIGTERM ends quantize like Ctrl-C (message, exit 143, temporary removed); the temporaries of runs
killed with SIGKILL are swept by the next run (issue 10, item 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gguf import GGMLQuantizationType as T

from quantdrop.quantize import quantize
from quantdrop.tempfiles import sweep_stale
from tests.hostile.cli import cli_env
from tests.quantize.crafted import Tensor, write_crafted
from tests.synthetic_gguf import write_synthetic


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def slow_source(folder: Path) -> Path:
    """One 32M-parameter tensor: about 2 s of Q2_K work on one thread."""
    return write_crafted(
        folder / "big.gguf",
        [Tensor("token_embd.weight", (2048, 16384), T.F16), Tensor("output_norm.weight", (2048,), T.F16)],
        noise=True,
    )


def start_and_wait_for_temp(src: Path, out: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantdrop.cli", "quantize", str(src), str(out), "--recipe", "Q2_K", "--threads", "1"],
        env=cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    tmp = out.parent / f".{out.name}.{proc.pid}.tmp"
    deadline = time.monotonic() + 60
    while not tmp.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc, tmp


def test_sigterm_cleans_up_and_exits_143(tmp_path: Path) -> None:
    src, out = slow_source(tmp_path), tmp_path / "out" / "q.gguf"
    out.parent.mkdir()
    proc, _ = start_and_wait_for_temp(src, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "quantdrop quantize: terminated" in err and "Traceback" not in err
    assert list(out.parent.iterdir()) == []


def test_temporary_of_a_killed_run_is_swept_by_the_next(tmp_path: Path) -> None:
    src, out = slow_source(tmp_path), tmp_path / "out" / "q.gguf"
    out.parent.mkdir()
    proc, tmp = start_and_wait_for_temp(src, out)
    proc.kill()
    proc.wait()
    assert tmp.exists()  # SIGKILL cannot be handled: the next run must clean up
    small = write_synthetic(tmp_path / "small.gguf", "llama", n_layer=1)
    quantize(small, out.with_name("other.gguf"), recipe="Q8_0")
    assert sorted(p.name for p in out.parent.iterdir()) == ["other.gguf"]


def test_sweep_removes_only_dead_writers_temporaries(tmp_path: Path) -> None:
    dead = dead_pid()
    stale = [tmp_path / f".a.gguf.{dead}.tmp", tmp_path / f".report.md.{dead}.tmp"]
    live = [tmp_path / f".b.gguf.{os.getpid()}.tmp", tmp_path / f".c.gguf.{os.getppid()}.tmp"]
    other = [
        tmp_path / "a.gguf",
        tmp_path / f"x.{dead}.tmp",
        tmp_path / f".x.{dead}.tmpl",
        tmp_path / ".a.gguf.12345678.tmp",
    ]  # mkstemp-style, not a pid
    for p in stale + live + other:
        p.write_text("x")
    (tmp_path / f".dir.{dead}.tmp").mkdir()
    assert sorted(sweep_stale(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in live + other)
