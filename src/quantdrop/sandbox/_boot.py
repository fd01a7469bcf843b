"""The first code that runs inside the sandbox (stdlib only; quantdrop copies this file in).

It is trusted: it drops root to the execution's own uid, sets the resource limits, and then runs the
program as `__main__`. Its arguments are `name=value` pairs written by `quantdrop.sandbox` (not JSON:
importing json would cost more than the rest of this file).
"""

import os
import resource
import site
import sys
import types


def _user_processes(uid: int) -> int:
    """How many tasks (processes and threads) `uid` runs now: RLIMIT_NPROC counts them all."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def _no_new_privileges() -> None:
    """prctl(PR_SET_NO_NEW_PRIVS): setuid binaries cannot raise privileges again (bwrap does it itself)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)


def _site_without_pth() -> None:
    """What `site` gives a program (exit/quit, the site-packages on sys.path) without running .pth files:
    the interpreter starts with -S, since .pth hooks of the host can take longer than the program."""
    site.setquit()
    site.setcopyright()
    site.sethelper()
    sys.path.extend(p for p in site.getsitepackages() if p not in sys.path and os.path.isdir(p))


def main() -> None:
    _site_without_pth()
    cfg = dict(arg.split("=", 1) for arg in sys.argv[1:])
    cfg = {k: (int(v) if k not in ("cwd", "main") else v) for k, v in cfg.items() if v != ""}
    os.chdir(cfg["cwd"])
    if cfg.get("no_new_privs"):
        _no_new_privileges()
    uid = cfg.get("uid")
    if uid is not None and os.geteuid() == 0:
        os.chown(cfg["cwd"], uid, uid)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    nproc = cfg["nproc"]
    if cfg.get("nproc_relative"):  # no namespace of our own: count what this user already runs
        nproc += _user_processes(os.getuid())
    limits = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_CPU: cfg["cpu_s"],
        resource.RLIMIT_AS: cfg["memory_bytes"],
        resource.RLIMIT_FSIZE: cfg["file_bytes"],
        resource.RLIMIT_NPROC: nproc,
        resource.RLIMIT_NOFILE: cfg["open_files"],
    }
    for which, value in limits.items():
        hard = value + 1 if which == resource.RLIMIT_CPU else value  # SIGXCPU first, then SIGKILL
        resource.setrlimit(which, (value, hard))
    main_path = cfg["main"]
    sys.argv = [main_path]
    sys.path.insert(0, os.path.dirname(main_path))  # as `python main.py` would (-I leaves it out)
    with open(main_path, encoding="utf-8") as f:
        program = compile(f.read(), main_path, "exec")
    module = types.ModuleType("__main__")  # a fresh __main__, as runpy.run_path makes
    module.__file__ = main_path
    module.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    exec(program, module.__dict__)


if __name__ == "__main__":
    main()
