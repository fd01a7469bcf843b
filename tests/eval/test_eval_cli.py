"""`quantdrop eval` and `quantdrop results` as a user runs them (subprocesses): the table, JSON, bad
input as one line with a non-zero exit, and `kill -9` mid-run followed by the same command."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, Reply

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def env() -> dict[str, str]:
    paths = [str(ROOT / "src"), str(HERE), os.environ.get("PYTHONPATH", "")]
    return os.environ | {
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }


def quantdrop(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "quantdrop.cli", *args], capture_output=True, text=True, env=env(), timeout=timeout
    )


def eval_args(server: FakeOpenAI, store: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--endpoint",
        server.url,
        "--bench",
        "toy_benchmark:create",
        "--label",
        "L",
        "--store",
        str(store),
        "--no-progress",
        *extra,
    ]


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_eval_prints_the_table_and_results_compares_labels(tmp_path):
    store = tmp_path / "eval.sqlite"
    with FakeOpenAI() as server:
        proc = quantdrop(*eval_args(server, store, "--limit", "6"))
        assert proc.returncode == 0, proc.stderr
        assert "| Toy sums (6/20) | 100.00 (±0.00) |" in proc.stdout
        wrong = FakeOpenAI(lambda req: Reply(text="0"), port=0)
        with wrong:
            proc = quantdrop(
                "eval",
                "--endpoint",
                wrong.url,
                "--bench",
                "toy_benchmark:create",
                "--label",
                "W",
                "--store",
                str(store),
                "--no-progress",
                "--limit",
                "6",
                "--json",
            )
    assert proc.returncode == 0, proc.stderr
    (res,) = json.loads(proc.stdout)
    assert res["label"] == "W" and res["mean"] == 0.0 and res["counts"]["wrong"] == 12
    md = quantdrop("results", "--store", str(store), "--baseline", "L")
    assert md.returncode == 0, md.stderr
    table = {
        cells[0]: cells[1:]
        for cells in (
            [c.strip() for c in line.strip("|").split("|")] for line in md.stdout.splitlines() if line.startswith("| ")
        )
    }
    assert table["Benchmark"] == ["L", "W"]
    assert table["Toy sums (6/20)"] == ["100.00 (±0.00)", "0.00 (±0.00) *"]  # * : a significant drop
    assert table["Average"] == ["100.00", "0.00"] and table["Weighted avg."] == ["100.00", "0.00 *"]
    assert table["Accuracy drop"][0] == "–" and table["Accuracy drop"][1].startswith("**100.00% [")  # bold: significant
    assert "* the paired bootstrap 95% CI of the difference from L excludes 0." in md.stdout
    data = json.loads(quantdrop("results", "--store", str(store), "--baseline", "L", "--format", "json").stdout)
    assert data["accuracy_drop"] == {"W": 1.0}
    assert data["weighted_diff_vs_baseline"]["W"]["value"] == pytest.approx(-100.0)
    csv = quantdrop("results", "--store", str(store), "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("row,label,mean,std") and csv[1].startswith("Toy sums (6/20),L,100.0000,0.0000")


def test_kill_9_mid_run_then_the_same_command_completes_without_duplicates(tmp_path):
    store = tmp_path / "eval.sqlite"
    with FakeOpenAI(latency=0.02) as server:
        args = [sys.executable, "-m", "quantdrop.cli", *eval_args(server, store, "--concurrency", "4")]
        args[args.index("toy_benchmark:create")] = "toy_benchmark:create_big"  # 200 items x 2 samples
        proc = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        before: set[tuple] = set()
        while time.monotonic() < deadline and len(before) < 80:
            time.sleep(0.05)
            if store.exists():
                try:
                    with sqlite3.connect(store) as db:
                        before = set(db.execute("SELECT item_id, sample, text FROM responses"))
                except sqlite3.OperationalError:
                    pass  # the tables are not created yet
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        with sqlite3.connect(store) as db:
            at_kill = set(db.execute("SELECT item_id, sample, text FROM responses"))
        assert 80 <= len(at_kill) < 400  # killed mid-run; every row it had committed is still there
        assert before <= at_kill
        asked_before = len(server.requests)

        rerun = quantdrop(*args[3:])
        assert rerun.returncode == 0, rerun.stderr
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT item_id, sample, text, status FROM responses").fetchall()
        pairs = db.execute("SELECT COUNT(DISTINCT item_id || '/' || sample) FROM responses").fetchone()[0]
    assert len(rows) == pairs == 400  # complete, no duplicates
    assert all(status == "correct" for *_, status in rows)
    assert at_kill <= {r[:3] for r in rows}  # nothing committed before the kill was lost or redone
    # only the pairs still unanswered at the kill were asked again (at most 4 were in flight)
    assert len(server.requests) - asked_before == 400 - len(at_kill)
    assert len(server.requests) <= 400 + 4


def test_unknown_benchmark(tmp_path):
    proc = quantdrop(
        "eval",
        "--endpoint",
        "http://127.0.0.1:9",
        "--bench",
        "nosuch",
        "--label",
        "x",
        "--store",
        str(tmp_path / "s.sqlite"),
    )
    assert_one_line_error(proc, "unknown benchmark 'nosuch'", "math500", "mmlu")


def test_unreachable_endpoint(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = quantdrop(
        "eval",
        "--endpoint",
        f"http://127.0.0.1:{port}",
        "--bench",
        "toy_benchmark:create",
        "--label",
        "x",
        "--store",
        str(tmp_path / "s.sqlite"),
    )
    assert_one_line_error(proc, f"endpoint http://127.0.0.1:{port} is unreachable")


def test_dataset_with_the_wrong_schema_names_the_missing_field(tmp_path):
    pytest.importorskip("quantdrop.eval.benchmarks.mmlu")
    data = tmp_path / "data"
    data.mkdir()
    row = {"question": "2 + 2 = ?", "subject": "math", "choices": ["3", "4", "5", "6"]}  # no "answer"
    (data / "mmlu.jsonl").write_text(json.dumps(row) + "\n")
    with FakeOpenAI() as server:
        proc = quantdrop(
            "eval",
            "--endpoint",
            server.url,
            "--bench",
            "mmlu",
            "--data-dir",
            str(data),
            "--label",
            "x",
            "--store",
            str(tmp_path / "s.sqlite"),
        )
        assert not server.requests
    assert_one_line_error(proc, "answer", "mmlu.jsonl")


def test_a_store_written_with_another_protocol_is_refused(tmp_path):
    store = tmp_path / "eval.sqlite"
    with FakeOpenAI() as server:
        assert quantdrop(*eval_args(server, store, "--limit", "2", "--samples", "1")).returncode == 0
        asked = len(server.requests)
        proc = quantdrop(*eval_args(server, store, "--limit", "2", "--samples", "2"))
        assert len(server.requests) == asked
    assert_one_line_error(proc, "label 'L'", "different protocol", "samples 1 there vs 2 now", "another --label")


def test_results_of_a_missing_store_or_label(tmp_path):
    assert_one_line_error(quantdrop("results", "--store", str(tmp_path / "none.sqlite")), "no evaluation store")
    store = tmp_path / "eval.sqlite"
    with FakeOpenAI() as server:
        quantdrop(*eval_args(server, store, "--limit", "1", "--samples", "1"))
    assert_one_line_error(
        quantdrop("results", "--store", str(store), "--baseline", "FP8"), "no label 'FP8'", "labels: L"
    )
