"""GPQA-Diamond: 198 graduate-level, "Google-proof" multiple-choice questions in biology, physics and
chemistry (Rein et al., arXiv 2311.12022); one of the reasoning benchmarks of "Quantitative Analysis of
Performance Drop in DeepSeek Model Quantization" (arXiv 2505.02390), weight 0.5, 4 samples.

Data: hub `Idavidrein/gpqa`, config `gpqa_diamond` (train split; Question, Correct Answer, Incorrect
Answer 1..3, Record ID, ...). The dataset is gated and its authors ask that its questions not be published
in plain text, so there is no packaged fallback: use the hub or `--data-dir`. The four choices are shown in
an order derived from the question's Record ID (SHA-256), so every variant and every sample sees the same
order, as simple-evals' gpqa_eval does with its fixed-seed permutation. Prompt: simple-evals' template.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from quantdrop.eval.benchmarks._base import CHOICE_PLACEHOLDERS, CHOICE_TEMPLATE, ChoiceBenchmark
from quantdrop.eval.benchmarks._data import DataSource
from quantdrop.eval.scoring.choice import LETTERS
from quantdrop.eval.scoring.text import resolve_template
from quantdrop.eval.types import Item

HUB_ID = "Idavidrein/gpqa"
HUB_CONFIG = "gpqa_diamond"
ANSWER_FIELDS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
REQUIRED = ("Question", *ANSWER_FIELDS, "Record ID")


def choice_order(record_id: str) -> list[int]:
    """The display order of [correct, incorrect 1, 2, 3] for one question, fixed by its id."""
    return sorted(range(4), key=lambda i: hashlib.sha256(f"gpqa/{record_id}/{i}".encode()).digest())


class Gpqa(ChoiceBenchmark):
    name = "gpqa"
    title = "GPQA-Diamond"
    full_size = 198
    default_samples = 4
    weight = 0.5
    data = DataSource(HUB_ID, "train", HUB_CONFIG, REQUIRED)  # gated, and no packaged copy

    def load(self, data_dir: Path | str | None = None) -> list[Item]:
        rows, self.loaded_from = self._rows(data_dir)
        items = []
        for row in rows:
            record_id = str(row["Record ID"]).strip()
            order = choice_order(record_id)
            answers = [str(row[field]).strip() for field in ANSWER_FIELDS]
            domain, subdomain = row.get("High-level domain", ""), row.get("Subdomain", "")
            choices = [answers[i] for i in order]
            target = LETTERS[order.index(0)]
            items.append(self.item(record_id, row["Question"], choices, target, domain=domain, subdomain=subdomain))
        return items


def create(*, template: str | None = None, data_dir: Path | str | None = None, **_: Any) -> Gpqa:
    return Gpqa(
        template=resolve_template(template, CHOICE_TEMPLATE, CHOICE_PLACEHOLDERS, "gpqa"),
        data_dir=Path(data_dir) if data_dir is not None else None,
    )
