"""CMMLU: 11,582 Chinese four-option test questions over 67 subjects (Li et al., "CMMLU: Measuring massive
multitask language understanding in Chinese", arXiv 2306.09212); a general-capability benchmark of
"Quantitative Analysis of Performance Drop in DeepSeek Model Quantization" (arXiv 2505.02390), weight 1,
one sample.

Data: hub `haonan-li/cmmlu`, one config per subject, test split (Question, A, B, C, D, Answer), or its own
archive layout under `--data-dir` (cmmlu/test/<subject>.csv). No packaged fallback exists. Item ids are
"<subject>/<row number in the subject>". Prompt: the multiple-choice template in Chinese ("答案：X").
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.eval.benchmarks._base import CHOICE_PLACEHOLDERS, CHOICE_TEMPLATE_ZH, ChoiceBenchmark
from quantdrop.eval.benchmarks._data import DataSource, subject_of
from quantdrop.eval.scoring.choice import LETTERS
from quantdrop.eval.scoring.text import resolve_template
from quantdrop.eval.types import Item

HUB_ID = "haonan-li/cmmlu"
REQUIRED = ("Question", "A", "B", "C", "D", "Answer")
# The 67 subjects (the hub's config names), as in lm-evaluation-harness' cmmlu task list.
SUBJECTS = (
    "agronomy",
    "anatomy",
    "ancient_chinese",
    "arts",
    "astronomy",
    "business_ethics",
    "chinese_civil_service_exam",
    "chinese_driving_rule",
    "chinese_food_culture",
    "chinese_foreign_policy",
    "chinese_history",
    "chinese_literature",
    "chinese_teacher_qualification",
    "clinical_knowledge",
    "college_actuarial_science",
    "college_education",
    "college_engineering_hydrology",
    "college_law",
    "college_mathematics",
    "college_medical_statistics",
    "college_medicine",
    "computer_science",
    "computer_security",
    "conceptual_physics",
    "construction_project_management",
    "economics",
    "education",
    "electrical_engineering",
    "elementary_chinese",
    "elementary_commonsense",
    "elementary_information_and_technology",
    "elementary_mathematics",
    "ethnology",
    "food_science",
    "genetics",
    "global_facts",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_geography",
    "high_school_mathematics",
    "high_school_physics",
    "high_school_politics",
    "human_sexuality",
    "international_law",
    "journalism",
    "jurisprudence",
    "legal_and_moral_basis",
    "logical",
    "machine_learning",
    "management",
    "marketing",
    "marxist_theory",
    "modern_chinese",
    "nutrition",
    "philosophy",
    "professional_accounting",
    "professional_law",
    "professional_medicine",
    "professional_psychology",
    "public_relations",
    "security_study",
    "sociology",
    "sports_science",
    "traditional_chinese_medicine",
    "virology",
    "world_history",
    "world_religions",
)


class Cmmlu(ChoiceBenchmark):
    name = "cmmlu"
    title = "CMMLU"
    full_size = 11582
    default_samples = 1
    weight = 1.0
    data = DataSource(HUB_ID, "test", SUBJECTS, REQUIRED)

    def load(self, data_dir: Path | str | None = None) -> list[Item]:
        rows, self.loaded_from = self._rows(data_dir)
        items, counts = [], Counter()
        for number, row in enumerate(rows, 1):
            subject = subject_of(row)
            answer = str(row["Answer"]).strip()
            if answer not in LETTERS:
                raise QuantdropError(
                    f"cmmlu row {number} ({subject}): 'Answer' must be one of A-D, got {row['Answer']!r}"
                )
            choices = [str(row[letter]) for letter in LETTERS]
            items.append(self.item(f"{subject}/{counts[subject]}", row["Question"], choices, answer, subject=subject))
            counts[subject] += 1
        return items


def create(*, template: str | None = None, data_dir: Path | str | None = None, **_: Any) -> Cmmlu:
    return Cmmlu(
        template=resolve_template(template, CHOICE_TEMPLATE_ZH, CHOICE_PLACEHOLDERS, "cmmlu"),
        data_dir=Path(data_dir) if data_dir is not None else None,
    )
