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
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from quantdrop.errors import QuantdropError

LEVELS = ("bwrap", "unshare", "none")
# Where the program's files appear inside bubblewrap, and its writable working directory.
BWRAP_FILES = "/sandbox"
BWRAP_WORK = "/work"
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "passwd", "group",
        "nsswitch.conf")
_TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass(frozen=True)
class Isolation:
    level: str  # "bwrap" | "unshare" | "none"
    network_isolated: bool
    detail: str  # why this level (and why not a stronger one)


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
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": home, "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}


def bwrap_prefix(files_dir: str, *, tmpfs_bytes: int, as_root: bool, info_fd: int | None = None) -> list[str]:
    """bubblewrap's command line up to (not including) the program; `info_fd` receives its child's pid."""
    cmd = ["bwrap", *(["--info-fd", str(info_fd)] if info_fd is not None else []),
           "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
           "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    if not as_root:
        cmd += ["--unshare-user"]  # unprivileged bubblewrap needs a user namespace
    for key, value in minimal_env(BWRAP_WORK).items():
        cmd += ["--setenv", key, value]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    for name in _ETC:
        cmd += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    made: set[str] = {"/", "/usr", "/etc"}
    for prefix in python_prefixes():
        if prefix == "/usr" or prefix.startswith("/usr/"):
            continue
        for parent in reversed(Path(prefix).parents):  # world-readable parents (e.g. under /root)
            if str(parent) not in made:
                cmd += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        cmd += ["--ro-bind", prefix, prefix]
    cmd += ["--dev", "/dev", "--proc", "/proc",
            "--perms", "1777", "--size", str(tmpfs_bytes), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(tmpfs_bytes), "--tmpfs", BWRAP_WORK,
            "--ro-bind", files_dir, BWRAP_FILES, "--chdir", BWRAP_WORK, "--"]
    return cmd


def unshare_prefix() -> list[str]:
    return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--"]


def _works(cmd: list[str]) -> tuple[bool, str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=minimal_env("/"),
                              cwd="/")
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    if done.returncode != 0:
        return False, (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return True, ""


def _probe(level: str) -> tuple[bool, str]:
    probe = [python_executable(), "-I", "-c", "import socket; print(len(socket.if_nameindex()))"]
    if level == "bwrap":
        if shutil.which("bwrap") is None:
            return False, "bwrap is not installed (Debian package `bubblewrap`)"
        scratch = Path(os.environ.get("TMPDIR", "/tmp"))
        return _works(bwrap_prefix(str(scratch), tmpfs_bytes=1 << 20, as_root=os.geteuid() == 0) + probe)
    if level == "unshare":
        if shutil.which("unshare") is None:
            return False, "unshare is not installed"
        return _works(unshare_prefix() + probe)
    return True, ""


@functools.cache
def isolation() -> Isolation:
    """The strongest isolation that works here (probed once per process); warns loudly when weak."""
    forced = os.environ.get("QUANTDROP_SANDBOX", "").strip().lower()
    if forced and forced not in LEVELS:
        raise QuantdropError(f"QUANTDROP_SANDBOX={forced!r} is not one of {', '.join(LEVELS)}")
    reasons: list[str] = []
    for level in (forced,) if forced else LEVELS:
        ok, why = _probe(level)
        if ok:
            chosen = Isolation(level, level != "none", "; ".join(reasons) or f"{level} works")
            if level != "bwrap":
                _warn(chosen)
            return chosen
        reasons.append(f"{level}: {why}")
    raise QuantdropError(f"QUANTDROP_SANDBOX={forced} does not work here ({'; '.join(reasons)})")


def _warn(chosen: Isolation) -> None:
    lost = ("NO NETWORK ISOLATION and no filesystem isolation" if chosen.level == "none"
            else "no filesystem isolation (network and pid namespaces only)")
    if os.geteuid() == 0 and not python_readable_by_others():
        lost += (", AS ROOT (the interpreter under " + python_prefixes()[0]
                 + " is unreadable to other users, so no unprivileged uid can run it)")
    print(f"quantdrop sandbox: WARNING: untrusted code runs with {lost} "
          f"(level {chosen.level!r}: {chosen.detail})", file=sys.stderr)
