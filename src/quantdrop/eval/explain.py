"""`quantdrop results --explain BENCH/ITEM[#SAMPLE]`: audit the verdicts of one item's stored responses.

For each stored response (every label, or `--labels`; every sample, or `#SAMPLE`) it prints the answer the
benchmark's extractor takes from the response, the rule that produced it (quantdrop.eval.scoring: choice
rules, math boxes, code blocks) and the verdict stored with it. When the benchmark's items can be loaded
offline (from `--data-dir`, or a package that ships them) it also scores the response again, so a verdict
that today's scorer would give differently shows as "now: ... (stored: ...)". Nothing is downloaded and
the store is only read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdrop.errors import QuantdropError
from quantdrop.eval.scoring.text import Extraction
from quantdrop.eval.store import Run, Store
from quantdrop.eval.types import Item, Score

_OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_CODE_LINES = 40  # lines of an extracted program shown


@dataclass(frozen=True)
class Explained:
    label: str
    sample: int
    extraction: Extraction | None  # None: the benchmark has no explain()
    stored: tuple[str | None, str | None]  # (status, extracted) as stored
    now: Score | None  # scored again (items loaded), else None
    finish_reason: str


def parse_spec(spec: str) -> tuple[str, str, int | None]:
    """ "mmlu/abstract_algebra/3#1" -> ("mmlu", "abstract_algebra/3", 1); the item id may contain "/"."""
    head, sep, sample = spec.rpartition("#") if "#" in spec else (spec, "", "")
    bench, slash, item = head.partition("/")
    if not slash or not bench or not item:
        raise QuantdropError(f"--explain takes BENCHMARK/ITEM_ID[#SAMPLE], got {spec!r}")
    if sep and not sample.isdigit():
        raise QuantdropError(f"--explain: the sample after '#' must be a number, got {sample!r}")
    return bench, item, int(sample) if sep else None


def explain_item(
    store: str | Path, spec: str, labels: list[str] | None = None, data_dir: str | Path | None = None
) -> tuple[str, list[Explained], str]:
    """(benchmark, explanations, where the items came from or why they were not loaded)."""
    bench_key, item_id, sample = parse_spec(spec)
    with Store(store, readonly=True) as db:
        runs = [r for r in db.runs(labels) if r.benchmark == bench_key]
        if not runs:
            known = sorted({r.benchmark for r in db.runs()})
            raise QuantdropError(
                f"no {bench_key!r} runs in {store}"
                + (f" for labels {', '.join(labels)}" if labels else "")
                + f" (benchmarks: {', '.join(known) or 'none'})"
            )
        rows = [
            (run, row)
            for run in runs
            for row in db.rows(run.id)
            if row.item_id == item_id and (sample is None or row.sample == sample)
        ]
    if not rows:
        raise QuantdropError(
            f"no stored response for {bench_key} item {item_id!r}"
            + (f" sample {sample}" if sample is not None else "")
            + f" in {store}"
        )
    bench, item, source = _benchmark(runs[0], item_id, data_dir)
    out = []
    for run, row in rows:
        explain = getattr(bench, "explain", None)
        extraction = explain(item, row.completion) if explain is not None else None
        now = bench.score(item, row.completion) if item is not None and not row.completion.error else None
        out.append(
            Explained(run.label, row.sample, extraction, (row.status, row.extracted), now, row.completion.finish_reason)
        )
    return bench_key, out, source


def _benchmark(run: Run, item_id: str, data_dir: str | Path | None) -> tuple[Any, Item | None, str]:
    """The run's benchmark (with the options it ran with) and the item, if it loads offline."""
    from quantdrop.eval.runner import get_benchmark

    options = dict(run.protocol.get("options") or {})
    options["data_dir"] = Path(data_dir) if data_dir else None
    name = run.benchmark
    try:
        bench = get_benchmark(name, **options)
    except QuantdropError:
        name = name.split("-")[0]  # "ceval-test": the split is in the options
        bench = get_benchmark(name, **options)
    try:
        with _offline():
            items = bench.load(options["data_dir"])
    except QuantdropError as err:
        return bench, None, f"items not loaded ({err}); verdicts are the stored ones"
    item = next((i for i in items if i.id == item_id), None)
    where = getattr(bench, "loaded_from", "") or "loaded"
    return bench, item, (where if item else f"item {item_id!r} is not in {where}; verdicts are the stored ones")


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in _OFFLINE}
    os.environ.update(dict.fromkeys(_OFFLINE, "1"))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def format_explained(bench: str, item_id: str, rows: list[Explained], source: str) -> str:
    lines = [f"{bench}/{item_id}  ({source})"]
    for r in rows:
        lines.append(f"\n[{r.label} sample {r.sample}]" + ("  (truncated)" if r.finish_reason == "length" else ""))
        if r.extraction is None:
            lines.append("  rule:      (this benchmark has no explain)")
        else:
            lines.append(f"  rule:      {r.extraction.rule}")
            if r.extraction.evidence:
                lines.append(f"  matched:   {_one_line(r.extraction.evidence)}")
            lines += _answer_lines(r.extraction.answer)
        status, extracted = r.stored
        stored = f"{status or 'not scored'}" + (
            f" ({_one_line(extracted)})" if extracted and "\n" not in extracted else ""
        )
        if r.now is None:
            lines.append(f"  verdict:   {stored} (stored)")
        else:
            same = "" if r.now.status == status else f" (stored: {stored})"
            detail = f" - {_one_line(r.now.detail)}" if r.now.detail else ""
            lines.append(f"  verdict:   {r.now.status}{detail}{same}")
    return "\n".join(lines)


def _answer_lines(answer: str | None) -> list[str]:
    if answer is None:
        return ["  extracted: (nothing)"]
    if "\n" not in answer.rstrip("\n"):
        return [f"  extracted: {answer}"]
    code = answer.rstrip("\n").split("\n")
    shown = [f"    | {line}" for line in code[:_CODE_LINES]]
    more = [f"    | ... ({len(code) - _CODE_LINES} more lines)"] if len(code) > _CODE_LINES else []
    return ["  extracted:", *shown, *more]


def _one_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def explain_text(
    store: str | Path, spec: str, labels: list[str] | None = None, data_dir: str | Path | None = None
) -> str:
    """The printed report of `quantdrop results --explain`."""
    bench, rows, source = explain_item(store, spec, labels, data_dir)
    return format_explained(bench, parse_spec(spec)[1], rows, source)
