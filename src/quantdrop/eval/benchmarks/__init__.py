"""The benchmark registry: a CLI name -> the module that implements it, imported lazily.

Every benchmark module defines `create(**options) -> Benchmark` (see quantdrop.eval.types) and ignores
options it does not know (`data_dir`, `template`, `split`, `release`, ...).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.eval.types import Benchmark

BENCHMARKS: dict[str, str] = {
    "math500": "quantdrop.eval.benchmarks.math500",
    "aime2024": "quantdrop.eval.benchmarks.aime2024",
    "gpqa": "quantdrop.eval.benchmarks.gpqa",
    "mmlu": "quantdrop.eval.benchmarks.mmlu",
    "cmmlu": "quantdrop.eval.benchmarks.cmmlu",
    "ceval": "quantdrop.eval.benchmarks.ceval",
    "humaneval": "quantdrop.eval.benchmarks.humaneval",
    "mbpp": "quantdrop.eval.benchmarks.mbpp",
    "mbppplus": "quantdrop.eval.benchmarks.mbppplus",
    "livecodebench": "quantdrop.eval.benchmarks.livecodebench",
}


@functools.cache
def declared_weight(name: str) -> float | None:
    """The weight a registered benchmark's class declares (the paper's Appendix A.2; the one home of
    the weights), None for a name not registered."""
    key = name.strip().lower()
    return float(get_benchmark(key).weight) if key in BENCHMARKS else None


def get_benchmark(name: str, **options: Any) -> Benchmark:
    """The benchmark called `name`, created with `options` (unknown options are ignored)."""
    key = name.strip().lower()
    if key not in BENCHMARKS:
        raise QuantdropError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    return importlib.import_module(BENCHMARKS[key]).create(**options)
