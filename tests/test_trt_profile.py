"""Optimization-profile derivation, build settings and the trtexec command line (no TensorRT needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lotus_deploy.core.config import EngineKind, EngineSettings, ExportConfig
from lotus_deploy.core.contract import GraphShape
from lotus_deploy.core.errors import ConfigError, ShapeError
from lotus_deploy.core.profile import EngineProfile, derive_profile, describe_profile
from lotus_deploy.tensorrt.build import (
    DEFAULT_TIMING_CACHE,
    BuildSettings,
    profile_from_config,
    settings_from_config,
)
from lotus_deploy.tensorrt.trtexec import format_command, trtexec_command

DYNAMIC = GraphShape()


def test_static_default_is_512_batch_1():
    profile = derive_profile(DYNAMIC)
    assert profile.is_static
    assert profile.min == profile.opt == profile.max == (1, 3, 512, 512)
    assert profile.graph_shape() == GraphShape(batch=1, height=512, width=512)
    assert describe_profile(profile) == "static 1x3x512x512"


def test_static_from_flags():
    profile = derive_profile(DYNAMIC, height=384, width=640, batch=4)
    assert profile.opt == (4, 3, 384, 640) and profile.is_static


def test_static_follows_a_static_parent_graph():
    profile = derive_profile(GraphShape(batch=2, height=256, width=320))
    assert profile.opt == (2, 3, 256, 320)


def test_flag_contradicting_static_parent_is_refused():
    with pytest.raises(ConfigError, match="contradicts the ONNX graph"):
        derive_profile(GraphShape(batch=None, height=256, width=256), height=512, width=512)


def test_dynamic_defaults():
    profile = derive_profile(DYNAMIC, dynamic=True)
    assert not profile.is_static
    assert profile.min == (1, 3, 64, 64)
    assert profile.opt == (1, 3, 512, 512)
    assert profile.max == (1, 3, 768, 768)
    assert profile.graph_shape() == GraphShape(batch=1, height=None, width=None)
    assert describe_profile(profile) == "min 1x3x64x64 opt 1x3x512x512 max 1x3x768x768"


def test_dynamic_with_max_and_batch():
    profile = derive_profile(DYNAMIC, height=448, width=640, batch=2, dynamic=True, max_height=1024, max_width=1024, max_batch=4)
    assert profile.min == (1, 3, 64, 64)
    assert profile.opt == (2, 3, 448, 640)
    assert profile.max == (4, 3, 1024, 1024)
    assert profile.graph_shape() == GraphShape(batch=None, height=None, width=None)


def test_dynamic_opt_above_default_max_raises_max():
    profile = derive_profile(DYNAMIC, height=1024, width=1024, dynamic=True)
    assert profile.max == (1, 3, 1024, 1024)


def test_dynamic_keeps_axes_a_parent_fixes():
    profile = derive_profile(GraphShape(batch=1, height=None, width=None), dynamic=True, max_height=1024, max_width=1024)
    assert profile.min[0] == profile.opt[0] == profile.max[0] == 1
    assert profile.graph_shape().batch == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 500, "width": 512}, "--height 500 is not a positive multiple of 64"),
        ({"dynamic": True, "max_height": 700}, "--max-height 700 is not a positive multiple of 64"),
        ({"dynamic": True, "max_width": 0}, "--max-width 0 is not a positive multiple of 64"),
        ({"height": 512}, "only one of --height/--width"),
        ({"max_height": 1024}, "only apply to a dynamic profile"),
        ({"batch": 0}, "--batch 0 is not positive"),
        ({"dynamic": True, "max_batch": 0}, "--max-batch 0 is not positive"),
        ({"height": 1024, "width": 1024, "dynamic": True, "max_height": 768}, "opt height 1024 is above --max-height 768"),
        ({"batch": 4, "dynamic": True, "max_batch": 2}, "opt batch 4 is above --max-batch 2"),
    ],
)
def test_profile_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        derive_profile(DYNAMIC, **kwargs)
    assert "\n" not in str(info.value)
    assert info.value.fix  # every error says what to do


def test_profile_from_export_config():
    config = ExportConfig(model="builtin:tiny", engine=EngineKind.TRT_FP16, height=256, width=384, tensorrt=EngineSettings(dynamic_profile=True, max_batch=3))
    profile = profile_from_config(config, DYNAMIC)
    assert profile.opt == (1, 3, 256, 384) and profile.max == (3, 3, 768, 768)


def test_profile_json_round_trip():
    profile = derive_profile(DYNAMIC, dynamic=True, max_batch=2)
    data = profile.to_json()
    assert data["input"] == "image"
    assert EngineProfile.from_json(data) == profile


def test_profile_check_input():
    profile = derive_profile(DYNAMIC, dynamic=True)
    profile.check_input((5, 3, 128, 704))  # batch beyond the max runs in chunks: not a shape error
    with pytest.raises(ShapeError, match="outside the engine's profile"):
        profile.check_input((1, 3, 832, 512))
    with pytest.raises(ShapeError, match="outside the engine's profile"):
        profile.check_input((1, 3, 100, 128))
    with pytest.raises(ShapeError, match=r"not \[N, 3, H, W\]"):
        profile.check_input((1, 4, 128, 128))
    static = derive_profile(DYNAMIC)
    with pytest.raises(ShapeError, match="height 512"):
        static.check_input((1, 3, 256, 512))


def test_build_settings_validation_and_defaults():
    settings = settings_from_config(ExportConfig(model="builtin:tiny", engine=EngineKind.TRT_FP32))
    assert settings.timing_cache == DEFAULT_TIMING_CACHE == Path("engines/timing.cache")
    assert settings.fp32 and settings.workspace_bytes == 4 << 30 and settings.optimization_level == 3
    assert not settings_from_config(ExportConfig(model="builtin:tiny", engine=EngineKind.TRT_INT8)).fp32
    with pytest.raises(ConfigError, match="--opt-level 6 is outside 0..5"):
        BuildSettings(optimization_level=6)
    with pytest.raises(ConfigError, match="--workspace-gib 0 must be positive"):
        BuildSettings(workspace_gib=0)


def test_trtexec_static():
    argv = trtexec_command("engines/x/model.onnx", "engines/y/model.engine", derive_profile(DYNAMIC),
                           BuildSettings(workspace_gib=4, optimization_level=3, timing_cache=Path("engines/timing.cache")))
    assert argv == [
        "trtexec",
        "--onnx=engines/x/model.onnx",
        "--saveEngine=engines/y/model.engine",
        "--stronglyTyped",
        "--shapes=image:1x3x512x512",
        "--memPoolSize=workspace:4096M",
        "--builderOptimizationLevel=3",
        "--timingCacheFile=engines/timing.cache",
        "--skipInference",
    ]
    assert not any(flag in argv for flag in ("--fp16", "--int8", "--best"))  # precision lives in the graph


def test_trtexec_dynamic_fp32_and_quoting():
    profile = derive_profile(DYNAMIC, dynamic=True, max_batch=2, max_height=1024, max_width=1024)
    argv = trtexec_command(Path("my graphs/model.onnx"), Path("out/model.engine"), profile,
                           BuildSettings(workspace_gib=1.5, optimization_level=5, timing_cache=None, fp32=True), trtexec="/usr/src/tensorrt/bin/trtexec")
    assert argv[0] == "/usr/src/tensorrt/bin/trtexec"
    assert "--minShapes=image:1x3x64x64" in argv
    assert "--optShapes=image:1x3x512x512" in argv
    assert "--maxShapes=image:2x3x1024x1024" in argv
    assert "--memPoolSize=workspace:1536M" in argv
    assert "--builderOptimizationLevel=5" in argv
    assert "--noTF32" in argv
    assert not any(a.startswith("--shapes=") or a.startswith("--timingCacheFile") for a in argv)
    line = format_command(argv)
    assert "'--onnx=my graphs/model.onnx'" in line


def test_trtexec_leaves_shape_flags_out_for_a_fully_static_graph():
    static = GraphShape(batch=1, height=256, width=256)
    argv = trtexec_command("x.onnx", "y.engine", derive_profile(static), BuildSettings(), graph_is_static=True)
    assert not any(a.startswith(("--shapes", "--minShapes", "--optShapes", "--maxShapes")) for a in argv)
    assert "--shapes=image:1x3x256x256" in trtexec_command("x.onnx", "y.engine", derive_profile(static), BuildSettings())
