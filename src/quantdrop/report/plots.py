"""The report's figures (matplotlib, Agg backend), returned as PNG bytes.

quality_vs_size: accuracy and KL divergence against model size, the Pareto front highlighted, and for
each device set a vertical line at the largest model its memory holds (its total memory less the KV
cache and buffers that Table 1 plans). quality_vs_speed: the same quality against generation tokens/s
(Table 1's speed rows), when speed was measured. benchmark_bars: per-benchmark accuracy with std error
bars. `figures` draws those the data supports, by name.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from quantdrop.report.data import DeviceSet, ReportData

GIB = float(1 << 30)
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def pareto_front(
    points: Sequence[tuple[float, float]], higher_is_better: bool, smaller_x_better: bool = True
) -> list[int]:
    """Indices of the points no other point beats on both x (size: smaller; speed: larger) and quality,
    sorted by x."""
    sign = 1.0 if higher_is_better else -1.0
    xs = 1.0 if smaller_x_better else -1.0
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (xs * x2 <= xs * x and sign * y2 >= sign * y) and (xs * x2 < xs * x or sign * y2 > sign * y)
            for j, (x2, y2) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def weight_budget(data: ReportData, device: DeviceSet) -> float | None:
    """Bytes of weights a device set holds: its memory less the median planned overhead (KV, buffers)."""
    overheads = [
        s.placements[device.name].total_bytes - s.size_bytes for s in data.sizes if device.name in s.placements
    ]
    if not overheads:
        return None
    return device.total_bytes - statistics.median(overheads)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def _device_lines(ax, data: ReportData, xmax: float) -> None:
    """Vertical lines for the device sets near the data; an arrow note for those far to the right."""
    far = []
    for k, d in enumerate(data.device_sets):
        budget = weight_budget(data, d)
        if budget is None:
            continue
        x = budget / GIB
        if x <= xmax * 1.6:
            ax.axvline(
                x,
                color="0.35",
                linestyle=("--", ":", "-.")[k % 3],
                linewidth=1.2,
                label=f"{d.name}: weights ≤ {x:.3g} GiB",
            )
        else:
            far.append(f"{d.name} → {x:.3g} GiB")
    if far:
        ax.annotate(
            "holds up to: " + "; ".join(far),
            xy=(0.99, 0.02),
            xycoords="axes fraction",
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.3",
        )


def _baseline_accuracy(data: ReportData, xs: dict[str, float]) -> tuple[str, float] | None:
    """The baseline's weighted avg. when it has no point of its own (e.g. an API) to draw as a line."""
    res = data.results
    col = next((c for c in res.columns if c.label == res.baseline), None) if res else None
    if col is None or col.weighted_avg is None or col.label in xs:
        return None
    return col.label, col.weighted_avg


def _quality_panels(data: ReportData, xs: dict[str, float]) -> list[tuple[str, list, bool, bool]]:
    """(y label, [(variant, y)], higher is better, log scale): accuracy and KL of the variants in `xs`."""
    panels = []
    if data.results:
        acc = [(c.label, c.weighted_avg) for c in data.results.columns if c.weighted_avg is not None and c.label in xs]
        if acc:
            panels.append(("Weighted avg. accuracy (%)", acc, True, False))
    kl = [(label, r.kld_mean) for label, r in data.proxies.items() if label in xs]
    if kl:
        panels.append(("Mean KL divergence (nats, log scale)", kl, False, True))
    return panels


def _quality_axes(ax, data: ReportData, xs: dict[str, float], panel: tuple, smaller_x_better: bool) -> None:
    """One panel: the variants, their Pareto front, and the baseline as a line when it has no point."""
    ylabel, series, higher, log = panel
    pts = [(xs[label], y) for label, y in series]
    front = pareto_front(pts, higher, smaller_x_better)
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], color="#9aa5b1", s=36, zorder=3, label="variant")
    ax.plot(
        [pts[i][0] for i in front],
        [pts[i][1] for i in front],
        "-o",
        color="#d62728",
        markersize=8,
        linewidth=2,
        zorder=4,
        label="Pareto front",
    )
    for (label, _), (x, y) in zip(series, pts, strict=True):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if log and all(y > 0 for _, y in pts):
        ax.set_yscale("log")
    base = _baseline_accuracy(data, xs) if higher else None
    if base is not None:
        ax.axhline(base[1], color="#2ca02c", linewidth=1, linestyle="-", label=f"{base[0]} (baseline)")
    ax.margins(y=0.12)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def quality_vs_size(data: ReportData) -> bytes | None:
    """Accuracy (weighted avg.) and mean KL divergence against size; None when neither is known."""
    size = {s.label: s.size_bytes / GIB for s in data.sizes}
    panels = _quality_panels(data, size)
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False)
    xmax = max(size.values())
    for ax, panel in zip(axes[0], panels, strict=True):
        _quality_axes(ax, data, size, panel, smaller_x_better=True)
        _device_lines(ax, data, xmax)
        budgets = [b / GIB for d in data.device_sets if (b := weight_budget(data, d)) is not None]
        ax.set_xlim(0, max([xmax] + [b for b in budgets if b <= xmax * 1.6]) * 1.15)
        ax.set_xlabel("model size (GiB)")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{data.model}: quality against size", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def generation_speed(data: ReportData) -> dict[str, float]:
    """Variant label -> generation tokens/s (the tg test of Table 1's speed rows), where measured."""
    return {label: s.tg for label, s in data.speed.items() if s.tg is not None and s.tg > 0}


def quality_vs_speed(data: ReportData) -> bytes | None:
    """Accuracy (weighted avg.) and mean KL divergence against generation tokens/s, the Pareto front
    (faster and better); None without speed results or quality to set them against."""
    tg = generation_speed(data)
    panels = _quality_panels(data, tg) if tg else []
    if not panels:
        return None
    test = next(s.tg_test for s in data.speed.values() if s.tg is not None)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        _quality_axes(ax, data, tg, panel, smaller_x_better=False)
        ax.set_xlim(0, max(tg.values()) * 1.15)
        ax.set_xlabel(f"generation speed ({test}, tokens/s)")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{data.model}: quality against speed", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def benchmark_bars(data: ReportData) -> bytes | None:
    """Grouped bars: one group per benchmark, one bar per variant, std as the error bar."""
    res = data.results
    if res is None or not res.columns or not res.benchmarks:
        return None
    n = len(res.columns)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 0.25 * len(res.benchmarks) * (n + 1))), 4.4))
    for k, col in enumerate(res.columns):
        xs, ys, errs = [], [], []
        for i, b in enumerate(res.benchmarks):
            cell = col.cells.get(b.title)
            if cell is not None:
                xs.append(i - 0.4 + width * (k + 0.5))
                ys.append(cell.mean)
                errs.append(cell.std or 0.0)
        ax.bar(
            xs,
            ys,
            width,
            yerr=errs,
            capsize=2,
            label=col.label,
            color=COLORS[k % len(COLORS)],
            error_kw={"elinewidth": 0.8},
        )
    ax.set_xticks(range(len(res.benchmarks)))
    ax.set_xticklabels([b.display for b in res.benchmarks], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(n, 6), loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    ax.set_title(f"{data.model}: accuracy per benchmark (error bars: std over runs)", fontsize=11)
    fig.tight_layout()
    return _png(fig)


FIGURES = {"quality-vs-size": quality_vs_size, "quality-vs-speed": quality_vs_speed, "benchmark-bars": benchmark_bars}


def figures(data: ReportData) -> dict[str, bytes]:
    """Figure name -> PNG, for each figure the data has something to draw in."""
    return {name: png for name, draw in FIGURES.items() if (png := draw(data)) is not None}
