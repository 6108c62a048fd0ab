#!/usr/bin/env bash
# mypy over the whole lotus_deploy package, with TensorRT calls checked against tensorrt-stubs (10.x).
# Installs nothing: needs `mypy` and `tensorrt-stubs` (pip install --no-deps tensorrt-stubs; with its
# dependencies it would pull TensorRT's native libraries). Recipe: docs/tensorrt.md.
# The stubs are copied into the git-ignored .typecheck/stubs/ and two syntax slips in them are patched
# there (parameters named `in`, and a parameter without a default after defaulted ones in add_scale_nd).
# Exits non-zero on any type error.
set -euo pipefail
cd "$(dirname "$0")/.."

python - <<'PY'
import ast
import pathlib
import re
import shutil
import sys
import sysconfig

scratch = pathlib.Path(".typecheck/stubs")
sources = []
for key in ("purelib", "platlib"):
    root = pathlib.Path(sysconfig.get_paths()[key])
    if (root / "tensorrt_bindings" / "tensorrt.pyi").is_file():
        sources = [root / "tensorrt", root / "tensorrt_bindings"]
        break
if not sources:
    sys.exit("typecheck: tensorrt-stubs is not installed here; run: python -m pip install --no-deps tensorrt-stubs==10.13.0.35.1")
shutil.rmtree(scratch, ignore_errors=True)
scratch.mkdir(parents=True)
for src in sources:
    shutil.copytree(src, scratch / src.name, ignore=shutil.ignore_patterns("*.py", "*.so", "*.pyc", "__pycache__"))
stub = scratch / "tensorrt_bindings" / "tensorrt.pyi"
text = stub.read_text()
# slip 1: parameters named `in` (a keyword) -> `in_`
text = re.sub(r"([(,]\s*)in(\s*:)", r"\1in_\2", text)
# slip 2: add_scale_nd(..., power: Weights = None, channel_axis: int) -> give channel_axis a default
text = re.sub(r"(def add_scale_nd\([^)]*?channel_axis: int)\)", r"\1 = 0)", text)
stub.write_text(text)
for path in scratch.rglob("*.pyi"):
    ast.parse(path.read_text(), filename=str(path))  # fail here, clearly, if a new stub version has other slips
PY

# tests/trt_double.py: the recording double must satisfy the same seam (lotus_deploy/tensorrt/seam.py) as TensorRT.
MYPYPATH=.typecheck/stubs:tests exec python -m mypy --python-version 3.10 --config-file pyproject.toml lotus_deploy tests/trt_double.py
