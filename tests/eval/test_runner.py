"""The runner end to end against the fake server: scoring, errors vs wrong answers, truncation,
seeds, resuming, context capping (a toy benchmark; real benchmarks in test_eval_cli)."""

from __future__ import annotations

import re

import pytest
from fake_openai import FakeOpenAI, Reply, arithmetic_script, chat_body

from quantdrop.errors import QuantdropError
from quantdrop.eval.runner import derive_seed, evaluate
from quantdrop.eval.store import Store, StoreWriteError
from quantdrop.eval.types import Completion


def item_index(request) -> int:
    return int(re.search(r"What is (\d+)", request["messages"][-1]["content"])[1])


def mixed_script(request) -> Reply:
    """Item i: right (i % 5 == 0, 1), wrong (2), no number (3), server failure (4)."""
    i = item_index(request)
    kind = i % 5
    if kind in (0, 1):
        return Reply(text=f"<think>{i} plus {2 * i + 1}</think>The answer is {3 * i + 1}.")
    if kind == 2:
        return Reply(text=f"It is {3 * i + 2}.")
    if kind == 3:
        return Reply(text="<think>I keep thinking", finish_reason="length")
    return Reply(status=500, fail_times=-1)


def run(server, tmp_path, **kw):
    opts = {
        "endpoint": [server.url],
        "bench": ["toy_benchmark:create"],
        "label": "L",
        "progress": False,
        "store": str(tmp_path / "eval.sqlite"),
        "retries": 1,
    } | kw
    return evaluate(**opts)


def test_right_wrong_unextracted_and_errors_are_counted_apart(tmp_path):
    with FakeOpenAI(mixed_script) as server:
        (res,) = run(server, tmp_path)  # 20 items x 2 samples
    assert res.counts == {
        "correct": 16,
        "wrong": 8,
        "unextracted": 8,
        "error": 8,
        "truncated": 8,
        "capped": 0,
        "pending": 0,
    }
    # errors are not wrong answers: accuracy is over the 16 + 8 + 8 scored responses
    assert res.runs == [50.0, 50.0] and res.mean == 50.0 and res.std == 0.0
    assert res.ci.low < 50.0 < res.ci.high
    assert not res.complete


def test_resume_asks_only_what_is_missing_and_retries_failures(tmp_path):
    with FakeOpenAI(mixed_script) as server:
        run(server, tmp_path, limit=5)
        # items 0-3 x 2 samples once; item 4 always fails: 2 attempts (retries=1) per sample
        assert len(server.requests) == 8 + 2 * 2
        first = len(server.requests)
        run(server, tmp_path, limit=10)
        # new items 5-8 once per sample, item 9 fails (2 x 2 attempts), failed item 4 asked again (2 x 2)
        assert len(server.requests) - first == 8 + 4 + 4
    port = int(server.url.rsplit(":", 1)[1])
    with FakeOpenAI(port=port) as healthy:  # the server recovered: the failures are asked again, only them
        (res,) = run(healthy, tmp_path, limit=10)
        assert len(healthy.requests) == 2 * 2  # items 4 and 9, two samples each
    assert res.counts["error"] == 0 and res.counts["pending"] == 0
    assert res.counts["correct"] + res.counts["wrong"] + res.counts["unextracted"] == 20
    with Store(tmp_path / "eval.sqlite") as st:
        rows = st.rows(st.runs()[0].id)
        assert len(rows) == len({(r.item_id, r.sample) for r in rows}) == 20


def test_seeds_depend_on_item_and_sample_not_on_the_variant(tmp_path):
    with FakeOpenAI() as server:
        run(server, tmp_path, limit=3, label="A")
        run(server, tmp_path, limit=3, label="B")
    seeds = [r["seed"] for r in server.requests]
    # requests are concurrent, so they reach the server in any order: compare the sets
    assert sorted(seeds[:6]) == sorted(seeds[6:])  # the same seeds for every variant
    assert len(set(seeds[:6])) == 6
    assert derive_seed("toy_benchmark:create", "toy-0000", 0) in seeds[:6]


def test_max_tokens_is_capped_by_the_served_context(tmp_path):
    with FakeOpenAI(context_length=1024) as server:
        run(server, tmp_path, limit=1, samples=1, max_tokens=32768)
    assert server.requests[0]["max_tokens"] == 1024


def test_stored_but_unscored_responses_are_scored_without_asking_again(tmp_path):
    with FakeOpenAI() as server:
        run(server, tmp_path, limit=2, samples=1)
        with Store(tmp_path / "eval.sqlite") as st:  # as if killed between storing and scoring
            run_id = st.runs()[0].id
            # a stored answer is never replaced: remove it to store the unscored one in its place
            st.db.execute("DELETE FROM responses WHERE run_id=? AND item_id='toy-0001'", (run_id,))
            st.put_response(run_id, "toy-0001", 0, 1, Completion(text="4"))
            assert st.done(run_id)[("toy-0001", 0)] is None
        (res,) = run(server, tmp_path, limit=2, samples=1)
        assert len(server.requests) == 2
    assert res.counts["correct"] == 2 and res.counts["pending"] == 0


def test_partial_sets_are_labelled(tmp_path):
    with FakeOpenAI() as server:
        (res,) = run(server, tmp_path, bench=["toy_benchmark:create_partial"], samples=1)
        (lim,) = run(server, tmp_path, bench=["toy_benchmark:create"], samples=1, limit=4, label="M")
    assert res.title == "Toy sums (6/10)" and lim.title == "Toy sums (4/20)"


def test_bench_options_reach_the_benchmark(tmp_path):
    with FakeOpenAI() as server:
        (res,) = run(server, tmp_path, bench_options=["n=5"], samples=1)
    assert res.n_items == 5 and res.title == "Toy sums" and len(server.requests) == 5


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"endpoint": None}, "either a GGUF model path or --endpoint"),
        ({"model": "x.gguf"}, "not both"),
        ({"label": " "}, "--label"),
        ({"samples": 0}, "--samples must be at least 1"),
        ({"top_p": 0}, "--top-p"),
        ({"bench": ["nosuch_module:create"]}, "cannot load benchmark 'nosuch_module:create'"),
        ({"bench_options": ["split"]}, "--bench-options takes KEY=VALUE, got 'split'"),
    ],
)
def test_bad_options_are_refused_before_any_request(tmp_path, kw, message):
    with FakeOpenAI() as server:
        with pytest.raises(QuantdropError, match=message):
            run(server, tmp_path, **kw)
        assert not server.requests


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"timeout": 0}, "--timeout must be a finite number seconds > 0"),
        ({"timeout": -1}, "--timeout"),
        ({"timeout": float("nan")}, "--timeout .* got nan"),
        ({"retries": -1}, "--retries must be at least 0, got -1"),
        ({"temperature": float("nan")}, "--temperature must be a finite number >= 0, got nan"),
        ({"temperature": float("inf")}, "--temperature .* got inf"),
        ({"temperature": -1}, "--temperature .* got -1"),
        ({"top_p": 1.5}, "--top-p must be a finite number in \\(0, 1\\], got 1.5"),
        ({"top_p": float("nan")}, "--top-p"),
        ({"concurrency": 0}, "--concurrency must be at least 1, got 0"),
        ({"max_tokens": 0}, "--max-tokens must be at least 1, got 0"),
        ({"limit": -1}, "--limit must be at least 1, got -1"),
        ({"threads": 0}, "--threads must be between 1 and"),
        ({"threads": -1}, "--threads must be between 1 and"),
        ({"threads": 10000}, "--threads must be between 1 and .* got 10000"),
        ({"ctx": 0}, "--ctx must be at least 1"),
        ({"bench": ["os:system"]}, "--bench os:system: os.system\\(\\*\\*options\\) is not a benchmark factory"),
        ({"bench": ["os:sep"]}, "--bench os:sep: sep is not a benchmark factory"),
        ({"bench": ["builtins:dict"]}, "--bench builtins:dict: the factory returned a dict, not a benchmark"),
    ],
)
def test_bad_numbers_and_factories_are_refused_before_any_request(tmp_path, kw, message):
    with FakeOpenAI() as server:
        with pytest.raises(QuantdropError, match=message):
            run(server, tmp_path, **kw)
        assert not server.requests
    assert not (tmp_path / "eval.sqlite").exists()


def test_content_parts_are_stored_and_scored(tmp_path):
    def parts(request):
        i = item_index(request)
        text = [{"type": "text", "text": "The sum is "}, {"type": "text", "text": str(3 * i + 1)}]
        return Reply(body=chat_body(text))

    with FakeOpenAI(parts) as server:
        (res,) = run(server, tmp_path, limit=4, samples=1)
    assert res.counts["correct"] == 4 and res.complete


def test_malformed_replies_are_errors_of_their_items_only(tmp_path):
    def script(request):
        i = item_index(request)
        if i == 1:
            return Reply(body=chat_body("4", usage={"prompt_tokens": float("inf")}))
        if i == 2:
            return Reply(body=chat_body(None))  # null content: the server's failure, not "unextracted"
        if i == 3:
            return Reply(body=chat_body("x", choices=[{}]))
        return arithmetic_script(request)

    with FakeOpenAI(script) as server:
        (res,) = run(server, tmp_path, limit=6, samples=1)
    assert res.counts["correct"] == 3 and res.counts["error"] == 3 and res.counts["unextracted"] == 0
    with Store(tmp_path / "eval.sqlite") as st:
        errors = {r.item_id: r.completion.error for r in st.rows(st.runs()[0].id) if r.status == "error"}
    assert sorted(errors) == ["toy-0001", "toy-0002", "toy-0003"]
    assert "usage.prompt_tokens is inf" in errors["toy-0001"] and "content is null" in errors["toy-0002"]


def test_capped_replies_are_counted(tmp_path):
    with FakeOpenAI(lambda req: Reply(text="7 " * 40000)) as server:  # 80 kB for max_tokens=32
        (res,) = run(server, tmp_path, limit=2, samples=1, max_tokens=32)
    assert res.counts["capped"] == 2
    with Store(tmp_path / "eval.sqlite") as st:
        assert {len(r.completion.text) for r in st.rows(st.runs()[0].id)} == {16384}


def test_a_failing_commit_stops_the_run_and_keeps_what_was_committed(tmp_path, monkeypatch):
    """The store fills up after the first batches: the run stops with the store's error, every row
    committed before stays, and the same command later finishes the rest."""
    calls = []
    real = Store.put_responses

    def filling(self, run_id, rows):
        calls.append(len(rows))
        if len(calls) == 3:  # from now on the database cannot grow: SQLite's "database or disk is full"
            pages = self.db.execute("PRAGMA page_count").fetchone()[0]
            self.db.execute(f"PRAGMA max_page_count = {pages}")
        return real(self, run_id, [(i, k, s, Completion(text=c.text + " " * 5000)) for i, k, s, c in rows])

    monkeypatch.setattr(Store, "put_responses", filling)
    with FakeOpenAI(latency=0.01) as server:
        with pytest.raises(StoreWriteError, match=r"cannot write .* to the store .*eval.sqlite.*full.*stopped: "):
            run(server, tmp_path, bench=["toy_benchmark:create_big"], samples=1, concurrency=2)
        asked = len(server.requests)
        assert asked < 200  # it stopped, it did not go on asking
        with Store(tmp_path / "eval.sqlite") as st:
            kept = {r.item_id for r in st.rows(st.runs()[0].id)}
        assert 0 < len(kept) < asked
        monkeypatch.setattr(Store, "put_responses", real)
        (res,) = run(server, tmp_path, bench=["toy_benchmark:create_big"], samples=1, concurrency=2)
    assert res.complete and res.counts["correct"] == 200
    assert len(server.requests) - asked == 200 - len(kept)  # only what was not stored is asked again
