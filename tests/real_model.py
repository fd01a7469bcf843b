"""The real test model that scripts/real_model.sh makes: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (256-wide
rows, so the K-quant paths run) and its F16 rebuild. Found in $QUANTDROP_REAL_MODEL_DIR, else in the
script's default folder; tests that need it are marked slow and skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

REAL_DIR = Path(
    os.environ.get("QUANTDROP_REAL_MODEL_DIR")
    or Path(os.environ.get("QUANTDROP_CACHE") or Path.home() / ".cache" / "quantdrop") / "real"
)
QWEN_Q4 = REAL_DIR / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_F16 = REAL_DIR / "qwen2.5-coder-1.5b-instruct-f16.gguf"
ABSENT = f"{QWEN_Q4} is absent (scripts/real_model.sh makes it; or set QUANTDROP_REAL_MODEL_DIR)"
