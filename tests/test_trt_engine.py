"""Real TensorRT engines from the tiny ONNX artifact: build, parity, backend features, refusals.

Marked ``tensorrt``: they need TensorRT's native libraries, cuda-python and an NVIDIA GPU, and skip with
the reason everywhere else (no machine available to CI here can load TensorRT). Nothing is faked: every
number compared comes from a real engine.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from extras import need
from trt_helpers import tensorrt_missing_reason, tiny_onnx_artifact

from lotus_deploy.core.artifacts import ENGINE_FILE, MANIFEST, PARITY, open_artifact
from lotus_deploy.core.config import EngineKind, EngineSettings, ExportConfig, ExportSettings, Task
from lotus_deploy.core.errors import ArtifactError, CompatibilityError

REASON = tensorrt_missing_reason()
need("onnxruntime")  # the engines are checked against ONNX Runtime: skip (naming the extra) without it
pytestmark = [pytest.mark.tensorrt, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx_artifact(tmp_path_factory)


def _build(tiny_onnx: Path, out: Path, **settings: object):
    from lotus_deploy.tensorrt.build import build_engine_artifact

    config = ExportConfig(model="builtin:tiny", engine=EngineKind.TRT_FP32, output=out, **settings, export=ExportSettings(parity_size=128), tensorrt=EngineSettings(timing_cache=out.parent / "timing.cache"))  # type: ignore[arg-type]
    from lotus_deploy.runtime.engine_parity import engine_parity

    return build_engine_artifact(open_artifact(tiny_onnx), config, quiet=True, check=engine_parity)


@pytest.fixture(scope="module")
def static_engine(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trt") / "tiny-static"
    _build(tiny_onnx, out, height=128, width=192, batch=2)
    return out


@pytest.fixture(scope="module")
def dynamic_engine(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trt") / "tiny-dynamic"
    _build(tiny_onnx, out, height=128, width=128, dynamic_profile=True, max_height=256, max_width=256, max_batch=2)
    return out


def _inputs(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3, h, w)).astype(np.float32)


def _ort(tiny_onnx: Path, batch: np.ndarray) -> np.ndarray:
    from lotus_deploy.runtime.ort_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(open_artifact(tiny_onnx))
    try:
        return backend.run(batch)
    finally:
        backend.close()


def test_build_writes_manifest_and_parity(static_engine: Path):
    from lotus_deploy.tensorrt.compat import load_tensorrt
    from lotus_deploy.tensorrt.cuda_mem import device_info, load_cudart

    artifact = open_artifact(static_engine)
    m = artifact.manifest
    assert artifact.kind == "tensorrt" and artifact.model_path == static_engine / ENGINE_FILE
    assert m["engine"] == "trt-fp32" and m["task"] == "depth" and m["precision"] == "fp32"
    assert m["shape"] == {"batch": 2, "height": 128, "width": 192}
    trt_info = m["tensorrt"]
    assert trt_info["version"] == load_tensorrt().__version__
    assert trt_info["compute_capability"] == device_info(load_cudart()).compute_capability
    assert trt_info["strongly_typed"] is True
    assert trt_info["profile"] == {"input": "image", "min": [2, 3, 128, 192], "opt": [2, 3, 128, 192], "max": [2, 3, 128, 192]}
    assert m["parent"]["manifest_sha256"]
    parity = json.loads((static_engine / PARITY).read_text())
    assert parity["passed"] is True
    assert (static_engine.parent / "timing.cache").stat().st_size > 0


def test_engine_matches_pytorch_float64(static_engine: Path, tiny_onnx: Path):
    from lotus_deploy.export.oracle import oracle_output
    from lotus_deploy.model.checkpoint import load_checkpoint
    from lotus_deploy.runtime.trt_backend import TensorRTBackend

    batch = _inputs(2, 128, 192)
    with TensorRTBackend(open_artifact(static_engine)) as backend:
        got = backend.run(batch)
    reference = oracle_output(load_checkpoint("builtin:tiny"), Task.DEPTH, batch)
    assert got.shape == reference.shape == (2, 1, 128, 192)
    assert np.isfinite(got).all()
    assert np.abs(got - reference).max() <= 1e-3


def test_dynamic_engine_shapes_and_chunked_batches(dynamic_engine: Path, tiny_onnx: Path):
    from lotus_deploy.runtime.trt_backend import TensorRTBackend

    with TensorRTBackend(open_artifact(dynamic_engine)) as backend:
        assert backend.shape.height is None and backend.max_batch == 2
        for n, h, w in ((1, 64, 64), (3, 128, 192), (2, 256, 256)):  # batch 3 > max 2: two chunks
            batch = _inputs(n, h, w, seed=n)
            got = backend.run(batch)
            assert got.shape == (n, 1, h, w)
            assert np.abs(got - _ort(tiny_onnx, batch)).max() <= 1e-3


def test_static_engine_pads_small_batches(static_engine: Path, tiny_onnx: Path):
    from lotus_deploy.runtime.trt_backend import TensorRTBackend

    batch = _inputs(3, 128, 192, seed=3)  # static batch 2: one full chunk + one padded
    with TensorRTBackend(open_artifact(static_engine)) as backend:
        got = backend.run(batch)
    assert got.shape == (3, 1, 128, 192)
    assert np.abs(got - _ort(tiny_onnx, batch)).max() <= 1e-3


def test_cuda_graph_replay_matches_plain_run(static_engine: Path):
    """Replays of one backend are bit-identical to each other; across two contexts (separately chosen
    tactics may differ in accumulation order) the graph agrees with a plain run within a tolerance."""
    from lotus_deploy.runtime.trt_backend import TensorRTBackend

    batch = _inputs(2, 128, 192, seed=7)
    with TensorRTBackend(open_artifact(static_engine)) as plain:
        expected = plain.run(batch)
    with TensorRTBackend(open_artifact(static_engine), cuda_graph=True) as graphed:
        runs = [graphed.run(batch) for _ in range(4)]  # run 1 warms up, run 2 captures, runs 3-4 replay
        assert graphed._graph is not None and graphed._graph.ready
        other = graphed.run(_inputs(2, 128, 192, seed=8))
    np.testing.assert_array_equal(runs[2], runs[3])  # two replays of one captured graph
    for got in runs:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.abs(other - expected).max() > 1e-3  # replay reads the new input


def test_registry_and_estimator(static_engine: Path):
    from lotus_deploy.runtime import load_backend

    backend = load_backend("tensorrt", open_artifact(static_engine))
    try:
        assert backend.name == "tensorrt" and backend.task is Task.DEPTH
    finally:
        backend.close()


def test_bare_engine_warns_and_runs(static_engine: Path, tmp_path: Path):
    from lotus_deploy.runtime.trt_backend import TensorRTBackend
    from lotus_deploy.tensorrt.engine import BareEngine, EngineManifestWarning, open_engine

    bare = tmp_path / "from-trtexec.plan"
    shutil.copy(static_engine / ENGINE_FILE, bare)
    artifact = open_engine(bare)
    assert isinstance(artifact, BareEngine) and artifact.task is Task.DEPTH and artifact.model_path == bare
    with pytest.warns(EngineManifestWarning, match="has no manifest"):
        backend = TensorRTBackend(None, engine=bare)
    with backend:
        assert backend.run(_inputs(2, 128, 192)).shape == (2, 1, 128, 192)


def test_engine_folder_opened_by_path_does_not_warn(static_engine: Path):
    from lotus_deploy.runtime.trt_backend import TensorRTBackend
    from lotus_deploy.tensorrt.engine import EngineManifestWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineManifestWarning)
        TensorRTBackend(None, engine=static_engine / ENGINE_FILE).close()


@pytest.mark.parametrize(("key", "value", "message"), [
    ("version", "9.9.9", "built with TensorRT 9.9.9"),
    ("compute_capability", "1.0", "built for compute capability 1.0"),
])
def test_refuses_engine_built_elsewhere(static_engine: Path, tmp_path: Path, key: str, value: str, message: str):
    from lotus_deploy.runtime.trt_backend import TensorRTBackend

    copy = tmp_path / "copy"
    shutil.copytree(static_engine, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["tensorrt"][key] = value
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CompatibilityError, match=message):
        TensorRTBackend(open_artifact(copy))


def test_parser_errors_name_the_node(tmp_path: Path):
    onnx = need("onnx")
    from onnx import TensorProto, helper

    from lotus_deploy.core.contract import GraphShape
    from lotus_deploy.core.profile import derive_profile
    from lotus_deploy.tensorrt.build import BuildSettings, build_engine
    from lotus_deploy.tensorrt.compat import load_tensorrt

    node = helper.make_node("NoSuchOperator", ["image"], ["depth"], name="the_bad_node", domain="lotus.test")
    graph = helper.make_graph([node], "bad", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, 64, 64])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("lotus.test", 1)])
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    lines: list[str] = []
    with pytest.raises(ArtifactError) as info:
        build_engine(load_tensorrt(), path, tmp_path / "x.engine", derive_profile(GraphShape(1, 64, 64)),
                     BuildSettings(timing_cache=None), "depth", say=lines.append)
    assert "the_bad_node" in str(info.value) and "\n" not in str(info.value)
    assert any("the_bad_node" in line for line in lines)
    assert not (tmp_path / "x.engine").exists()


@pytest.mark.parametrize("source", ["video", "camera"])
def test_bare_engine_serves_video_and_camera_like_images(static_engine: Path, tmp_path: Path, source: str):
    """A bare engine (from trtexec, no manifest) runs lotus-video as an engine artifact does."""
    need("cv2")
    import cv2
    import numpy as np

    from lotus_deploy.cli import video_cmd
    from lotus_deploy.stream.video import VideoWriter

    bare = tmp_path / "from-trtexec.plan"
    shutil.copy(static_engine / ENGINE_FILE, bare)
    if source == "video":
        clip = tmp_path / "clip.mp4"
        with VideoWriter(clip, fps=5) as writer:
            for index in range(3):
                writer.write(np.full((128, 192, 3), 50 * index, np.uint8))
        target = [str(clip)]
    else:
        capture = cv2.VideoCapture(0)
        opened = capture.isOpened()
        capture.release()
        if not opened:
            pytest.skip("no camera 0 on this machine")
        target = ["--camera", "0"]
    out = tmp_path / "out"
    code = video_cmd.main([*target, "-a", str(bare), "--backend", "tensorrt", "-o", str(out), "--max-frames", "3", "--quiet"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == 3 and summary["failed_frames"] == 0
