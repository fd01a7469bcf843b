"""The study end to end on the embedded model (small settings), and its resumption after kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMALL = [
    "--recipes",
    "Q8_0,Q2_K",
    "--bench",
    "mmlu,math500",
    "--limit",
    "2",
    "--samples",
    "1",
    "--max-tokens",
    "48",
    "--proxy-chunks",
    "1",
    "--proxy-ctx",
    "128",
    "--threads",
    "2",
]


def _study(demo_model: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "quantdrop.cli", "study", str(demo_model), "--out", str(out), *SMALL, *extra]


def _responses(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(
            "SELECT r.label, r.benchmark, s.item_id, s.sample FROM responses s "
            "JOIN runs r ON r.id = s.run_id ORDER BY 1, 2, 3, 4"
        ).fetchall()


def _responses_so_far(store: Path) -> int:
    """Responses in a store a running study writes: 0 before the study has created its tables."""
    try:
        return len(_responses(store)) if store.exists() else 0
    except sqlite3.OperationalError as err:
        assert "no such table" in str(err), err
        return 0


@pytest.mark.slow
def test_study_survives_kill_9_and_resumes_without_redoing_work(demo_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    proc = subprocess.Popen(_study(demo_model, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = out / "eval.sqlite"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:  # kill it in the middle of the evaluation
        if _responses_so_far(store) >= 3:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the study finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _responses(store)
    models = {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*.gguf")}
    assert set(models) == {"Q8_0.gguf", "Q2_K.gguf"}

    done = subprocess.run(_study(demo_model, out), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _responses(store)
    assert len(after) == len(set(after)), "duplicated responses"
    assert set(before) <= set(after), "responses stored before the kill were lost"
    # 3 labels (reference, Q8_0, Q2_K) x (2 MMLU + 2 MATH-500) items x 1 sample
    assert len(after) == 3 * 4
    assert {p.name: p.stat().st_mtime_ns for p in (out / "models").glob("*.gguf")} == models, "re-quantized"
    assert "report:" in done.stdout and (out / "report.html").exists() and (out / "report.md").exists()
    assert "rebuilt from a 4-bit file" in done.stdout

    again = subprocess.run(_study(demo_model, out), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0
    assert _responses(store) == after
    assert "0 responses already stored" not in again.stderr


def test_study_refuses_bad_input_before_any_work(demo_model: Path, tmp_path: Path) -> None:
    for extra, message in (
        (["--recipes", "Q4_K_M,Q9_K"], "unknown recipe 'Q9_K'"),
        (["--bench", "mmlu,nope"], "nope"),
        (["--devices", "8xH100-80G,,"], "--devices"),
        (["--endpoint", "Q5_K_M=http://127.0.0.1:9/v1"], "not a recipe of this study"),
    ):
        out = tmp_path / "o"
        cmd = [sys.executable, "-m", "quantdrop.cli", "study", str(demo_model), "--out", str(out), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0
        assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
        assert not out.exists(), "work started before the input was checked"


@pytest.mark.slow
def test_bench_none_runs_a_log_likelihood_only_study(demo_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "quantdrop.cli", "study", str(demo_model), "--out", str(out), "--recipes", "Q8_0"]
    cmd += ["--bench", "none", "--loglik", "mmlu", "--loglik-limit", "3", "--proxy-chunks", "1"]
    cmd += ["--proxy-ctx", "128", "--threads", "2", "--no-speed"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(out / "eval.sqlite") as db:
        runs = db.execute("SELECT label, protocol FROM runs ORDER BY label").fetchall()
        items = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    assert [label for label, _ in runs] == ["Q8_0", "reference"]
    assert all('"mode": "loglik"' in protocol for _, protocol in runs), runs
    assert items == 6
