"""The hostile suite's one way to run the CLI as a user does and to check how it failed.

A hostile input must end in a clear one-line error naming the file or field, a non-zero exit that
is not an internal error, no traceback, and nothing left behind in the folders it wrote to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def cli_env(**extra: str) -> dict[str, str]:
    paths = [str(SRC), os.environ.get("PYTHONPATH", "")]
    return os.environ | {
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        **extra,
    }


def run(*args: str | Path, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`quantdrop ARGS...` in a subprocess; a hang fails the test through `timeout`."""
    return subprocess.run(
        [sys.executable, "-m", "quantdrop.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def listing(folder: Path) -> set[str]:
    """Every path under `folder`, relative, to compare before and after a command."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_clean_failure(
    proc: subprocess.CompletedProcess, *needles: str, folder: Path | None = None, before: set[str] | None = None
) -> str:
    """The command failed as promised; returns the error line. `needles` must all be in it."""
    assert proc.returncode not in (0, 1), f"exit {proc.returncode}: {proc.stderr}"
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    if folder is not None:
        assert listing(folder) == (before or set()), f"left behind: {listing(folder) - (before or set())}"
    return errors[0]
