"""Run the `polygraphy run` lines lotus-inspect prints, as a user would (not a test module)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path


def polygraphy_executable() -> Path:
    """The ``polygraphy`` script of the running environment (where the project's extras installed it)."""
    return Path(sys.executable).parent / "polygraphy"


def without_tensorrt(line: str) -> list[str]:
    """A printed line with the TensorRT runner (``--trt``, ``--trt-outputs mark all``) removed, as argv."""
    argv = shlex.split(line)
    out: list[str] = []
    skip = 0
    for index, arg in enumerate(argv):
        if skip:
            skip -= 1
            continue
        if arg == "--trt":
            continue
        if arg == "--trt-outputs":
            skip = 2 if argv[index + 1 : index + 3] == ["mark", "all"] else 0
            continue
        out.append(arg)
    assert out[0] == "polygraphy", line
    return [str(polygraphy_executable()), *out[1:]]


def run_line(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one printed line on the CPU (ONNX Runtime only) from ``cwd``."""
    return subprocess.run(without_tensorrt(line), cwd=cwd, capture_output=True, text=True, timeout=600)
