"""The evaluation store: one SQLite file (WAL), every response committed as it arrives.

A run is one (label, benchmark): it records the model fingerprint and the protocol (samples,
sampling parameters, max tokens, prompt template), and refuses a second writer that differs in
either, so one label never mixes two models or two protocols. Responses are keyed by
(run, item, sample): re-running the same command skips what is done, and a `kill -9` loses at
most the requests in flight (a committed row survives; a half-written one never exists). An answer
is never replaced, only a failed request is; an evaluating process claims its runs, so a second one
on the same label is refused instead of paying for every request again. A write that fails (a full
disk, ...) raises StoreWriteError naming the store; what was committed before it stays.

Readers (`results`) open the file read-only (no WAL switch, no table created) and refuse a file
that is not a quantdrop store, as `eval` refuses another program's SQLite file.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.eval.types import Completion, Score, partial_label

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    title TEXT NOT NULL,
    full_size INTEGER NOT NULL,
    weight REAL,
    fingerprint TEXT NOT NULL,
    protocol TEXT NOT NULL,
    loaded_from TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    UNIQUE (label, benchmark)
);
CREATE TABLE IF NOT EXISTS items (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (run_id, item_id)
);
CREATE TABLE IF NOT EXISTS responses (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    item_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    error TEXT,
    status TEXT,            -- correct | wrong | unextracted | error; NULL: not scored yet
    value REAL,
    extracted TEXT,
    detail TEXT,
    created_at REAL NOT NULL,
    capped INTEGER NOT NULL DEFAULT 0,  -- 1: the reply was longer than max_tokens allows, stored cut
    PRIMARY KEY (run_id, item_id, sample)
);
CREATE TABLE IF NOT EXISTS claims (     -- the process evaluating a run now
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    proc TEXT NOT NULL,                 -- boot id and start time of that pid, to tell a reused pid
    at REAL NOT NULL
);
"""
TABLES = {"meta", "runs", "items", "responses", "claims"}
READ_TABLES = TABLES - {"claims"}  # stores written before claims existed are still read
_HELD: set[str] = set()  # the claims this process holds (a claim of our pid not in here is stale)


class StoreWriteError(QuantdropError):
    """A write to the store failed (disk full, locked, unwritable): the run stops, committed rows stay."""


@dataclass(frozen=True)
class Run:
    id: int
    label: str
    benchmark: str
    title: str
    full_size: int
    weight: float | None
    fingerprint: dict[str, Any]
    protocol: dict[str, Any]
    loaded_from: str
    n_items: int

    @property
    def table_label(self) -> str:
        """The row label: the title, marked partial when fewer items than the full set."""
        return partial_label(self.title, self.n_items, self.full_size)


@dataclass(frozen=True)
class Row:
    """One stored response and its score (status None: the response awaits scoring)."""

    item_id: str
    sample: int
    completion: Completion
    status: str | None
    value: float | None
    extracted: str | None


def same_model(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two fingerprints name the same model: a GGUF by size and hash; an endpoint by model
    name and at least one server in common (replicas may come and go between sessions)."""
    if a == b:
        return True
    if a.get("kind") != b.get("kind"):
        return False
    if a.get("kind") == "served":  # an engine the study started: the file it serves, and how
        return same_model(a.get("gguf") or {}, b.get("gguf") or {}) and a.get("engine") == b.get("engine")
    if a.get("kind") == "gguf":
        return (a.get("size"), a.get("hash")) == (b.get("size"), b.get("hash"))
    return a.get("model") == b.get("model") and bool(set(a.get("endpoints", [])) & set(b.get("endpoints", [])))


def describe(fingerprint: dict[str, Any]) -> str:
    if fingerprint.get("kind") == "gguf":
        name, size, digest = (fingerprint.get(k) for k in ("name", "size", "hash"))
        return f"GGUF {name} ({size} bytes, hash {digest})"
    if fingerprint.get("kind") == "served":
        return f"{describe(fingerprint.get('gguf') or {})} served by {fingerprint.get('engine')!r}"
    return f"model {fingerprint.get('model')!r} at {', '.join(fingerprint.get('endpoints', []))}"


class Store:
    """An open evaluation store. Use as a context manager; one writer process at a time per label."""

    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if self.path.is_dir():
            raise QuantdropError(f"--store {self.path} is a directory; give a file in it ({self.path}/eval.sqlite)")
        if (readonly or not create) and not self.path.is_file():
            raise QuantdropError(f"no evaluation store at {self.path}")
        if create and not self.path.parent.is_dir():
            raise QuantdropError(f"cannot create the store {self.path}: no directory {self.path.parent}")
        try:
            self.db = self._connect()
            tables = self._check_kind()
            found = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() if tables else None
        except sqlite3.DatabaseError as err:
            raise QuantdropError(f"{self.path} is not a quantdrop evaluation store ({err})") from None
        if found is not None and int(found[0]) != SCHEMA_VERSION:
            raise QuantdropError(f"{self.path} has store schema {found[0]}, this quantdrop reads {SCHEMA_VERSION}")
        if not readonly:
            self._prepare(tables)
        self._capped = "capped" if "capped" in self._columns("responses") else "0"

    def _prepare(self, tables: set[str]) -> None:
        """WAL, then the tables (new ones added to an older store) and the schema version in one
        transaction: a process opening the store at the same time sees all of the schema or none."""
        try:
            self._use_wal()
            self.db.executescript(
                f"BEGIN IMMEDIATE;{_SCHEMA}INSERT OR IGNORE INTO meta VALUES ('schema', '{SCHEMA_VERSION}');"
            )
            if "responses" in tables and "capped" not in self._columns("responses"):  # stores of 0.1
                self.db.execute("ALTER TABLE responses ADD COLUMN capped INTEGER NOT NULL DEFAULT 0")
            self.db.execute("COMMIT")
        except sqlite3.Error as err:
            self.db.close()
            raise StoreWriteError(f"cannot prepare the store {self.path}: {err}") from None

    def _use_wal(self, wait_s: float = 30.0) -> None:
        """Switch to WAL (+ NORMAL: a commit survives a killed process). The switch needs the file to
        itself and SQLite answers a busy file at once, not after its timeout, so it is retried."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.db.execute("PRAGMA synchronous=NORMAL")

    def _connect(self) -> sqlite3.Connection:
        """Read-write, or read-only (URI mode=ro). A reader of a store no writer has open (no -wal,
        no -shm beside it) opens it immutable, or SQLite would leave those two files behind."""
        if not self.readonly:
            return sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        side = [self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")]
        uri = self.path.resolve().as_uri() + "?mode=ro" + ("" if any(p.exists() for p in side) else "&immutable=1")
        return sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)

    def _check_kind(self) -> set[str]:
        """The file's tables; refuses another program's database (and, to read, an empty file)."""
        tables = {
            r[0]
            for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not r[0].startswith("sqlite_")
        }
        if not tables and not self.readonly:
            return tables  # a new (or empty) file becomes a store
        missing = (READ_TABLES if self.readonly else {"meta"}) - tables
        has_schema = "meta" in tables and self.db.execute("SELECT 1 FROM meta WHERE key='schema'").fetchone()
        if missing or not has_schema or (not self.readonly and tables - TABLES):
            what = "an empty file" if not tables else f"its tables are {', '.join(sorted(tables)[:5])}"
            self.db.close()
            raise QuantdropError(f"{self.path} is not a quantdrop evaluation store ({what})")
        return tables

    def _columns(self, table: str) -> set[str]:
        return {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """One transaction; any failure (disk full, a value SQLite refuses) becomes StoreWriteError."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                yield
        except QuantdropError:
            raise
        except Exception as err:
            raise StoreWriteError(
                f"cannot write {what} to the store {self.path}: {type(err).__name__}: {err}"
            ) from None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- runs ------------------------------------------------------------------------------------
    def open_run(
        self,
        *,
        label: str,
        benchmark: str,
        title: str,
        full_size: int,
        weight: float | None,
        fingerprint: dict[str, Any],
        protocol: dict[str, Any],
        loaded_from: str = "",
    ) -> int:
        """The id of the run (label, benchmark), created if new. A different model or protocol under
        the same label is refused: its numbers would not be one experiment."""
        with self._writing(f"run {label!r}/{benchmark}"):  # two processes at once: one inserts
            self.db.execute(
                "INSERT OR IGNORE INTO runs (label, benchmark, title, full_size, weight, fingerprint, protocol,"
                " loaded_from, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    label,
                    benchmark,
                    title,
                    full_size,
                    weight,
                    json.dumps(fingerprint, sort_keys=True),
                    json.dumps(protocol, sort_keys=True),
                    loaded_from,
                    time.time(),
                ),
            )
            row = self.db.execute(
                "SELECT id, fingerprint, protocol, loaded_from FROM runs WHERE label=? AND benchmark=?",
                (label, benchmark),
            ).fetchone()
        run_id = int(row[0])
        self._check_same_run(label, benchmark, json.loads(row[1]), json.loads(row[2]), fingerprint, protocol)
        if loaded_from and loaded_from != row[3]:
            with self._writing(f"run {label!r}/{benchmark}"):
                self.db.execute("UPDATE runs SET loaded_from=? WHERE id=?", (loaded_from, run_id))
        return run_id

    def _check_same_run(
        self,
        label: str,
        benchmark: str,
        old_fp: dict[str, Any],
        old_protocol: dict[str, Any],
        fingerprint: dict[str, Any],
        protocol: dict[str, Any],
    ) -> None:
        """Refuse to resume a stored run with another model or another protocol."""
        if not same_model(old_fp, fingerprint):
            raise QuantdropError(
                f"label {label!r} in {self.path} holds {benchmark} results of {describe(old_fp)}, not "
                f"{describe(fingerprint)}; use another --label or --store"
            )
        if old_protocol != protocol:
            diff = ", ".join(
                f"{k} {old_protocol.get(k)!r} there vs {protocol.get(k)!r} now"
                for k in sorted(set(old_protocol) | set(protocol))
                if old_protocol.get(k) != protocol.get(k)
            )
            raise QuantdropError(
                f"label {label!r} in {self.path} was evaluated on {benchmark} with a different protocol "
                f"({diff}); resuming would mix them: use another --label or --store, or the same options"
            )

    def add_items(self, run_id: int, item_ids: Iterable[str]) -> None:
        """Record the run's item set (in order); items already recorded keep their place."""
        with self._writing("the item list"):
            start = self.db.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM items WHERE run_id=?", (run_id,)
            ).fetchone()[0]
            known = {r[0] for r in self.db.execute("SELECT item_id FROM items WHERE run_id=?", (run_id,))}
            new = [i for i in item_ids if i not in known]
            self.db.executemany(
                "INSERT INTO items VALUES (?,?,?)", [(run_id, item, start + k) for k, item in enumerate(new)]
            )

    def runs(self, labels: Iterable[str] | None = None) -> list[Run]:
        rows = self.db.execute(
            "SELECT r.id, label, benchmark, title, full_size, weight, fingerprint, protocol, loaded_from,"
            " (SELECT COUNT(*) FROM items i WHERE i.run_id = r.id) FROM runs r ORDER BY r.id"
        ).fetchall()
        wanted = None if labels is None else list(labels)
        out = [Run(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]), r[8], r[9]) for r in rows]
        return out if wanted is None else [r for r in out if r.label in wanted]

    def item_ids(self, run_id: int) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT item_id FROM items WHERE run_id=? ORDER BY position", (run_id,))]

    # -- responses -------------------------------------------------------------------------------
    def done(self, run_id: int) -> dict[tuple[str, int], str | None]:
        """(item, sample) -> status of every stored response that needs no new request
        (a failed request, status 'error' with an error text, is asked again)."""
        return {
            (r[0], r[1]): r[2]
            for r in self.db.execute(
                "SELECT item_id, sample, status FROM responses WHERE run_id=? AND error IS NULL", (run_id,)
            )
        }

    def put_response(self, run_id: int, item_id: str, sample: int, seed: int, c: Completion) -> None:
        """Commit a response (or a failed request) now; it replaces only an earlier failed attempt."""
        self.put_responses(run_id, [(item_id, sample, seed, c)])

    def put_responses(self, run_id: int, rows: list[tuple[str, int, int, Completion]]) -> None:
        """Commit responses that arrived together, in one transaction: all or none of them. A stored
        answer is never replaced (by an error, or by a second answer): only a failed attempt is."""
        now = time.time()
        with self._writing(f"{len(rows)} responses"):
            self.db.executemany(
                "INSERT INTO responses (run_id, item_id, sample, seed, text, finish_reason, prompt_tokens,"
                " completion_tokens, latency_s, error, status, value, extracted, detail, created_at, capped)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL,NULL,NULL,?,?)"
                " ON CONFLICT (run_id, item_id, sample) DO UPDATE SET seed=excluded.seed, text=excluded.text,"
                " finish_reason=excluded.finish_reason, prompt_tokens=excluded.prompt_tokens,"
                " completion_tokens=excluded.completion_tokens, latency_s=excluded.latency_s,"
                " error=excluded.error, status=excluded.status, value=NULL, extracted=NULL, detail=NULL,"
                " created_at=excluded.created_at, capped=excluded.capped WHERE responses.error IS NOT NULL",
                [
                    (
                        run_id,
                        item,
                        k,
                        seed,
                        c.text,
                        c.finish_reason,
                        c.prompt_tokens,
                        c.completion_tokens,
                        c.latency_s,
                        c.error,
                        "error" if c.error else None,
                        now,
                        int(c.capped),
                    )
                    for item, k, seed, c in rows
                ],
            )

    def put_scores(self, run_id: int, scores: list[tuple[str, int, Score]]) -> None:
        """Store several scores in one commit (a failed request's row keeps its 'error')."""
        with self._writing(f"{len(scores)} scores"):
            self.db.executemany(
                "UPDATE responses SET status=?, value=?, extracted=?, detail=?"
                " WHERE run_id=? AND item_id=? AND sample=? AND error IS NULL",
                [(sc.status, sc.value, sc.extracted, sc.detail, run_id, item, k) for item, k, sc in scores],
            )

    def put_score(self, run_id: int, item_id: str, sample: int, score: Score) -> None:
        self.put_scores(run_id, [(item_id, sample, score)])

    # -- claims: one evaluating process per run -------------------------------------------------
    def claim(self, run_id: int, what: str) -> str:
        """Claim the run for this process (refused while another live process holds it); returns
        the token to `release` it. A claim of a dead process (kill -9, a crash) is taken over."""
        token = uuid.uuid4().hex
        with self._writing(f"the claim on {what}"):
            held = self.db.execute("SELECT owner, host, pid, proc FROM claims WHERE run_id=?", (run_id,)).fetchone()
            if held is not None and _alive(*held):
                raise QuantdropError(
                    f"{what} in {self.path} is being evaluated now by process {held[2]} on {held[1]}; "
                    "wait for it to finish (then re-run to resume) or use another --label"
                )
            self.db.execute(
                "INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?,?)",
                (run_id, token, socket.gethostname(), os.getpid(), _proc_id(os.getpid()), time.time()),
            )
        _HELD.add(token)
        return token

    def release(self, run_id: int, token: str) -> None:
        """Give the claim back (best effort: a claim left behind is taken over once we are gone)."""
        _HELD.discard(token)
        with suppress(sqlite3.Error):
            self.db.execute("DELETE FROM claims WHERE run_id=? AND owner=?", (run_id, token))

    def rows(self, run_id: int) -> list[Row]:
        return [
            Row(
                r[0],
                r[1],
                Completion(
                    text=r[2],
                    finish_reason=r[3],
                    prompt_tokens=r[4],
                    completion_tokens=r[5],
                    latency_s=r[6],
                    error=r[7],
                    capped=bool(r[11]),
                ),
                r[8],
                r[9],
                r[10],
            )
            for r in self.db.execute(
                "SELECT item_id, sample, text, finish_reason, prompt_tokens, completion_tokens, latency_s,"
                f" error, status, value, extracted, {self._capped} FROM responses WHERE run_id=?"
                " ORDER BY item_id, sample",
                (run_id,),
            )
        ]

    def answers(self, run_id: int) -> list[tuple[str, int, str, str | None]]:
        """(item, sample, status, extracted answer) of every scored response (not failed requests, not
        unscored ones): what answer agreement compares, without the response texts."""
        return [
            (r[0], int(r[1]), r[2], r[3])
            for r in self.db.execute(
                "SELECT item_id, sample, status, extracted FROM responses WHERE run_id=?"
                " AND status IN ('correct', 'wrong', 'unextracted') ORDER BY item_id, sample",
                (run_id,),
            )
        ]


def _proc_id(pid: int) -> str:
    """The boot id and start time of `pid` (Linux /proc), so a pid reused later is told apart; ""
    where /proc is not there."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"  # field 22, starttime, after "(comm)"
    except (OSError, IndexError):
        return ""


def _alive(owner: str, host: str, pid: int, proc: str) -> bool:
    """Whether a claim's process still runs. Another host's cannot be checked: taken as alive."""
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        return owner in _HELD
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's live process
    return not proc or _proc_id(pid) == proc
