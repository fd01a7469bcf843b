"""The study's report: the paper's Table 1 and Table 2, the quality proxies, figures, recommendations.

`write_report(out_dir, ReportData(...))` writes report.json and, rendered from it, report.html
(self-contained), report.md, figures/*.png and tidy CSVs; `render(report.json, out_dir)` renders a saved
one again (`render_markdown(doc)`, `render_html(doc)`: one page from the document);
`report_data(model, plan=, results=, proxies=)` fills ReportData from the other verbs; `recommend(data)`
gives the per-device-set choice the report shows.
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

_LAZY = {"write_report": "writer", "render": "writer", "render_markdown": "pages", "render_html": "pages"}


def __getattr__(name: str) -> object:
    # the writer pulls in matplotlib (half a second): only when a report is written
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"quantdrop.report.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'quantdrop.report' has no attribute {name!r}")


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
    "render",
    "render_html",
    "render_markdown",
    "report_data",
    "write_report",
]
