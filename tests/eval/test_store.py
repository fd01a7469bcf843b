"""The SQLite store: one run per (label, benchmark), refusal of a different model or protocol under
the same label, responses replaced only when they were failed requests."""

from __future__ import annotations

import sqlite3

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.eval.store import Store
from quantdrop.eval.types import Completion, Score

GGUF = {"kind": "gguf", "name": "m.gguf", "size": 10, "hash": "abc"}
HTTP = {"kind": "openai", "model": "m", "endpoints": ["http://a:1", "http://b:1"]}
PROTOCOL = {
    "samples": 4,
    "temperature": 0.6,
    "top_p": 0.95,
    "max_tokens": 32768,
    "template": "t1",
    "seeds": "s",
}


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
        with pytest.raises(
            QuantdropError, match=r"holds math500 results of GGUF m\.gguf .* use another --label"
        ):
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


def test_a_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "s.sqlite").close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(QuantdropError, match="schema 99"):
        Store(tmp_path / "s.sqlite")
