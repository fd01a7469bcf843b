"""`study --serve`: an engine per variant started, evaluated and timed through, and stopped; engines
that exit at once, never answer or die mid-run fail their variant with the log's tail while the rest
of the study goes on; a study killed with -9 leaves no engine behind after the next run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "eval" / "fake_openai.py"
PY = sys.executable
LLAMA_SERVER = f"{PY} -m llama_cpp.server --model {{model}} --port {{port}} --n_ctx {{ctx}} --interrupt_requests False"
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
    "32",
    "--proxy-chunks",
    "1",
    "--proxy-ctx",
    "128",
    "--threads",
    "2",
    "--speed-prompt",
    "32",
    "--speed-gen",
    "8",
    "--speed-repeat",
    "1",
]
TOY = [
    "--recipes",
    "Q8_0,Q2_K",
    "--bench",
    "toy_benchmark:create",
    "--limit",
    "4",
    "--samples",
    "1",
    "--max-tokens",
    "16",
    "--proxy-chunks",
    "1",
    "--proxy-ctx",
    "128",
    "--threads",
    "2",
    "--no-speed",
    "--serve-timeout",
    "30",
]


def env() -> dict[str, str]:
    paths = [str(ROOT / "src"), str(ROOT), str(ROOT / "tests" / "eval"), os.environ.get("PYTHONPATH", "")]
    return os.environ | {"PYTHONPATH": os.pathsep.join(p for p in paths if p), "HF_HUB_OFFLINE": "1"}


def study(model: Path, out: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    cmd = [PY, "-m", "quantdrop.cli", "study", str(model), "--out", str(out), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=timeout)


def answers(store: Path) -> dict[tuple, tuple]:
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT r.label, r.benchmark, s.item_id, s.sample, s.text FROM responses s JOIN runs r ON r.id = s.run_id"
        ).fetchall()
    return {row[:4]: row[4] for row in rows}


def grades(store: Path) -> dict[tuple, tuple]:
    """(label, benchmark, item, sample) -> (seed, status, value)."""
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT r.label, r.benchmark, s.item_id, s.sample, s.seed, s.status, s.value "
            "FROM responses s JOIN runs r ON r.id = s.run_id"
        ).fetchall()
    return {row[:4]: row[4:] for row in rows}


def accuracy_section(study_dir: Path) -> str:
    """The report's Accuracy and Evidence sections (Table 2 and the tests against the baseline)."""
    text = (study_dir / "report.md").read_text()
    return text[text.index("## Accuracy") : text.index("## Quality proxies")]


def engines_running(marker: str) -> list[int]:
    """Processes whose command line mentions `marker` (the study's own folder)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_served_study_equals_the_in_process_study(demo_model: Path, tmp_path: Path) -> None:
    local = study(demo_model, tmp_path / "local", *SMALL)
    assert local.returncode == 0, local.stderr[-2000:]
    served = study(demo_model, tmp_path / "served", *SMALL, "--serve", LLAMA_SERVER)
    assert served.returncode == 0, served.stderr[-2000:]
    ours, theirs = answers(tmp_path / "local" / "eval.sqlite"), answers(tmp_path / "served" / "eval.sqlite")
    assert len(ours) == 3 * 4 and ours.keys() == theirs.keys()  # the same items and samples, all answered
    assert all(theirs.values())
    # the same texts, word for word: every sampler setting is sent (openai_compat.sampler_fields), seeds
    # per item and sample; so the same grades and the same accuracy in both reports
    assert theirs == ours
    assert grades(tmp_path / "served" / "eval.sqlite") == grades(tmp_path / "local" / "eval.sqlite")
    assert accuracy_section(tmp_path / "served") == accuracy_section(tmp_path / "local")
    assert not engines_running(str(tmp_path / "served"))
    logs = sorted(p.name for p in (tmp_path / "served" / "engines").glob("*.log"))
    assert logs == ["Q2_K.log", "Q8_0.log", "reference.log"]
    assert not list((tmp_path / "served" / "engines").glob("*.pid"))
    assert "Speed on this machine" in served.stdout and "TTFT" in served.stdout


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (f"{PY} -c 'import sys; print(\"cannot load {{model}}\"); sys.exit(7)' {{port}}", "exited (code 7)"),
        (
            f"{PY} -c 'import time; print(\"loading...\", flush=True); time.sleep(600)' {{model}} {{port}}",
            "did not answer",
        ),
        (
            f"{PY} {FAKE} --port {{port}} --model-path {{model}} --label {{label}} --die-after 2 --die-label Q2_K",
            "exited during the run",
        ),
    ],
    ids=["exits-at-once", "never-ready", "dies-mid-run"],
)
def test_a_failing_engine_fails_its_variant_and_the_study_goes_on(
    demo_model: Path, tmp_path: Path, template: str, message: str
) -> None:
    out = tmp_path / "study"
    extra = ["--serve-timeout", "3"] if "sleep(600)" in template else []
    proc = study(demo_model, out, *TOY, "--serve", template, *extra, timeout=600)
    assert proc.returncode == 3, proc.stderr[-2000:]  # some variants did not finish
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr and "retrying once" in proc.stderr
    assert (out / "report.html").exists()
    report = (out / "report.md").read_text()
    assert "evaluation failed" in report
    assert not engines_running(str(out))
    if "die-label" in template:
        got = answers(out / "eval.sqlite")
        assert {k[0] for k in got} >= {"reference", "Q8_0"}  # the others finished
        assert sum(1 for k in got if k[0] == "reference") == 4
        answered = sum(1 for k, text in got.items() if k[0] == "Q2_K" and text)
        assert 2 <= answered < 4  # both attempts' answers kept; the rest recorded as errors, asked again next run
        assert "Q2_K: evaluation failed" in report


def test_a_killed_study_leaves_no_engine_after_the_next_run(demo_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    template = f"{PY} {FAKE} --port {{port}} --model-path {{model}} --latency 5"
    cmd = [PY, "-m", "quantdrop.cli", "study", str(demo_model), "--out", str(out), *TOY, "--serve", template]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((out / "engines").glob("*.pid")):
        time.sleep(0.2)
    time.sleep(1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = [json.loads(p.read_text())["pid"] for p in (out / "engines").glob("*.pid")]
    before = answers(out / "eval.sqlite") if (out / "eval.sqlite").exists() else {}
    assert left and all(Path(f"/proc/{pid}").exists() for pid in left), "kill -9 left no engine to clean up"
    done = study(demo_model, out, *TOY, "--serve", template)  # the same engine: its runs resume
    assert done.returncode == 0, done.stderr[-2000:]
    assert "left by an earlier run" in done.stderr
    after = answers(out / "eval.sqlite")
    assert len(after) == 3 * 4 and before.items() <= after.items()  # a new port, the same run: resumed
    for pid in left:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.parametrize("max_tokens", [256, 32768])
def test_an_engine_gets_the_context_the_in_process_backend_uses(demo_model: Path, max_tokens: int) -> None:
    """Served answers equal in-process ones only if both have the same n_ctx (long answers are cut
    at the context's end): the study starts engines with the in-process backend's n_ctx."""
    from types import SimpleNamespace

    from quantdrop.eval.backends.llama_cpp import LlamaCppBackend
    from quantdrop.study import StudyState

    state = SimpleNamespace(protocol=SimpleNamespace(max_tokens=max_tokens))
    in_process = LlamaCppBackend(demo_model, max_tokens=max_tokens).n_ctx
    assert StudyState.serve_ctx(state, demo_model) == in_process  # type: ignore[arg-type]
