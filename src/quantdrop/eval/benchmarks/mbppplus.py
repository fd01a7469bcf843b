"""MBPP+ (EvalPlus, arXiv 2305.01210): MBPP's 378 tasks of MbppPlus v0.2.0 scored on the base AND the plus
tests (EvalPlus's "Base + Extra"; many tools run only the base tests under this name: we do not); one of
the code benchmarks of arXiv 2505.02390, weight 0.5, 4 samples. Data, prompt and checks: see `mbpp`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantdrop.eval.benchmarks.mbpp import TEMPLATE, Mbpp
from quantdrop.eval.scoring.text import resolve_template


class MbppPlus(Mbpp):
    name = "mbppplus"
    title = "MBPP+"
    plus = True


def create(*, template: str | None = None, data_dir: Path | str | None = None, **_: Any) -> MbppPlus:
    return MbppPlus(
        template=resolve_template(template, TEMPLATE, ("prompt",), "mbppplus"),
        data_dir=Path(data_dir) if data_dir is not None else None,
    )
