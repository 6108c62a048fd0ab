#!/usr/bin/env bash
# One-step developer setup: a virtual environment with the project and everything its checks need.
# Used by README's quick start and by .ci/run, so both install exactly the same things.
#   LOTUS_VENV   where to create the environment (default: .venv)
#   TORCH_SPEC   the PyTorch to install first (default: torch==2.13.0, the tested CPU build;
#                on a GPU machine pass the build for your CUDA, or "" to keep an existing one)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${LOTUS_VENV:-.venv}"
torch_spec="${TORCH_SPEC-torch==2.13.0}"

# C++ pre/post-processing library (cpp_demo/): compiler, CMake, libjpeg and libpng headers.
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
dpkg -s libjpeg-dev >/dev/null 2>&1 || need+=(libjpeg-dev)
dpkg -s libpng-dev >/dev/null 2>&1 || need+=(libpng-dev)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
  else
    echo "setup: missing system packages: ${need[*]} (install them: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m pip install -q --upgrade pip
if [ -n "$torch_spec" ]; then
  python -m pip install -q "$torch_spec"
fi
python -m pip install -q -e ".[export,ort,bench,dev,video,precision,openvino,openvino-int8,ray,serve]" -c constraints.txt
# TensorRT type stubs (10.x) for scripts/typecheck.sh. --no-deps: with its dependencies it would pull
# TensorRT's native libraries, which cannot load on a machine without TensorRT (docs/tensorrt.md).
python -m pip install -q --no-deps tensorrt-stubs==10.13.0.35.1
# CUDA's runtime headers (no libraries are used) for cpp_demo/compile_check.sh: the TensorRT demo is
# compiled against TensorRT 10.3 and 11.1 headers even where no CUDA toolkit is installed.
python -m pip install -q --no-deps "nvidia-cuda-runtime-cu12==12.*" "nvidia-cuda-nvcc-cu12==12.*"
# A second environment with only the [dev] extra: scripts/check.sh runs the suite there too, to prove
# every test that needs an optional extra skips (naming it) instead of erroring. numpy, Pillow, tqdm only.
dev_venv="${LOTUS_DEV_VENV:-${venv}-dev}"
python3 -m venv "$dev_venv"
"$dev_venv/bin/python" -m pip install -q --upgrade pip
"$dev_venv/bin/python" -m pip install -q -e ".[dev]" -c constraints.txt
echo "setup: ready; activate with: . $venv/bin/activate"
