"""Engines started by quantdrop: one inference server per variant, from a user's command template.

`--serve 'llama-server -m {model} --port {port} -c {ctx} -ngl 99'` (placeholders `{model}`,
`{port}`, `{ctx}`, `{label}`, `{gpus}`): each engine runs in its own process group with its output in
a log file; it is ready when `/health` or `/v1/models` answers 200; it is stopped with SIGTERM to
the whole group, then SIGKILL. A pid file per running engine lets the next run stop engines that a
killed run left behind (only the very process recorded: same pid and start time).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from quantdrop.errors import QuantdropError

PLACEHOLDERS = ("model", "port", "ctx", "label", "gpus")
READY_PATHS = ("/health", "/v1/models")
LOG_TAIL_LINES = 12


def check_template(template: str) -> None:
    """Refuse a template with unknown placeholders, or none for the model or the port."""
    import string

    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:
        raise QuantdropError(f"--serve {template!r}: {err}") from None
    unknown = names - set(PLACEHOLDERS)
    if unknown:
        raise QuantdropError(
            f"--serve: unknown placeholder(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
        )
    missing = {"model", "port"} - names
    if missing:
        raise QuantdropError(f"--serve: the command needs {', '.join('{' + m + '}' for m in sorted(missing))}")


def split_gpus(gpus: str | None, slots: int) -> list[str]:
    """`0-7` split over 2 slots -> ["0,1,2,3", "4,5,6,7"]; no GPUs -> "" for every slot."""
    if slots < 1:
        raise QuantdropError(f"--serve-slots must be >= 1, got {slots}")
    if not gpus:
        return [""] * slots
    ids: list[int] = []
    for part in gpus.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            ids += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
        except ValueError:
            raise QuantdropError(f"--gpus {gpus!r}: expected ids and ranges like 0-7 or 0,2,4") from None
    if len(ids) < slots or len(ids) % slots:
        raise QuantdropError(f"--gpus {gpus!r}: {len(ids)} GPUs cannot be split evenly over {slots} engines")
    per = len(ids) // slots
    return [",".join(map(str, ids[i * per : (i + 1) * per])) for i in range(slots)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid, it
    names one process for good (a recycled pid has a later start time; exec does not change it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting for their parent do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields after "(comm)": state, ppid, pgrp
            return True
    return False


def _wait_group(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_group(pgid: int, grace_s: float) -> None:
    """SIGTERM to the group, then SIGKILL to whatever is left after `grace_s`, and wait for it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    if _wait_group(pgid, grace_s):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    _wait_group(pgid, 5.0)


def sweep_stale(folder: Path, grace_s: float = 10.0) -> list[int]:
    """Stop engines recorded in `folder/*.pid` that still run (same pid and start time)."""
    stopped = []
    for pidfile in sorted(folder.glob("*.pid")):
        try:
            rec = json.loads(pidfile.read_text())
            pid, started = int(rec["pid"]), str(rec["start_time"])
        except (OSError, ValueError, KeyError, TypeError):
            pidfile.unlink(missing_ok=True)
            continue
        if _start_time(pid) == started:
            _kill_group(pid, grace_s)
            stopped.append(pid)
        pidfile.unlink(missing_ok=True)
    return stopped


@dataclass
class Engine:
    """One server for one variant; `with Engine(...) as e:` starts it, waits until ready, stops it."""

    template: str
    model: str
    label: str
    folder: Path  # logs and pid files
    ctx: int = 4096
    gpus: str = ""
    ready_timeout_s: float = 600.0
    stop_grace_s: float = 10.0

    def __post_init__(self) -> None:
        check_template(self.template)
        self.port = free_port()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.label)
        self.log_path = self.folder / f"{safe}.log"
        self.pid_path = self.folder / f"{safe}.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        values = {"model": self.model, "port": self.port, "ctx": self.ctx, "label": self.label, "gpus": self.gpus}
        return shlex.split(self.template.format(**{k: shlex.quote(str(v)) for k, v in values.items()}))

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        env = os.environ | ({"CUDA_VISIBLE_DEVICES": self.gpus} if self.gpus else {})
        with open(self.log_path, "ab") as log:
            try:
                self.proc = subprocess.Popen(
                    self.argv(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env=env,
                )
            except OSError as err:
                raise QuantdropError(f"engine for {self.label}: cannot start {self.argv()[0]!r}: {err}") from None
        record = {
            "pid": self.proc.pid,
            "start_time": _start_time(self.proc.pid),
            "argv": self.argv(),
            "label": self.label,
        }
        self.pid_path.write_text(json.dumps(record))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _answers(self) -> bool:
        for path in READY_PATHS:
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError, ValueError):
                continue
        return False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                self.stop()
                raise QuantdropError(
                    f"engine for {self.label} exited (code {code}) before it was ready; "
                    f"log {self.log_path}: {log_tail(self.log_path)}"
                )
            if self._answers():
                return
            time.sleep(0.25)
        self.stop()
        raise QuantdropError(
            f"engine for {self.label} did not answer {' or '.join(READY_PATHS)} within "
            f"{self.ready_timeout_s:.0f} s; log {self.log_path}: {log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """SIGTERM to the engine's group; SIGKILL to whatever is left after the grace period."""
        if self.proc is not None:
            pgid = self.proc.pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=self.stop_grace_s)
            _kill_group(pgid, 0.5)  # the leader is reaped; children that ignored SIGTERM get SIGKILL
            self.proc.wait()
        self.pid_path.unlink(missing_ok=True)

    def __enter__(self) -> Engine:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
