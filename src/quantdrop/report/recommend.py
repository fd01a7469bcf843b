"""The report's recommendations: the one policy (`quantdrop.recommend`) on what the report knows
(Table 1's sizes and placements, Table 2's weighted averages and drops, the KL divergences)."""

from __future__ import annotations

from quantdrop.recommend import Candidate, Recommendation
from quantdrop.recommend import recommend as policy
from quantdrop.report.data import ReportData


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
            )
        )
    return out


def recommend(data: ReportData) -> list[Recommendation]:
    """One recommendation per device set, in the order the device sets were given."""
    return policy(data.device_sets, candidates(data), data.prefer)
