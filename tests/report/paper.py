"""Report data from the paper's own numbers (arXiv 2505.02390, Tables 1, 2 and Appendix A.2)."""

from __future__ import annotations

from quantdrop.report import BenchmarkRow, Cell, DeviceSet, Placement, ReportData, ResultsTable, SizeRow, VariantColumn

GIB = 1 << 30
DEVICES = [DeviceSet("8xH100-80G", 8, 80 * GIB), DeviceSet("8x910B-64G", 8, 64 * GIB)]

# Table 1 (DeepSeek-R1 671B): size, avg quants, MU total, MU per GPU (8 devices), in GB
TABLE1 = {
    "Q4_K_M": (377, 4.82, 568, 71),
    "Q3_K_M": (298, 3.81, 487, 61),
    "DQ3_K_M": (281, 3.59, 469, 59),
    "Q2_K_L": (228, 2.91, 415, 52),
    "UD-Q2_K_XL": (212, 2.70, 398, 50),
}

# Table 8: benchmark weights
WEIGHTS = {
    "AIME 2024": 0.2,
    "MATH 500": 0.5,
    "GPQA": 0.5,
    "MBPP": 0.5,
    "MBPP+": 0.5,
    "LiveCodeBench": 0.5,
    "MMLU": 1.0,
    "CMMLU": 1.0,
    "C-Eval": 1.0,
}

# Table 2 (DeepSeek-R1): mean (std) per benchmark, then Average, Weighted avg., Accuracy drop (%)
TABLE2 = {
    "FP8 (Official API)": (
        [
            (77.53, 2.97),
            (95.45, 0.82),
            (69.58, 1.65),
            (92.60, 0.80),
            (78.35, 1.06),
            (64.16, 1.51),
            (90.99, None),
            (90.37, None),
            (92.20, None),
        ],
        83.48,
        85.82,
        None,
    ),
    "Q4_K_M": (
        [
            (75.43, 3.07),
            (95.55, 0.44),
            (69.95, 1.85),
            (91.60, 2.00),
            (76.70, 1.85),
            (62.41, 2.27),
            (90.14, None),
            (90.42, None),
            (92.10, None),
        ],
        82.70,
        85.24,
        0.68,
    ),
    "Q3_K_M": (
        [
            (72.50, 6.11),
            (94.15, 0.68),
            (65.80, 2.30),
            (90.43, 0.88),
            (76.75, 0.88),
            (61.95, 1.66),
            (89.87, None),
            (89.85, None),
            (91.60, None),
        ],
        81.44,
        84.28,
        1.80,
    ),
    "UD-Q2_K_XL": (
        [
            (75.83, 5.83),
            (95.25, 0.44),
            (68.93, 1.55),
            (92.93, 0.24),
            (78.33, 0.91),
            (61.40, 1.59),
            (89.72, None),
            (89.61, None),
            (91.70, None),
        ],
        82.63,
        85.02,
        0.94,
    ),
    "DQ3_K_M": (
        [
            (75.41, 4.69),
            (95.35, 0.50),
            (68.95, 0.65),
            (92.80, 0.70),
            (78.60, 1.01),
            (63.15, 1.06),
            (91.03, None),
            (90.17, None),
            (91.80, None),
        ],
        83.03,
        85.53,
        0.34,
    ),
}


def paper_sizes() -> list[SizeRow]:
    rows = []
    for label, (size, bpw, total, per) in TABLE1.items():
        placements = {d.name: Placement(total * GIB, per * GIB, per * GIB <= d.capacity_bytes) for d in DEVICES}
        rows.append(SizeRow(label, size * GIB, bpw, placements))
    return rows


def paper_results(significant: dict[str, bool] | None = None) -> ResultsTable:
    benches = [BenchmarkRow(t, w) for t, w in WEIGHTS.items()]
    columns = []
    for label, (cells, avg, wavg, drop) in TABLE2.items():
        by_bench = {
            b.title: Cell(m, s, n=10, runs=4 if s is not None else 1) for b, (m, s) in zip(benches, cells, strict=True)
        }
        columns.append(
            VariantColumn(
                label, by_bench, average=avg, weighted_avg=wavg, drop=drop, significant=(significant or {}).get(label)
            )
        )
    return ResultsTable(benches, columns, baseline="FP8 (Official API)")


def paper_data() -> ReportData:
    return ReportData(
        model="DeepSeek-R1 (paper numbers)",
        note="numbers from arXiv 2505.02390 Tables 1-2",
        device_sets=list(DEVICES),
        sizes=paper_sizes(),
        results=paper_results(),
        notes=["a test fixture"],
    )


def illustrative_proxies() -> dict:
    """Proxy rows for the paper's variants. The paper has no KL numbers: these only exercise rendering."""
    from quantdrop.proxies import ProxyResult

    kl = {"Q4_K_M": 0.012, "Q3_K_M": 0.041, "DQ3_K_M": 0.033, "Q2_K_L": 0.11, "UD-Q2_K_XL": 0.085}
    return {
        label: ProxyResult(
            variant=f"{label}.gguf",
            fingerprint="-",
            reference="-",
            text="test.jsonl",
            n_ctx=512,
            n_chunks=4,
            n_tokens=1020,
            ppl=6.0 * (1 + k),
            ppl_err=0.2,
            ppl_base=6.0,
            ppl_base_err=0.2,
            ln_ppl_ratio=k,
            ln_ppl_ratio_err=0.002,
            kld_mean=k,
            kld_mean_err=k / 20,
            kld_median=k / 2,
            kld_p99=k * 8,
            kld_max=k * 30,
            rms_dp=0.02,
            same_top=1 - k,
            same_top_err=0.005,
        )
        for label, k in kl.items()
    }


def illustrative_speed() -> dict:
    """Speed fields of ReportData for the paper's variants (illustrative: the paper measures no speed)."""
    from quantdrop.report.data import Speed

    tg = {"Q4_K_M": 20.0, "Q3_K_M": 23.5, "DQ3_K_M": 24.0, "Q2_K_L": 27.0, "UD-Q2_K_XL": 28.5}
    return {
        "speed": {label: Speed("pp512", 10 * t, 1.0, "tg128", t, 0.3, "in-process") for label, t in tg.items()},
        "speed_machine": "Test CPU, 2 threads, no GPU",
    }
