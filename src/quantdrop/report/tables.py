"""The report's tables as data (`Table`), rendered to Markdown and HTML; the paper's layout.

Table 1: metrics x variants (size, average bits, memory total and per device for each device set).
Table 2: benchmarks x variants, "mean (±std)", then Average, Weighted avg. and Accuracy drop. This is
the one Table 2 renderer, with the one legend: `quantdrop results`, `quantdrop eval` and the study's
summary print `table2(...)`, the report shows it.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from quantdrop.report.data import Cell, Evidence, Recommendation, ReportData, ResultsTable, VariantColumn
from quantdrop.util import fmt_bytes

DASH = "–"
DIFFERS = "*"  # the paired CI of the difference from the baseline excludes 0 (a drop: significant)
INCOMPLETE = "†"  # requests pending or failed
TOO_FEW = "too few items"  # instead of a drop that no number of this size could support


def fmt_pct(x: float) -> str:
    """Two decimals, never "-0.00"."""
    s = f"{x:.2f}"
    return "0.00" if s == "-0.00" else s


def fmt_score(mean: float, std: float | None) -> str:
    """The paper's cell: "95.45 (±0.82)", or "90.99" for a single run."""
    return f"{mean:.2f}" if std is None else f"{mean:.2f} (±{std:.2f})"


@dataclass
class Table:
    """A titled grid of strings; `strong` cells are emphasised, `bad` cells flagged (e.g. does not fit)."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    strong: set[tuple[int, int]] = field(default_factory=set)
    bad: set[tuple[int, int]] = field(default_factory=set)
    text_columns: int = 1  # leading columns of words, left-aligned; the rest are numbers
    legend: list[str] = field(default_factory=list)  # lines after the caption: what the marks mean

    def markdown(self, pad: bool = False) -> str:
        """GitHub Markdown; `pad` aligns the columns for a terminal."""

        def esc(s: str) -> str:
            return s.replace("|", "\\|")

        def cell(r: int, c: int, s: str) -> str:
            strong = (r, c) in self.strong and s not in ("", DASH)
            return f"**{esc(s).replace('*', chr(92) + '*')}**" if strong else esc(s)

        grid = [[esc(c) for c in self.columns]]
        grid += [[cell(r, c, s) for c, s in enumerate(row)] for r, row in enumerate(self.rows)]
        widths = [max(len(row[i]) for row in grid) if pad else 0 for i in range(len(self.columns))]
        line = lambda row: "| " + " | ".join(s.ljust(w) for s, w in zip(row, widths, strict=True)) + " |"  # noqa: E731
        rule = ["-" * (w + 1) if pad else "---" for w in widths]  # padded: as wide as " cell "
        rule = [
            x + ("-" if i < self.text_columns else ":") if pad else x + ("" if i < self.text_columns else ":")
            for i, x in enumerate(rule)
        ]
        lines = [f"### {self.title}", "", line(grid[0]), "|" + "|".join(rule) + "|", *map(line, grid[1:])]
        if self.caption:
            lines += ["", f"*{self.caption}*"]
        if self.legend:
            lines += ["", *self.legend]
        return "\n".join(lines) + "\n"

    def html(self, table_id: str) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = []
        for r, row in enumerate(self.rows):
            cells = []
            for c, s in enumerate(row):
                tag = "th" if c == 0 else "td"
                flags = (("strong", (r, c) in self.strong), ("bad", (r, c) in self.bad))
                cls = " ".join(name for name, on in flags if on)
                text = html.escape(s)
                if " [" in s and s.endswith(("]", "] " + DIFFERS)):  # a value and its interval: two lines
                    value, _, ci = s.partition(" [")
                    text = f"{html.escape(value)}<br><span class='ci'>[{html.escape(ci)}</span>"
                cells.append(f"<{tag}{f' class={cls!r}' if cls else ''}>{text}</{tag}>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        caption = "".join(f"<p class='caption'>{html.escape(c)}</p>" for c in [self.caption, *self.legend] if c)
        return (
            f"<h3>{html.escape(self.title)}</h3><div class='scroll'><table id={table_id!r}><thead><tr>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>{caption}"
        )


def _speed_rows(data: ReportData) -> list[list[str]]:
    """Table 1's throughput rows (tokens/s, mean ± std), measured on `data.speed_machine`."""
    if not data.speed:
        return []
    first = next(iter(data.speed.values()))
    rows = []
    for name, value, std in ((first.pp_test, "pp", "pp_std"), (first.tg_test, "tg", "tg_std")):
        row = [f"Speed {name} (t/s, {data.speed_machine})"]
        for s in data.sizes:
            sp = data.speed.get(s.label)
            mean = getattr(sp, value) if sp else None
            row.append(DASH if mean is None else f"{mean:.1f} ± {getattr(sp, std) or 0:.1f}")
        rows.append(row)
    return rows


def sizes_table(data: ReportData) -> Table | None:
    """The paper's Table 1, one column per variant, memory rows per device set."""
    if not data.sizes:
        return None
    rows = [
        ["Model size"] + [fmt_bytes(s.size_bytes) for s in data.sizes],
        ["Avg quants (bits per weight)"] + [f"{s.bpw:.2f}" for s in data.sizes],
    ]
    bad = set()
    for d in data.device_sets:
        if not any(d.name in s.placements for s in data.sizes):
            continue
        total, per = [f"MU total ({d.name})"], [f"MU per device ({d.name}, {fmt_bytes(d.capacity_bytes)})"]
        for c, s in enumerate(data.sizes, 1):
            p = s.placements.get(d.name)
            total.append(fmt_bytes(p.total_bytes) if p else DASH)
            per.append((fmt_bytes(p.per_device_bytes) + ("" if p.fits else " ✗")) if p else DASH)
            if p and not p.fits:
                bad.add((len(rows) + 1, c))
        rows += [total, per]
    rows += _speed_rows(data)
    return Table(
        "Table 1: size and memory",
        ["Metric"] + [s.label for s in data.sizes],
        rows,
        "MU: memory usage (weights, KV cache at the planned context, buffers). ✗: does not fit.",
        bad=bad,
    )


def results_table(data: ReportData) -> Table | None:
    """The report's Table 2 (see `table2`)."""
    return table2(data.results) if data.results is not None else None


def _score_cell(cell: Cell | None) -> str:
    if cell is None:
        return DASH
    text = DASH if math.isnan(cell.mean) else fmt_score(cell.mean, cell.std)
    text += f" {DIFFERS}" if cell.differs else ""
    return text + ("" if cell.complete else f" {INCOMPLETE}")


def _drop_cell(c: VariantColumn, baseline: str | None) -> tuple[str, bool]:
    """The Accuracy drop cell and whether it is a significant drop (bold)."""
    if c.drop is None or c.label == baseline:
        return DASH, False
    if c.too_few_items and not c.significant:  # a CI that excludes 0 said something, however few the items
        return TOO_FEW, False
    text = "0" if c.drop == 0 else f"{fmt_pct(c.drop)}%"
    if c.drop_ci is not None:
        text += f" [{fmt_pct(c.drop_ci[0])}, {fmt_pct(c.drop_ci[1])}]"
    return (text + f" {DIFFERS}", True) if c.significant else (text, False)


def table2(res: ResultsTable) -> Table | None:
    """The paper's Table 2: "mean (±std)" cells, the averages and the Accuracy drop with its paired CI,
    marked with `DIFFERS` and `INCOMPLETE` as the legend says."""
    if not res.columns:
        return None
    rows = [[b.display] + [_score_cell(col.cells.get(b.title)) for col in res.columns] for b in res.benchmarks]
    rows.append(["Average"] + [f"{c.average:.2f}" if c.average is not None else DASH for c in res.columns])
    rows.append(
        ["Weighted avg."]
        + [
            DASH if c.weighted_avg is None else f"{c.weighted_avg:.2f}" + (f" {DIFFERS}" if c.weighted_differs else "")
            for c in res.columns
        ]
    )
    drops = [_drop_cell(c, res.baseline) for c in res.columns]
    strong = {(len(rows), i) for i, (_, bold) in enumerate(drops, 1) if bold}
    rows.append(["Accuracy drop"] + [text for text, _ in drops])
    return Table(
        "Table 2: accuracy on the benchmarks",
        ["Benchmark"] + [c.label for c in res.columns],
        rows,
        _caption(res),
        strong=strong,
        legend=legend(res),
    )


def _caption(res: ResultsTable) -> str:
    base = f" against {res.baseline}" if res.baseline else ""
    return (
        f"Mean (±std) over sampling runs, in percent. Accuracy drop: relative decrease of the weighted "
        f"average{base}, with its paired {100 * res.ci_level:.0f}% confidence interval. "
        "Weights: the paper's Appendix A.2."
    )


def legend(res: ResultsTable) -> list[str]:
    """What Table 2's marks mean, for the marks it shows."""
    cells = [cell for col in res.columns for cell in col.cells.values()]
    lines = []
    if any(c.differs for c in cells) or any(c.weighted_differs or c.significant for c in res.columns):
        lines.append(
            f"{DIFFERS} the paired bootstrap {100 * res.ci_level:.0f}% CI of the difference from "
            f"{res.baseline} excludes 0. On the Accuracy drop (bold): the drop is significant."
        )
    if any(not c.complete for c in cells):
        lines.append(
            f"{INCOMPLETE} incomplete: requests pending or failed; run the same `quantdrop eval` again to finish."
        )
    if any(c.too_few_items for c in res.columns):
        lines.append(
            f"{TOO_FEW}: every benchmark it shares with {res.baseline} has too few items for the paired "
            "comparison to detect even a large drop (see the evidence table)."
        )
    return lines


def _ci(t: tuple[float, float, float]) -> str:
    return f"{t[0]:.1f} [{t[1]:.1f}, {t[2]:.1f}]"


def power_text(e: Evidence) -> str | None:
    """What a difference found not significant could have shown: "too few items (3)" or "could have
    detected >= 2.8 points"; None when no power is known."""
    if e.too_few_items:
        return f"{TOO_FEW} ({e.items})"
    return f"could have detected >= {e.mde:.1f} points" if e.mde is not None else None


def _power_cell(e: Evidence, cell: Cell | None) -> str:
    """The verdict on one difference and what it rests on."""
    if cell is not None and cell.differs:
        return f"differs {DIFFERS}" + (f" ({TOO_FEW} to trust: {e.items})" if e.too_few_items else "")
    power = power_text(e)
    if power is None:
        return DASH
    return power if e.too_few_items else f"not significant; {power}"


def _plan_cell(e: Evidence) -> str:
    if e.plan is None:
        return f"not reachable within its {e.full_size:,} items"
    items, samples = e.plan
    return f"{items:,} items x {samples} sample{'s' if samples > 1 else ''}"


def evidence_table(res: ResultsTable) -> Table | None:
    """Per benchmark and variant: answer agreement with the baseline (and the baseline's own agreement
    across samples, the noise floor), flips, and the power of the paired comparison (Dutta et al. 2024,
    arXiv 2407.09141; quantdrop.power)."""
    if not res.evidence or res.baseline is None:
        return None
    labels = [c.label for c in res.columns]
    rows: list[list[str]] = []
    for b in res.benchmarks:
        if not any((b.title, lab) in res.evidence for lab in labels):
            continue
        floor = res.noise_floor.get(b.title)
        agree, flips, power, plan = (
            [f"{b.display}: {name}"]
            for name in ("agreement %", "flips right->wrong / wrong->right", "power", "to detect")
        )
        for col in res.columns:
            e = res.evidence.get((b.title, col.label))
            if col.label == res.baseline:
                agree.append(f"{_ci(floor)} (self)" if floor else DASH)
                flips.append(DASH), power.append(DASH), plan.append(DASH)
            elif e is None:
                agree.append(DASH), flips.append(DASH), power.append(DASH), plan.append(DASH)
            else:
                agree.append(_ci(e.agreement))
                flips.append(f"{e.right_to_wrong} / {e.wrong_to_right}")
                power.append(_power_cell(e, col.cells.get(b.title)))
                plan.append(_plan_cell(e))
        rows += [agree, flips, power] + ([plan] if res.target_drop else [])
    target = f" To detect: items x samples for a {res.target_drop:g}-point drop." if res.target_drop else ""
    caption = (
        f"Agreement: the share of (item, sample) pairs whose extracted answer equals {res.baseline}'s for "
        f"the same item and seed, with a {100 * res.ci_level:.0f}% bootstrap CI clustered by item; "
        f"{res.baseline}'s column: its own agreement between samples (the noise floor). Power: the "
        "smallest drop in points the paired test detects (alpha 0.05, 80% power) from the observed "
        f"per-item variance.{target}"
    )
    return Table("Evidence against the baseline", ["Benchmark", *labels], rows, caption, text_columns=1)


def proxies_table(data: ReportData) -> Table | None:
    """Perplexity and KL divergence against the reference (llama-perplexity --kl-divergence)."""
    if not data.proxies:
        return None
    first = next(iter(data.proxies.values()))
    base = f"{first.ppl_base:.3f} ± {first.ppl_base_err:.3f}"
    rows = [[data.reference_label, base, DASH, "0", "0", "0", "100"]]
    rows += [
        [
            label,
            f"{r.ppl:.3f} ± {r.ppl_err:.3f}",
            f"{r.ln_ppl_ratio:+.4f} ± {r.ln_ppl_ratio_err:.4f}",
            f"{r.kld_mean:.5f} ± {r.kld_mean_err:.5f}",
            f"{r.kld_median:.5f}",
            f"{r.kld_p99:.4f}",
            f"{100 * r.same_top:.2f} ± {100 * r.same_top_err:.2f}",
        ]
        for label, r in data.proxies.items()
    ]
    caption = (
        f"{first.n_tokens} tokens of {first.text} scored in {first.n_chunks} chunks of {first.n_ctx} "
        "(second half of each chunk), as llama-perplexity --kl-divergence does. "
        "KL: KL(reference ‖ variant) per token, in nats. "
        "Same top: the most likely next token is unchanged, in percent."
    )
    return Table(
        "Quality proxies against the reference",
        ["Variant", "PPL", "ln(PPL/PPL ref)", "mean KL", "median KL", "99% KL", "same top %"],
        rows,
        caption,
    )


def recommendations_table(recs: list[Recommendation]) -> Table | None:
    if not recs:
        return None
    return Table(
        "Recommendation per device set",
        ["Device set", "Recipe", "Why"],
        [[r.device_set, r.recipe or "none", r.reason] for r in recs],
        strong={(i, 1) for i, r in enumerate(recs) if r.recipe},
        text_columns=3,
    )
