"""Engines started by quantdrop: ready, stopped, and clear failures with the log's tail."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.serve import Engine, check_template, split_gpus, sweep_stale

PY = sys.executable
TINY = Path(__file__).with_name("tiny_server.py")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_command_that_exits_at_once_says_so_with_the_log(tmp_path: Path) -> None:
    cmd = f"{PY} -c 'import sys; print(\"no such model\", sys.argv[1]); sys.exit(3)' {{model}} {{port}}"
    with (
        pytest.raises(QuantdropError, match=r"exited \(code 3\).*no such model m\.gguf"),
        Engine(cmd, "m.gguf", "Q4_K_M", tmp_path),
    ):
        pass
    assert not list(tmp_path.glob("*.pid"))
    assert (tmp_path / "Q4_K_M.log").exists()  # the log is kept


def test_a_command_that_never_answers_times_out_and_is_killed(tmp_path: Path) -> None:
    cmd = f"{PY} -c 'import time; print(\"loading\", flush=True); time.sleep(600)' {{model}} {{port}}"
    engine = Engine(cmd, "m.gguf", "slow", tmp_path, ready_timeout_s=1.5)
    with pytest.raises(QuantdropError, match=r"did not answer.*loading"), engine:
        pass
    assert engine.proc is not None and gone(engine.proc.pid)


def test_sigterm_ignoring_children_are_killed(tmp_path: Path) -> None:
    # a server whose worker ignores SIGTERM: the whole group goes, after the grace period
    pidfile = tmp_path / "child.pid"
    cmd = f"{PY} {TINY} {{port}} --stubborn {pidfile} # {{model}}"
    with Engine(cmd, "m.gguf", "stubborn", tmp_path / "engines", stop_grace_s=1.0, ready_timeout_s=60) as engine:
        child = int(pidfile.read_text())
    assert engine.proc is not None and gone(engine.proc.pid) and gone(child)


def test_a_killed_run_leaves_a_pid_file_and_the_next_sweep_stops_it(tmp_path: Path) -> None:
    engine = Engine(f"{PY} {TINY} {{port}} # {{model}}", "m.gguf", "left", tmp_path, ready_timeout_s=60)
    engine.start()
    engine.wait_ready()
    assert engine.proc is not None
    pid = engine.proc.pid
    assert (tmp_path / "left.pid").exists()  # as a kill -9 of the study would leave it
    assert sweep_stale(tmp_path, grace_s=2) == [pid]
    engine.proc.wait(timeout=5)
    assert gone(pid) and not (tmp_path / "left.pid").exists()


def test_a_recycled_pid_is_not_killed(tmp_path: Path) -> None:
    (tmp_path / "x.pid").write_text(f'{{"pid": {os.getpid()}, "start_time": "1"}}')
    assert sweep_stale(tmp_path) == []
    assert not (tmp_path / "x.pid").exists()


def test_templates_and_gpu_splits() -> None:
    check_template("llama-server -m {model} --port {port} -c {ctx} -ngl 99")
    with pytest.raises(QuantdropError, match="unknown placeholder"):
        check_template("serve {model} {port} {modle}")
    with pytest.raises(QuantdropError, match=r"needs \{port\}"):
        check_template("serve {model}")
    assert split_gpus("0-7", 2) == ["0,1,2,3", "4,5,6,7"]
    assert split_gpus("0,2,4", 3) == ["0", "2", "4"]
    assert split_gpus(None, 2) == ["", ""]
    with pytest.raises(QuantdropError, match="evenly"):
        split_gpus("0-2", 2)


def test_the_command_line_is_quoted(tmp_path: Path) -> None:
    engine = Engine("srv --model {model} --port {port} --alias {label}", "my model; rm -rf x.gguf", "Q4 K", tmp_path)
    argv = engine.argv()
    assert argv[2] == "my model; rm -rf x.gguf" and argv[-1] == "Q4 K"
