#!/usr/bin/env bash
# Every check the project has, in one command (README's test command; .ci/run calls it).
# Run from anywhere inside an environment where the project is installed with the [dev] extras.
set -euo pipefail
cd "$(dirname "$0")/.."

run_pytest() {  # $1: the python to run; pytest's "no tests collected" (exit 5) is a failure of the suite
  set +e
  "$1" -m pytest -q -p no:cacheprovider
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

echo "== ruff"
ruff check .

echo "== mypy"
bash scripts/typecheck.sh

echo "== C++ (cpp_demo: build, self-test, comparison with the Python pre/post-processing)"
bash cpp_demo/run_tests.sh

echo "== C++ TensorRT demo compiled against TensorRT 10.3.0 and 11.1 headers (and a probe that must fail on 11.1)"
bash cpp_demo/compile_check.sh
