"""The study's report: the paper's Table 1 and Table 2, the quality proxies, figures, recommendations.

`write_report(out_dir, ReportData(...))` writes report.html (self-contained), report.md, figures/*.png
and tidy CSVs; `recommend(data)` gives the per-device-set choice the report shows.
"""

from quantdrop.report.data import (
    BenchmarkRow,
    Cell,
    DeviceSet,
    Placement,
    Recommendation,
    ReportData,
    ResultsTable,
    SizeRow,
    VariantColumn,
)
from quantdrop.report.recommend import recommend
from quantdrop.report.writer import write_report

__all__ = [
    "BenchmarkRow",
    "Cell",
    "DeviceSet",
    "Placement",
    "Recommendation",
    "ReportData",
    "ResultsTable",
    "SizeRow",
    "VariantColumn",
    "recommend",
    "write_report",
]
