"""[tensorrt, cuda-python] Run a TensorRT engine: the ``tensorrt`` backend.

Runs on a Jetson with only TensorRT, CUDA, numpy and Python 3.10 — no torch. CUDA memory, streams and
graphs come from cuda-python (see :mod:`lotus_deploy.runtime.cuda_mem` for why that binding).

* Compatibility: an engine is tied to the TensorRT version and the GPU architecture. An engine whose
  manifest names another TensorRT version (major.minor.patch) or compute capability is refused with a
  one-line CompatibilityError telling how to rebuild it; an engine without a manifest (built by
  ``trtexec``, say) is accepted with an :class:`EngineManifestWarning`.
* I/O names, dtypes and the optimization profile are read from the engine itself and checked against
  the contract (input ``image``, output ``depth`` or ``normal``, float32).
* Device buffers and page-locked host buffers are allocated once, for the profile's largest shape;
  every run copies in, runs ``execute_async_v3`` on one stream, copies out and synchronizes.
* Batches larger than the profile's max batch run in chunks; smaller than a static batch are padded.
* ``cuda_graph=True`` (static engines only) captures the enqueue once and replays it afterwards.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts import ENGINE_FILE, MANIFEST, Artifact, open_artifact, read_manifest
from ..config import Task
from ..contract import INPUT_NAME, GraphShape, contract_json
from ..errors import ArtifactError, CompatibilityError, ConfigError
from ..trt_build import EngineProfile
from ..trt_compat import version_tuple

if TYPE_CHECKING:
    # Type stubs only (tensorrt-stubs): annotating TensorRT objects with them lets mypy check each call.
    import tensorrt as trt_t


class EngineManifestWarning(Warning):
    """An engine runs without the manifest that would prove it fits this TensorRT and GPU.

    A plain ``Warning`` subclass (not UserWarning), so the CLI's filtering of library chatter keeps it.
    """


@dataclass(frozen=True)
class BareEngine(Artifact):
    """An engine file without an artifact manifest; the manifest here is synthesized from the engine."""

    path: Path = Path(ENGINE_FILE)

    @property
    def model_path(self) -> Path:
        return self.path


def check_engine_compatibility(manifest: dict[str, Any] | None, running_version: str, running_cc: str, where: str) -> str | None:
    """None when the engine's manifest matches; a warning text when it cannot be checked; else raise.

    Compared: TensorRT major.minor.patch (engines do not load across TensorRT versions) and the GPU's
    compute capability (kernels are compiled for one architecture).
    """
    if manifest is None or manifest.get("bare"):
        return (f"{where} has no manifest: cannot confirm it was built for TensorRT {running_version} on compute capability "
                f"{running_cc}; running it anyway (build with lotus-build to get a checked artifact)")
    info = manifest.get("tensorrt") or {}
    built_version = info.get("version")
    built_cc = info.get("compute_capability")
    rebuild = "rebuild it on this machine: lotus-build " + str((manifest.get("parent") or {}).get("folder") or "ONNX_DIR")
    if not built_version or not built_cc:
        return f"{where}'s manifest does not record the TensorRT version and compute capability it was built for; running it anyway"
    if version_tuple(str(built_version))[:3] != version_tuple(running_version)[:3]:
        raise CompatibilityError(f"{where} was built with TensorRT {built_version}, this machine runs TensorRT {running_version}",
                                 f"engines do not move across TensorRT versions; {rebuild}")
    if str(built_cc) != str(running_cc):
        gpu = info.get("gpu_name") or "another GPU"
        raise CompatibilityError(f"{where} was built for compute capability {built_cc} ({gpu}), this GPU is {running_cc}",
                                 f"engines are compiled for one GPU architecture; {rebuild}")
    return None


@dataclass(frozen=True)
class TensorInfo:
    name: str
    is_input: bool
    dtype: str
    shape: tuple[int, ...]  # -1 where dynamic


def dims_tuple(dims: trt_t.Dims) -> tuple[int, ...]:
    """A TensorRT Dims as a tuple of ints (-1 marks a dynamic axis)."""
    return tuple(int(dims[i]) for i in range(len(dims)))


def engine_io(trt: Any, engine: trt_t.ICudaEngine) -> list[TensorInfo]:
    """Names, directions, dtypes and shapes of an engine's I/O tensors."""
    tensors = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        mode = engine.get_tensor_mode(name)
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name
        tensors.append(TensorInfo(name=name, is_input=mode == trt.TensorIOMode.INPUT, dtype=dtype, shape=dims_tuple(engine.get_tensor_shape(name))))
    return tensors


def engine_profile(engine: trt_t.ICudaEngine) -> EngineProfile:
    """Profile 0 of input ``image`` as min/opt/max."""
    low, opt, high = (dims_tuple(dims) for dims in engine.get_tensor_profile_shape(INPUT_NAME, 0))
    return EngineProfile.from_json({"min": low, "opt": opt, "max": high})


def _task_from_io(tensors: list[TensorInfo], where: str) -> Task:
    inputs = [t for t in tensors if t.is_input]
    outputs = [t for t in tensors if not t.is_input]
    names = [t.name for t in outputs]
    if [t.name for t in inputs] != [INPUT_NAME] or len(outputs) != 1 or names[0] not in {task.value for task in Task}:
        raise ArtifactError(f"{where} has inputs {[t.name for t in inputs]} and outputs {names}",
                            f"a Lotus engine has input {INPUT_NAME!r} and one output 'depth' or 'normal'; build it from a lotus-export ONNX graph")
    for tensor in (*inputs, *outputs):
        if tensor.dtype != "float32":
            raise ArtifactError(f"{where}: tensor {tensor.name!r} is {tensor.dtype}, the contract says float32",
                                "reduced-precision graphs keep float32 I/O; rebuild from a lotus-export ONNX graph")
    return Task(names[0])


def _deserialize(trt: Any, path: Path) -> tuple[trt_t.Runtime, trt_t.ICudaEngine]:
    from ..trt_compat import get_logger

    runtime: trt_t.Runtime = trt.Runtime(get_logger(trt))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read {path} ({exc.strerror})", "pass an engine file or an engine artifact folder") from None
    engine: trt_t.ICudaEngine | None = runtime.deserialize_cuda_engine(data)
    del data
    if engine is None:
        raise ArtifactError(f"TensorRT {trt.__version__} cannot load {path} (its log above says why)",
                            "was it built with another TensorRT version or for another GPU? rebuild it here with lotus-build")
    return runtime, engine


def _bare_manifest(task: Task, profile: EngineProfile) -> dict[str, Any]:
    shape = profile.graph_shape()
    return {
        "kind": "tensorrt",
        "bare": True,
        "engine": None,
        "task": task.value,
        "output_meaning": task.value,
        "shape": shape.to_json(),
        "contract": contract_json(task, shape),
        "tensorrt": {"profile": profile.to_json()},
    }


def _manifest_lists(folder: Path, name: str) -> bool:
    try:
        manifest = read_manifest(folder)
    except ArtifactError:
        return False
    return manifest.get("kind") == "tensorrt" and name in manifest.get("files", {})


def open_engine(path: str | Path, check_hashes: bool = True) -> Artifact:
    """An engine artifact folder (or its model.engine) -> Artifact; a bare engine file -> BareEngine.

    A bare engine (no manifest beside it, e.g. from ``trtexec --saveEngine``) is loaded once with
    TensorRT to read its I/O: the task comes from the output tensor's name (``depth``/``normal``).
    """
    path = Path(path)
    if path.is_dir() or (path.is_file() and (path.parent / MANIFEST).is_file() and _manifest_lists(path.parent, path.name)):
        return open_artifact(path, check_hashes=check_hashes)
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist", "pass an engine file or an engine artifact folder")
    from ..runtime.cuda_mem import load_cudart
    from ..trt_compat import load_tensorrt

    trt = load_tensorrt()
    load_cudart()
    _runtime, engine = _deserialize(trt, path)
    task = _task_from_io(engine_io(trt, engine), str(path))
    profile = engine_profile(engine)
    del engine, _runtime
    return BareEngine(folder=path.parent, manifest=_bare_manifest(task, profile), path=path)


class TensorRTBackend:
    """TensorRT engine over preallocated device buffers, one stream, optional CUDA-graph replay."""

    name = "tensorrt"

    def __init__(self, artifact: Artifact | None, engine: str | Path | None = None, cuda_graph: bool = False, device: int = 0,
                 check_hashes: bool = True) -> None:
        from ..trt_compat import load_tensorrt
        from .cuda_mem import DeviceBuffer, PinnedBuffer, Stream, check, device_info, load_cudart

        self._closed = True
        trt = load_tensorrt()
        cudart = load_cudart()
        self._trt, self._cudart = trt, cudart
        if artifact is None:
            if engine is None:
                raise ConfigError("the tensorrt backend needs an engine", "pass an engine artifact folder, or engine=PATH for a bare engine file")
            path = Path(engine)
            if path.is_dir() or (path.parent / MANIFEST).is_file() and _manifest_lists(path.parent, path.name):
                artifact = open_artifact(path, check_hashes=check_hashes)
        if artifact is not None and artifact.kind != "tensorrt":
            raise ConfigError(f"{artifact.folder} is an {artifact.kind} artifact, not a TensorRT engine",
                              f"use --backend onnxruntime for it, or build an engine from it: lotus-build {artifact.folder}")
        model_path = artifact.model_path if artifact is not None else Path(str(engine))
        check(cudart, cudart.cudaSetDevice(device), "cudaSetDevice")
        self.device = device_info(cudart, device)
        manifest = None if artifact is None or isinstance(artifact, BareEngine) else artifact.manifest
        note = check_engine_compatibility(manifest, str(trt.__version__), self.device.compute_capability, str(model_path))
        if note:
            warnings.warn(note, EngineManifestWarning, stacklevel=2)

        self._runtime, self._engine = _deserialize(trt, model_path)
        self.io = engine_io(trt, self._engine)
        self.task: Task = _task_from_io(self.io, str(model_path))
        if artifact is not None and not isinstance(artifact, BareEngine) and artifact.task is not self.task:
            raise ArtifactError(f"{model_path} outputs {self.task.value} but its manifest says {artifact.task.value}", "rebuild the engine")
        self.profile = engine_profile(self._engine)
        self.shape: GraphShape = self.profile.graph_shape()
        self.artifact = artifact if artifact is not None else BareEngine(model_path.parent, _bare_manifest(self.task, self.profile), model_path)
        self._output_name = self.task.value
        self._out_channels = next(t.shape[1] for t in self.io if not t.is_input)
        if cuda_graph and not self.profile.is_static:
            raise ConfigError("cuda_graph replay needs an engine with a static profile", "build one without --dynamic, or drop cuda_graph")
        self.cuda_graph = cuda_graph

        self._stream = Stream(cudart)
        n, c, h, w = self.profile.max
        in_count = n * c * h * w
        out_count = n * self._out_channels * h * w
        itemsize = np.dtype(np.float32).itemsize
        self._d_in = DeviceBuffer(cudart, in_count * itemsize)
        self._d_out = DeviceBuffer(cudart, out_count * itemsize)
        self._h_in = PinnedBuffer(cudart, in_count, np.float32)
        self._h_out = PinnedBuffer(cudart, out_count, np.float32)
        context: trt_t.IExecutionContext | None = self._engine.create_execution_context()
        if context is None:
            raise ArtifactError(f"TensorRT could not create an execution context for {model_path}", "free GPU memory and retry")
        self._context: trt_t.IExecutionContext = context
        self._context.set_tensor_address(INPUT_NAME, self._d_in.ptr)
        self._context.set_tensor_address(self._output_name, self._d_out.ptr)
        self._current: tuple[int, ...] | None = None
        self._out_shape: tuple[int, ...] = ()
        self._graph: Any = None
        self._closed = False

    @property
    def max_batch(self) -> int:
        return self.profile.max[0]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """[N,3,H,W] float32 -> [N,C,H,W] float32; N may exceed the profile (runs in chunks)."""
        if self._closed:
            raise ConfigError("this TensorRT backend was closed", "create a new one")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self.profile.check_input(tuple(batch.shape))
        n = batch.shape[0]
        out = np.empty((n, self._out_channels, batch.shape[2], batch.shape[3]), dtype=np.float32)
        low, high = self.profile.min[0], self.profile.max[0]
        for start in range(0, n, high):
            part = batch[start : start + high]
            count = part.shape[0]
            if count < low:  # a static batch larger than what is left: pad with the last image
                part = np.concatenate([part, np.repeat(part[-1:], low - count, axis=0)])
            out[start : start + count] = self._run_chunk(part)[:count]
        return out

    def _run_chunk(self, x: np.ndarray) -> np.ndarray:
        from .cuda_mem import copy_dtoh_async, copy_htod_async

        shape = tuple(int(v) for v in x.shape)
        fresh = shape != self._current
        if fresh:
            if not self._context.set_input_shape(INPUT_NAME, self._trt.Dims(list(shape))):
                raise ArtifactError(f"TensorRT rejected input shape {shape} (profile {self.profile.to_json()})", "pass a shape inside the profile")
            self._out_shape = dims_tuple(self._context.get_tensor_shape(self._output_name))
            self._current = shape
        np.copyto(self._h_in.view(shape), x)
        copy_htod_async(self._cudart, self._d_in.ptr, self._h_in, x.nbytes, self._stream)
        if self.cuda_graph and self._graph is not None and self._graph.ready:
            self._graph.launch()
        else:
            self._enqueue()
            if self.cuda_graph and not fresh:
                # second run at this (static) shape: TensorRT's shape-dependent setup is done, capture now.
                self._capture()
        out_bytes = int(np.prod(self._out_shape)) * 4
        copy_dtoh_async(self._cudart, self._h_out, self._d_out.ptr, out_bytes, self._stream)
        self._stream.synchronize()
        return self._h_out.view(self._out_shape).copy()

    def _enqueue(self) -> None:
        if not self._context.execute_async_v3(self._stream.handle):
            raise ArtifactError("TensorRT execute_async_v3 failed (its log above says why)", "check GPU memory; rebuild the engine if it persists")

    def _capture(self) -> None:
        from .cuda_mem import CudaGraph

        graph = CudaGraph(self._cudart, self._stream)
        graph.capture_begin()
        try:
            self._enqueue()
        except BaseException:
            graph.capture_abort()
            raise
        graph.capture_end()
        self._graph = graph

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._stream.synchronize()
        finally:
            if self._graph is not None:
                self._graph.close()
                self._graph = None
            del self._context, self._engine, self._runtime
            for buffer in (self._d_in, self._d_out, self._h_in, self._h_out):
                buffer.close()
            self._stream.close()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
