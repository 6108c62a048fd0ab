"""Stage orchestration: parents are reused only when their manifest shows the same settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from lotus_deploy.core.artifacts import open_artifact
from lotus_deploy.core.config import EngineKind, ExportConfig, ExportSettings
from lotus_deploy.core.errors import ConfigError
from lotus_deploy.pipeline import _settings_match, ensure_artifact, parent_config


def test_reuse_only_with_identical_settings(tiny_depth_onnx: Path) -> None:
    artifact = open_artifact(tiny_depth_onnx)
    same = ExportConfig(model="builtin:tiny", output=tiny_depth_onnx)
    assert _settings_match(artifact, same) == []
    assert ensure_artifact(same, quiet=True).folder == tiny_depth_onnx
    for changed in (ExportConfig(model="builtin:tiny", output=tiny_depth_onnx, export=ExportSettings(groupnorm="native")),
                    ExportConfig(model="builtin:tiny", output=tiny_depth_onnx, export=ExportSettings(opset=18)),
                    ExportConfig(model="builtin:tiny", output=tiny_depth_onnx, export=ExportSettings(split=True))):
        assert _settings_match(artifact, changed)
        with pytest.raises(ConfigError, match="other settings"):
            ensure_artifact(changed, quiet=True)


def test_parent_of_an_engine_is_a_dynamic_graph_of_its_precision() -> None:
    config = ExportConfig(model="builtin:tiny", engine=EngineKind.TRT_FP16, height=512, width=512, output=Path("x"))
    parent = parent_config(config)
    assert parent.engine is EngineKind.ONNX_FP16 and parent.height is None and parent.output is None
    assert parent_config(ExportConfig(model="builtin:tiny", engine=EngineKind.ONNX_INT8)).engine is EngineKind.ONNX
