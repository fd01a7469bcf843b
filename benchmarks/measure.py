"""What the benchmark scripts share: one child process timed, with its peak memory."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping


def timed_process(cmd: list[str], env: Mapping[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds of the whole process (imports included) and its peak RSS in bytes; exits on failure."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark process failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss * 1024
