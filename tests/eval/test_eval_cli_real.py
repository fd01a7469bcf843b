"""Real runs (slow): the embedded reference model (SmolLM2-135M-Instruct, F16) and its Q4_K_M, in-process,
on the bundled MMLU, MATH-500 and AIME 2024 subsets; and the same model through llama-cpp-python's own
OpenAI-compatible server (`python -m llama_cpp.server`). Short: 2 items, 1 sample, 32 new tokens."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BENCH = "mmlu,math500,aime2024"
SHORT = ["--samples", "1", "--max-tokens", "32", "--no-progress"]
ROWS = ["MMLU (2/14042)", "MATH-500 (2/500)", "AIME 2024 (2/30)"]


def env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def quantdrop(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "quantdrop.cli", *args], capture_output=True, text=True, env=env(), timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def parse_md(text: str) -> dict[str, list[str]]:
    return {
        cells[0]: cells[1:]
        for cells in (
            [c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines()
            if line.startswith("| ")
        )
    }


def check_results(results: list[dict]) -> None:
    assert [r["title"] for r in results] == ROWS
    for r in results:
        assert r["n_items"] == 2 and r["samples"] == 1
        assert r["counts"]["pending"] == 0 and r["counts"]["error"] == 0
        scored = r["counts"]["correct"] + r["counts"]["wrong"] + r["counts"]["unextracted"]
        assert scored == 2 and 0.0 <= r["mean"] <= 100.0


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("llama_cpp")
    from quantdrop.demo_model import ensure_demo_model
    from quantdrop.quantize import quantize

    f16 = ensure_demo_model()
    q4 = tmp_path_factory.mktemp("models") / "SmolLM2-135M-Instruct.Q4_K_M.gguf"
    quantize(f16, q4, recipe="Q4_K_M")
    return {"F16": f16, "Q4_K_M": q4}


def test_in_process_reference_and_q4_k_m(models, tmp_path):
    store = str(tmp_path / "eval.sqlite")
    for label, path in models.items():
        out = quantdrop(
            "eval", str(path), "--bench", BENCH, "--label", label, "--store", store, "--limit", "2", *SHORT, "--json"
        )
        check_results(json.loads(out.stdout))
    table = parse_md(quantdrop("results", "--store", store, "--baseline", "F16").stdout)
    assert table["Benchmark"] == ["F16", "Q4_K_M"]
    assert all(row in table for row in [*ROWS, "Average", "Weighted avg.", "Accuracy drop"])
    # the same seeds give the same generations: F16 again under another label repeats the first answer
    quantdrop(
        "eval", str(models["F16"]), "--bench", "mmlu", "--label", "F16-again", "--store", store, "--limit", "1", *SHORT
    )
    with sqlite3.connect(store) as db:
        texts = db.execute(
            "SELECT runs.label, r.item_id, r.text FROM responses r JOIN runs ON runs.id = r.run_id "
            "WHERE runs.benchmark = 'mmlu' AND runs.label IN ('F16', 'F16-again') ORDER BY r.item_id"
        ).fetchall()
    first = {i: t for lab, i, t in texts if lab == "F16"}
    second = {i: t for lab, i, t in texts if lab == "F16-again"}
    assert len(second) == 1 and second.items() <= first.items() and all(second.values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_through_llama_cpp_server(models, tmp_path):
    pytest.importorskip("uvicorn", reason="llama-cpp-python[server] extras are not installed")
    port = free_port()
    log = tmp_path / "server.log"  # a file, not a pipe: uvicorn logs every request and must never block
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(models["Q4_K_M"]),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
    ]
    with log.open("w") as log_file:
        server = subprocess.Popen(command, env=env(), stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start: {log.read_text()[-1000:]}")
            time.sleep(0.5)
        store = str(tmp_path / "eval.sqlite")
        out = quantdrop(
            "eval",
            "--endpoint",
            url,
            "--bench",
            BENCH,
            "--label",
            "Q4_K_M-server",
            "--store",
            store,
            "--concurrency",
            "2",
            "--limit",
            "2",
            *SHORT,
            "--json",
        )
        check_results(json.loads(out.stdout))
        table = parse_md(quantdrop("results", "--store", store).stdout)
        assert table["Benchmark"] == ["Q4_K_M-server"] and all(row in table for row in ROWS)
    finally:
        server.terminate()
        server.wait(30)
