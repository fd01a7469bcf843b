"""The report's tables as data (`Table`), rendered to Markdown and HTML; the paper's layout.

Table 1: metrics x variants (size, average bits, memory total and per device for each device set).
Table 2: benchmarks x variants, "mean (±std)", then Average, Weighted avg. and Accuracy drop.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from quantdrop.report.data import Recommendation, ReportData

DASH = "–"
SIGNIFICANT = "†"


def fmt_bytes(n: float) -> str:
    """Binary units with three significant digits: 377 GiB, 61.2 GiB, 138 MiB."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}" if v >= 10 else f"{v:.2f} {unit}"
    return f"{n:.0f} B"


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

    def markdown(self) -> str:
        def esc(s: str) -> str:
            return s.replace("|", "\\|")

        def cell(r: int, c: int, s: str) -> str:
            return f"**{esc(s)}**" if (r, c) in self.strong and s not in ("", DASH) else esc(s)

        lines = [f"### {self.title}", "", "| " + " | ".join(esc(c) for c in self.columns) + " |",
                 "|" + "|".join(["---"] * self.text_columns + ["---:"] * (len(self.columns) - self.text_columns))
                 + "|"]
        lines += ["| " + " | ".join(cell(r, c, s) for c, s in enumerate(row)) + " |"
                  for r, row in enumerate(self.rows)]
        if self.caption:
            lines += ["", f"*{self.caption}*"]
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
                if " [" in s and s.endswith(("]", "]" + SIGNIFICANT)):  # a value and its interval: two lines
                    value, _, ci = s.partition(" [")
                    text = f"{html.escape(value)}<br><span class='ci'>[{html.escape(ci)}</span>"
                cells.append(f"<{tag}{f' class={cls!r}' if cls else ''}>{text}</{tag}>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        caption = f"<p class='caption'>{html.escape(self.caption)}</p>" if self.caption else ""
        return (f"<h3>{html.escape(self.title)}</h3><div class='scroll'><table id={table_id!r}><thead><tr>{head}"
                f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>{caption}")


def sizes_table(data: ReportData) -> Table | None:
    """The paper's Table 1, one column per variant, memory rows per device set."""
    if not data.sizes:
        return None
    rows = [["Model size"] + [fmt_bytes(s.size_bytes) for s in data.sizes],
            ["Avg quants (bits per weight)"] + [f"{s.bpw:.2f}" for s in data.sizes]]
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
    return Table("Table 1: size and memory", ["Metric"] + [s.label for s in data.sizes], rows,
                 "MU: memory usage (weights, KV cache at the planned context, buffers). ✗: does not fit.",
                 bad=bad)


def results_table(data: ReportData) -> Table | None:
    """The paper's Table 2 with the paired-CI verdict on each accuracy drop."""
    res = data.results
    if res is None or not res.columns:
        return None
    rows, strong = [], set()
    for b in res.benchmarks:
        row = [b.display]
        for col in res.columns:
            cell = col.cells.get(b.title)
            row.append(fmt_score(cell.mean, cell.std) if cell else DASH)
        rows.append(row)
    rows.append(["Average"] + [f"{c.average:.2f}" if c.average is not None else DASH for c in res.columns])
    rows.append(["Weighted avg."] + [f"{c.weighted_avg:.2f}" if c.weighted_avg is not None else DASH
                                     for c in res.columns])
    drop_row = ["Accuracy drop"]
    for i, c in enumerate(res.columns, 1):
        if c.drop is None or c.label == res.baseline:
            drop_row.append(DASH)
            continue
        text = f"{fmt_pct(c.drop)}%"
        if c.drop_ci is not None:
            text += f" [{fmt_pct(c.drop_ci[0])}, {fmt_pct(c.drop_ci[1])}]"
        if c.significant:
            text += SIGNIFICANT
            strong.add((len(rows), i))
        drop_row.append(text)
    rows.append(drop_row)
    level = f"{100 * res.ci_level:.0f}%"
    base = f" against {res.baseline}" if res.baseline else ""
    caption = (f"Mean (±std) over sampling runs, in percent. Accuracy drop: relative decrease of the "
               f"weighted average{base}, with its paired {level} confidence interval; {SIGNIFICANT} (bold): "
               "the interval excludes 0, the drop is significant. Weights: the paper's Appendix A.2.")
    return Table("Table 2: accuracy on the benchmarks", ["Benchmark"] + [c.label for c in res.columns], rows,
                 caption, strong=strong)


def proxies_table(data: ReportData) -> Table | None:
    """Perplexity and KL divergence against the reference (llama-perplexity --kl-divergence)."""
    if not data.proxies:
        return None
    first = next(iter(data.proxies.values()))
    base = f"{first.ppl_base:.3f} ± {first.ppl_base_err:.3f}"
    rows = [[data.reference_label, base, DASH, "0", "0", "0", "100"]]
    rows += [[label, f"{r.ppl:.3f} ± {r.ppl_err:.3f}", f"{r.ln_ppl_ratio:+.4f} ± {r.ln_ppl_ratio_err:.4f}",
              f"{r.kld_mean:.5f} ± {r.kld_mean_err:.5f}", f"{r.kld_median:.5f}", f"{r.kld_p99:.4f}",
              f"{100 * r.same_top:.2f} ± {100 * r.same_top_err:.2f}"] for label, r in data.proxies.items()]
    caption = (f"{first.n_tokens} tokens of {first.text} scored in {first.n_chunks} chunks of {first.n_ctx} "
               "(second half of each chunk), as llama-perplexity --kl-divergence does. "
               "KL: KL(reference ‖ variant) per token, in nats. "
               "Same top: the most likely next token is unchanged, in percent.")
    return Table("Quality proxies against the reference",
                 ["Variant", "PPL", "ln(PPL/PPL ref)", "mean KL", "median KL", "99% KL", "same top %"],
                 rows, caption)


def recommendations_table(recs: list[Recommendation]) -> Table | None:
    if not recs:
        return None
    return Table("Recommendation per device set", ["Device set", "Recipe", "Why"],
                 [[r.device_set, r.recipe or "none", r.reason] for r in recs],
                 strong={(i, 1) for i, r in enumerate(recs) if r.recipe}, text_columns=3)
