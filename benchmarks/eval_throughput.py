"""Runner throughput: requests per second and per-request overhead against a fake server with a fixed
latency, at concurrency 1..256 (the full pipeline: HTTP, SQLite commit per response, scoring).

    .venv/bin/python benchmarks/eval_throughput.py [--latency 0.05] [--seconds 2] [--json FILE]

The fake OpenAI-compatible server (tests/eval/fake_openai.py) runs in its own process and answers
every request after `latency` seconds, so the ideal rate is concurrency / latency; the overhead is
concurrency / measured rate - latency. The rate is taken from the stored responses' commit times
(first to last), so process start-up and model checks do not count. "runner CPU ms/req" is the
CPU time of this process (runner, HTTP client, store, scoring) per request: the rate one free core
could sustain is 1000 / that, whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from quantdrop.eval.types import Completion, Item, Message, Score

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "eval" / "fake_openai.py"
LEVELS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Sums:
    """n "What is A + B?" items; the fake server answers them right."""

    name, title, default_samples, weight = "sums", "Sums", 1, 1.0

    def __init__(self, n: int = 100, **_: object) -> None:
        self.n = self.full_size = n
        self.loaded_from = "generated"

    def load(self, data_dir: Path | None = None) -> list[Item]:
        return [Item(id=f"s{i}", prompt=f"What is {i} + {i}?", target=2 * i) for i in range(self.n)]

    def messages(self, item: Item) -> list[Message]:
        return [{"role": "user", "content": item.prompt}]

    def score(self, item: Item, completion: Completion) -> Score:
        ok = completion.text.rstrip(".").endswith(str(item.target))
        return Score(float(ok), "correct" if ok else "wrong")


def create(**options: object) -> Sums:
    return Sums(n=int(os.environ.get("QD_BENCH_ITEMS", "100")), **options)


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(FAKE), "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit("the fake server did not start")
    return proc, url


def measure(url: str, concurrency: int, n: int, store: Path) -> float:
    """Requests per second at `concurrency`, from the commit times of `n` stored responses."""
    from quantdrop.eval.runner import evaluate

    os.environ["QD_BENCH_ITEMS"] = str(n)
    evaluate(
        endpoint=[url],
        bench=["eval_throughput:create"],
        label=f"c{concurrency}",
        store=str(store),
        concurrency=concurrency,
        samples=1,
        max_tokens=16,
        progress=False,
    )
    with sqlite3.connect(store) as db:
        first, last, count = db.execute(
            "SELECT MIN(r.created_at), MAX(r.created_at), COUNT(*) FROM responses r"
            " JOIN runs ON runs.id = r.run_id WHERE runs.label = ? AND r.status = 'correct'",
            (f"c{concurrency}",),
        ).fetchone()
    if count != n:
        raise SystemExit(f"concurrency {concurrency}: {count} of {n} responses correct")
    return (count - concurrency) / (last - first)  # the first `concurrency` responses arrive together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request (s)")
    parser.add_argument("--seconds", type=float, default=2.0, help="ideal duration of each level")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=list(LEVELS))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    server, url = start_server(args.latency)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"fake server {url}, latency {args.latency * 1000:.0f} ms; cpus {os.cpu_count()}", flush=True)
            print(
                f"{'concurrency':>11} {'requests':>8} {'req/s':>9} {'ideal':>8} {'of ideal':>8} "
                f"{'overhead ms/req':>15} {'runner CPU ms/req':>17}"
            )
            for c in args.levels:
                ideal = c / args.latency
                n = max(4 * c, min(int(ideal * args.seconds), 6000))
                t0, cpu0 = time.perf_counter(), time.process_time()
                rps = measure(url, c, n, Path(tmp) / "eval.sqlite")
                cpu_ms = 1000 * (time.process_time() - cpu0) / n  # the runner's own CPU per request
                overhead = 1000 * (c / rps - args.latency)
                rows.append(
                    {
                        "concurrency": c,
                        "requests": n,
                        "rps": rps,
                        "ideal_rps": ideal,
                        "fraction_of_ideal": rps / ideal,
                        "overhead_ms": overhead,
                        "cpu_ms": cpu_ms,
                        "wall_s": time.perf_counter() - t0,
                    }
                )
                print(
                    f"{c:>11} {n:>8} {rps:>9.1f} {ideal:>8.0f} {rps / ideal:>8.1%} {overhead:>15.2f} {cpu_ms:>17.3f}",
                    flush=True,
                )
    finally:
        server.kill()
        server.wait()
    if args.json:
        Path(args.json).write_text(json.dumps({"latency_s": args.latency, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
