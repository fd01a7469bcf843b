"""Checks that an execution left the host as it found it: no processes, no temporary directories."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator

import pytest

from quantdrop import sandbox


def sandbox_processes() -> list[int]:
    """Processes left by executions: of sandbox uids nobody holds (as root), or children of this process
    (other than zombies awaiting their parent)."""
    found = sandbox.leftover_processes()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            found.append(int(entry))
    return found


def sandbox_dirs() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("quantdrop-sandbox-")}


@pytest.fixture
def host_unchanged() -> Iterator[None]:
    """Fails the test if the executions it made left processes or temporary directories behind."""
    dirs_before = sandbox_dirs()
    # children that were already there (e.g. the math-verify worker pool other test modules started)
    # are not this test's leftovers
    before = set(sandbox_processes())
    yield

    def new_processes() -> list[int]:
        return sorted(set(sandbox_processes()) - before)

    deadline = time.monotonic() + 2
    while new_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert new_processes() == [], "an execution left processes running"
    assert sandbox_dirs() - dirs_before == set(), "an execution left its directory behind"
