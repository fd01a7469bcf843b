"""The SQLite store: one run per (label, benchmark), refusal of a different model or protocol under
the same label, responses replaced only when they were failed requests."""

from __future__ import annotations

import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.eval.store import Store, StoreWriteError
from quantdrop.eval.types import Completion, Score

GGUF = {"kind": "gguf", "name": "m.gguf", "size": 10, "hash": "abc"}
HTTP = {"kind": "openai", "model": "m", "endpoints": ["http://a:1", "http://b:1"]}
PROTOCOL = {"samples": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 32768, "template": "t1", "seeds": "s"}


def open_run(store, **over):
    kw = {
        "label": "Q4_K_M",
        "benchmark": "math500",
        "title": "MATH-500",
        "full_size": 500,
        "weight": 0.5,
        "fingerprint": GGUF,
        "protocol": PROTOCOL,
    } | over
    return store.open_run(**kw)


def test_store_is_wal_and_reopens_the_same_run(tmp_path):
    with Store(tmp_path / "s.sqlite") as st:
        assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        run = open_run(st)
    with Store(tmp_path / "s.sqlite") as st:
        assert open_run(st) == run
        assert open_run(st, benchmark="gpqa", title="GPQA") != run


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"samples": 8}, "samples 4 there vs 8 now"),
        ({"temperature": 0.0}, "temperature 0.6 there vs 0.0 now"),
        ({"max_tokens": 4096}, "max_tokens 32768 there vs 4096 now"),
        ({"template": "t2"}, "template 't1' there vs 't2' now"),
    ],
)
def test_a_different_protocol_under_the_same_label_is_refused(tmp_path, change, message):
    with Store(tmp_path / "s.sqlite") as st:
        open_run(st)
        with pytest.raises(QuantdropError, match=f"label 'Q4_K_M' .* different protocol \\({message}\\)"):
            open_run(st, protocol=PROTOCOL | change)
        open_run(st, label="Q4_K_M-t0", protocol=PROTOCOL | change)  # another label is fine


def test_a_different_model_under_the_same_label_is_refused(tmp_path):
    with Store(tmp_path / "s.sqlite") as st:
        open_run(st)
        with pytest.raises(QuantdropError, match=r"holds math500 results of GGUF m\.gguf .* use another --label"):
            open_run(st, fingerprint=GGUF | {"hash": "def"})
        open_run(st, fingerprint=GGUF | {"name": "renamed.gguf"})  # same bytes, other file name: same model
        open_run(st, label="api", fingerprint=HTTP)
        open_run(st, label="api", fingerprint=HTTP | {"endpoints": ["http://b:1", "http://c:1"]})  # replicas
        with pytest.raises(QuantdropError, match="model 'm' at"):
            open_run(st, label="api", fingerprint=HTTP | {"model": "other"})


def test_failed_requests_are_replaced_done_ones_are_kept(tmp_path):
    with Store(tmp_path / "s.sqlite") as st:
        run = open_run(st)
        st.add_items(run, ["a", "b"])
        st.put_response(run, "a", 0, 1, Completion(finish_reason="error", error="HTTP 500"))
        st.put_response(run, "b", 0, 1, Completion(text="42"))
        assert st.done(run) == {("b", 0): None}  # "a" failed: ask again; "b" awaits its score
        st.put_response(run, "a", 0, 1, Completion(text="7"))
        st.put_score(run, "a", 0, Score(1.0, "correct", extracted="7"))
        assert st.done(run) == {("a", 0): "correct", ("b", 0): None}
        assert len(st.rows(run)) == 2
        st.add_items(run, ["b", "c", "a"])  # a longer --limit later: new items appended, order kept
        assert st.item_ids(run) == ["a", "b", "c"]


def test_a_foreign_file_is_not_a_store(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(QuantdropError, match="not a quantdrop evaluation store"):
        Store(bad)
    with pytest.raises(QuantdropError, match="no evaluation store at"):
        Store(tmp_path / "missing.sqlite", create=False)
    for readonly in (True, False):
        with pytest.raises(QuantdropError, match=f"--store {tmp_path} is a directory"):
            Store(tmp_path, readonly=readonly)


def test_a_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "s.sqlite").close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(QuantdropError, match="schema 99"):
        Store(tmp_path / "s.sqlite")


def test_an_answer_is_never_replaced_by_an_error_or_a_second_answer(tmp_path):
    with Store(tmp_path / "s.sqlite") as st:
        run = open_run(st)
        st.put_response(run, "a", 0, 1, Completion(text="42"))
        st.put_score(run, "a", 0, Score(1.0, "correct", extracted="42"))
        st.put_response(run, "a", 0, 1, Completion(finish_reason="error", error="HTTP 500"))
        st.put_response(run, "a", 0, 1, Completion(text="7"))
        (row,) = st.rows(run)
        assert (row.completion.text, row.completion.error, row.status) == ("42", None, "correct")


def test_a_capped_reply_keeps_its_flag(tmp_path):
    with Store(tmp_path / "s.sqlite") as st:
        run = open_run(st)
        st.put_response(run, "a", 0, 1, Completion(text="x" * 10, capped=True))
        st.put_response(run, "b", 0, 1, Completion(text="y"))
        assert [r.completion.capped for r in st.rows(run)] == [True, False]


def test_a_store_without_the_capped_column_is_read_and_upgraded(tmp_path):
    path = tmp_path / "old.sqlite"
    with Store(path) as st:
        run = open_run(st)
        st.put_response(run, "a", 0, 1, Completion(text="42"))
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE responses DROP COLUMN capped")  # a store written before the flag
    with Store(path, readonly=True) as st:
        assert [r.completion.capped for r in st.rows(run)] == [False]
    with Store(path) as st:
        st.put_response(run, "b", 0, 1, Completion(text="x", capped=True))
        assert [r.completion.capped for r in st.rows(run)] == [False, True]


def sqlite_files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_reader_opens_read_only_and_leaves_nothing(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        run = open_run(st)
        st.put_response(run, "a", 0, 1, Completion(text="42"))
    before = path.read_bytes()
    path.chmod(0o444)  # a store on a read-only copy is still readable
    try:
        with Store(path, readonly=True) as st:
            assert [r.completion.text for r in st.rows(run)] == ["42"]
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                st.db.execute("CREATE TABLE x (y)")
    finally:
        path.chmod(0o644)
    assert path.read_bytes() == before and sqlite_files(tmp_path) == ["s.sqlite"]


def test_a_reader_sees_a_live_writers_commits(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as writer:
        run = open_run(writer)
        writer.put_response(run, "a", 0, 1, Completion(text="42"))
        with Store(path, readonly=True) as reader:  # the writer's -wal is there: not immutable
            assert [r.completion.text for r in reader.rows(run)] == ["42"]


def foreign_sqlite(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute("INSERT INTO notes (body) VALUES ('keep me')")
    db.close()


@pytest.mark.parametrize("readonly", [True, False], ids=["reader", "writer"])
@pytest.mark.parametrize("kind", ["foreign-sqlite", "foreign-with-meta", "empty", "text"])
def test_a_file_that_is_not_a_store_is_refused_untouched(tmp_path, kind, readonly):
    path = tmp_path / "other.db"
    if kind == "foreign-sqlite":
        foreign_sqlite(path)
    elif kind == "foreign-with-meta":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        db.close()
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("hello\n" * 200)
    before = path.read_bytes()
    if kind == "empty" and not readonly:
        Store(path).close()  # an empty file is where a new store goes
        return
    with pytest.raises(QuantdropError, match=f"{path} is not a quantdrop evaluation store"):
        Store(path, readonly=readonly)
    assert path.read_bytes() == before and sqlite_files(tmp_path) == ["other.db"]


def test_write_failures_name_the_store(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        run = open_run(st)
        st.put_response(run, "a", 0, 1, Completion(text="42"))
        st.db.execute("PRAGMA max_page_count = 1")  # the database can no longer grow: "disk is full"
        with pytest.raises(StoreWriteError, match=f"cannot write 1 responses to the store {path}: .*full"):
            st.put_response(run, "b", 0, 1, Completion(text="x" * 100000))
        with pytest.raises(StoreWriteError, match="OverflowError"):  # a value SQLite cannot hold
            st.put_response(run, "c", 0, 1, Completion(text="1", prompt_tokens=2**70))
        assert [r.completion.text for r in st.rows(run)] == ["42"]  # the committed row is kept


def test_a_run_is_claimed_by_one_live_process(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as st, Store(path) as other:
        run = open_run(st)
        token = st.claim(run, "label 'Q4_K_M' on math500")
        with pytest.raises(QuantdropError, match=f"being evaluated now by process {os.getpid()}"):
            other.claim(run, "label 'Q4_K_M' on math500")
        st.release(run, token)
        other.release(run, other.claim(run, "x"))  # free again
        # a claim left by a process that is gone (kill -9) is taken over
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        st.db.execute(
            "INSERT INTO claims VALUES (?, 'gone', ?, ?, '', 0)", (run, socket.gethostname(), int(dead.stdout))
        )
        st.release(run, st.claim(run, "x"))


def _open_new_store(path: str, errors) -> None:
    try:
        Store(path).db.close()
    except QuantdropError as err:
        errors.put(str(err))


def test_processes_that_open_a_new_store_at_once_all_get_it(tmp_path):
    """Six processes create the same store together, 20 times: none may see half a schema ("not a
    quantdrop evaluation store (its tables are meta)") or a busy file ("database is locked")."""
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    for trial in range(20):
        path = str(tmp_path / f"s{trial}.sqlite")
        procs = [ctx.Process(target=_open_new_store, args=(path, errors)) for _ in range(6)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [proc.exitcode for proc in procs] == [0] * 6
        assert errors.empty(), errors.get()
        with Store(path, readonly=True) as st:
            assert st.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("1",)
