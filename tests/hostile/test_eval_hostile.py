"""Hostile inputs to `quantdrop eval` and `quantdrop results`, end to end through the CLI (issue 10):
servers that answer malformed replies, a store that fills up, foreign files as stores, nonsense
flags, two evaluations of one label at once, an interrupt. Each checks the exit status, the one-line
message naming the file or flag, no traceback, nothing left behind and no answer lost."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile.cli import assert_clean_failure, cli_env, listing, run

EVAL_TESTS = Path(__file__).resolve().parents[1] / "eval"
if str(EVAL_TESTS) not in sys.path:
    sys.path.insert(0, str(EVAL_TESTS))

from fake_openai import FakeOpenAI, Reply, arithmetic_script, chat_body  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def toy_on_path():
    """The CLI subprocesses import the toy benchmark (`--bench toy_benchmark:create`) from tests/eval."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(EVAL_TESTS), os.environ.get("PYTHONPATH")) if p))
        yield


def eval_cmd(url: str, store: Path, *extra: str, bench: str = "toy_benchmark:create") -> list[str]:
    return [
        "eval",
        "--endpoint",
        url,
        "--bench",
        bench,
        "--label",
        "L",
        "--store",
        str(store),
        "--no-progress",
        "--retries",
        "0",
        *extra,
    ]


def stored(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT item_id, sample, text, status, error, capped FROM responses ORDER BY 1, 2").fetchall()
    db.close()
    return rows


def _count(store: Path) -> int:
    """Stored responses so far (0 while the store does not exist yet or is locked)."""
    try:
        return len(stored(store)) if store.exists() else 0
    except sqlite3.Error:
        return 0


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr


# -- item 1: content parts; a commit that fails --------------------------------------------------
def test_content_as_parts_is_joined_stored_and_scored(tmp_path):
    def parts(request):
        answer = arithmetic_script(request).text
        return Reply(body=chat_body([{"type": "text", "text": answer[:7]}, {"type": "text", "text": answer[7:]}]))

    store = tmp_path / "s.sqlite"
    with FakeOpenAI(parts) as server:
        proc = run(*eval_cmd(server.url, store, "--limit", "3", "--samples", "1"))
    assert proc.returncode == 0, proc.stderr
    assert [(r[2], r[3]) for r in stored(store)] == [
        ("The sum is 1.", "correct"),
        ("The sum is 4.", "correct"),
        ("The sum is 7.", "correct"),
    ]


def limit_file_size(limit: int):
    """For the child: files may not grow past `limit` bytes (Python ignores SIGXFSZ, so a write past
    it fails with EFBIG, which SQLite reports as a "disk I/O error"; tests/eval/test_runner.py has
    SQLite's own "database or disk is full")."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_stops_the_run_with_one_line_and_keeps_every_committed_answer(tmp_path):
    store = tmp_path / "s.sqlite"
    big = lambda request: Reply(text=arithmetic_script(request).text + " " + "pad " * 2000)  # noqa: E731
    with FakeOpenAI(big, latency=0.005) as server:
        argv = [
            sys.executable,
            "-m",
            "quantdrop.cli",
            *eval_cmd(server.url, store, "--samples", "1", "--concurrency", "2", bench="toy_benchmark:create_big"),
        ]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
            preexec_fn=limit_file_size(400_000),
            stdin=subprocess.DEVNULL,
        )
        line = assert_clean_failure(
            proc, "cannot write", str(store), "disk I/O error", "responses committed by this run are kept"
        )
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        asked = len(server.requests)
        kept = stored(store)
        assert 0 < len(kept) < 200 and asked < 200, line  # it stopped instead of asking on
        # answers, scored or (when the scores' commit was the one that failed) awaiting their score
        assert all(error is None and status in ("correct", None) for *_, status, error, _ in kept)
        again = run(*argv[3:])
        assert again.returncode == 0, again.stderr
    final = stored(store)
    assert len(final) == 200 and all(r[3] == "correct" for r in final)
    assert {r[:3] for r in kept} <= {r[:3] for r in final}  # nothing committed was lost or redone
    assert len(server.requests) - asked == 200 - len(kept)


# -- items 2 and 13: a malformed field is that reply's error ---------------------------------------
MALFORMED = {
    1: chat_body("4", usage={"prompt_tokens": float("inf"), "completion_tokens": 1}),
    2: chat_body("7", usage={"prompt_tokens": float("nan"), "completion_tokens": "three"}),
    3: chat_body("10", usage={"prompt_tokens": -1, "completion_tokens": 1}),
    4: chat_body(None),
    5: chat_body("16", choices=[{}]),
    6: chat_body("19", choices=[]),
}


def malformed_script(request):
    i = int(request["messages"][-1]["content"].split()[2])
    return Reply(body=MALFORMED[i]) if i in MALFORMED else arithmetic_script(request)


def test_malformed_replies_are_errors_the_rest_is_stored_and_exit_3(tmp_path):
    store = tmp_path / "s.sqlite"
    with FakeOpenAI(malformed_script) as server:
        proc = run(*eval_cmd(server.url, store, "--limit", "8", "--samples", "1", "--json"))
    assert proc.returncode == 3, proc.stderr
    assert_no_traceback(proc)
    assert "6 responses failed or are missing" in proc.stderr
    (res,) = json.loads(proc.stdout)
    assert res["counts"]["correct"] == 2 and res["counts"]["error"] == 6 and res["counts"]["unextracted"] == 0
    errors = {r[0]: r[4] for r in stored(store) if r[3] == "error"}
    assert "usage.prompt_tokens is inf" in errors["toy-0001"]
    assert "content is null" in errors["toy-0004"] and "choices[0].message is null" in errors["toy-0005"]


def test_a_huge_reply_is_stored_capped_and_counted(tmp_path):
    store = tmp_path / "s.sqlite"
    with FakeOpenAI(lambda request: Reply(text="1 " * 1_000_000)) as server:  # 2 MB for --max-tokens 32
        proc = run(*eval_cmd(server.url, store, "--limit", "2", "--samples", "1", "--max-tokens", "32"))
    assert proc.returncode == 0, proc.stderr
    assert [(len(r[2]), r[5]) for r in stored(store)] == [(16384, 1), (16384, 1)]
    table = run("results", "--store", store)
    assert table.returncode == 0 and "L: 2 capped, 2 wrong" not in table.stdout and "2 capped" in table.stdout


# -- item 3: exit codes ---------------------------------------------------------------------------
def test_every_request_failing_exits_3_and_a_later_run_finishes_with_0(tmp_path):
    store = tmp_path / "s.sqlite"
    with FakeOpenAI(lambda request: Reply(status=500, fail_times=-1)) as bad:
        proc = run(*eval_cmd(bad.url, store, "--limit", "3", "--samples", "1"))
    assert proc.returncode == 3, proc.stderr
    assert "3 responses failed or are missing; run the same command again" in proc.stderr
    assert [r[3] for r in stored(store)] == ["error"] * 3
    with FakeOpenAI(port=int(bad.url.rsplit(":", 1)[1])) as good:  # the server is back
        again = run(*eval_cmd(good.url, store, "--limit", "3", "--samples", "1"))
    assert again.returncode == 0, again.stderr
    assert [r[3] for r in stored(store)] == ["correct"] * 3


def test_exit_codes_are_documented_in_help():
    proc = run("eval", "--help")
    assert proc.returncode == 0
    for line in (
        "0    every response is in",
        "3    finished, but some responses failed or are pending",
        "2    bad input",
        "130  interrupted",
    ):
        assert line in proc.stdout


def test_an_interrupt_exits_130_and_keeps_the_answers(tmp_path):
    store = tmp_path / "s.sqlite"
    with FakeOpenAI(latency=0.1) as server:
        argv = [
            sys.executable,
            "-m",
            "quantdrop.cli",
            *eval_cmd(server.url, store, "--samples", "1", "--concurrency", "2", bench="toy_benchmark:create_big"),
        ]
        child = subprocess.Popen(argv, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(server.requests) < 30 or _count(store) < 25):
            time.sleep(0.02)  # on a loaded machine answers reach the store well after the requests
        # (0.1 s per answer: the 200 take 10 s, so a starved test process still interrupts mid-run)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
        assert child.returncode == 130, err
        assert "Traceback" not in err and "interrupted; finished work is kept" in err
        kept = stored(store)
        assert len(kept) >= 25 and all(r[3] == "correct" for r in kept)  # answered before the interrupt
        asked = len(server.requests)
        again = run(*argv[3:])
        assert again.returncode == 0, again.stderr
    assert len(stored(store)) == 200 and len(server.requests) - asked == 200 - len(kept)


# -- items 10 and 12: nonsense flags ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--timeout", "0", "--timeout must be a finite number seconds > 0"),
        ("--retries", "-1", "--retries must be at least 0, got -1"),
        ("--temperature", "nan", "--temperature must be a finite number >= 0, got nan"),
        ("--top-p", "1.01", "--top-p"),
        ("--concurrency", "0", "--concurrency must be at least 1, got 0"),
        ("--max-tokens", "0", "--max-tokens must be at least 1, got 0"),
        ("--threads", "-1", "--threads must be between 1 and"),
        ("--threads", "10000", "--threads must be between 1 and"),
        ("--limit", "-1", "--limit must be at least 1, got -1"),
    ],
)
def test_nonsense_flags_are_refused_before_anything_is_asked_or_written(tmp_path, flag, value, needle):
    with FakeOpenAI() as server:
        proc = run(*eval_cmd(server.url, tmp_path / "s.sqlite", f"{flag}={value}"))
        assert not server.requests
    assert_clean_failure(proc, needle, folder=tmp_path)
    assert proc.returncode == 2


# -- item 11: factories that are not benchmarks, bad outputs, unknown names ------------------------
@pytest.mark.parametrize(
    ("bench", "needle"),
    [
        ("os:system", "--bench os:system: os.system(**options) is not a benchmark factory"),
        ("json:loads", "--bench json:loads"),
        ("nosuch", "unknown benchmark 'nosuch'"),
    ],
)
def test_a_bench_that_is_not_a_benchmark_is_refused(tmp_path, bench, needle):
    with FakeOpenAI() as server:
        proc = run(*eval_cmd(server.url, tmp_path / "s.sqlite", bench=bench))
        assert not server.requests
    assert_clean_failure(proc, needle, folder=tmp_path)


@pytest.fixture(scope="module")
def good_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "s.sqlite"
    with FakeOpenAI() as server:
        assert run(*eval_cmd(server.url, store, "--limit", "2", "--samples", "1")).returncode == 0
    return store


def test_results_output_must_be_a_file_in_an_existing_folder(tmp_path, good_store):
    out = tmp_path / "out"
    out.mkdir()
    before = listing(tmp_path)
    assert_clean_failure(
        run("results", "--store", good_store, "--output", out),
        f"--output {out} is a directory",
        folder=tmp_path,
        before=before,
    )
    assert_clean_failure(
        run("results", "--store", good_store, "--output", tmp_path / "no" / "t.md"),
        "no directory",
        folder=tmp_path,
        before=before,
    )
    assert run("results", "--store", good_store, "--output", out / "t.md").returncode == 0
    assert "| Toy sums (2/20) |" in (out / "t.md").read_text()


def test_results_of_an_unknown_label(good_store):
    assert_clean_failure(run("results", "--store", good_store, "--labels", "NOPE"), "no label 'NOPE'", "labels: L")
    assert_clean_failure(run("results", "--store", good_store, "--baseline", "FP8"), "no label 'FP8'")


# -- item 7: results only reads; foreign files are refused ------------------------------------------
def foreign(path: Path, kind: str) -> None:
    if kind == "other-sqlite":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE contacts (name TEXT)")
            db.execute("INSERT INTO contacts VALUES ('Ada')")
        db.close()
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("not a database\n" * 100)


@pytest.mark.parametrize("kind", ["other-sqlite", "empty", "text"])
def test_results_refuses_a_file_that_is_not_a_store_and_leaves_it_untouched(tmp_path, kind):
    path = tmp_path / "other.db"
    foreign(path, kind)
    content, before = path.read_bytes(), listing(tmp_path)
    proc = run("results", "--store", path)
    assert_clean_failure(proc, f"{path} is not a quantdrop evaluation store", folder=tmp_path, before=before)
    assert path.read_bytes() == content  # no tables added, no switch to WAL


@pytest.mark.parametrize("kind", ["other-sqlite", "text"])
def test_eval_refuses_a_foreign_file_as_store_before_asking_anything(tmp_path, kind):
    path = tmp_path / "other.db"
    foreign(path, kind)
    content, before = path.read_bytes(), listing(tmp_path)
    with FakeOpenAI() as server:
        proc = run(*eval_cmd(server.url, path, "--limit", "2"))
        assert not server.requests
    assert_clean_failure(proc, f"{path} is not a quantdrop evaluation store", folder=tmp_path, before=before)
    assert path.read_bytes() == content


def test_results_reads_a_store_without_writing_to_it(good_store):
    folder = good_store.parent
    content, before = good_store.read_bytes(), listing(folder)
    assert run("results", "--store", good_store).returncode == 0
    assert good_store.read_bytes() == content and listing(folder) == before  # no -wal, no -shm left


# -- item 13: two evaluations of one label at once ----------------------------------------------------
def test_a_second_eval_of_a_running_label_is_refused_and_nothing_is_paid_twice(tmp_path):
    store = tmp_path / "s.sqlite"
    with FakeOpenAI(latency=0.05) as server:  # 200 requests, 2 at a time: the first runs for 5 s at least
        argv = [
            sys.executable,
            "-m",
            "quantdrop.cli",
            *eval_cmd(server.url, store, "--samples", "1", "--concurrency", "2", bench="toy_benchmark:create_big"),
        ]
        first = subprocess.Popen(argv, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(server.requests) < 10:
            time.sleep(0.02)
        second = run(*argv[3:])
        _, err = first.communicate(timeout=120)
    assert_clean_failure(second, "label 'L' on toy_benchmark:create_big", f"being evaluated now by process {first.pid}")
    assert first.returncode == 0, err
    assert len(server.requests) == 200 and len(stored(store)) == 200  # each pair asked once
    with FakeOpenAI(port=int(server.url.rsplit(":", 1)[1])) as again:  # the claim was given back: the
        assert run(*argv[3:]).returncode == 0 and not again.requests  # label resumes (nothing left to ask)
