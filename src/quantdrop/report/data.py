"""What a report shows, as plain typed data (filled by `quantdrop study` from plan, eval results, proxies).

Percentages are on a 0-100 scale, sizes in bytes. Every section is optional except the model's name:
a report of sizes alone (no evaluation yet) is still a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quantdrop.proxy_result import ProxyResult
from quantdrop.recommend import DeviceSet, Placement, Recommendation  # their home: the one policy


@dataclass(frozen=True)
class Speed:
    """A variant's throughput (quantdrop.speed) on the machine that ran the study: tokens/s."""

    pp_test: str  # e.g. "pp512"
    pp: float | None
    pp_std: float | None
    tg_test: str  # e.g. "tg128"
    tg: float | None
    tg_std: float | None
    where: str  # in-process, or through the variant's engine


@dataclass(frozen=True)
class SizeRow:
    """One column of the paper's Table 1."""

    label: str  # recipe, e.g. "Q4_K_M"
    size_bytes: int
    bpw: float
    placements: dict[str, Placement] = field(default_factory=dict)  # device set name -> placement


@dataclass(frozen=True)
class BenchmarkRow:
    """A row of Table 2: `label` says when a set is partial, e.g. "MATH-500 (311/500)"."""

    title: str
    weight: float  # the paper's Appendix A.2 weight
    label: str = ""

    @property
    def display(self) -> str:
        return self.label or self.title


@dataclass(frozen=True)
class Cell:
    """Accuracy of one variant on one benchmark: mean (and std) over sampling runs."""

    mean: float
    std: float | None = None
    n: int = 0  # items scored per run
    runs: int = 1
    differs: bool | None = None  # the paired CI of the difference from the baseline excludes 0
    complete: bool = True  # False: requests pending or failed
    ci: tuple[float, float] | None = None  # bootstrap CI of the mean over items, percent


@dataclass(frozen=True)
class Evidence:
    """What one variant's difference from the baseline on one benchmark rests on (quantdrop.eval.evidence):
    answer agreement with its CI (percent), flips, and the power of the paired comparison."""

    agreement: tuple[float, float, float]  # value, low, high
    right_to_wrong: int
    wrong_to_right: int
    pairs: int
    items: int
    mde: float | None  # minimal detectable drop, points (alpha 0.05, 80% power); None: not computable
    too_few_items: bool
    plan: tuple[int, int] | None = None  # (items, samples) to detect `ResultsTable.target_drop`
    mode: str = "generate"
    full_size: int = 0  # items in the whole benchmark (the plan's ceiling)


@dataclass(frozen=True)
class VariantColumn:
    """One column of Table 2 with its summary rows; `drop` is relative to the baseline, in percent."""

    label: str
    cells: dict[str, Cell]  # benchmark title -> cell
    average: float | None = None
    weighted_avg: float | None = None
    drop: float | None = None
    drop_ci: tuple[float, float] | None = None  # paired bootstrap CI of the drop, percent
    significant: bool | None = None  # the drop's CI excludes 0: the variant is surely worse
    weighted_differs: bool | None = None  # the paired CI of the weighted avg.'s difference excludes 0
    too_few_items: bool = False  # every benchmark it shares with the baseline has too few items to say anything


@dataclass(frozen=True)
class ResultsTable:
    """The paper's Table 2: benchmarks x variants, the baseline first."""

    benchmarks: list[BenchmarkRow]
    columns: list[VariantColumn]
    baseline: str | None = None
    ci_level: float = 0.95
    evidence: dict[tuple[str, str], Evidence] = field(default_factory=dict)  # (benchmark title, label)
    noise_floor: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # title -> baseline's
    target_drop: float | None = None  # points, for the items/samples plan


@dataclass
class ReportData:
    """Everything `write_report` renders."""

    model: str
    note: str = ""  # e.g. "reference rebuilt from a 4-bit file"
    device_sets: list[DeviceSet] = field(default_factory=list)
    sizes: list[SizeRow] = field(default_factory=list)
    results: ResultsTable | None = None
    proxies: dict[str, ProxyResult] = field(default_factory=dict)  # variant label -> result
    reference_label: str = "reference"
    recommendations: list[Recommendation] | None = None  # None: derived by report.recommend
    notes: list[str] = field(default_factory=list)  # sandbox isolation, partial datasets, ...
    speed: dict[str, Speed] = field(default_factory=dict)  # variant label -> throughput
    speed_machine: str = ""  # the machine the speeds were measured on
    prefer: str = "quality"  # what the recommendation weighs: quality (the paper), speed or balanced
