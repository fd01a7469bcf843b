"""Sandbox uids (as root): one per running execution, claimed under a file lock so that concurrent
quantdrop processes never share one (a shared uid would share RLIMIT_NPROC, and one execution's sweep
would kill another's processes); and the sweep that kills whatever an execution left under its uid."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import tempfile
import time
from collections.abc import Iterator

from quantdrop.errors import QuantdropError

UID_BASE = 61000  # each execution runs as its own uid/gid from here (no /etc/passwd entry needed)
UID_COUNT = 4096  # uids held at once by all quantdrop processes of this machine


def _lock_dir() -> str:
    path = os.path.join(tempfile.gettempdir(), "quantdrop-uid-locks")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _try_lock(uid: int) -> int | None:
    fd = os.open(os.path.join(_lock_dir(), str(uid)), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def claim_uid(slot: int) -> tuple[int, int]:
    """A uid no other execution on this machine holds (other quantdrop processes included): (uid, lock fd).
    Sharing one would share RLIMIT_NPROC and let one execution's sweep kill another's processes."""
    for i in range(UID_COUNT):
        uid = UID_BASE + (slot + i) % UID_COUNT
        fd = _try_lock(uid)
        if fd is not None:
            return uid, fd
    raise QuantdropError(f"all {UID_COUNT} sandbox uids from {UID_BASE} are in use")


def leftover_processes() -> list[int]:
    """Processes of sandbox uids that no execution holds: what a finished execution failed to remove."""
    by_uid: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                uid = os.stat(f"/proc/{entry}").st_uid
            except OSError:
                continue
            if UID_BASE <= uid < UID_BASE + UID_COUNT:
                by_uid.setdefault(uid, []).append(int(entry))
    left = []
    for uid, pids in by_uid.items():
        fd = _try_lock(uid)
        if fd is not None:  # nobody runs under it now
            os.close(fd)
            left += [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
    return left


def sweep(uid: int) -> None:
    """Kill every process of an execution's own uid (those that left its process group)."""
    for _ in range(3):
        found = False
        for pid in pids_of(uid):
            found = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not found:
            return
        time.sleep(0.01)


def pids_of(uid: int) -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    yield int(entry)
            except OSError:
                continue
