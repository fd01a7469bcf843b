"""How fast the sandbox runs small programs: executions per second and the overhead per execution.

    .venv/bin/python benchmarks/sandbox_speed.py [--runs 40]

Measures, on this machine: a bare interpreter start (`python -I -S -B -c pass`, the sandbox's flags, no
sandbox) as the floor; one
sandboxed `pass` at a time (the overhead per execution is the difference); small programs through the
bounded pool at its default parallelism (the number of cores); and HumanEval checks (candidate + harness,
two processes) through the pool. Prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from quantdrop import sandbox
from quantdrop.sandbox._isolation import python_executable

SMALL = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nprint(fib(15))\n"


def _bare_start(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([python_executable(), "-I", "-S", "-B", "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return times


def _sequential(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = sandbox.run("pass")
        assert result.ok, result
        times.append(time.perf_counter() - start)
    return times


def _pool_rate(runs: int) -> float:
    start = time.perf_counter()
    with sandbox.SandboxPool() as pool:
        results = pool.map([(SMALL, {})] * runs)
    assert all(r.ok and r.stdout == "610\n" for r in results)
    return runs / (time.perf_counter() - start)


def _humaneval_rate(runs: int) -> float:
    from quantdrop.eval.benchmarks.humaneval import check, package_rows

    problems = package_rows()[0][:runs]
    start = time.perf_counter()
    with ThreadPoolExecutor(sandbox.parallelism()) as pool:
        verdicts = list(pool.map(lambda p: check(p, p["canonical_solution"])[0], problems))
    assert all(verdicts)
    return len(problems) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    iso = sandbox.isolation()
    sandbox.run("pass")  # warm the page cache
    bare = statistics.median(_bare_start(args.runs))
    one = statistics.median(_sequential(args.runs))
    rate = _pool_rate(args.runs)
    humaneval = _humaneval_rate(args.runs)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}; isolation: {iso.level}; "
        f"pool parallelism: {sandbox.parallelism()}"
    )
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; runs per measurement: {args.runs}\n")
    print("| measurement | value |")
    print("| --- | --- |")
    print(f"| bare interpreter start, same flags, no sandbox (median) | {bare * 1000:.0f} ms |")
    print(f"| one sandboxed `pass`, sequential (median) | {one * 1000:.0f} ms |")
    print(f"| overhead per execution (difference) | {(one - bare) * 1000:.0f} ms |")
    print(f"| load average while measuring (1 min) | {os.getloadavg()[0]:.1f} |")
    print(f"| small programs through the pool | {rate:.1f} executions/s |")
    print(f"| HumanEval checks (candidate + harness) through the pool | {humaneval:.1f} problems/s |")


if __name__ == "__main__":
    main()
