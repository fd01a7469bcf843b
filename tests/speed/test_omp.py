"""OpenMP's wait policy (quantdrop.omp): PASSIVE for the verbs that run llama.cpp next to our worker
processes, the user's own (unset: llama.cpp's spinning default) for `speed`'s measuring process,
and recorded in the speed result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from quantdrop.omp import FORCED_MARK, measuring_environ, omp_policy_for, set_wait_policy
from quantdrop.speed import SpeedOptions, bench_gguf, render
from tests.hostile.cli import cli_env

TINY = SpeedOptions(prompt=16, gen=4, repeat=1)


def test_the_policy_of_each_verb() -> None:
    assert omp_policy_for("eval", {}) == "PASSIVE"
    assert omp_policy_for("study", {}) == "PASSIVE"
    assert omp_policy_for("speed", {}) is None  # llama.cpp's default, as llama-bench measures
    assert omp_policy_for("speed", {"OMP_WAIT_POLICY": "PASSIVE"}) == "PASSIVE"  # the user's own, always
    assert omp_policy_for("eval", {"OMP_WAIT_POLICY": "active"}) == "active"


def test_a_forced_policy_is_taken_back_for_measuring_and_the_users_is_kept() -> None:
    forced: dict[str, str] = {}
    set_wait_policy("study", forced)
    assert forced["OMP_WAIT_POLICY"] == "PASSIVE"
    assert measuring_environ(forced) == {}
    users = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000"}
    set_wait_policy("study", users)
    assert measuring_environ(users) == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000"}
    mine: dict[str, str] = {}
    set_wait_policy("speed", mine)
    assert mine == {}


def test_the_measuring_child_runs_without_the_policy_quantdrop_forced(
    demo_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as under `quantdrop study`: this process runs PASSIVE, forced by quantdrop; its measurement does not
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv(FORCED_MARK, "PASSIVE")
    spinning = bench_gguf(demo_model, TINY)
    assert spinning.machine["omp_wait_policy"] is None and spinning.tg is not None
    assert "OMP_WAIT_POLICY unset" in render([spinning])
    monkeypatch.delenv(FORCED_MARK)  # the same PASSIVE, now the user's own: kept
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    passive = bench_gguf(demo_model, TINY)
    assert passive.machine["omp_wait_policy"] == "PASSIVE" and passive.machine["gomp_spincount"] == "1000"
    assert "OMP_WAIT_POLICY PASSIVE" in render([passive])


def _policy_after_cli(*argv: str, **env: str) -> str:
    """OMP_WAIT_POLICY as `quantdrop ARGV` leaves it in its own process."""
    code = (
        "import os, sys; from quantdrop.cli import main; main(sys.argv[1:]); "
        "print('POLICY', os.environ.get('OMP_WAIT_POLICY'))"
    )
    base = {k: v for k, v in cli_env().items() if k not in ("OMP_WAIT_POLICY", FORCED_MARK)}
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=base | env, timeout=120
    )
    return proc.stdout.strip().splitlines()[-1].removeprefix("POLICY ")


def test_the_cli_sets_passive_except_for_speed(tmp_path: Path) -> None:
    assert _policy_after_cli("recipes") == "PASSIVE"
    assert _policy_after_cli("speed", str(tmp_path / "missing.gguf")) == "None"
    assert _policy_after_cli("recipes", OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_quantdrop_speed_measures_with_the_users_policy(demo_model: Path, tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "quantdrop.cli",
        "speed",
        str(demo_model),
        "--prompt",
        "16",
        "--gen",
        "4",
        "--repeat",
        "1",
        "--no-cache",
        "--json",
    ]
    base = {k: v for k, v in cli_env().items() if k not in ("OMP_WAIT_POLICY", FORCED_MARK, "GOMP_SPINCOUNT")}
    for env, want in (({}, None), ({"OMP_WAIT_POLICY": "PASSIVE"}, "PASSIVE")):
        proc = subprocess.run(args, capture_output=True, text=True, env=base | env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        (result,) = json.loads(proc.stdout)
        assert result["machine"]["omp_wait_policy"] == want
