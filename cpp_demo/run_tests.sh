#!/usr/bin/env bash
# Configure, build (Release) and test cpp_demo: the C++ self-test plus the comparison with the
# Python pre/post-processing on the real photos (tests/test_cpp_prepost.py, run by CTest).
# Needs: cmake, g++, libjpeg-dev, libpng-dev; python3 with the project's dependencies (numpy,
# Pillow, pytest) for the comparison. TensorRT is optional: pass -DTensorRT_ROOT=... through
# LOTUS_CMAKE_ARGS to build lotus_demo as well.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${LOTUS_CPP_BUILD_DIR:-$here/build}"
jobs="${LOTUS_CPP_JOBS:-2}"
python="$(command -v python3 || command -v python || true)"

# shellcheck disable=SC2086  # LOTUS_CMAKE_ARGS is a list of flags
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release ${python:+-DPython3_EXECUTABLE="$python"} ${LOTUS_CMAKE_ARGS:-}
cmake --build "$build" --parallel "$jobs"
cd "$build"
ctest --output-on-failure
