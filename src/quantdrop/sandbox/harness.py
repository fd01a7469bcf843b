"""The trusted test harness that runs inside the sandbox as its main program (stdlib only).

Two kinds of process, so that the untrusted code never shares memory or output with the verdict:
- the harness H reads its task from stdin, writes records (JSON lines) to stdout and nothing else;
- the candidate C is a forked child that loads `candidate.py` (untrusted) and answers H's calls over
  pipes, as values in a tagged JSON encoding (no pickle, no objects of the candidate's classes: a
  returned object with a lying `__eq__` arrives as an opaque value that equals nothing).
C's stdin/stdout/stderr are /dev/null, it holds no other descriptor of H's, and H is non-dumpable, so
C can neither write H's stdout nor read H's memory (the nonce, the tests). C can exit, hang, or kill
H: every one of those ends without the records or the nonce, which the caller scores as a failure.

Modes (the task's "mode"):
- "calls": call the entry point with each input, write {"i", "out"} (or "error"/"timeout") per call;
  the caller compares outputs with expected values it never sends in here.
- "asserts": run the test code (HumanEval's check(candidate), MBPP's asserts) in H with the entry point
  bound to a proxy that calls C; when all of it ran, write the nonce.
- "stdio": for each input, fork a fresh process that runs the program with the input on its stdin;
  write {"i", "stdout"} (or "error"/"timeout").
C is forked before H reads stdin, so C never held the nonce or the tests.
"""

import contextlib
import json
import math
import os
import select
import signal
import struct
import sys
import time

MAX_FRAME = 256 << 20
MAX_STDOUT = 16 << 20  # per test in stdio mode
_BIG = 1 << 4096


# ---------------------------------------------------------------- values across processes
class Opaque:
    """A value of a type we do not carry across (a candidate's object): equals only itself."""

    def __init__(self, type_name, text):
        self.type_name, self.text = type_name, text

    def __repr__(self):
        return f"<{self.type_name} {self.text}>"


def encode(x, depth=0):
    """A JSON-able form of a plain Python value: exact types tagged, subclasses as their base type."""
    if depth > 200:
        raise ValueError("value nested too deeply")
    d = depth + 1
    if x is None or isinstance(x, bool | str):
        return str.__str__(x) if isinstance(x, str) else (None if x is None else bool(x))
    if isinstance(x, int):
        i = int.__index__(x)
        # hex: big ints would hit the decimal-digit limit of int<->str (sys.set_int_max_str_digits)
        return i if -_BIG < i < _BIG else {"__t": "int", "v": hex(i)}
    if isinstance(x, float):
        f = float.__float__(x)
        return {"__t": "float", "v": repr(f)} if not math.isfinite(f) else f
    if isinstance(x, list):
        return [encode(v, d) for v in list.__iter__(x)]
    if isinstance(x, tuple):
        return {"__t": "tuple", "v": [encode(v, d) for v in tuple.__iter__(x)]}
    if isinstance(x, dict):
        return {"__t": "dict", "v": [[encode(k, d), encode(v, d)] for k, v in dict.items(x)]}
    if isinstance(x, frozenset):
        return {"__t": "frozenset", "v": [encode(v, d) for v in frozenset.__iter__(x)]}
    if isinstance(x, set):
        return {"__t": "set", "v": [encode(v, d) for v in set.__iter__(x)]}
    if isinstance(x, bytes | bytearray):
        return {"__t": type(x).__name__ if type(x) in (bytes, bytearray) else "bytes", "v": bytes(x).hex()}
    if isinstance(x, complex):
        c = complex.__complex__(x)
        return {"__t": "complex", "v": [repr(c.real), repr(c.imag)]}
    if type(x).__module__ == "numpy" and hasattr(x, "tolist"):  # numpy scalars and arrays
        return encode(x.tolist(), d)
    try:
        text = object.__repr__(x)
    except Exception:
        text = "?"
    return {"__t": "opaque", "type": type(x).__qualname__, "v": text[:200]}


def decode(x):
    """The inverse of `encode`, for untrusted input: builds only plain values (or Opaque)."""
    if isinstance(x, list):
        return [decode(v) for v in x]
    if not isinstance(x, dict):
        return x
    tag, v = x.get("__t"), x.get("v")
    if tag == "float":
        return float(v)
    if tag == "int":
        return int(v, 16)
    if tag == "tuple":
        return tuple(decode(i) for i in v)
    if tag == "dict":
        return {_hashable(decode(k)): decode(val) for k, val in v}
    if tag == "set":
        return {_hashable(decode(i)) for i in v}
    if tag == "frozenset":
        return frozenset(_hashable(decode(i)) for i in v)
    if tag == "bytes":
        return bytes.fromhex(v)
    if tag == "bytearray":
        return bytearray.fromhex(v)
    if tag == "complex":
        return complex(float(v[0]), float(v[1]))
    return Opaque(str(x.get("type", "?")), str(v))


def _hashable(v):
    hash(v)  # raises TypeError for unhashable keys: the value is malformed
    return v


# ---------------------------------------------------------------- framing over pipes
def send(fd, obj):
    data = json.dumps(obj, allow_nan=False).encode()
    data = struct.pack("<Q", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd, n, deadline):
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def receive(fd, deadline=None):
    (n,) = struct.unpack("<Q", _read_exact(fd, 8, deadline))
    if n > MAX_FRAME:
        raise EOFError
    return json.loads(_read_exact(fd, n, deadline))


def emit(record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- the candidate process
def _isolate_child(keep):
    """In a forked child: stdio to /dev/null, every other descriptor closed but `keep`."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    keep = sorted(set(keep))
    low = 3
    for fd in [*keep, 1 << 16]:
        if low < fd:
            os.closerange(low, fd)
        low = fd + 1


def _load_candidate(setup):
    with open(setup["path"], encoding="utf-8") as f:
        source = f.read()
    namespace = {"__name__": setup.get("module", "candidate"), "__builtins__": __builtins__}
    exec(compile(source, "candidate.py", "exec"), namespace)
    name = setup["entry"]
    if setup.get("solution_class") and "Solution" in namespace:  # LeetCode style, as LiveCodeBench
        return getattr(namespace["Solution"](), name)
    return namespace[name]


def _candidate_main(requests, replies, setup):
    _isolate_child([requests, replies])
    sys.setrecursionlimit(max(sys.getrecursionlimit(), int(setup.get("recursion_limit", 1000))))
    try:
        target = _load_candidate(setup)
        send(replies, {"loaded": True})
    except BaseException as err:
        send(replies, {"error": f"cannot load the candidate: {type(err).__name__}: {err}"[:1000]})
        os._exit(0)
    while True:
        try:
            request = receive(requests)
        except BaseException:
            os._exit(0)
        try:
            args, kwargs = decode(request["args"]), decode(request.get("kwargs", {"__t": "dict", "v": []}))
            start = time.perf_counter()
            out = target(*args, **kwargs)
            reply = {"out": encode(out), "t": time.perf_counter() - start}
        except BaseException as err:
            reply = {"error": f"{type(err).__name__}: {err}"[:1000]}
        try:
            send(replies, reply)
        except BaseException:
            os._exit(0)


class Candidate:
    """H's handle on C: call(args) with a time limit; any failure of C raises CandidateFailed."""

    def __init__(self, setup):
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(req_w)
                os.close(rep_r)
                _candidate_main(req_r, rep_w, setup)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(rep_w)
        self.requests, self.replies = req_w, rep_r
        self.load_timeout = float(setup.get("load_timeout", 10))
        self.loaded = None

    def _ensure_loaded(self):
        if self.loaded is None:
            self.loaded = self._receive(self.load_timeout)
        if "error" in self.loaded:
            raise CandidateFailed(self.loaded["error"])

    def _receive(self, timeout):
        try:
            return receive(self.replies, time.monotonic() + timeout)
        except TimeoutError:
            self.kill()
            raise CandidateFailed("timeout") from None
        except (EOFError, OSError, ValueError):
            raise CandidateFailed("the candidate process ended") from None

    def call(self, args, kwargs=None, timeout=10.0):
        self._ensure_loaded()
        request = {"args": encode(list(args))}
        if kwargs:
            request["kwargs"] = encode(dict(kwargs))
        try:
            send(self.requests, request)
        except OSError:
            raise CandidateFailed("the candidate process ended") from None
        return self._receive(timeout)

    def kill(self):
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


class CandidateFailed(Exception):
    pass


# ---------------------------------------------------------------- modes
def run_calls(candidate, task):
    limits = task.get("time_limits") or [task.get("time_limit", 4.0)] * len(task["inputs"])
    for i, (args, limit) in enumerate(zip(task["inputs"], limits, strict=True)):
        try:
            reply = candidate.call(decode(args), timeout=limit)
        except CandidateFailed as failed:
            emit({"i": i, "timeout" if str(failed) == "timeout" else "error": str(failed)})
            return
        if "error" in reply:
            emit({"i": i, "error": reply["error"]})
            return
        emit({"i": i, "out": reply["out"], "t": reply.get("t")})
    emit({"done": task["nonce"]})


def run_asserts(candidate, task):
    deadline = time.monotonic() + float(task.get("time_limit", 10.0))

    def proxy(*args, **kwargs):
        reply = candidate.call(args, kwargs, timeout=max(0.01, deadline - time.monotonic()))
        if "error" in reply:
            raise CandidateFailed(reply["error"])
        return decode(reply["out"])

    namespace = {"__name__": "__test__"}
    try:
        exec(compile(task.get("setup", ""), "setup.py", "exec"), namespace)
        namespace[task["entry"]] = proxy
        for n, test in enumerate(task["tests"]):
            exec(compile(test, f"test_{n}.py", "exec"), namespace)
    except BaseException as err:
        emit({"verdict": "fail", "detail": f"{type(err).__name__}: {err}"[:1000]})
        return
    emit({"verdict": "pass", "nonce": task["nonce"]})


def _run_program(source_path, prelude, data, limit):
    """Run the program once with `data` on stdin; (status, stdout)."""
    import tempfile

    with tempfile.TemporaryFile() as feed:
        feed.write(data.encode())
        feed.seek(0)
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            _program_child(feed.fileno(), out_w, source_path, prelude)
        os.close(out_w)
        deadline = time.monotonic() + limit
        status, output = _read_stdout(out_r, deadline)
        if status is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return status, ""
        code = _wait_exit(pid, deadline)
        if code is None:
            return "timeout", ""
        with contextlib.suppress(ProcessLookupError):  # what it left running
            os.killpg(pid, signal.SIGKILL)
        ok = os.WIFEXITED(code) and os.WEXITSTATUS(code) == 0
        return ("ok" if ok else f"exit {_describe(code)}"), output


def _program_child(feed_fd, out_w, source_path, prelude):
    """In the forked child: stdin from `feed_fd`, stdout to `out_w`, run the program; never returns."""
    try:
        os.setpgid(0, 0)
        os.dup2(feed_fd, 100)
        os.dup2(out_w, 101)
        _isolate_child([100, 101])
        os.dup2(100, 0)
        os.dup2(101, 1)
        os.close(100)
        os.close(101)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        with open(source_path, encoding="utf-8") as f:
            source = prelude + f.read()
        code = compile(source, "solution.py", "exec")
        with contextlib.suppress(SystemExit):  # LiveCodeBench grades the output after exit()
            exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
            _join_threads()  # as the interpreter would at exit (contest code runs main in a thread)
        sys.stdout.flush()
        os._exit(0)
    except BaseException:
        os._exit(1)
    finally:
        os._exit(1)


def _read_stdout(out_r, deadline):
    """The program's stdout until it closes it: (None, text), or (why we stop it, "")."""
    chunks, size, status = [], 0, None
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([out_r], [], [], left)[0]:
            status = "timeout"
            break
        chunk = os.read(out_r, 1 << 16)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_STDOUT:
            status = "output over the limit"
            break
        chunks.append(chunk)
    os.close(out_r)
    return status, ("" if status is not None else b"".join(chunks).decode("utf-8", "replace"))


def _wait_exit(pid, deadline):
    """The child's wait status once it exits (stdout is closed), or None: killed at the deadline."""
    while True:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            return code
        if time.monotonic() >= deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.001)


def _join_threads():
    import threading

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()


def _describe(code):
    return str(os.WEXITSTATUS(code)) if os.WIFEXITED(code) else f"signal {os.WTERMSIG(code)}"


def run_stdio(task):
    # Import the (trusted) prelude's modules once here, so that each forked test finds them loaded.
    exec(compile(task.get("prelude", ""), "prelude.py", "exec"), {"__name__": "__prelude__"})
    for i, data in enumerate(task["inputs"]):
        status, out = _run_program(task["path"], task.get("prelude", ""), data, task.get("time_limit", 6.0))
        if status == "timeout":
            emit({"i": i, "timeout": status})
            return
        if status != "ok":
            emit({"i": i, "error": status})
            return
        emit({"i": i, "stdout": out})
    emit({"done": task["nonce"]})


def _non_dumpable():
    """prctl(PR_SET_DUMPABLE, 0): no process of our uid may read our memory or descriptors."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    except Exception:
        pass


def main():
    _non_dumpable()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "candidate.json"), encoding="utf-8") as f:
        setup = json.load(f)
    setup["path"] = os.path.join(here, setup.get("path", "candidate.py"))
    candidate = Candidate(setup) if setup["mode"] in ("calls", "asserts") else None
    task = json.loads(sys.stdin.readline())  # read only now: C was forked without it
    sys.stdin.close()
    try:
        if setup["mode"] == "calls":
            run_calls(candidate, task)
        elif setup["mode"] == "asserts":
            run_asserts(candidate, task)
        else:
            run_stdio({**task, "path": setup["path"], "prelude": setup.get("prelude", "")})
    finally:
        if candidate is not None:
            candidate.kill()


if __name__ == "__main__":
    main()
