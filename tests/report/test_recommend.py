"""Recommendations per device set against the paper's section 4.4."""

from __future__ import annotations

import dataclasses

from quantdrop.report import DeviceSet, Placement, ReportData, SizeRow, recommend
from tests.report.paper import GIB, illustrative_proxies


def test_paper_section_4_4(paper_data) -> None:
    recs = {r.device_set: r for r in recommend(paper_data)}
    # "Q4 typically exceeds the VRAM constraints of Huawei Ascend 910B ... whereas DQ3_K_M satisfies both"
    assert recs["8x910B-64G"].recipe == "DQ3_K_M"
    assert "59.0 GiB of 64.0 GiB per device" in recs["8x910B-64G"].reason
    # "Q4_K_M and our DQ3_K_M achieve optimal cost-performance ratio under NVIDIA-based deployments"
    assert recs["8xH100-80G"].recipe in {"Q4_K_M", "DQ3_K_M"}
    assert "59.0 GiB of 80.0 GiB per device" in recs["8xH100-80G"].reason


def test_a_better_variant_that_does_not_fit_is_named(paper_data) -> None:
    res = paper_data.results
    cols = [dataclasses.replace(c, weighted_avg=86.0) if c.label == "Q4_K_M" else c for c in res.columns]
    data = dataclasses.replace(paper_data, results=dataclasses.replace(res, columns=cols))
    recs = {r.device_set: r for r in recommend(data)}
    assert recs["8xH100-80G"].recipe == "Q4_K_M"
    assert recs["8x910B-64G"].recipe == "DQ3_K_M"
    assert "Q4_K_M would need 71.0 GiB per device" in recs["8x910B-64G"].reason


def test_a_significant_drop_ranks_below_any_other(paper_data) -> None:
    res = paper_data.results
    cols = [
        dataclasses.replace(c, significant=False)
        if c.label == "UD-Q2_K_XL"
        else dataclasses.replace(c, significant=True)
        if c.label == "DQ3_K_M"
        else c
        for c in res.columns
    ]
    data = dataclasses.replace(paper_data, results=dataclasses.replace(res, columns=cols))
    rec = recommend(data)[0]
    assert rec.recipe == "Q4_K_M"  # DQ3_K_M scores higher, but its drop is significant here
    assert rec.reason.startswith("best weighted avg. (85.24) of the 4 evaluated variants that fit")
    assert "UD-Q2_K_XL is 44% smaller with no significant drop" in rec.reason  # 212 vs 377 GiB


def test_noisy_accuracy_defers_to_the_kl_divergence(paper_data) -> None:
    """A tiny sample: no drop is significant, one variant got a question more right by chance."""
    res = paper_data.results
    cols = [
        dataclasses.replace(c, significant=False, weighted_avg=90.0 if c.label == "Q3_K_M" else 80.0)
        for c in res.columns
    ]
    data = dataclasses.replace(
        paper_data, results=dataclasses.replace(res, columns=cols), proxies=illustrative_proxies()
    )  # KL: Q4_K_M 0.012 < DQ3_K_M 0.033 < Q3_K_M
    recs = {r.device_set: r for r in recommend(data)}
    assert recs["8xH100-80G"].recipe == "Q4_K_M"
    assert recs["8xH100-80G"].reason.startswith(
        "no significant accuracy drop, and lowest mean KL divergence (0.0120) of the 5 measured variants that fit"
    )
    assert recs["8x910B-64G"].recipe == "DQ3_K_M"
    assert "Q4_K_M would need 71.0 GiB per device" in recs["8x910B-64G"].reason


def test_nothing_fits() -> None:
    dev = DeviceSet("1xL4-24G", 1, 24 * GIB)
    sizes = [
        SizeRow("Q4_K_M", 377 * GIB, 4.8, {dev.name: Placement(568 * GIB, 568 * GIB, False)}),
        SizeRow("Q2_K", 228 * GIB, 2.9, {dev.name: Placement(415 * GIB, 415 * GIB, False)}),
    ]
    (rec,) = recommend(ReportData("m", device_sets=[dev], sizes=sizes))
    assert rec.recipe is None
    assert rec.reason == "nothing fits: even Q2_K needs 415 GiB per device, 24.0 GiB available"


def test_without_accuracy_the_kl_divergence_decides() -> None:
    from quantdrop.proxies import ProxyResult

    dev = DeviceSet("1xA-16G", 1, 16 * GIB)
    sizes = [
        SizeRow(n, s * GIB, b, {dev.name: Placement(s * GIB, s * GIB, s <= 16)})
        for n, s, b in (("Q8_0", 20, 8.5), ("Q6_K", 15, 6.6), ("Q4_K_M", 11, 4.9))
    ]
    base = dict(
        variant="v",
        fingerprint="f",
        reference="r",
        text="t",
        n_ctx=512,
        n_chunks=1,
        n_tokens=255,
        ppl=10.0,
        ppl_err=0.1,
        ppl_base=10.0,
        ppl_base_err=0.1,
        ln_ppl_ratio=0.0,
        ln_ppl_ratio_err=0.0,
        kld_mean_err=0.0,
        kld_median=0.0,
        kld_p99=0.0,
        kld_max=0.0,
        rms_dp=0.0,
        same_top=1.0,
        same_top_err=0.0,
    )
    kl = {"Q8_0": 0.001, "Q6_K": 0.004, "Q4_K_M": 0.03}
    proxies = {n: ProxyResult(**base, kld_mean=k) for n, k in kl.items()}
    (rec,) = recommend(ReportData("m", device_sets=[dev], sizes=sizes, proxies=proxies))
    assert rec.recipe == "Q6_K"
    assert rec.reason.startswith("lowest mean KL divergence (0.0040) of the 2 measured variants that fit")
    assert "Q8_0 would need 20.0 GiB per device" in rec.reason


def test_no_significant_drop_says_what_it_could_have_seen(paper_data) -> None:
    """A smaller variant "with no significant drop" is named with its agreement and the smallest drop the
    test could detect: on a small sample "not significant" says little (issue 14)."""
    from quantdrop.report.data import Evidence

    weak = Evidence((53.3, 45.0, 61.7), 24, 16, 120, 120, mde=14.7, too_few_items=False)
    reason = _reason_with_evidence(paper_data, weak)
    shown = paper_data.results.benchmarks[0].display
    assert "UD-Q2_K_XL is" in reason and "smaller with no significant drop (but a mean KL divergence" in reason
    assert f"{shown}: agreement 53.3% [45.0, 61.7], could have detected >= 14.7 points)" in reason


def test_too_few_items_is_said_as_the_evidence_table_says_it(paper_data) -> None:
    """The recommendation and the evidence table use one phrase for power (report.tables.power_text)."""
    from quantdrop.report.data import Evidence

    few = Evidence((66.7, 33.3, 100.0), 1, 0, 3, 3, mde=40.0, too_few_items=True)
    reason = _reason_with_evidence(paper_data, few)
    assert "agreement 66.7% [33.3, 100.0], too few items (3))" in reason
    assert "could have detected" not in reason


def _reason_with_evidence(paper_data, evidence) -> str:
    """The first recommendation's reason when no drop is significant and UD-Q2_K_XL's first benchmark
    carries `evidence`."""
    res = paper_data.results
    cols = [dataclasses.replace(c, significant=False) for c in res.columns]
    results = dataclasses.replace(res, columns=cols, evidence={(res.benchmarks[0].title, "UD-Q2_K_XL"): evidence})
    data = dataclasses.replace(paper_data, results=results, proxies=illustrative_proxies())
    return recommend(data)[0].reason
