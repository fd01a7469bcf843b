"""Tables 2-5 of arXiv 2505.02390 ("Quantitative Analysis of Performance Drop in DeepSeek Model
Quantization"), copied from the paper's text (/work/shared/seeds/paper-2505.02390.md) exactly.

Each table: per-benchmark means per column (None where the paper prints "-"), and the paper's own
Average, Weighted avg. and Accuracy drop rows (as printed: strings for the drop, "-" kept).
Std values are kept only where a test needs them; the rows below are the means.
"""

from __future__ import annotations

ROWS = ("aime2024", "math500", "gpqa", "mbpp", "mbppplus", "livecodebench", "mmlu", "cmmlu", "ceval")

# Table 2: DeepSeek-R1. Accuracy drop is against FP8 (Official API).
TABLE2 = {
    "columns": ["FP8 (Reported)", "FP8 (Official API)", "Q4_K_M", "Q3_K_M", "UD-Q2_K_XL", "DQ3_K_M"],
    "baseline": "FP8 (Official API)",
    "scores": {
        "aime2024": [79.8, 77.53, 75.43, 72.50, 75.83, 75.41],
        "math500": [97.3, 95.45, 95.55, 94.15, 95.25, 95.35],
        "gpqa": [71.5, 69.58, 69.95, 65.80, 68.93, 68.95],
        "mbpp": [None, 92.60, 91.60, 90.43, 92.93, 92.80],
        "mbppplus": [None, 78.35, 76.70, 76.75, 78.33, 78.60],
        "livecodebench": [65.9, 64.16, 62.41, 61.95, 61.40, 63.15],
        "mmlu": [90.8, 90.99, 90.14, 89.87, 89.72, 91.03],
        "cmmlu": [None, 90.37, 90.42, 89.85, 89.61, 90.17],
        "ceval": [91.8, 92.20, 92.10, 91.60, 91.70, 91.80],
    },
    "average": ["-", "83.48", "82.70", "81.44", "82.63", "83.03"],
    "weighted": ["-", "85.82", "85.24", "84.28", "85.02", "85.53"],
    "drop": ["-", "-", "0.68%", "1.80%", "0.94%", "0.34%"],
}

# Table 3: DeepSeek-V3. The drop row's columns: "-", "-", "0", "0.52%", "8.91%", "0" (against
# FP8 (Tencent API); Q4_K_M and DQ3_K_M beat it, hence 0).
TABLE3 = {
    "columns": ["FP8 (Reported)", "FP8 (Tencent API)", "Q4_K_M", "Q3_K_M", "Q2_K_L", "DQ3_K_M"],
    "baseline": "FP8 (Tencent API)",
    "scores": {
        "aime2024": [39.2, 38.34, 41.66, 38.73, 15.41, 39.16],
        "math500": [90.2, 89.85, 90.55, 89.05, 77.30, 89.65],
        "gpqa": [59.1, 52.23, 51.95, 52.13, 43.65, 52.38],
        "mbpp": [None, 87.75, 87.18, 88.55, 81.10, 89.38],
        "mbppplus": [None, 73.35, 72.90, 73.08, 67.83, 74.78],
        "livecodebench": [36.2, 36.21, 37.40, 36.21, 29.14, 36.76],
        "mmlu": [88.5, 88.06, 88.09, 87.31, 84.25, 87.87],
        "cmmlu": [None, 81.57, 82.68, 80.69, 77.32, 81.07],
        "ceval": [86.5, 83.10, 82.90, 82.60, 77.60, 83.40],
    },
    "average": ["-", "70.05", "70.59", "69.82", "61.51", "70.47"],
    "weighted": ["-", "75.45", "75.79", "75.06", "68.73", "75.73"],
    "drop": ["-", "-", "0", "0.52%", "8.91%", "0"],
}

# Table 4: DeepSeek-V3-0324. The paper prints Q3_K_M's C-Eval as "88 .90" (read: 88.90).
TABLE4 = {
    "columns": ["FP8 (Official API)", "Q4_K_M", "Q3_K_M", "Q2_K_L", "DQ3_K_M", "Q4_K", "Q3_K"],
    "baseline": "FP8 (Official API)",
    "scores": {
        "aime2024": [57.9, 53.3, 54.57, 31.25, 57.09, 59.18, 52.51],
        "math500": [93.25, 93.25, 92.50, 85.30, 93.55, 93.0, 91.65],
        "gpqa": [60.48, 59.10, 59.98, 46.75, 60.23, 56.20, 61.35],
        "mbpp": [89.03, 88.63, 88.10, 82.93, 89.50, 88.43, 87.78],
        "mbppplus": [74.73, 74.40, 73.08, 68.98, 75.63, 73.33, 73.30],
        "livecodebench": [49.73, 47.88, 46.23, 36.95, 47.89, 47.79, 44.95],
        "mmlu": [89.08, 88.71, 88.47, 85.59, 88.93, 88.73, 88.57],
        "cmmlu": [86.13, 86.13, 85.28, 81.57, 85.99, 85.96, 84.84],
        "ceval": [89.60, 89.10, 88.90, 73.60, 89.10, 89.00, 88.50],
    },
    "average": ["76.66", "75.62", "75.24", "65.88", "76.43", "75.74", "74.83"],
    "weighted": ["80.70", "80.04", "79.56", "71.49", "80.50", "79.81", "79.29"],
    "drop": ["-", "1.35%", "1.85%", "14.66%", "0.30%", "1.20%", "2.39%"],
}

# Table 5: DeepSeek-R1-distill-Qwen-32B, against BF16 (Local Evaluation). Q3_K_M's MATH 500 is
# printed "93.50(0.38)" (the ± sign missing); rows in the paper's order (LiveCodeBench before MBPP).
TABLE5 = {
    "columns": ["BF16 (Reported)", "BF16 (Local Evaluation)", "Q8_0", "Q4_K_M", "Q3_K_M"],
    "baseline": "BF16 (Local Evaluation)",
    "scores": {
        "aime2024": [72.6, 69.59, 71.68, 70.40, 71.24],
        "math500": [94.3, 93.65, 93.10, 93.90, 93.50],
        "gpqa": [62.1, 61.85, 58.85, 62.00, 60.20],
        "livecodebench": [57.2, 57.08, 57.59, 56.85, 55.20],
        "mbpp": [None, 89.35, 89.35, 89.73, 88.93],
        "mbppplus": [None, 75.43, 75.45, 75.53, 75.38],
        "mmlu": [None, 82.15, 82.15, 82.37, 82.17],
        "cmmlu": [None, 83.91, 83.97, 83.57, 83.34],
        "ceval": [None, 87.0, 86.7, 86.8, 86.2],
    },
    "average": ["-", "77.78", "77.65", "77.91", "77.35"],
    "weighted": ["-", "79.94", "79.71", "79.97", "79.40"],
    "drop": ["-", "-", "0.29%", "0", "0.68%"],
}

TABLES = {"table2": TABLE2, "table3": TABLE3, "table4": TABLE4, "table5": TABLE5}
