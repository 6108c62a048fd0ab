"""Shared fixtures: paths to the real data beside the checkout, and tiny exported artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from extras import need_all

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SHARED_IMAGES = SHARED / "images"


@pytest.fixture(scope="session")
def shared_images() -> Path:
    """The real photos in ../shared/data/images; tests that need them skip where they are absent."""
    if not SHARED_IMAGES.is_dir():
        pytest.skip(f"real photos not found at {SHARED_IMAGES}")
    return SHARED_IMAGES


@pytest.fixture(scope="session")
def tiny_depth_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """builtin:tiny exported once per session as a dynamic fp32 depth graph (parity checked)."""
    need_all("torch", "diffusers", "onnx", "onnxslim", "onnxruntime")
    from lotus_deploy.core.config import ExportConfig
    from lotus_deploy.export.fused import export_onnx

    out = tmp_path_factory.mktemp("artifacts") / "tiny-depth-onnx"
    export_onnx(ExportConfig(model="builtin:tiny", output=out), quiet=True)
    return out
