"""The report's recommendations: the one policy (`quantdrop.recommend`) on what the report knows
(Table 1's sizes and placements, Table 2's weighted averages and drops, the KL divergences)."""

from __future__ import annotations

from quantdrop.recommend import Candidate, Recommendation
from quantdrop.recommend import recommend as policy
from quantdrop.report.data import ReportData
from quantdrop.report.tables import power_text


def candidates(data: ReportData) -> list[Candidate]:
    columns = {c.label: c for c in data.results.columns} if data.results else {}
    out = []
    for row in data.sizes:
        col = columns.get(row.label)
        proxy = data.proxies.get(row.label)
        speed = data.speed.get(row.label)
        out.append(
            Candidate(
                row.label,
                row.size_bytes,
                row.bpw,
                row.placements,
                accuracy=col.weighted_avg if col else None,
                drop=col.drop if col else None,
                significant=col.significant if col else None,
                kl=proxy.kld_mean if proxy else None,
                tg=speed.tg if speed else None,
                evidence=_evidence(data, row.label),
            )
        )
    return out


def _evidence(data: ReportData, label: str) -> str | None:
    """Per benchmark: the answer agreement with its CI and the smallest drop the paired test could
    detect (or "too few items"), in the evidence table's words, so that "no significant drop" says
    how much it could have seen."""
    if data.results is None:
        return None
    names = {b.title: b.display for b in data.results.benchmarks}
    parts = []
    for (title, lab), ev in data.results.evidence.items():
        if lab == label:
            value, low, high = ev.agreement
            power = power_text(ev)
            seen = f", {power}" if power else ""
            parts.append(f"{names.get(title, title)}: agreement {value:.1f}% [{low:.1f}, {high:.1f}]{seen}")
    return "; ".join(parts) or None


def recommend(data: ReportData) -> list[Recommendation]:
    """One recommendation per device set, in the order the device sets were given."""
    return policy(data.device_sets, candidates(data), data.prefer)
