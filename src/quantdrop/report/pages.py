"""report.md and report.html from report.json's document: one section list (`sections`), one renderer
per format, the tables of `tables.py` with their one legend. The renderers read the document only
(through `jsonout.load`), so every value the pages show is in report.json, and a saved report.json
renders to the same pages again (`quantdrop.report.render`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quantdrop.report import htmlpage, tables
from quantdrop.report.data import ReportData
from quantdrop.report.jsonout import load
from quantdrop.report.tables import Table

CAPTIONS = {
    "quality-vs-size": (
        "Quality against size. Red: the Pareto front (no other variant is both smaller and "
        "better). Dashed lines: the largest model each device set holds, its memory less the "
        "KV cache and buffers of Table 1."
    ),
    "quality-vs-speed": (
        "Quality against generation speed ({test} tokens/s, {machine}). Red: the Pareto front "
        "(no other variant is both faster and better)."
    ),
    "benchmark-bars": "Accuracy per benchmark; error bars: std over sampling runs.",
}


@dataclass(frozen=True)
class Figure:
    name: str
    png: bytes
    caption: str


Block = Table | Figure


def caption(name: str, data: ReportData) -> str:
    """A figure's caption; the speed plot names its test and the machine it was measured on."""
    test = next((s.tg_test for s in data.speed.values() if s.tg is not None), "tg")
    return CAPTIONS[name].format(test=test, machine=data.speed_machine)


def sections(data: ReportData, figures: Mapping[str, bytes]) -> list[tuple[str, list[Block]]]:
    """(heading, blocks) in the pages' order; empty sections are left out."""
    figs = {name: Figure(name, png, caption(name, data)) for name, png in figures.items()}

    def blocks(*items: Table | str | None) -> list[Block]:
        return [
            figs[b] if isinstance(b, str) else b
            for b in items
            if b is not None and (not isinstance(b, str) or b in figs)
        ]

    res = data.results
    out = [
        ("Recommendations", blocks(tables.recommendations_table(data.recommendations or []))),
        ("Size and memory", blocks(tables.sizes_table(data))),
        ("Accuracy", blocks(tables.results_table(data), "benchmark-bars")),
        ("Evidence", blocks(tables.evidence_table(res) if res is not None else None)),
        ("Quality proxies", blocks(tables.proxies_table(data))),
        ("Quality against size", blocks("quality-vs-size")),
        ("Quality against speed", blocks("quality-vs-speed")),
    ]
    return [(heading, items) for heading, items in out if items]


def _figures(data: ReportData, figures: Mapping[str, bytes] | None) -> Mapping[str, bytes]:
    if figures is not None:
        return figures
    from quantdrop.report import plots  # matplotlib: only when the figures are not given

    return plots.figures(data)


def markdown(data: ReportData, figures: Mapping[str, bytes]) -> str:
    md = [f"# quantdrop report: {data.model}", ""]
    if data.note:
        md += [f"_{data.note}_", ""]
    for heading, items in sections(data, figures):
        md += [f"## {heading}", ""]
        md += [
            b.markdown() if isinstance(b, Table) else f"![{b.caption}](figures/{b.name}.png)\n\n*{b.caption}*\n"
            for b in items
        ]
    if data.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in data.notes] + [""]
    return "\n".join(md)


def html(data: ReportData, figures: Mapping[str, bytes], generated: str) -> str:
    parts = [
        (heading, [b if isinstance(b, Table) else (b.name, b.png, b.caption) for b in items])
        for heading, items in sections(data, figures)
    ]
    return htmlpage.page(data.model, data.note, parts, data.notes, generated)


def render_markdown(doc: Mapping[str, Any], figures: Mapping[str, bytes] | None = None) -> str:
    """report.md from report.json's document; `figures` (name -> PNG) drawn from it when not given."""
    data = load(doc)
    return markdown(data, _figures(data, figures))


def render_html(doc: Mapping[str, Any], figures: Mapping[str, bytes] | None = None) -> str:
    """The self-contained report.html from report.json's document (figures embedded)."""
    data = load(doc)
    return html(data, _figures(data, figures), doc.get("generated", ""))
