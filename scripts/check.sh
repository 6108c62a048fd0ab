#!/usr/bin/env bash
# Every check the project has, in one command (README's test command; .ci/run calls it).
# Run from anywhere inside an environment where the project is installed with the [dev] extras.
set -euo pipefail
cd "$(dirname "$0")/.."

run_pytest() {  # $1: the python to run, then pytest's arguments; "no tests collected" (exit 5) is a failure of the suite
  local python="$1"
  shift
  set +e
  "$python" -m pytest -q -p no:cacheprovider "$@"
  local status=$?
  set -e
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure of the suite" >&2
    exit 1
  fi
  [ "$status" -eq 0 ] || exit "$status"
}

echo "== pytest (every extra installed; a missing optional dependency fails instead of skipping)"
LOTUS_REQUIRE_EXTRAS=1 run_pytest python

echo "== TensorRT backend control flow on the CPU (recording double): 100 % branch coverage of runtime/trt_backend.py"
coverage_data="$(mktemp -d)"
trap 'rm -rf "$coverage_data"' EXIT
COVERAGE_FILE="$coverage_data/.coverage" LOTUS_REQUIRE_EXTRAS=1 python -m pytest -q -p no:cacheprovider \
  tests/test_trt_control_flow.py tests/test_architecture.py::test_open_engine_old_path_warns_once \
  --cov=lotus_deploy --cov-branch --cov-report=
COVERAGE_FILE="$coverage_data/.coverage" python -m coverage report --include='lotus_deploy/runtime/trt_backend.py' \
  --show-missing --fail-under=100

dev_venv="${LOTUS_DEV_VENV:-.venv-dev}"
echo "== pytest in $dev_venv (only the [dev] extra: every optional test skips, naming its extra)"
if [ ! -x "$dev_venv/bin/python" ]; then
  echo "$dev_venv is missing: run scripts/setup.sh (it makes both environments)" >&2
  exit 1
fi
run_pytest "$dev_venv/bin/python"

# PyTriton loads its Python backend through the system libpython and needs numpy < 2, so serving is tested in
# its own venv made from the system Python (docs/serving.md); the main environment keeps numpy 2.
serve_venv="${LOTUS_SERVE_VENV:-.venv-serve}"
echo "== serving: PyTriton in $serve_venv (system Python, numpy<2): concurrent HTTP and gRPC clients against a real Triton server"
if [ ! -x "$serve_venv/bin/python" ]; then
  if [ ! -x /usr/bin/python3 ]; then
    echo "/usr/bin/python3 is missing: PyTriton's server needs the system Python (docs/serving.md)" >&2
    exit 1
  fi
  /usr/bin/python3 -m venv "$serve_venv"
  "$serve_venv/bin/python" -m pip install -q --upgrade pip
  "$serve_venv/bin/python" -m pip install -q -e ".[ort,serve]" "nvidia-pytriton>=0.7" "numpy<2" pytest psutil -c constraints-serve.txt
fi
serve_work="$(mktemp -d)"
trap 'rm -rf "$coverage_data" "$serve_work"' EXIT
python -m lotus_deploy.cli.export_cmd --model builtin:tiny --engine onnx --output "$serve_work/tiny-depth-onnx" --quiet >/dev/null
LOTUS_REQUIRE_PYTRITON=1 LOTUS_SERVE_ARTIFACT="$serve_work/tiny-depth-onnx" run_pytest "$serve_venv/bin/python" tests/test_serve_pytriton.py

echo "== ruff"
ruff check .

echo "== mypy"
bash scripts/typecheck.sh

echo "== C++ (cpp_demo: build, self-test, comparison with the Python pre/post-processing)"
bash cpp_demo/run_tests.sh

echo "== C++ TensorRT demo compiled against TensorRT 10.3.0 and 11.1 headers (and a probe that must fail on 11.1)"
bash cpp_demo/compile_check.sh
