"""The recommendation per device set, in the spirit of the paper's section 4.4.

Among the variants that fit a device set, pick the best by the strongest evidence available:
weighted average accuracy (Table 2), else mean KL divergence from the reference, else bits per weight.
The reason line says why, what it costs in memory, which better variants do not fit, and which smaller
one costs no significant accuracy.
"""

from __future__ import annotations

from collections.abc import Callable

from quantdrop.report.data import DeviceSet, Recommendation, ReportData, SizeRow
from quantdrop.report.tables import fmt_bytes

Metric = tuple[str, Callable[[str], float | None], bool]  # (name, value of a label or None, higher is better)


def _metrics(data: ReportData) -> list[Metric]:
    columns = {c.label: c for c in data.results.columns} if data.results else {}
    bpw = {r.label: r.bpw for r in data.sizes}
    return [
        ("weighted avg.", lambda x: columns[x].weighted_avg if x in columns else None, True),
        ("mean KL divergence", lambda x: data.proxies[x].kld_mean if x in data.proxies else None, False),
        ("bits per weight", lambda x: bpw.get(x), True),
    ]


def _fmt(metric: str, value: float) -> str:
    return f"{value:.4f}" if "KL" in metric else f"{value:.2f}"


def recommend_for(data: ReportData, device: DeviceSet) -> Recommendation:
    rows: list[SizeRow] = [r for r in data.sizes if device.name in r.placements]
    if not rows:
        return Recommendation(device.name, None, "no memory plan for this device set")
    fitting = [r for r in rows if r.placements[device.name].fits]
    if not fitting:
        least = min(rows, key=lambda r: r.placements[device.name].per_device_bytes)
        need = least.placements[device.name].per_device_bytes
        return Recommendation(device.name, None, f"nothing fits: even {least.label} needs {fmt_bytes(need)} "
                              f"per device, {fmt_bytes(device.capacity_bytes)} available")
    metric, value, higher = next(m for m in _metrics(data) if any(m[1](r.label) is not None for r in fitting))
    ranked = [r for r in fitting if value(r.label) is not None]
    sign = 1.0 if higher else -1.0

    def score(r: SizeRow) -> float:
        return sign * float(value(r.label))  # type: ignore[arg-type]

    best = max(ranked, key=lambda r: (score(r), -r.size_bytes))
    place = best.placements[device.name]
    kind = "evaluated " if metric == "weighted avg." else "measured " if "KL" in metric else ""
    reason = (f"best {metric} ({_fmt(metric, float(value(best.label)))}) of the {len(ranked)} {kind}variant"  # type: ignore[arg-type]
              f"{'s' if len(ranked) > 1 else ''} that fit; {fmt_bytes(place.per_device_bytes)} of "
              f"{fmt_bytes(device.capacity_bytes)} per device")
    columns = {c.label: c for c in data.results.columns} if data.results else {}
    column = columns.get(best.label)
    if column is not None and column.drop is not None:
        verdicts = {True: "significant", False: "not significant"}
        verdict = verdicts.get(column.significant, "significance unknown")
        reason += f"; accuracy drop {column.drop:.2f}% ({verdict})"
    # better-scoring variants the device set cannot hold (the paper: "Q4 exceeds the 910B's 64GB")
    better = [r for r in rows if r not in fitting and value(r.label) is not None and score(r) > score(best)]
    if better:
        needs = (f"{r.label} would need {fmt_bytes(r.placements[device.name].per_device_bytes)} per device"
                 for r in better)
        reason += "; " + ", ".join(needs)
    # a smaller variant that costs no significant accuracy: the cost-performance choice
    cheaper = [r for r in fitting if r.size_bytes < best.size_bytes
               and columns.get(r.label) is not None and columns[r.label].significant is False]
    if cheaper and column is not None:
        alt = min(cheaper, key=lambda r: r.size_bytes)
        saved = 100 * (1 - alt.size_bytes / best.size_bytes)
        reason += f"; {alt.label} is {saved:.0f}% smaller with no significant drop"
    return Recommendation(device.name, best.label, reason)


def recommend(data: ReportData) -> list[Recommendation]:
    """One recommendation per device set, in the order the device sets were given."""
    return [recommend_for(data, d) for d in data.device_sets]
