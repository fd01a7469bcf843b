"""One recommendation policy (quantdrop.recommend) behind `quantdrop plan`, the report and the study's
summary: one Recommendation type, and the same evidence gives the same choice and the same reason.
Before, plan.recommend and report/recommend.py each had their own type and their own rules."""

from __future__ import annotations

import quantdrop.recommend as policy
from quantdrop.plan import plan
from quantdrop.report import ReportData, ResultsTable, VariantColumn, from_plan, recommend
from quantdrop.study_report import summary_text
from tests.plan.test_plan import R1, TABLE_1, TABLE_6_R1

DEVICES = "8xH100-80G,8x910B-64G"


def test_one_recommendation_type() -> None:
    from importlib import import_module

    import quantdrop.report as report

    plan_module = import_module("quantdrop.plan")  # the module: `quantdrop.plan` is the function
    assert plan_module.Recommendation is report.Recommendation is policy.Recommendation
    assert report.DeviceSet is policy.DeviceSet and report.Placement is policy.Placement


def test_plan_report_and_summary_agree_on_the_same_evidence() -> None:
    p = plan(R1, list(TABLE_1), mla_split=False, ctx=32768, kv_layout="full", devices=DEVICES, accuracy=TABLE_6_R1)
    devices, sizes = from_plan(p)
    columns = [VariantColumn(label, {}, weighted_avg=score) for label, score in TABLE_6_R1.items()]
    data = ReportData("DeepSeek-R1", device_sets=devices, sizes=sizes, results=ResultsTable([], columns))
    from_report = recommend(data)
    assert [(r.device_set, r.recipe, r.reason) for r in p.recommendation] == [
        (r.device_set, r.recipe, r.reason) for r in from_report
    ]
    assert [r.recipe for r in from_report] == ["DQ3_K_M", "DQ3_K_M"]
    h100 = p.recommendation[0]
    assert h100.alternatives == ["Q4_K_M"] and "Q4_K_M (85.24) within 0.5 points" in h100.reason
    summary = summary_text(data, None, report=None)  # type: ignore[arg-type]
    for rec in p.recommendation:
        assert rec.line() in summary.splitlines()


def _candidate(label: str, size: int, *, kl: float, tg: float, significant: bool) -> policy.Candidate:
    place = {"box": policy.Placement(size, size, True)}
    return policy.Candidate(
        label, size, size / 1e9, place, accuracy=50.0, drop=1.0, significant=significant, kl=kl, tg=tg
    )


def test_prefer_speed_and_balanced_let_measured_speed_decide_what_the_evidence_allows() -> None:
    import pytest

    from quantdrop.errors import QuantdropError

    box = [policy.DeviceSet("box", 1, 10**12)]
    cands = [
        _candidate("Q8_0", 8000, kl=0.004, tg=50.0, significant=False),
        _candidate("Q4_K_M", 4500, kl=0.007, tg=80.0, significant=False),
        _candidate("Q3_K_M", 3500, kl=0.02, tg=95.0, significant=False),
        _candidate("Q2_K", 2500, kl=0.35, tg=120.0, significant=True),
    ]
    (quality,) = policy.recommend(box, cands)
    assert quality.recipe == "Q8_0"  # the paper's policy: lowest KL among those without a significant drop
    (speed,) = policy.recommend(box, cands, "speed")
    assert speed.recipe == "Q3_K_M" and "fastest generation (95.0 t/s)" in speed.reason  # Q2_K's drop is real
    (balanced,) = policy.recommend(box, cands, "balanced")
    assert balanced.recipe == "Q4_K_M" and "within 2x of Q8_0's" in balanced.reason  # Q3_K_M's KL is 5x
    unmeasured = [
        policy.Candidate(
            c.label,
            c.size_bytes,
            c.bpw,
            c.placements,
            accuracy=c.accuracy,
            drop=c.drop,
            significant=c.significant,
            kl=c.kl,
        )
        for c in cands
    ]
    assert policy.recommend(box, unmeasured, "speed")[0].recipe == "Q8_0"  # no speed measured: quality decides
    with pytest.raises(QuantdropError, match="--prefer"):
        policy.recommend(box, cands, "fastest")
