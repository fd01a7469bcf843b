"""Hostile candidates: each is contained, scored as a failure, and leaves the host as it was.

Every attack is the body of a candidate for `f(x) = x * x`, checked by the trusted harness with
`assert f(2) == 4` (the way HumanEval and MBPP are checked); a correct candidate passes the same check.
Attacks that could let a correct answer through by themselves return a wrong one, so that only a broken
harness would pass them. Network checks use only a server this test starts on 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading

import pytest

from quantdrop import sandbox
from quantdrop.eval.scoring.code import run_asserts

pytestmark = pytest.mark.usefixtures("host_unchanged")

TESTS = ["assert f(2) == 4", "assert f(3) == 9"]


def verdict(candidate: str, timeout_s: float = 3.0) -> tuple[bool, str]:
    return run_asserts(candidate, "f", TESTS, timeout_s=timeout_s)


def test_a_correct_candidate_passes() -> None:
    assert verdict("def f(x):\n    return x * x\n") == (True, "")


def test_a_wrong_candidate_fails() -> None:
    passed, why = verdict("def f(x):\n    return x + x\n")
    assert not passed and "AssertionError" in why


ATTACKS = {
    "infinite loop": "def f(x):\n    while True:\n        pass\n",
    "infinite loop at import": "while True:\n    pass\n",
    "fork bomb": (
        "import os\n"
        "def f(x):\n"
        "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
    ),
    "thread bomb": (
        "import threading, time\n"
        "def f(x):\n"
        "    while True:\n"
        "        try:\n"
        "            threading.Thread(target=time.sleep, args=(60,)).start()\n"
        "        except RuntimeError:\n"
        "            pass\n"
    ),
    "memory bomb": "def f(x):\n    hog = []\n    while True:\n        hog.append(bytearray(1 << 26))\n",
    "gigabytes of output": (
        "import os\n"
        "def f(x):\n"
        "    block = b'x' * (1 << 20)\n"
        "    for fd in (1, 2):\n"
        "        try:\n"
        "            for _ in range(4096):\n"
        "                os.write(fd, block)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return x * x + 1\n"
    ),
    "sys.exit(0) before the asserts": "import sys\nsys.exit(0)\ndef f(x):\n    return 0\n",
    "os._exit(0) before the asserts": "import os\nos._exit(0)\n",
    "os._exit(0) inside the call": "import os\ndef f(x):\n    os._exit(0)\n",
    "sys.exit(0) inside the call": "import sys\ndef f(x):\n    sys.exit(0)\n",
    "patching builtins": (
        "import builtins\n"
        "builtins.AssertionError = type('Never', (Exception,), {})\n"
        "builtins.abs = lambda v: 0\n"
        "builtins.isinstance = lambda *a: True\n"
        "def f(x):\n"
        "    return None\n"
    ),
    "an object that equals everything": (
        "class Anything:\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    __hash__ = object.__hash__\n"
        "def f(x):\n"
        "    return Anything()\n"
    ),
    "an int subclass that lies": (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return Liar(0)\n"
    ),
    "killing its parent": (
        "import os, signal\ndef f(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x + x\n"
    ),  # wrong: only a dead harness that still said "pass" would pass it
    "killing every process it can": (
        "import os, signal\n"
        "def f(x):\n"
        "    for pid in range(1, 100000):\n"
        "        if pid != os.getpid():\n"
        "            try:\n"
        "                os.kill(pid, signal.SIGKILL)\n"
        "            except OSError:\n"
        "                pass\n"
        "    return x + x\n"
    ),
    "forging the verdict on stdout": (
        "import os, sys\n"
        'msg = b\'{"verdict": "pass", "nonce": "0"}\\n\'\n'
        "def f(x):\n"
        "    for fd in range(0, 64):\n"
        "        try:\n"
        "            os.write(fd, msg)\n"
        "        except OSError:\n"
        "            pass\n"
        "    print(msg.decode())\n"
        "    os._exit(0)\n"
    ),
    "reading the harness's memory for the nonce": (
        "import os, re\n"
        "def f(x):\n"
        "    ppid = os.getppid()\n"
        "    for name in ('environ', 'cmdline', 'mem', 'fd/0', 'fd/1'):\n"
        "        try:\n"
        "            open(f'/proc/{ppid}/{name}', 'rb').read(1 << 16)\n"
        "            print('read', name)\n"
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n"
    ),
    "walking frames to the harness": (
        "import sys, gc\n"
        "def f(x):\n"
        "    for obj in gc.get_objects():\n"
        "        if isinstance(obj, dict) and 'nonce' in obj:\n"
        '            print(\'{"verdict": "pass", "nonce": "%s"}\' % obj[\'nonce\'])\n'
        "    frame = sys._getframe()\n"
        "    while frame.f_back:\n"
        "        frame = frame.f_back\n"
        "    raise SystemExit(0)\n"
    ),
}


# Without a pid namespace these would signal every process of the machine that we may signal.
KILLERS = {"killing its parent", "killing every process it can"}
needs_pid_namespace = pytest.mark.skipif(
    sandbox.isolation().level == "none", reason="isolation level 'none': no pid namespace"
)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_contained_and_fails(name: str) -> None:
    if name in KILLERS and sandbox.isolation().level == "none":
        pytest.skip("isolation level 'none': no pid namespace")
    passed, why = verdict(ATTACKS[name])
    assert not passed, f"{name}: scored as a pass"
    assert why  # a reason is recorded


@needs_pid_namespace
def test_the_harness_keeps_running_after_attacks() -> None:
    for name in ("killing its parent", "fork bomb", "os._exit(0) inside the call"):
        assert not verdict(ATTACKS[name])[0]
        assert verdict("def f(x):\n    return x * x\n") == (True, "")


def test_gigabytes_of_output_are_cut_at_the_limit() -> None:
    r = sandbox.run("import os\nwhile True:\n    os.write(1, b'y' * (1 << 20))", timeout_s=30)
    assert r.status == "killed" and "output" in r.detail
    assert len(r.stdout) <= sandbox.MAX_OUTPUT


def test_fork_bomb_is_bounded_and_cleaned_up() -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(10000):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "    except OSError:\n"
        "        break\n"
        "print(n, flush=True)\n"
        "time.sleep(60)\n"
    )
    r = sandbox.run(code, timeout_s=3)
    assert r.status == "timeout"
    assert 0 < int(r.stdout.split()[0]) < sandbox.MAX_PROCESSES


def test_writing_outside_the_work_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "victim.txt"
    targets = [str(victim)]
    if sandbox.isolation().level == "bwrap":  # weaker levels as root could really write there
        targets += ["/etc/quantdrop-was-here", "/usr/quantdrop-was-here"]
    code = (
        "import os\n"
        f"for path in {targets!r} + [os.path.join(os.path.dirname(__file__), 'main.py')]:\n"
        "    try:\n"
        "        open(path, 'w').write('pwned')\n"
        "        print('wrote', path)\n"
        "    except OSError as err:\n"
        "        print('refused', path, type(err).__name__)\n"
    )
    r = sandbox.run(code)
    assert r.status == "ok", r.stderr
    assert "wrote" not in r.stdout
    assert not victim.exists()
    assert not os.path.exists("/etc/quantdrop-was-here") and not os.path.exists("/usr/quantdrop-was-here")


def test_our_environment_and_files_stay_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-" + secrets.token_hex(20)
    monkeypatch.setenv("QUANTDROP_TEST_API_KEY", secret)
    code = (
        "import os, glob\n"
        "print(dict(os.environ))\n"
        "for path in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):\n"
        "    try:\n"
        "        print(open(path, 'rb').read().decode('latin-1'))\n"
        "    except OSError:\n"
        "        pass\n"
    )
    r = sandbox.run(code)
    assert r.status == "ok", r.stderr
    assert secret not in r.stdout and secret not in r.stderr


def test_no_connection_reaches_a_server_on_our_loopback() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    code = (
        "import socket\n"
        "for host in ('127.0.0.1', 'localhost'):\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=1).sendall(b'hello')\n"
        "        print('connected', host)\n"
        "    except OSError as err:\n"
        "        print('refused', host, type(err).__name__)\n"
    )
    try:
        r = sandbox.run(code)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert r.status == "ok", r.stderr
    if sandbox.isolation().network_isolated:
        assert accepted == [], "the sandboxed code reached the test's server"
        assert "connected" not in r.stdout


def test_only_loopback_is_visible() -> None:
    r = sandbox.run("import socket\nprint(' '.join(name for _, name in socket.if_nameindex()))")
    assert r.status == "ok", r.stderr
    if sandbox.isolation().network_isolated:
        assert set(r.stdout.split()) <= {"lo"}


@needs_pid_namespace
def test_killing_its_parent_or_us_leaves_us_running() -> None:
    code = (
        "import os, signal\n"
        f"for pid in (os.getppid(), {os.getpid()}, 1):\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('still here')\n"
    )
    r = sandbox.run(code)
    assert r.status in ("ok", "killed", "failed")
    os.kill(os.getpid(), 0)  # we are alive (this test would not finish otherwise)
