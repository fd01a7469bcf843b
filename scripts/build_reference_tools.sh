#!/usr/bin/env bash
# Builds llama.cpp's reference tools (llama-imatrix, llama-perplexity, llama-bench, llama-quantize)
# from the llama.cpp that llama-cpp-python 0.3.36 vendors, statically linked, into $REFBIN.
# The optional tests find them through $LLAMA_IMATRIX, $LLAMA_PERPLEXITY, $LLAMA_BENCH,
# $LLAMA_QUANTIZE (or on PATH):  export LLAMA_IMATRIX=$REFBIN/llama-imatrix ...
# Usage: scripts/build_reference_tools.sh [BUILD_DIR] [REFBIN]
#        (defaults: $QUANTDROP_CACHE or ~/.cache/quantdrop, then /llama.cpp-build and /refbin)
set -euo pipefail
VERSION=0.3.36
CACHE=${QUANTDROP_CACHE:-$HOME/.cache/quantdrop}
BUILD=${1:-$CACHE/llama.cpp-build}
REFBIN=${2:-$CACHE/refbin}
PIP=${PIP:-${QUANTDROP_VENV:-.venv}/bin/pip}
JOBS=${JOBS:-2}
CPU_ARGS="$(bash "$(dirname "$0")/cpu_cmake_args.sh")"
CPU_ARGS="${CPU_ARGS:--DGGML_NATIVE=ON}"  # AMX CPUs: without AMX, as setup.sh builds llama-cpp-python
mkdir -p "$BUILD" "$REFBIN"
SDIST="$BUILD/llama_cpp_python-$VERSION.tar.gz"
[ -f "$SDIST" ] || "$PIP" download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$BUILD"
SRC="$BUILD/llama_cpp_python-$VERSION/vendor/llama.cpp"
[ -d "$SRC" ] || tar xzf "$SDIST" -C "$BUILD"
cmake -S "$SRC" -B "$BUILD/llama.cpp-build" -G Ninja \
  $CPU_ARGS -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
nice cmake --build "$BUILD/llama.cpp-build" -j"$JOBS" \
  --target llama-imatrix llama-perplexity llama-bench llama-quantize
for t in llama-imatrix llama-perplexity llama-bench llama-quantize; do
  cp "$BUILD/llama.cpp-build/bin/$t" "$REFBIN/"
done
cat > "$REFBIN/README" <<TXT
llama.cpp reference tools built $(date -u +%FT%TZ) from llama-cpp-python $VERSION's vendored llama.cpp
($SRC), statically linked, by quantdrop's scripts/build_reference_tools.sh:
  cmake -S $SRC -B $BUILD/llama.cpp-build -G Ninja $CPU_ARGS -DLLAMA_CURL=OFF \\
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
  nice cmake --build $BUILD/llama.cpp-build -j$JOBS --target llama-imatrix llama-perplexity llama-bench llama-quantize
Use: export LLAMA_IMATRIX=$REFBIN/llama-imatrix LLAMA_PERPLEXITY=$REFBIN/llama-perplexity \\
            LLAMA_BENCH=$REFBIN/llama-bench LLAMA_QUANTIZE=$REFBIN/llama-quantize
TXT
ls -la "$REFBIN"
