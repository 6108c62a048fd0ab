#!/usr/bin/env bash
# Every check the project has, in one command (README's test command; .ci/run calls it).
# Run from anywhere inside an environment where the project is installed with the [dev] extras.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== pytest"
set +e
python -m pytest -q
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure of the suite" >&2
  exit 1
fi
[ "$status" -eq 0 ] || exit "$status"

echo "== ruff"
ruff check .

echo "== mypy"
bash scripts/typecheck.sh

echo "== C++ (cpp_demo: build, self-test, comparison with the Python pre/post-processing)"
bash cpp_demo/run_tests.sh
