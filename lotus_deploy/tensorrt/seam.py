"""The narrow seam between the TensorRT backend and the TensorRT/CUDA objects it drives.

Why: no machine CI has can load TensorRT, yet the backend's control flow (chunking, padding, per-call
input shapes, buffer sizing, CUDA-graph capture-then-replay, cleanup after a failed start) must be
right. The backend talks only to these Protocols; :mod:`lotus_deploy.tensorrt.native` binds them to the
real ``tensorrt`` module and cuda-python (mypy checks, against tensorrt-stubs, that TensorRT's own
classes satisfy them), and a recording double in ``tests/`` binds them to ONNX Runtime so the CPU can
run the backend end to end. Nothing user-facing ever constructs anything but the real platform.

Pure typing: importing this module imports neither TensorRT nor CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    compute_capability: str  # "8.7" for Orin


@dataclass(frozen=True)
class TensorInfo:
    name: str
    is_input: bool
    dtype: str
    shape: tuple[int, ...]  # -1 where dynamic


class Shape(Protocol):
    """A shape as TensorRT returns it (``trt.Dims``): indexable, with a length; -1 marks a dynamic axis."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> int: ...


class ExecutionContext(Protocol):
    """The part of ``trt.IExecutionContext`` the backend uses."""

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool: ...

    def get_tensor_shape(self, name: str) -> Shape: ...

    def set_tensor_address(self, name: str, memory: int) -> bool: ...

    def execute_async_v3(self, stream_handle: int) -> bool: ...


class CudaEngine(Protocol):
    """The part of ``trt.ICudaEngine`` the backend uses (I/O is read once, when the engine loads)."""

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> Sequence[Shape]: ...

    def create_execution_context(self) -> ExecutionContext | None: ...


@dataclass
class LoadedEngine:
    """A deserialized engine with its I/O; ``runtime`` is kept alive as long as the engine is."""

    runtime: object
    engine: CudaEngine
    io: list[TensorInfo]


class TensorRTApi(Protocol):
    """The TensorRT library: its version, and loading an engine file."""

    @property
    def version(self) -> str: ...

    def load_engine(self, path: Path) -> LoadedEngine: ...


class CudaStream(Protocol):
    @property
    def handle(self) -> int: ...

    @property
    def raw(self) -> Any: ...

    def synchronize(self) -> None: ...

    def close(self) -> None: ...


class DeviceMemory(Protocol):
    @property
    def ptr(self) -> int: ...

    def close(self) -> None: ...


class HostMemory(Protocol):
    """Page-locked float32 host memory, seen through numpy."""

    @property
    def ptr(self) -> int: ...

    def view(self, shape: tuple[int, ...]) -> np.ndarray: ...

    def close(self) -> None: ...


class StreamGraph(Protocol):
    """Work captured from a stream, replayable (a CUDA graph)."""

    def capture_begin(self) -> None: ...

    def capture_end(self) -> None: ...

    def capture_abort(self) -> None: ...

    @property
    def ready(self) -> bool: ...

    def launch(self) -> None: ...

    def close(self) -> None: ...


class CudaApi(Protocol):
    """The little CUDA the backend needs: a device, a stream, buffers, async copies, graphs."""

    def select_device(self, index: int) -> DeviceInfo: ...

    def stream(self) -> CudaStream: ...

    def device_buffer(self, nbytes: int) -> DeviceMemory: ...

    def pinned_buffer(self, count: int) -> HostMemory: ...

    def copy_to_device(self, device_ptr: int, host: HostMemory, nbytes: int, stream: CudaStream) -> None: ...

    def copy_to_host(self, host: HostMemory, device_ptr: int, nbytes: int, stream: CudaStream) -> None: ...

    def graph(self, stream: CudaStream) -> StreamGraph: ...


@dataclass(frozen=True)
class Platform:
    """TensorRT and CUDA as one value the backend is given (the real one: :func:`lotus_deploy.tensorrt.native.load_platform`)."""

    tensorrt: TensorRTApi
    cuda: CudaApi
