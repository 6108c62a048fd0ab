"""Helpers shared by the tests/test_trt_*.py files (not a test module)."""

from __future__ import annotations

from pathlib import Path

import pytest
from extras import need


def tiny_onnx_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """builtin:tiny exported once per test session (dynamic fp32 depth graph, parity skipped: the export
    tests check parity). Reused across modules through a fixed folder under the session's base temp."""
    need("torch")
    need("onnx")
    from lotus_deploy.core.artifacts import holds_artifact
    from lotus_deploy.core.config import ExportConfig, ExportSettings
    from lotus_deploy.export.fused import export_onnx

    out = tmp_path_factory.getbasetemp() / "trt-tests" / "tiny-depth-onnx"
    if not holds_artifact(out):
        export_onnx(ExportConfig(model="builtin:tiny", output=out, export=ExportSettings(parity=False)), quiet=True)
    return out


def tensorrt_missing_reason() -> str | None:
    """None where TensorRT and a CUDA GPU are usable; else why not (for skips)."""
    from lotus_deploy.core.errors import LotusError
    from lotus_deploy.tensorrt.compat import load_tensorrt
    from lotus_deploy.tensorrt.cuda_mem import device_info, load_cudart

    try:
        load_tensorrt()
        device_info(load_cudart())
    except LotusError as exc:
        return f"needs TensorRT and an NVIDIA GPU: {exc.cause}"
    return None
