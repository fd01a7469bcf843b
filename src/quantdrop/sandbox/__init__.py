"""Run untrusted, model-written Python in a separate, limited, network-less process.

`run(code)` executes `code` as a program in its own process group, through bubblewrap where it works
(see `quantdrop.sandbox._isolation`), with limits on CPU time, address space, file size, processes and
threads, open files and output, a wall-clock timeout that kills the whole group, a fresh working
directory (deleted after), and an environment that holds none of ours. As root, each concurrent
execution runs under its own unprivileged uid (from 61000, claimed under a file lock so that concurrent
quantdrop processes never share one: see `_uids`), so process limits are per execution and nothing it
starts survives the sweep that follows it. At most `parallelism()` executions run at once
(default: the number of cores); `SandboxPool` runs many in parallel within that bound.

This is no place for verdicts: `quantdrop.sandbox.harness` (run inside) and
`quantdrop.eval.scoring.code` (outside) decide whether tests passed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from quantdrop.sandbox._isolation import Isolation, isolation, minimal_env, python_executable, python_readable_by_others
from quantdrop.sandbox._uids import UID_BASE, UID_COUNT, claim_uid, leftover_processes, sweep

__all__ = [
    "UID_BASE",
    "UID_COUNT",
    "ExecResult",
    "Isolation",
    "SandboxPool",
    "isolation",
    "leftover_processes",
    "parallelism",
    "run",
    "set_parallelism",
]

Status = Literal["ok", "failed", "timeout", "memory", "killed"]

MAX_OUTPUT = 4 << 20  # bytes kept of stdout and of stderr each; more kills the program
MAX_PROCESSES = 64  # processes + threads of one execution
MAX_FILE = 64 << 20  # one file's size (RLIMIT_FSIZE), and each tmpfs's size under bubblewrap
MAX_OPEN_FILES = 256
_BOOT = Path(__file__).with_name("_boot.py")
_MEMORY_ERROR = re.compile(r"(^|\n)(MemoryError|std::bad_alloc|Cannot allocate memory)", re.M)


@dataclass(frozen=True)
class ExecResult:
    status: Status  # ok: exit 0; failed: other exit; timeout; memory: out of memory; killed: signal/output
    exit_code: int | None  # the exit status, or -signal, or None when we killed it
    stdout: str
    stderr: str
    duration_s: float
    detail: str = ""  # why it was killed, when we killed it

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ---------------------------------------------------------------- bounded parallelism (slots)
_slots_lock = threading.Lock()
_slots: queue.Queue[int] | None = None
_slot_count = 0


def parallelism() -> int:
    """How many executions may run at once (default: the number of cores)."""
    return _slot_count or os.cpu_count() or 1


def set_parallelism(n: int | None) -> None:
    """Bound concurrent executions to `n` (None: the number of cores); call while none runs."""
    with _slots_lock:
        _make_slots(n)


def _make_slots(n: int | None) -> queue.Queue[int]:
    global _slots, _slot_count
    _slot_count = max(1, n) if n else (os.cpu_count() or 1)
    _slots = queue.Queue()
    for i in range(_slot_count):
        _slots.put(i)
    return _slots


def _take_slot() -> tuple[queue.Queue[int], int]:
    with _slots_lock:
        slots = _slots if _slots is not None else _make_slots(None)
    return slots, slots.get()


# ---------------------------------------------------------------- one execution
def run(
    code: str,
    *,
    stdin: str | bytes | None = None,
    timeout_s: float = 10,
    memory_mb: int = 1024,
    files: Mapping[str, str | bytes] | None = None,
    max_output: int = MAX_OUTPUT,
) -> ExecResult:
    """Execute the Python program `code` in the sandbox and return what happened.

    `stdin` is fed to it; `files` (name -> content) are placed next to it, read-only under bubblewrap.
    Never raises for anything the program does; a `QuantdropError` only when no sandbox can start.
    """
    iso = isolation()
    slots, slot = _take_slot()
    try:
        return _run_in_slot(iso, slot, code, stdin, timeout_s, memory_mb, dict(files or {}), max_output)
    finally:
        slots.put(slot)


def _run_in_slot(
    iso: Isolation,
    slot: int,
    code: str,
    stdin: str | bytes | None,
    timeout_s: float,
    memory_mb: int,
    files: dict[str, str | bytes],
    max_output: int,
) -> ExecResult:
    as_root = os.geteuid() == 0
    # Outside bubblewrap the program reads the interpreter where it lies: drop root only if others can.
    claim = claim_uid(slot) if as_root and (iso.own_filesystem or python_readable_by_others()) else None
    uid = claim[0] if claim else None
    files_dir = tempfile.mkdtemp(prefix="quantdrop-sandbox-")
    try:
        _write_files(files_dir, {**files, "main.py": code, "_boot.py": _BOOT.read_text()})
        if not iso.own_filesystem and uid is not None:
            os.chown(files_dir, uid, uid)  # its working directory is the files' directory
        program = _boot_command(iso, files_dir, uid, timeout_s, memory_mb)
        with iso.launch(program, files_dir, tmpfs_bytes=MAX_FILE, as_root=as_root) as (cmd, info_w):
            return _execute(
                cmd,
                cwd=files_dir,
                stdin=stdin,
                timeout_s=timeout_s,
                max_output=max_output,
                home=iso.workdir_inside(files_dir),
                uid=uid,
                info_w=info_w,
            )
    finally:
        if uid is not None:
            sweep(uid)
        shutil.rmtree(files_dir, ignore_errors=True)
        if claim:
            os.close(claim[1])  # releases the uid's lock


def _write_files(files_dir: str, files: Mapping[str, str | bytes]) -> None:
    """The program's files, readable by its (other) uid."""
    for name, content in files.items():
        path = Path(files_dir) / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        path.chmod(0o644)
    os.chmod(files_dir, 0o755)


def _boot_command(iso: Isolation, files_dir: str, uid: int | None, timeout_s: float, memory_mb: int) -> list[str]:
    """The interpreter running `_boot.py`, which sets the limits, drops to `uid` and runs main.py."""
    inside_files = iso.files_inside(files_dir)
    boot = {
        "cwd": iso.workdir_inside(files_dir),
        "uid": uid,
        "main": f"{inside_files}/main.py",
        "cpu_s": max(1, int(timeout_s + 1)),
        "memory_bytes": memory_mb << 20,
        "file_bytes": MAX_FILE,
        "nproc": MAX_PROCESSES,
        "open_files": MAX_OPEN_FILES,
        # without our own uid or user namespace, RLIMIT_NPROC counts everything this user runs
        "nproc_relative": int(uid is None and not iso.own_filesystem),
        "no_new_privs": int(not iso.own_filesystem),  # bubblewrap sets it itself
    }
    return [
        python_executable(),
        "-I",
        "-S",
        "-B",
        f"{inside_files}/_boot.py",
        *(f"{key}={'' if value is None else value}" for key, value in boot.items()),
    ]


def _execute(
    cmd: list[str],
    *,
    cwd: str,
    stdin: str | bytes | None,
    timeout_s: float,
    max_output: int,
    home: str,
    uid: int | None,
    info_w: int | None = None,
) -> ExecResult:
    data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=minimal_env(home),
            start_new_session=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(info_w,) if info_w is not None else (),
        )
    finally:
        if info_w is not None:
            os.close(info_w)
    out, err = bytearray(), bytearray()
    killed = ""
    try:
        killed = _pump(proc, data, out, err, start + timeout_s, max_output)
    finally:
        if killed or proc.poll() is None:
            _kill_group(proc, uid)
        exit_code = proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
    duration = time.monotonic() - start
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    return ExecResult(
        _status(killed, exit_code, stderr), None if killed else _exit_code(exit_code), stdout, stderr, duration, killed
    )


def _pump(
    proc: subprocess.Popen[bytes], data: bytes, out: bytearray, err: bytearray, deadline: float, max_output: int
) -> str:
    """Feed stdin and collect stdout/stderr until the program closes them; why we stopped it, or ""."""
    assert proc.stdin and proc.stdout and proc.stderr
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        os.set_blocking(pipe.fileno(), False)
    sel = selectors.DefaultSelector()
    if data:
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    sent = 0
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            for key, _ in sel.select(min(left, 1.0)):
                if key.fileobj is proc.stdin:
                    sent = _feed(sel, proc.stdin, data, sent)
                    continue
                chunk = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                key.data.extend(chunk)
                if len(key.data) > max_output:
                    del key.data[max_output:]
                    return f"output over {max_output} bytes"
        return ""
    finally:
        sel.close()


def _feed(sel: selectors.BaseSelector, stdin: Any, data: bytes, sent: int) -> int:
    """Write the next piece of stdin; close it when all is sent (or the program closed its end)."""
    try:
        sent += os.write(stdin.fileno(), data[sent : sent + 65536])
    except (BrokenPipeError, OSError):
        sent = len(data)
    if sent >= len(data):
        sel.unregister(stdin)
        stdin.close()
    return sent


def _exit_code(code: int) -> int:
    return 128 - code if 128 < code < 160 else code  # bubblewrap reports signal n as 128+n


def _status(killed: str, code: int, stderr: str) -> Status:
    if killed == "timeout":
        return "timeout"
    if killed:
        return "killed"
    code = _exit_code(code)
    if code == 0:
        return "ok"
    if code == -signal.SIGXCPU:  # RLIMIT_CPU
        return "timeout"
    if _MEMORY_ERROR.search(stderr[-4096:]):
        return "memory"
    return "killed" if code < 0 else "failed"


def _kill_group(proc: subprocess.Popen[bytes], uid: int | None) -> None:
    with contextlib.suppress(ProcessLookupError):  # bubblewrap's death takes its pid namespace along
        os.killpg(proc.pid, signal.SIGKILL)
    if uid is not None:
        sweep(uid)


# ---------------------------------------------------------------- many executions
class SandboxPool:
    """Runs executions in parallel threads; the global slot bound still holds across pools."""

    def __init__(self, workers: int | None = None) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=workers or parallelism(), thread_name_prefix="quantdrop-sandbox"
        )

    def submit(self, code: str, **options: Any) -> Future[ExecResult]:
        return self._executor.submit(run, code, **options)

    def map(self, jobs: Iterable[tuple[str, dict[str, Any]]]) -> list[ExecResult]:
        """Run (code, options) jobs; results in the jobs' order."""
        futures = [self.submit(code, **options) for code, options in jobs]
        return [f.result() for f in futures]

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
