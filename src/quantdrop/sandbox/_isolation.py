"""Which isolation this machine allows, picked once: bubblewrap, else `unshare`, else none (said loudly).

- "bwrap": bubblewrap with new network, pid, ipc, uts (and cgroup) namespaces; the program sees only
  the system's /usr, a few /etc files, the Python installation (read-only), its own files (read-only)
  and two small tmpfs (/work, its working directory, and /tmp).
- "unshare": util-linux `unshare` with new network and pid namespaces (the whole filesystem stays
  visible; as root the program still runs under its own unprivileged uid).
- "none": a plain child process with resource limits: network and filesystem are NOT isolated.

`QUANTDROP_SANDBOX=bwrap|unshare|none` forces a level (an error if that level does not work here).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from quantdrop.errors import QuantdropError

LEVELS = ("bwrap", "unshare", "none")
# Where the program's files appear inside bubblewrap, and its writable working directory.
BWRAP_FILES = "/sandbox"
BWRAP_WORK = "/work"
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "passwd", "group", "nsswitch.conf")
_TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def python_executable() -> str:
    """The base interpreter (not our virtual environment: the program must not see our packages)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


def python_prefixes() -> list[str]:
    return sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)})


@functools.cache
def python_readable_by_others() -> bool:
    """Whether an unprivileged uid can run this interpreter (every parent directory of it traversable)."""
    for prefix in python_prefixes():
        for parent in Path(prefix).parents:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
    return True


def minimal_env(home: str) -> dict[str, str]:
    """The whole environment the program gets: none of ours (API keys stay out)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": home,
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def bwrap_prefix(files_dir: str, *, tmpfs_bytes: int, as_root: bool, info_fd: int | None = None) -> list[str]:
    """bubblewrap's command line up to (not including) the program; `info_fd` receives its child's pid."""
    return [
        "bwrap",
        *_bwrap_namespaces(info_fd, as_root),
        *(arg for key, value in minimal_env(BWRAP_WORK).items() for arg in ("--setenv", key, value)),
        *_bwrap_system(),
        *_bwrap_python(),
        *_bwrap_scratch(files_dir, tmpfs_bytes),
    ]


def _bwrap_namespaces(info_fd: int | None, as_root: bool) -> list[str]:
    """New namespaces, a new session, an empty environment; dies with its parent."""
    cmd = [
        *(["--info-fd", str(info_fd)] if info_fd is not None else []),
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    if not as_root:
        cmd += ["--unshare-user"]  # unprivileged bubblewrap needs a user namespace
    return cmd


def _bwrap_system() -> list[str]:
    """The system's /usr, its top-level links (or directories) and a few /etc files, read-only."""
    cmd = ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    for name in _ETC:
        cmd += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return cmd


def _bwrap_python() -> list[str]:
    """The Python installation outside /usr, read-only, under world-readable parents."""
    cmd: list[str] = []
    made: set[str] = {"/", "/usr", "/etc"}
    for prefix in python_prefixes():
        if prefix == "/usr" or prefix.startswith("/usr/"):
            continue
        for parent in reversed(Path(prefix).parents):  # world-readable parents (e.g. under /root)
            if str(parent) not in made:
                cmd += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        cmd += ["--ro-bind", prefix, prefix]
    return cmd


def _bwrap_scratch(files_dir: str, tmpfs_bytes: int) -> list[str]:
    """/dev, /proc, two small tmpfs (/tmp and the working directory) and the program's files, read-only."""
    return [
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--perms",
        "1777",
        "--size",
        str(tmpfs_bytes),
        "--tmpfs",
        "/tmp",
        "--perms",
        "1777",
        "--size",
        str(tmpfs_bytes),
        "--tmpfs",
        BWRAP_WORK,
        "--ro-bind",
        files_dir,
        BWRAP_FILES,
        "--chdir",
        BWRAP_WORK,
        "--",
    ]


def _works(cmd: list[str]) -> tuple[bool, str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=minimal_env("/"), cwd="/")
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    if done.returncode != 0:
        return False, (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return True, ""


def _probe_command() -> list[str]:
    return [python_executable(), "-I", "-c", "import socket; print(len(socket.if_nameindex()))"]


@dataclass(frozen=True)
class Isolation:
    """An isolation level: how a program is started (`launch`) and what it sees. `detail` says why this
    level was chosen (and why not a stronger one)."""

    level: ClassVar[str]  # "bwrap" | "unshare" | "none"
    network_isolated: ClassVar[bool] = False
    own_filesystem: ClassVar[bool] = False  # the program sees its files at BWRAP_FILES, works in BWRAP_WORK
    detail: str = ""

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        """Whether this level works here, and why not."""
        return True, ""

    def files_inside(self, files_dir: str) -> str:
        """Where the program's files directory appears to it."""
        return BWRAP_FILES if self.own_filesystem else files_dir

    def workdir_inside(self, files_dir: str) -> str:
        """The program's working directory, as it sees it."""
        return BWRAP_WORK if self.own_filesystem else files_dir

    def prefix(self, files_dir: str, *, tmpfs_bytes: int, as_root: bool, info_fd: int | None) -> list[str]:
        """The command line before the program."""
        return []

    @contextmanager
    def launch(
        self, program: list[str], files_dir: str, *, tmpfs_bytes: int, as_root: bool
    ) -> Iterator[tuple[list[str], int | None]]:
        """(command, fd to pass to the child or None) for `program`; cleanup after it ran on exit."""
        yield self.prefix(files_dir, tmpfs_bytes=tmpfs_bytes, as_root=as_root, info_fd=None) + program, None

    def lost(self) -> str:
        """What this level does not isolate (for the warning)."""
        return "NO NETWORK ISOLATION and no filesystem isolation"


@dataclass(frozen=True)
class BwrapIsolation(Isolation):
    """bubblewrap: new network, pid, ipc, uts (and cgroup) namespaces and a filesystem of its own."""

    level: ClassVar[str] = "bwrap"
    network_isolated: ClassVar[bool] = True
    own_filesystem: ClassVar[bool] = True

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        if shutil.which("bwrap") is None:
            return False, "bwrap is not installed (Debian package `bubblewrap`)"
        scratch = Path(os.environ.get("TMPDIR", "/tmp"))
        return _works(bwrap_prefix(str(scratch), tmpfs_bytes=1 << 20, as_root=os.geteuid() == 0) + _probe_command())

    def prefix(self, files_dir: str, *, tmpfs_bytes: int, as_root: bool, info_fd: int | None) -> list[str]:
        return bwrap_prefix(files_dir, tmpfs_bytes=tmpfs_bytes, as_root=as_root, info_fd=info_fd)

    @contextmanager
    def launch(
        self, program: list[str], files_dir: str, *, tmpfs_bytes: int, as_root: bool
    ) -> Iterator[tuple[list[str], int | None]]:
        info_r, info_w = os.pipe()  # bubblewrap writes its child's pid there (--info-fd)
        try:
            yield self.prefix(files_dir, tmpfs_bytes=tmpfs_bytes, as_root=as_root, info_fd=info_w) + program, info_w
        finally:
            wait_for_namespace(info_r)


@dataclass(frozen=True)
class UnshareIsolation(Isolation):
    """util-linux `unshare`: new network and pid namespaces; the whole filesystem stays visible."""

    level: ClassVar[str] = "unshare"
    network_isolated: ClassVar[bool] = True

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        if shutil.which("unshare") is None:
            return False, "unshare is not installed"
        return _works(unshare_prefix() + _probe_command())

    def prefix(self, files_dir: str, *, tmpfs_bytes: int, as_root: bool, info_fd: int | None) -> list[str]:
        return unshare_prefix()

    def lost(self) -> str:
        return "no filesystem isolation (network and pid namespaces only)"


@dataclass(frozen=True)
class NoIsolation(Isolation):
    """A plain child process with resource limits: network and filesystem are NOT isolated."""

    level: ClassVar[str] = "none"


ISOLATIONS: tuple[type[Isolation], ...] = (BwrapIsolation, UnshareIsolation, NoIsolation)  # strongest first
LEVELS = tuple(kind.level for kind in ISOLATIONS)


def unshare_prefix() -> list[str]:
    return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--"]


@functools.cache
def isolation() -> Isolation:
    """The strongest isolation that works here (probed once per process); warns loudly when weak."""
    forced = os.environ.get("QUANTDROP_SANDBOX", "").strip().lower()
    if forced and forced not in LEVELS:
        raise QuantdropError(f"QUANTDROP_SANDBOX={forced!r} is not one of {', '.join(LEVELS)}")
    reasons: list[str] = []
    for kind in ISOLATIONS:
        if forced and kind.level != forced:
            continue
        ok, why = kind.probe()
        if ok:
            chosen = kind("; ".join(reasons) or f"{kind.level} works")
            if not chosen.own_filesystem:
                _warn(chosen)
            return chosen
        reasons.append(f"{kind.level}: {why}")
    raise QuantdropError(f"QUANTDROP_SANDBOX={forced} does not work here ({'; '.join(reasons)})")


def _warn(chosen: Isolation) -> None:
    lost = chosen.lost()
    if os.geteuid() == 0 and not python_readable_by_others():
        lost += (
            ", AS ROOT (the interpreter under "
            + python_prefixes()[0]
            + " is unreadable to other users, so no unprivileged uid can run it)"
        )
    print(
        f"quantdrop sandbox: WARNING: untrusted code runs with {lost} (level {chosen.level!r}: {chosen.detail})",
        file=sys.stderr,
    )


def wait_for_namespace(info_r: int, limit_s: float = 5.0) -> None:
    """Wait until bubblewrap's pid-namespace init (from --info-fd) is gone: its death, and the kernel's
    killing of everything else in the namespace, finish after the outer bubblewrap has exited."""
    try:
        os.set_blocking(info_r, False)
        try:
            info = json.loads(os.read(info_r, 65536) or b"{}")
        except (BlockingIOError, ValueError):
            info = {}
    finally:
        os.close(info_r)
    pid = info.get("child-pid")
    if not isinstance(pid, int):
        return
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    return  # exited; only its parent's reaping is left
        except (OSError, IndexError):
            return
        time.sleep(0.005)
