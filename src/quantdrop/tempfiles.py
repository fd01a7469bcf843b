"""Temporary files next to their destination, `.NAME.PID.tmp`, and the sweep of those left behind.

A writer writes `.NAME.PID.tmp` in the destination's folder and renames it over NAME when complete, so
a reader never sees half a file. A writer killed with SIGKILL (or a power cut) cannot remove its
temporary; the pid in the name tells a later run whether the writer is gone, and `sweep_stale` removes
the temporaries of dead processes. Every verb that writes such temporaries sweeps the folder first.
"""

from __future__ import annotations

import os
import re
from contextlib import suppress
from pathlib import Path

_TEMP = re.compile(r"^\..+\.(\d{1,7})\.tmp$")  # a pid (pid_max is at most 2^22): not mkstemp's 8 random chars


def temp_path(dest: Path) -> Path:
    """Where this process writes `dest` before renaming it into place."""
    return dest.parent / f".{dest.name}.{os.getpid()}.tmp"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale(folder: Path) -> list[Path]:
    """Remove the `.NAME.PID.tmp` regular files in `folder` whose process no longer exists."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False) or _alive(int(m.group(1))):
            continue
        with suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed
