#!/usr/bin/env bash
# Compile the TensorRT demo (cpp_demo/demo/*.cpp) against TensorRT's public headers of 10.3.0 (JetPack 6)
# and 11.1 (desktop) — no TensorRT library is needed, so an API slip fails CI even without a GPU.
# Headers: ../shared/third_party/tensorrt/<version>/include (TensorRT, Apache-2.0) and CUDA's runtime
# headers from the nvidia-cuda-runtime-cu12 / nvidia-cuda-nvcc-cu12 wheels (scripts/setup.sh installs them).
# TensorRT and CUDA headers are -isystem (their own warnings are not ours); our files build with -Werror.
# A negative probe (tests/compile_probe/builder_fp16_flag.cpp) must compile against 10.3.0 and fail against 11.1.
set -euo pipefail
cd "$(dirname "$0")"
headers="${TENSORRT_HEADERS:-../../shared/third_party/tensorrt}"
if [ ! -d "$headers/10.3.0/include" ] || [ ! -d "$headers/11.1/include" ]; then
  echo "compile check skipped: TensorRT headers not found in $headers (expected 10.3.0/include and 11.1/include)"
  exit 0
fi
cuda=$(python -c "import nvidia, pathlib; print(pathlib.Path(list(nvidia.__path__)[0]))" 2>/dev/null || true)
if [ -z "$cuda" ] || [ ! -f "$cuda/cuda_runtime/include/cuda_runtime_api.h" ] || [ ! -d "$cuda/cuda_nvcc/include/crt" ]; then
  echo "compile check: CUDA headers missing; install them: pip install --no-deps nvidia-cuda-runtime-cu12 nvidia-cuda-nvcc-cu12" >&2
  exit 1
fi
cxx=${CXX:-g++}
flags=(-std=c++17 -fsyntax-only -Wall -Wextra -Werror -I include -I demo)
for version in 10.3.0 11.1; do
  system=(-isystem "$headers/$version/include" -isystem "$cuda/cuda_runtime/include" -isystem "$cuda/cuda_nvcc/include")
  "$cxx" "${flags[@]}" "${system[@]}" demo/*.cpp
  echo "compile check: demo/*.cpp compiles against TensorRT $version headers"
  if [ "$version" = "10.3.0" ]; then
    "$cxx" "${flags[@]}" "${system[@]}" tests/compile_probe/builder_fp16_flag.cpp
    echo "compile check: the probe (BuilderFlag::kFP16) compiles against $version, as it must"
  elif "$cxx" "${flags[@]}" "${system[@]}" tests/compile_probe/builder_fp16_flag.cpp 2>/dev/null; then
    echo "compile check: the probe (BuilderFlag::kFP16) compiled against TensorRT $version, where the flag no longer exists: the check is not using the headers it names" >&2
    exit 1
  else
    echo "compile check: the probe (BuilderFlag::kFP16) fails against $version, as it must"
  fi
done
