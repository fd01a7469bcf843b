"""quantdrop.sandbox.run: statuses, limits, stdin, environment, working directory, the bounded pool."""

from __future__ import annotations

import os
import time

import pytest

from quantdrop import sandbox

pytestmark = pytest.mark.usefixtures("host_unchanged")


def test_isolation_is_reported_and_bubblewrap_used_where_installed() -> None:
    iso = sandbox.isolation()
    assert iso.level in ("bwrap", "unshare", "none")
    if os.path.exists("/usr/bin/bwrap") and not os.environ.get("QUANTDROP_SANDBOX"):
        assert iso.level == "bwrap", iso.detail


def test_ok_with_stdin_and_output() -> None:
    r = sandbox.run("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))", stdin="1 2 39\n")
    assert (r.status, r.exit_code, r.stdout) == ("ok", 0, "42\n")
    assert r.duration_s > 0


def test_failed_exit_code_and_stderr() -> None:
    r = sandbox.run("import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)")
    assert (r.status, r.exit_code) == ("failed", 3)
    assert "boom" in r.stderr


def test_exception_is_failed() -> None:
    r = sandbox.run("raise ValueError('nope')")
    assert r.status == "failed" and "ValueError: nope" in r.stderr


def test_wall_clock_timeout_kills_sleepers() -> None:
    start = time.monotonic()
    r = sandbox.run("import time\ntime.sleep(60)", timeout_s=1)
    assert r.status == "timeout" and r.exit_code is None
    assert time.monotonic() - start < 5


def test_memory_limit() -> None:
    r = sandbox.run("x = bytearray(3 << 30)\nprint('allocated')", memory_mb=256)
    assert r.status == "memory" and "allocated" not in r.stdout


def test_killed_by_signal() -> None:
    r = sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert r.status == "killed" and r.exit_code == -11


def test_working_directory_is_fresh_writable_and_private() -> None:
    code = "import os\nopen('note.txt', 'w').write('x')\nprint(sorted(os.listdir('.')))"
    first, second = sandbox.run(code), sandbox.run(code)
    assert first.status == second.status == "ok"
    assert first.stdout == second.stdout  # the second run did not see the first one's file twice


def test_environment_is_minimal() -> None:
    r = sandbox.run("import os, json\nprint(json.dumps(dict(os.environ)))")
    import json

    env = json.loads(r.stdout)
    assert set(env) <= {
        "PATH",
        "LANG",
        "LC_ALL",
        "HOME",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
        "PWD",
    }


def test_files_are_placed_next_to_the_program() -> None:
    r = sandbox.run(
        "import os\nprint(open(os.path.join(os.path.dirname(__file__), 'data.txt')).read())",
        files={"data.txt": "payload"},
    )
    assert r.stdout.strip() == "payload"


def test_pool_runs_in_parallel_within_the_bound() -> None:
    n = sandbox.parallelism()
    with sandbox.SandboxPool() as pool:
        start = time.monotonic()
        results = pool.map([("import time\ntime.sleep(1)\nprint('done')", {})] * n)
        elapsed = time.monotonic() - start
    assert all(r.status == "ok" and r.stdout == "done\n" for r in results)
    assert elapsed < n * 1.0 + 1.5 if n == 1 else elapsed < n * 1.0  # overlapped, not one after another


def test_pool_results_keep_job_order() -> None:
    with sandbox.SandboxPool() as pool:
        results = pool.map([(f"print({i})", {}) for i in range(6)])
    assert [r.stdout.strip() for r in results] == [str(i) for i in range(6)]


@pytest.mark.parametrize("level", ["unshare", "none"])
def test_weaker_levels_say_so_loudly(level: str) -> None:
    import shutil
    import subprocess
    import sys

    if level == "unshare" and shutil.which("unshare") is None:
        pytest.skip("no unshare here")
    probe = (
        "from quantdrop import sandbox\n"
        "r = sandbox.run('import socket\\nprint(len(socket.if_nameindex()))')\n"
        "print(sandbox.isolation().level, r.status, r.stdout.strip())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QUANTDROP_SANDBOX": level},
    )
    if done.returncode != 0 and level == "unshare":
        pytest.skip(f"unshare does not work here: {done.stderr.strip()[-200:]}")
    chosen, status, interfaces = done.stdout.split()
    assert (chosen, status) == (level, "ok")
    assert "quantdrop sandbox: WARNING" in done.stderr
    if level == "unshare":
        assert interfaces == "1"  # its own network namespace: loopback only
    else:
        assert "NO NETWORK ISOLATION" in done.stderr


def test_unknown_level_is_a_clear_error() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from quantdrop import sandbox; sandbox.isolation()"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QUANTDROP_SANDBOX": "chroot"},
    )
    assert done.returncode != 0 and "QUANTDROP_SANDBOX='chroot' is not one of bwrap, unshare, none" in done.stderr


def test_isolation_levels_are_classes() -> None:
    from quantdrop.sandbox._isolation import ISOLATIONS, LEVELS, BwrapIsolation, Isolation

    iso = sandbox.isolation()
    assert isinstance(iso, Isolation) and type(iso) in ISOLATIONS and type(iso).level == iso.level
    assert LEVELS == ("bwrap", "unshare", "none")  # strongest first
    assert [kind.own_filesystem for kind in ISOLATIONS] == [True, False, False]
    assert [kind.network_isolated for kind in ISOLATIONS] == [True, True, False]
    bwrap = BwrapIsolation("test")
    assert bwrap.files_inside("/tmp/x") == "/sandbox" and ISOLATIONS[2]("t").files_inside("/tmp/x") == "/tmp/x"
