"""The TensorRT backend's control flow, run on the CPU through the recording double (tests/trt_double.py).

What a GPU cannot be asked for in CI: chunking batches larger than the profile, padding batches smaller
than a static one, ``set_input_shape`` only when the shape changes, buffers sized from the profile's max,
CUDA-graph capture on the second run and replay after it, and release of everything allocated when a
start or a capture fails. The double computes with ONNX Runtime on the tiny graph, so every output is
compared with ONNX Runtime's own. ``scripts/check.sh`` measures this file's branch coverage of
``runtime/trt_backend.py`` and requires 100 %.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from extras import need
from trt_double import COMPUTE_CAPABILITY, VERSION, InjectedFailure, Recorder, recording_platform, write_engine
from trt_helpers import tiny_onnx_artifact

from lotus_deploy.core.artifacts import ENGINE_FILE, MANIFEST, Artifact, sha256_file
from lotus_deploy.core.errors import ArtifactError, CompatibilityError, ConfigError, ShapeError
from lotus_deploy.runtime.trt_backend import TensorRTBackend
from lotus_deploy.tensorrt.engine import EngineManifestWarning

need("onnxruntime")

STATIC = ((2, 3, 64, 128),) * 3
DYNAMIC = ((1, 3, 64, 64), (2, 3, 128, 128), (2, 3, 192, 192))


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx_artifact(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(tiny_onnx: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(tiny_onnx / "model.onnx"), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"image": x})[0]


def _engine(tmp_path: Path, tiny_onnx: Path, profile=STATIC, name: str = "bare.engine", **io) -> Path:
    return write_engine(tmp_path / name, tiny_onnx / "model.onnx", *profile, **io)


def _images(n: int, h: int = 64, w: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3, h, w)).astype(np.float32)


def _backend(path: Path, fail: dict[str, int] | None = None, **kwargs) -> tuple[TensorRTBackend, Recorder]:
    platform, recorder = recording_platform(fail)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EngineManifestWarning)
        return TensorRTBackend(None, engine=path, platform=platform, **kwargs), recorder


def _engine_artifact(folder: Path, tiny_onnx: Path, task: str = "depth", version: str = VERSION, cc: str = COMPUTE_CAPABILITY) -> Path:
    """An engine artifact folder around a double's engine file, with a manifest naming where it was built."""
    folder.mkdir()
    engine = _engine(folder, tiny_onnx, name=ENGINE_FILE)
    manifest = {"schema_version": 1, "kind": "tensorrt", "task": task, "engine": "trt-fp32", "precision": "fp32",
                "files": {ENGINE_FILE: {"sha256": sha256_file(engine), "bytes": engine.stat().st_size}},
                "tensorrt": {"version": version, "compute_capability": cc, "profile": {"min": STATIC[0], "opt": STATIC[1], "max": STATIC[2]}}}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


# --- running: chunks, padding, shapes, buffers ------------------------------------------------------


def test_dynamic_engine_runs_large_batches_in_chunks_of_the_profile_max(tmp_path, tiny_onnx, reference):
    backend, rec = _backend(_engine(tmp_path, tiny_onnx, DYNAMIC))
    x = _images(5, 128, 192)
    out = backend.run(x)
    np.testing.assert_allclose(out, reference(x), rtol=0, atol=1e-5)
    executed = [event[1] for event in rec.events if event[0] == "execute"]
    assert executed == [(2, 3, 128, 192), (2, 3, 128, 192), (1, 3, 128, 192)]
    assert backend.max_batch == 2 and backend.shape.batch is None and backend.shape.height is None


def test_input_shape_is_set_only_when_it_changes(tmp_path, tiny_onnx, reference):
    backend, rec = _backend(_engine(tmp_path, tiny_onnx, DYNAMIC))
    for x in (_images(1, 64, 64), _images(1, 64, 64, seed=1), _images(2, 192, 128)):
        np.testing.assert_allclose(backend.run(x), reference(x), rtol=0, atol=1e-5)
    shapes = [event[2] for event in rec.events if event[0] == "set_input_shape"]
    assert shapes == [(1, 3, 64, 64), (2, 3, 192, 128)]
    assert rec.names().count("execute") == 3


def test_static_engine_pads_a_short_batch_with_its_last_image(tmp_path, tiny_onnx, reference):
    backend, rec = _backend(_engine(tmp_path, tiny_onnx, STATIC))
    x = _images(3)
    out = backend.run(x)
    assert out.shape == (3, 1, 64, 128)
    np.testing.assert_allclose(out, reference(x), rtol=0, atol=1e-5)
    assert [event[1] for event in rec.events if event[0] == "execute"] == [(2, 3, 64, 128)] * 2


def test_buffers_are_sized_from_the_profile_max_and_bound_once(tmp_path, tiny_onnx):
    backend, rec = _backend(_engine(tmp_path, tiny_onnx, DYNAMIC))
    n, c, h, w = DYNAMIC[2]
    assert [event[1] for event in rec.events if event[0] == "device_buffer"] == [n * c * h * w * 4, n * 1 * h * w * 4]
    assert [event[1] for event in rec.events if event[0] == "pinned_buffer"] == [n * c * h * w, n * 1 * h * w]
    assert [event[1] for event in rec.events if event[0] == "set_tensor_address"] == ["image", "depth"]
    # the context exists before anything is allocated (item 7 of the review: a failed context leaks nothing)
    names = rec.names()
    assert names.index("create_execution_context") < names.index("stream") < names.index("device_buffer")
    backend.close()


def test_shape_outside_the_profile_is_refused_before_tensorrt_sees_it(tmp_path, tiny_onnx):
    backend, rec = _backend(_engine(tmp_path, tiny_onnx, STATIC))
    with pytest.raises(ShapeError):
        backend.run(_images(1, 128, 128))
    assert "set_input_shape" not in rec.names()


def test_shape_rejected_by_tensorrt_is_one_line_error(tmp_path, tiny_onnx):
    backend, _ = _backend(_engine(tmp_path, tiny_onnx, DYNAMIC), fail={"set_input_shape": 1})
    with pytest.raises(ArtifactError, match="rejected input shape"):
        backend.run(_images(1, 64, 64))


def test_failed_execute_is_one_line_error(tmp_path, tiny_onnx):
    backend, _ = _backend(_engine(tmp_path, tiny_onnx, STATIC), fail={"execute": 1})
    with pytest.raises(ArtifactError, match="execute_async_v3 failed"):
        backend.run(_images(2))


# --- CUDA graphs ---------------------------------------------------------------------------------------


def test_cuda_graph_is_captured_on_the_second_run_and_replayed_after(tmp_path, tiny_onnx, reference):
    backend, rec = _backend(_engine(tmp_path, tiny_onnx, STATIC), cuda_graph=True)
    inputs = [_images(2, seed=seed) for seed in range(4)]
    outputs = [backend.run(x) for x in inputs]
    for x, out in zip(inputs, outputs, strict=True):
        np.testing.assert_allclose(out, reference(x), rtol=0, atol=1e-5)  # replays read each run's new input
    assert not np.allclose(outputs[2], outputs[3])
    order = [name for name in rec.names() if name in {"execute", "capture_begin", "capture_end", "launch"}]
    assert order == ["execute", "execute", "capture_begin", "execute", "capture_end", "launch", "launch"]
    backend.close()
    assert "graph.close" in rec.names() and not rec.live


def test_cuda_graph_needs_a_static_profile(tmp_path, tiny_onnx):
    with pytest.raises(ConfigError, match="static profile"):
        _backend(_engine(tmp_path, tiny_onnx, DYNAMIC), cuda_graph=True)


def test_failed_capture_is_aborted_and_the_next_run_still_computes(tmp_path, tiny_onnx, reference):
    backend, rec = _backend(_engine(tmp_path, tiny_onnx, STATIC), fail={"execute": 3}, cuda_graph=True)
    x = _images(2)
    backend.run(x)
    with pytest.raises(ArtifactError):
        backend.run(x)  # the enqueue inside the capture fails
    assert "capture_abort" in rec.names() and "capture_end" not in rec.names()
    np.testing.assert_allclose(backend.run(x), reference(x), rtol=0, atol=1e-5)


def test_graph_that_cannot_be_instantiated_is_freed(tmp_path, tiny_onnx, reference):
    backend, rec = _backend(_engine(tmp_path, tiny_onnx, STATIC), fail={"capture_end": 1}, cuda_graph=True)
    x = _images(2)
    backend.run(x)
    with pytest.raises(InjectedFailure):
        backend.run(x)
    assert rec.names()[-1] == "graph.close" and not any(kind.startswith("graph") for kind in rec.live.values())
    np.testing.assert_allclose(backend.run(x), reference(x), rtol=0, atol=1e-5)
    backend.close()
    assert not rec.live


# --- starting and stopping -------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["stream", "device_buffer#1", "device_buffer#2", "pinned_buffer#1", "pinned_buffer#2"])
def test_failed_allocation_releases_everything_allocated_before_it(tmp_path, tiny_onnx, call):
    name, _, nth = call.partition("#")
    with pytest.raises(InjectedFailure):
        _backend(_engine(tmp_path, tiny_onnx, STATIC), fail={name: int(nth or 1)})
    # (the recorder is inside the failed call; run it again with one we keep)
    platform, rec = recording_platform({name: int(nth or 1)})
    with pytest.raises(InjectedFailure), warnings.catch_warnings():
        warnings.simplefilter("ignore", EngineManifestWarning)
        TensorRTBackend(None, engine=_engine(tmp_path, tiny_onnx, STATIC, name="again.engine"), platform=platform)
    assert rec.live == {}, f"leaked after a failed {call}: {rec.live}"


def test_no_execution_context_is_one_line_error_and_allocates_nothing(tmp_path, tiny_onnx):
    platform, rec = recording_platform({"create_execution_context": 1})
    with pytest.raises(ArtifactError, match="execution context"), warnings.catch_warnings():
        warnings.simplefilter("ignore", EngineManifestWarning)
        TensorRTBackend(None, engine=_engine(tmp_path, tiny_onnx, STATIC), platform=platform)
    assert "stream" not in rec.names() and not rec.live


def test_close_releases_everything_once_and_a_closed_backend_refuses_to_run(tmp_path, tiny_onnx):
    with _backend(_engine(tmp_path, tiny_onnx, STATIC))[0] as backend:
        backend.run(_images(2))
    backend.close()  # a second close is a no-op
    with pytest.raises(ConfigError, match="closed"):
        backend.run(_images(2))


def test_close_frees_buffers_even_when_the_final_synchronize_fails(tmp_path, tiny_onnx):
    backend, rec = _backend(_engine(tmp_path, tiny_onnx, STATIC), fail={"synchronize": 1})
    with pytest.raises(InjectedFailure):
        backend.close()
    assert not rec.live


def test_missing_device_is_one_line_error(tmp_path, tiny_onnx):
    platform, _ = recording_platform()
    with pytest.raises(Exception, match="no CUDA device 3"):
        TensorRTBackend(None, engine=_engine(tmp_path, tiny_onnx, STATIC), device=3, platform=platform)


# --- which engine: artifact, folder, bare file ---------------------------------------------------------------


def test_needs_an_engine(tmp_path):
    platform, _ = recording_platform()
    with pytest.raises(ConfigError, match="needs an engine"):
        TensorRTBackend(None, platform=platform)


def test_bare_engine_warns_and_describes_itself(tmp_path, tiny_onnx):
    platform, _ = recording_platform()
    with pytest.warns(EngineManifestWarning, match="no manifest"):
        backend = TensorRTBackend(None, engine=_engine(tmp_path, tiny_onnx, STATIC), platform=platform)
    assert backend.artifact.manifest["bare"] and backend.task.value == "depth"
    assert backend.shape.batch == 2 and backend.device.compute_capability == COMPUTE_CAPABILITY


def test_engine_folder_and_its_engine_file_open_the_artifact_without_warning(tmp_path, tiny_onnx):
    folder = _engine_artifact(tmp_path / "engine", tiny_onnx)
    for target in (folder, folder / ENGINE_FILE):
        platform, _ = recording_platform()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            backend = TensorRTBackend(None, engine=target, platform=platform)
        assert backend.artifact.folder == folder and not backend.artifact.manifest.get("bare")


def test_engine_built_with_another_tensorrt_is_refused(tmp_path, tiny_onnx):
    folder = _engine_artifact(tmp_path / "engine", tiny_onnx, version="10.7.0")
    platform, rec = recording_platform()
    with pytest.raises(CompatibilityError, match="10.7.0"):
        TensorRTBackend(None, engine=folder, platform=platform)
    assert "load_engine" not in rec.names()


def test_onnx_artifact_is_refused_with_the_way_to_build_an_engine(tmp_path, tiny_onnx):
    platform, _ = recording_platform()
    artifact = Artifact(folder=tiny_onnx, manifest={"kind": "onnx", "task": "depth"})
    with pytest.raises(ConfigError, match="lotus-build"):
        TensorRTBackend(artifact, platform=platform)


def test_manifest_task_must_match_the_engine_output(tmp_path, tiny_onnx):
    folder = _engine_artifact(tmp_path / "engine", tiny_onnx, task="normal")
    platform, _ = recording_platform()
    with pytest.raises(ArtifactError, match="outputs depth but its manifest says normal"):
        TensorRTBackend(None, engine=folder, platform=platform)


@pytest.mark.parametrize("dtypes", [("float32", "bfloat16"), ("float16", "float32"), ("float32", "float8")])
def test_engine_with_reduced_precision_io_is_one_line_contract_error(tmp_path, tiny_onnx, dtypes):
    platform, _ = recording_platform()
    with pytest.raises(ArtifactError, match="the contract says float32"), warnings.catch_warnings():
        warnings.simplefilter("ignore", EngineManifestWarning)
        TensorRTBackend(None, engine=_engine(tmp_path, tiny_onnx, STATIC, dtypes=dtypes), platform=platform)


def test_old_import_path_of_open_engine_still_resolves_and_others_do_not(tmp_path):
    import lotus_deploy.runtime.trt_backend as module

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018


def test_without_a_platform_the_backend_loads_real_tensorrt_or_refuses(tmp_path, tiny_onnx):
    """The default (and every command's) platform is the real one: here, without TensorRT, a one-line refusal."""
    from trt_helpers import tensorrt_missing_reason

    from lotus_deploy.core.errors import LotusError

    if tensorrt_missing_reason() is None:
        pytest.skip("TensorRT and a GPU are usable here: tests/test_trt_engine.py runs real engines")
    with pytest.raises(LotusError) as caught:
        TensorRTBackend(None, engine=_engine(tmp_path, tiny_onnx, STATIC))
    assert "\n" not in str(caught.value) and ("tensorrt" in str(caught.value).lower() or "cuda" in str(caught.value).lower())
