#!/usr/bin/env bash
# Prints the CMake flags that llama.cpp needs on this CPU instead of -DGGML_NATIVE=ON, or nothing when
# the native build is fine. Used by setup.sh (llama-cpp-python) and build_reference_tools.sh.
# CPUs with AMX (Intel Sapphire Rapids and later): the native build of llama-cpp-python 0.3.36's
# llama.cpp moves quantized weights into its AMX buffer, and decoding any quantized model then
# segfaults (ggml_backend_amx_mul_mat; llama.cpp issues #11115, #20824). Build for the same CPU
# features minus AMX.
if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
    echo "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
        "-DGGML_AVX_VNNI=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON" \
        "-DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
fi
