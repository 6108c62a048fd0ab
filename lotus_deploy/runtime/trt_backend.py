"""[tensorrt, cuda-python] Run a TensorRT engine: the ``tensorrt`` backend.

Runs on a Jetson with only TensorRT, CUDA, numpy and Python 3.10 — no torch. CUDA memory, streams and
graphs come from cuda-python (see :mod:`lotus_deploy.tensorrt.cuda_mem` for why that binding).

* Compatibility, I/O and profile checks: :mod:`lotus_deploy.tensorrt.engine`.
* Device buffers and page-locked host buffers are allocated once, for the profile's largest shape;
  every run copies in, runs ``execute_async_v3`` on one stream, copies out and synchronizes.
* Batches larger than the profile's max batch run in chunks; smaller than a static batch are padded.
* ``cuda_graph=True`` (static engines only) captures the enqueue once and replays it afterwards.

TensorRT and CUDA are reached only through :class:`lotus_deploy.tensorrt.seam.Platform`; the real one
(:func:`lotus_deploy.tensorrt.native.load_platform`) is the default and the only one any command uses. The
tests pass a recording double there to run this control flow on a CPU.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.artifacts import MANIFEST, Artifact, open_artifact
from ..core.config import Task
from ..core.contract import INPUT_NAME, GraphShape, pad_batch
from ..core.errors import ArtifactError, ConfigError
from ..tensorrt.engine import (
    BareEngine,
    EngineManifestWarning,
    bare_manifest,
    check_engine_compatibility,
    dims_tuple,
    engine_profile,
    lists_engine,
    task_from_io,
)

if TYPE_CHECKING:
    from ..tensorrt.seam import CudaStream, DeviceMemory, ExecutionContext, HostMemory, Platform, StreamGraph

_MOVED = {"open_engine": "lotus_deploy.tensorrt.engine"}
_warned: set[str] = set()


def __getattr__(name: str) -> Any:
    """``open_engine`` moved to :mod:`lotus_deploy.tensorrt.engine`; the old path still works and warns once."""
    if name in _MOVED:
        if name not in _warned:
            _warned.add(name)
            warnings.warn(f"lotus_deploy.runtime.trt_backend.{name} moved to {_MOVED[name]}.{name}", DeprecationWarning, stacklevel=2)
        from ..tensorrt import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TensorRTBackend:
    """TensorRT engine over preallocated device buffers, one stream, optional CUDA-graph replay."""

    name = "tensorrt"

    def __init__(self, artifact: Artifact | None, engine: str | Path | None = None, cuda_graph: bool = False, device: int = 0,
                 check_hashes: bool = True, *, platform: Platform | None = None) -> None:
        self._closed = True
        if platform is None:
            from ..tensorrt.native import load_platform

            platform = load_platform()
        self._cuda = platform.cuda
        if artifact is None:
            if engine is None:
                raise ConfigError("the tensorrt backend needs an engine", "pass an engine artifact folder, or engine=PATH for a bare engine file")
            path = Path(engine)
            if path.is_dir() or (path.parent / MANIFEST).is_file() and lists_engine(path.parent, path.name):
                artifact = open_artifact(path, check_hashes=check_hashes)
        if artifact is not None and artifact.kind != "tensorrt":
            raise ConfigError(f"{artifact.folder} is an {artifact.kind} artifact, not a TensorRT engine",
                              f"use --backend onnxruntime for it, or build an engine from it: lotus-build {artifact.folder}")
        model_path = artifact.model_path if artifact is not None else Path(str(engine))
        self.device = self._cuda.select_device(device)
        manifest = None if artifact is None or isinstance(artifact, BareEngine) else artifact.manifest
        note = check_engine_compatibility(manifest, platform.tensorrt.version, self.device.compute_capability, str(model_path))
        if note:
            warnings.warn(note, EngineManifestWarning, stacklevel=2)

        self._loaded = platform.tensorrt.load_engine(model_path)
        self.io = self._loaded.io
        self.task: Task = task_from_io(self.io, str(model_path))
        if artifact is not None and not isinstance(artifact, BareEngine) and artifact.task is not self.task:
            raise ArtifactError(f"{model_path} outputs {self.task.value} but its manifest says {artifact.task.value}", "rebuild the engine")
        self.profile = engine_profile(self._loaded.engine)
        self.shape: GraphShape = self.profile.graph_shape()
        self.artifact = artifact if artifact is not None else BareEngine(model_path.parent, bare_manifest(self.task, self.profile), model_path)
        self._output_name = self.task.value
        self._out_channels = next(t.shape[1] for t in self.io if not t.is_input)
        if cuda_graph and not self.profile.is_static:
            raise ConfigError("cuda_graph replay needs an engine with a static profile", "build one without --dynamic, or drop cuda_graph")
        self.cuda_graph = cuda_graph

        # The execution context first (it can fail for lack of GPU memory), then the stream and buffers;
        # whatever was allocated before a failure is released, so a failed start leaks nothing (8 GB Orin).
        context = self._loaded.engine.create_execution_context()
        if context is None:
            raise ArtifactError(f"TensorRT could not create an execution context for {model_path}", "free GPU memory and retry")
        self._context: ExecutionContext = context
        n, c, h, w = self.profile.max
        in_count = n * c * h * w
        out_count = n * self._out_channels * h * w
        itemsize = np.dtype(np.float32).itemsize
        allocated: list[CudaStream | DeviceMemory | HostMemory] = []
        try:
            self._stream = self._cuda.stream()
            allocated.append(self._stream)
            self._d_in = self._cuda.device_buffer(in_count * itemsize)
            allocated.append(self._d_in)
            self._d_out = self._cuda.device_buffer(out_count * itemsize)
            allocated.append(self._d_out)
            self._h_in = self._cuda.pinned_buffer(in_count)
            allocated.append(self._h_in)
            self._h_out = self._cuda.pinned_buffer(out_count)
            allocated.append(self._h_out)
        except BaseException:
            for resource in reversed(allocated):
                resource.close()
            raise
        self._context.set_tensor_address(INPUT_NAME, self._d_in.ptr)
        self._context.set_tensor_address(self._output_name, self._d_out.ptr)
        self._current: tuple[int, ...] | None = None
        self._out_shape: tuple[int, ...] = ()
        self._graph: StreamGraph | None = None
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
            part, count = pad_batch(part, low)  # a static batch larger than what is left: pad with the last image
            out[start : start + count] = self._run_chunk(part)[:count]
        return out

    def _run_chunk(self, x: np.ndarray) -> np.ndarray:
        shape = tuple(int(v) for v in x.shape)
        fresh = shape != self._current
        if fresh:
            # a tuple stands in for trt.Dims: the bindings register std::vector<int64_t> -> Dims as implicit
            if not self._context.set_input_shape(INPUT_NAME, shape):
                raise ArtifactError(f"TensorRT rejected input shape {shape} (profile {self.profile.to_json()})", "pass a shape inside the profile")
            self._out_shape = dims_tuple(self._context.get_tensor_shape(self._output_name))
            self._current = shape
        np.copyto(self._h_in.view(shape), x)
        self._cuda.copy_to_device(self._d_in.ptr, self._h_in, x.nbytes, self._stream)
        if self._graph is not None and self._graph.ready:
            self._graph.launch()
        else:
            self._enqueue()
            if self.cuda_graph and not fresh:
                # second run at this (static) shape: TensorRT's shape-dependent setup is done, capture now.
                self._capture()
        out_bytes = int(np.prod(self._out_shape)) * 4
        self._cuda.copy_to_host(self._h_out, self._d_out.ptr, out_bytes, self._stream)
        self._stream.synchronize()
        return self._h_out.view(self._out_shape).copy()

    def _enqueue(self) -> None:
        if not self._context.execute_async_v3(self._stream.handle):
            raise ArtifactError("TensorRT execute_async_v3 failed (its log above says why)", "check GPU memory; rebuild the engine if it persists")

    def _capture(self) -> None:
        graph = self._cuda.graph(self._stream)
        graph.capture_begin()
        try:
            self._enqueue()
        except BaseException:
            graph.capture_abort()
            raise
        try:
            graph.capture_end()
        except BaseException:
            graph.close()  # captured but not instantiated: free the captured graph, replay stays off
            raise
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
            del self._context, self._loaded
            for buffer in (self._d_in, self._d_out, self._h_in, self._h_out):
                buffer.close()
            self._stream.close()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
