"""[cuda-python] The little CUDA the TensorRT backend needs: device info, streams, device and pinned
host buffers, async copies, and CUDA-graph capture/replay.

Why cuda-python (``cuda.bindings.runtime``, formerly ``cuda.cudart``): the TensorRT backend must run on a
Jetson that has only JetPack's TensorRT and CUDA, numpy and Python 3.10 — no torch. cuda-python is
NVIDIA's own thin binding of the CUDA runtime API, has aarch64 and x86_64 wheels for Python 3.10+,
pulls in nothing heavy, and exposes everything needed here (``cudaMallocHost`` for pinned memory,
``cudaMemcpyAsync``, streams, stream capture and graph launch). Polygraphy's ``cuda`` wrapper would also
work without torch, but it brings a whole debugging toolkit as a dependency and does not expose graph
capture; PyCUDA needs a compiler on the device. Install the major version that matches the CUDA
runtime: ``cuda-python==12.*`` on JetPack 6 (CUDA 12.6), ``13.*`` with CUDA 13.

Every call returns ``(cudaError_t, *values)``; :func:`check` turns a failure into a one-line
:class:`CudaError` naming the call.
"""

from __future__ import annotations

import ctypes
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import DependencyError, LotusError
from .seam import DeviceInfo

if TYPE_CHECKING:
    from .seam import CudaStream, HostMemory

__all__ = ["CudaError", "CudaGraph", "CudaRuntime", "DeviceBuffer", "DeviceInfo", "PinnedBuffer", "Stream", "device_info", "load_cudart"]

CUDA_HINT = ('pip install "cuda-python==12.*" (match your CUDA major: JetPack 6 has CUDA 12.6; cuda-python 13 fails on a '
             'CUDA 12 driver), or pip install "lotus-deploy[trt]" (CUDA 12) / "lotus-deploy[trt-cu13]" (CUDA 13)')


class CudaError(LotusError):
    """A CUDA runtime call failed (no device, out of memory, driver too old...)."""


def load_cudart() -> ModuleType:
    """The CUDA runtime binding of cuda-python, or a one-line DependencyError."""
    errors = []
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        # cuda.bindings.runtime: cuda-python >= 12.6 (cuda-bindings); cuda.cudart: older 12.x releases.
        try:
            module = __import__(name, fromlist=["cudaMalloc"])
        except Exception as exc:  # noqa: BLE001 - ImportError, or OSError when libcudart cannot load
            errors.append(f"{name}: {exc.__class__.__name__}: {str(exc).strip()[:120]}")
            continue
        return module
    raise DependencyError(f"cuda-python is not usable here ({'; '.join(errors)})", f"install it: {CUDA_HINT}")


def check(cudart: Any, result: Any, call: str) -> Any:
    """Unpack a cuda-python result tuple; raise CudaError on failure. Returns the value(s), if any."""
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if int(err) != 0:
        _, text = cudart.cudaGetErrorString(err)
        message = text.decode() if isinstance(text, bytes) else str(text)
        raise CudaError(f"CUDA {call} failed: {message} ({int(err)})", "check the GPU, the driver and free device memory (nvidia-smi / tegrastats)")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def device_info(cudart: Any, device: int = 0) -> DeviceInfo:
    """Name and compute capability of CUDA device ``device`` (raises CudaError when there is none)."""
    count = check(cudart, cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
    if not count or device >= int(count):
        raise CudaError(f"no CUDA device {device} (found {count or 0})", "run on a machine with an NVIDIA GPU, or pick another --device")
    attr = cudart.cudaDeviceAttr
    cc_major = check(cudart, cudart.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute")
    cc_minor = check(cudart, cudart.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute")
    props = check(cudart, cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    raw = props.name
    name = raw.split(b"\0", 1)[0].decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return DeviceInfo(index=device, name=name.strip(), compute_capability=f"{int(cc_major)}.{int(cc_minor)}")


class Stream:
    """A non-blocking CUDA stream; ``handle`` is the integer TensorRT's execute_async_v3 takes."""

    def __init__(self, cudart: Any) -> None:
        self._cudart = cudart
        self._stream: Any = check(cudart, cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")

    @property
    def handle(self) -> int:
        return int(self._stream)

    @property
    def raw(self) -> Any:
        return self._stream

    def synchronize(self) -> None:
        check(self._cudart, self._cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def close(self) -> None:
        if self._stream is not None:
            check(self._cudart, self._cudart.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
            self._stream = None


class DeviceBuffer:
    """``nbytes`` of device memory (cudaMalloc); ``ptr`` is its address."""

    def __init__(self, cudart: Any, nbytes: int) -> None:
        self._cudart = cudart
        self.nbytes = int(nbytes)
        self.ptr: int = int(check(cudart, cudart.cudaMalloc(max(self.nbytes, 1)), f"cudaMalloc({self.nbytes})"))

    def close(self) -> None:
        if self.ptr:
            check(self._cudart, self._cudart.cudaFree(self.ptr), "cudaFree")
            self.ptr = 0


class PinnedBuffer:
    """Page-locked host memory (cudaMallocHost) seen as a flat numpy array of ``dtype``.

    Async copies from pinned memory overlap with compute and run at full bus speed; from pageable
    memory the driver stages them through its own pinned buffer first.
    """

    def __init__(self, cudart: Any, count: int, dtype: np.dtype[Any] | type = np.float32) -> None:
        self._cudart = cudart
        self.dtype = np.dtype(dtype)
        self.nbytes = int(count) * self.dtype.itemsize
        self.ptr: int = int(check(cudart, cudart.cudaMallocHost(max(self.nbytes, 1)), f"cudaMallocHost({self.nbytes})"))
        raw = (ctypes.c_byte * self.nbytes).from_address(self.ptr)
        self.array: np.ndarray = np.frombuffer(memoryview(raw).cast("B"), dtype=self.dtype, count=int(count))

    def view(self, shape: tuple[int, ...]) -> np.ndarray:
        """The first prod(shape) elements, reshaped (no copy)."""
        size = int(np.prod(shape))
        return self.array[:size].reshape(shape)

    def close(self) -> None:
        if self.ptr:
            self.array = np.empty(0, dtype=self.dtype)  # drop the view before freeing the memory under it
            check(self._cudart, self._cudart.cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0


def copy_htod_async(cudart: Any, device_ptr: int, host: HostMemory, nbytes: int, stream: CudaStream) -> None:
    kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
    check(cudart, cudart.cudaMemcpyAsync(device_ptr, host.ptr, nbytes, kind, stream.raw), "cudaMemcpyAsync(HtoD)")


def copy_dtoh_async(cudart: Any, host: HostMemory, device_ptr: int, nbytes: int, stream: CudaStream) -> None:
    kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
    check(cudart, cudart.cudaMemcpyAsync(host.ptr, device_ptr, nbytes, kind, stream.raw), "cudaMemcpyAsync(DtoH)")


class CudaGraph:
    """Work enqueued on a stream between :meth:`capture_begin` and :meth:`capture_end`, replayable."""

    def __init__(self, cudart: Any, stream: CudaStream) -> None:
        self._cudart = cudart
        self._stream = stream
        self._graph: Any = None
        self._exec: Any = None

    def capture_begin(self) -> None:
        mode = self._cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        check(self._cudart, self._cudart.cudaStreamBeginCapture(self._stream.raw, mode), "cudaStreamBeginCapture")

    def capture_end(self) -> None:
        self._graph = check(self._cudart, self._cudart.cudaStreamEndCapture(self._stream.raw), "cudaStreamEndCapture")
        self._exec = check(self._cudart, self._cudart.cudaGraphInstantiate(self._graph, 0), "cudaGraphInstantiate")

    def capture_abort(self) -> None:
        """End a capture that failed half-way so the stream is usable again; the partial graph is dropped."""
        result = self._cudart.cudaStreamEndCapture(self._stream.raw)
        graph = result[1] if isinstance(result, tuple) and len(result) > 1 else None
        if graph is not None and int(result[0]) == 0:
            self._cudart.cudaGraphDestroy(graph)

    @property
    def ready(self) -> bool:
        return self._exec is not None

    def launch(self) -> None:
        check(self._cudart, self._cudart.cudaGraphLaunch(self._exec, self._stream.raw), "cudaGraphLaunch")

    def close(self) -> None:
        if self._exec is not None:
            check(self._cudart, self._cudart.cudaGraphExecDestroy(self._exec), "cudaGraphExecDestroy")
            self._exec = None
        if self._graph is not None:
            check(self._cudart, self._cudart.cudaGraphDestroy(self._graph), "cudaGraphDestroy")
            self._graph = None


class CudaRuntime:
    """cuda-python's runtime API behind the backend's :class:`~lotus_deploy.tensorrt.seam.CudaApi` seam."""

    def __init__(self, cudart: Any) -> None:
        self._cudart = cudart

    def select_device(self, index: int) -> DeviceInfo:
        check(self._cudart, self._cudart.cudaSetDevice(index), "cudaSetDevice")
        return device_info(self._cudart, index)

    def stream(self) -> Stream:
        return Stream(self._cudart)

    def device_buffer(self, nbytes: int) -> DeviceBuffer:
        return DeviceBuffer(self._cudart, nbytes)

    def pinned_buffer(self, count: int) -> PinnedBuffer:
        return PinnedBuffer(self._cudart, count, np.float32)

    def copy_to_device(self, device_ptr: int, host: HostMemory, nbytes: int, stream: CudaStream) -> None:
        copy_htod_async(self._cudart, device_ptr, host, nbytes, stream)

    def copy_to_host(self, host: HostMemory, device_ptr: int, nbytes: int, stream: CudaStream) -> None:
        copy_dtoh_async(self._cudart, host, device_ptr, nbytes, stream)

    def graph(self, stream: CudaStream) -> CudaGraph:
        return CudaGraph(self._cudart, stream)
