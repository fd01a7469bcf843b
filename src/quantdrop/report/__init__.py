"""The study's report: the paper's Table 1 and Table 2, the quality proxies, figures, recommendations.

`write_report(out_dir, ReportData(...))` writes report.html (self-contained), report.md, figures/*.png
and tidy CSVs; `report_data(model, plan=, results=, proxies=)` fills ReportData from the other verbs;
`recommend(data)` gives the per-device-set choice the report shows.
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
from quantdrop.report.sources import from_plan, from_results, report_data
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
    "from_plan",
    "from_results",
    "recommend",
    "report_data",
    "write_report",
]
