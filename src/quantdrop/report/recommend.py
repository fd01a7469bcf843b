"""The recommendation per device set, in the spirit of the paper's section 4.4.

Among the variants that fit a device set, pick the best by the strongest evidence available: the
accuracy (weighted avg. of Table 2, or only whether its drop is significant when KL divergences are
there to rank the rest), else the mean KL divergence from the reference, else bits per weight. The
reason line says why, what it costs in memory, which better variants do not fit, and which smaller
one costs no significant accuracy.
"""

from __future__ import annotations

from collections.abc import Callable

from quantdrop.report.data import DeviceSet, Recommendation, ReportData, SizeRow
from quantdrop.report.tables import fmt_bytes

INF = float("inf")


def _ranking(data: ReportData, fitting: list[SizeRow]) -> tuple[list[SizeRow], Callable[[SizeRow], tuple], str]:
    """(the variants ranked, a sort key (smaller is better), what decides) from the strongest evidence.

    With paired CIs and KL divergences, accuracy decides only through significance: a variant with a
    significant drop ranks below any without, and the KL divergence ranks the rest, so a small noisy
    sample cannot crown a variant that merely got one more question right."""
    columns = {c.label: c for c in data.results.columns} if data.results else {}
    acc = {k: c.weighted_avg for k, c in columns.items() if c.weighted_avg is not None}
    kl = {k: r.kld_mean for k, r in data.proxies.items()}
    has_ci = any(columns[r.label].significant is not None for r in fitting if r.label in columns)

    def dropped(r: SizeRow) -> bool:
        return bool(r.label in columns and columns[r.label].significant)

    with_acc = [r for r in fitting if r.label in acc]
    with_kl = [r for r in fitting if r.label in kl]
    if has_ci and with_kl and all(r.label in kl for r in with_acc):
        return with_kl, lambda r: (dropped(r), kl.get(r.label, INF), -r.size_bytes), "significance+kl"
    if with_acc:
        return with_acc, lambda r: (dropped(r), -(acc.get(r.label) or -INF), kl.get(r.label, INF),
                                    -r.size_bytes), "accuracy"
    if with_kl:
        return with_kl, lambda r: (kl.get(r.label, INF), -r.size_bytes), "kl"
    return fitting, lambda r: (-r.bpw, -r.size_bytes), "bits"


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
    ranked, key, basis = _ranking(data, fitting)
    best = min(ranked, key=key)
    columns = {c.label: c for c in data.results.columns} if data.results else {}
    column = columns.get(best.label)
    n = f"{len(ranked)} {'evaluated ' if basis == 'accuracy' else 'measured ' if 'kl' in basis else ''}variant"
    n += "s" if len(ranked) > 1 else ""
    if basis == "bits":
        why = f"most bits per weight ({best.bpw:.2f}) of the {n} that fit; no quality measured"
    elif basis == "kl" or basis == "significance+kl":
        why = f"lowest mean KL divergence ({data.proxies[best.label].kld_mean:.4f}) of the {n} that fit"
        if basis == "significance+kl":
            why = ("every fitting variant has a significant accuracy drop; " if key(best)[0] else
                   "no significant accuracy drop, and ") + why
    else:
        why = f"best weighted avg. ({column.weighted_avg:.2f}) of the {n} that fit"  # type: ignore[union-attr]
        if key(best)[0]:
            why += ", all with a significant accuracy drop"
    place = best.placements[device.name]
    reason = f"{why}; {fmt_bytes(place.per_device_bytes)} of {fmt_bytes(device.capacity_bytes)} per device"
    if column is not None and column.drop is not None:
        verdicts = {True: "significant", False: "not significant"}
        reason += f"; accuracy drop {column.drop:.2f}% ({verdicts.get(column.significant, 'significance unknown')})"
    # better-ranked variants the device set cannot hold (the paper: "Q4 exceeds the 910B's 64GB")
    measured = {r.label for r in _ranking(data, rows)[0]}
    better = [r for r in rows if r not in fitting and r.label in measured and key(r) < key(best)]
    if better:
        reason += "; " + ", ".join(f"{r.label} would need {fmt_bytes(r.placements[device.name].per_device_bytes)} "
                                   "per device" for r in better)
    # a smaller variant that costs no significant accuracy: the cost-performance choice
    cheaper = [r for r in fitting if r.size_bytes < best.size_bytes
               and r.label in columns and columns[r.label].significant is False]
    if cheaper:
        alt = min(cheaper, key=lambda r: r.size_bytes)
        saved = 100 * (1 - alt.size_bytes / best.size_bytes)
        reason += f"; {alt.label} is {saved:.0f}% smaller with no significant drop"
        if alt.label in data.proxies and best.label in data.proxies:
            reason += (f" (but a mean KL divergence of {data.proxies[alt.label].kld_mean:.4f} against "
                       f"{data.proxies[best.label].kld_mean:.4f})")
    return Recommendation(device.name, best.label, reason)


def recommend(data: ReportData) -> list[Recommendation]:
    """One recommendation per device set, in the order the device sets were given."""
    return [recommend_for(data, d) for d in data.device_sets]
