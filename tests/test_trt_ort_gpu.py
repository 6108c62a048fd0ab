"""ONNX Runtime GPU backends (ort-cuda, ort-trt): provider options and failures on a CPU-only install."""

from __future__ import annotations

from pathlib import Path

import pytest
from extras import need
from trt_helpers import tiny_onnx_artifact

from lotus_deploy.core.artifacts import Artifact, open_artifact
from lotus_deploy.core.contract import GraphShape
from lotus_deploy.core.errors import ConfigError, DependencyError
from lotus_deploy.core.profile import derive_profile
from lotus_deploy.runtime import backend_names, load_backend
from lotus_deploy.runtime.ort_gpu import CUDA_EP, TRT_EP, default_cache_dir, trt_provider_options


def test_backends_are_registered():
    assert {"tensorrt", "ort-cuda", "ort-trt"} <= set(backend_names())


def test_trt_provider_options():
    profile = derive_profile(GraphShape(), dynamic=True, max_batch=2)
    options = trt_provider_options(profile, Path("/cache/x"), device_id=1, workspace_gib=2, optimization_level=4)
    assert options == {
        "device_id": 1,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": "/cache/x",
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": "/cache/x",
        "trt_max_workspace_size": 2 << 30,
        "trt_builder_optimization_level": 4,
        "trt_profile_min_shapes": "image:1x3x64x64",
        "trt_profile_opt_shapes": "image:1x3x512x512",
        "trt_profile_max_shapes": "image:2x3x768x768",
    }
    assert not any("fp16" in key or "int8" in key for key in options)  # precision lives in the graph


def test_cache_dir_is_keyed_by_manifest_and_build_settings(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LOTUS_DEPLOY_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"schema_version": 1}')
    profile = derive_profile(GraphShape())
    first = default_cache_dir(Artifact(folder, {}), profile, 4.0, 3)
    assert first.parent == tmp_path / "cache" / "ort-trt" and first == default_cache_dir(Artifact(folder, {}), profile, 4.0, 3)
    others = {default_cache_dir(Artifact(folder, {}), profile, 2.0, 3), default_cache_dir(Artifact(folder, {}), profile, 4.0, 5),
              default_cache_dir(Artifact(folder, {}), derive_profile(GraphShape(), dynamic=True), 4.0, 3)}
    (folder / "manifest.json").write_text('{"schema_version": 1, "x": 1}')
    others.add(default_cache_dir(Artifact(folder, {}), profile, 4.0, 3))
    assert first not in others and len(others) == 4


def test_cuda_ep_keeps_fp32_graphs_in_float32(tmp_path: Path):
    from lotus_deploy.runtime.ort_gpu import cuda_provider_options

    fp32 = Artifact(tmp_path, {"task": "depth", "precision": "fp32"})
    fp16 = Artifact(tmp_path, {"task": "depth", "precision": "fp16"})
    assert cuda_provider_options(fp32, 1) == {"device_id": 1, "use_tf32": 0}
    assert cuda_provider_options(fp16) == {"device_id": 0}


@pytest.mark.parametrize(("name", "provider"), [("ort-cuda", CUDA_EP), ("ort-trt", TRT_EP)])
def test_missing_gpu_provider_is_one_line(name: str, provider: str, tmp_path_factory: pytest.TempPathFactory):
    ort = need("onnxruntime")
    if provider in ort.get_available_providers():
        pytest.skip(f"{provider} is available here")
    artifact = open_artifact(tiny_onnx_artifact(tmp_path_factory))
    with pytest.raises(DependencyError) as info:
        load_backend(name, artifact)
    message = str(info.value)
    assert f"has no {provider}" in message and "onnxruntime-gpu" in message and "\n" not in message


def test_gpu_backends_need_an_onnx_artifact(tmp_path: Path):
    for name in ("ort-cuda", "ort-trt"):
        with pytest.raises(ConfigError, match="needs an ONNX artifact"):
            load_backend(name, None)
        with pytest.raises(ConfigError, match="is a tensorrt artifact"):
            load_backend(name, Artifact(tmp_path, {"kind": "tensorrt", "task": "depth"}))


def test_ort_gpu_extra_requires_the_release_with_strongly_typed_tensorrt_networks():
    """onnxruntime-gpu < 1.18 builds weakly typed TensorRT networks: an fp16 graph could run in other precisions."""
    import re

    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    (requirement,) = pyproject["project"]["optional-dependencies"]["ort-gpu"]
    floor = re.fullmatch(r"onnxruntime-gpu>=(\d+)\.(\d+)(?:\.\d+)?", requirement)
    assert floor is not None, requirement
    assert (int(floor.group(1)), int(floor.group(2))) >= (1, 18)
