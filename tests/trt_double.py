"""A recording double of TensorRT and CUDA behind the backend's seam, computing with ONNX Runtime.

Test code only (never importable from ``lotus_deploy``): it lets the CPU run
:class:`lotus_deploy.runtime.trt_backend.TensorRTBackend` end to end — chunking, padding, per-call input
shapes, buffer sizing, CUDA-graph capture-then-replay, cleanup after failures — and compare its outputs
with ONNX Runtime's. ``scripts/typecheck.sh`` runs mypy over this file, so the double satisfies the same
Protocols (:mod:`lotus_deploy.tensorrt.seam`) that TensorRT's own classes are checked against.

How it behaves like the real thing, where that matters to the control flow:

* device memory is a byte array per allocation, reachable only by its integer address; the "engine"
  reads its input from, and writes its output to, the addresses bound with ``set_tensor_address``;
* work enqueued on a stream while it is being captured is recorded, not run (as under CUDA stream
  capture), and runs when the graph is launched;
* ``set_input_shape`` returns False outside the profile; the output shape follows the input's;
* any call can be made to fail on its k-th use (``fail={"device_buffer": 2}``) and every allocation
  that is still alive is listed in ``live``.

An "engine file" here is a small JSON file (:func:`write_engine`) naming an ONNX graph and a profile.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lotus_deploy.tensorrt.cuda_mem import CudaError
from lotus_deploy.tensorrt.seam import (
    CudaApi,
    CudaStream,
    DeviceInfo,
    ExecutionContext,
    HostMemory,
    LoadedEngine,
    Platform,
    Shape,
    TensorInfo,
    TensorRTApi,
)

VERSION = "10.3.0"
COMPUTE_CAPABILITY = "8.7"
_addresses = itertools.count(0x1000, 0x1000)


class InjectedFailure(CudaError):
    """A failure the test asked for (a CudaError, as cuda-python's would be)."""


@dataclass
class Recorder:
    """What happened, in order, and what is still allocated; ``fail`` makes the k-th call of a name fail."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    live: dict[int, str] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def note(self, name: str, *details: Any) -> bool:
        """Record a call; True when the test asked this call to fail."""
        self.calls[name] = self.calls.get(name, 0) + 1
        self.events.append((name, *details))
        return self.fail.get(name) == self.calls[name]

    def names(self) -> list[str]:
        return [event[0] for event in self.events]


def write_engine(path: Path, onnx_model: Path, low: Sequence[int], opt: Sequence[int], high: Sequence[int], *,
                 output: str = "depth", out_channels: int = 1, dtypes: tuple[str, str] = ("float32", "float32")) -> Path:
    """A double's "engine file": the ONNX graph that computes it, its profile and I/O."""
    spec = {"onnx": str(onnx_model), "min": list(low), "opt": list(opt), "max": list(high), "output": output,
            "out_channels": out_channels, "dtypes": list(dtypes)}
    path.write_text(json.dumps(spec))
    return path


class DeviceHeap:
    """Device memory by address (what cudaMalloc hands out), shared by the CUDA double and the engine."""

    def __init__(self) -> None:
        self.blocks: dict[int, np.ndarray] = {}

    def read(self, ptr: int, shape: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape))
        return self.blocks[ptr][: count * 4].view(np.float32).reshape(shape).copy()

    def write(self, ptr: int, values: np.ndarray) -> None:
        raw = np.ascontiguousarray(values, dtype=np.float32).view(np.uint8).reshape(-1)
        block = self.blocks[ptr]
        if raw.size > block.size:
            raise AssertionError(f"write of {raw.size} bytes into a {block.size}-byte buffer")  # an overflow on a GPU
        block[: raw.size] = raw


class FakeStream:
    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._handle = next(_addresses)
        self.capturing: list[Callable[[], None]] | None = None
        recorder.live[self._handle] = "stream"

    @property
    def handle(self) -> int:
        return self._handle

    @property
    def raw(self) -> Any:
        return self

    def submit(self, op: Callable[[], None]) -> None:
        """Run now, or record it when the stream is being captured (as CUDA does)."""
        if self.capturing is not None:
            self.capturing.append(op)
        else:
            op()

    def synchronize(self) -> None:
        if self._recorder.note("synchronize"):
            raise InjectedFailure("CUDA cudaStreamSynchronize failed (injected)", "")

    def close(self) -> None:
        self._recorder.note("stream.close")
        self._recorder.live.pop(self._handle, None)


class FakeDeviceBuffer:
    def __init__(self, recorder: Recorder, heap: DeviceHeap, nbytes: int) -> None:
        self._recorder, self._heap = recorder, heap
        self.nbytes = nbytes
        self._ptr = next(_addresses)
        heap.blocks[self._ptr] = np.zeros(nbytes, dtype=np.uint8)
        recorder.live[self._ptr] = "device"

    @property
    def ptr(self) -> int:
        return self._ptr

    def close(self) -> None:
        self._recorder.note("device.close", self.nbytes)
        self._heap.blocks.pop(self._ptr, None)
        self._recorder.live.pop(self._ptr, None)


class FakePinned:
    def __init__(self, recorder: Recorder, count: int) -> None:
        self._recorder = recorder
        self.array = np.zeros(count, dtype=np.float32)
        self._ptr = next(_addresses)
        recorder.live[self._ptr] = "pinned"

    @property
    def ptr(self) -> int:
        return self._ptr

    def view(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.array[: int(np.prod(shape))].reshape(shape)

    def close(self) -> None:
        self._recorder.note("pinned.close", self.array.size)
        self._recorder.live.pop(self._ptr, None)


class FakeGraph:
    def __init__(self, recorder: Recorder, stream: FakeStream) -> None:
        self._recorder, self._stream = recorder, stream
        self._ops: list[Callable[[], None]] | None = None
        self._key = next(_addresses)

    def capture_begin(self) -> None:
        self._recorder.note("capture_begin")
        self._stream.capturing = []

    def capture_end(self) -> None:
        ops, self._stream.capturing = self._stream.capturing, None
        if self._recorder.note("capture_end"):
            self._recorder.live[self._key] = "graph (captured, not instantiated)"
            raise InjectedFailure("CUDA cudaGraphInstantiate failed (injected)", "")
        self._ops = ops
        self._recorder.live[self._key] = "graph"

    def capture_abort(self) -> None:
        self._recorder.note("capture_abort")
        self._stream.capturing = None

    @property
    def ready(self) -> bool:
        return self._ops is not None

    def launch(self) -> None:
        self._recorder.note("launch")
        for op in self._ops or []:
            op()

    def close(self) -> None:
        self._recorder.note("graph.close")
        self._ops = None
        self._recorder.live.pop(self._key, None)


class FakeCuda:
    """cuda-python's runtime, as far as the backend uses it."""

    def __init__(self, recorder: Recorder, heap: DeviceHeap, devices: int = 1) -> None:
        self._recorder, self._heap, self._devices = recorder, heap, devices

    def select_device(self, index: int) -> DeviceInfo:
        self._recorder.note("select_device", index)
        if index >= self._devices:
            raise CudaError(f"no CUDA device {index} (found {self._devices})", "pick another --device")
        return DeviceInfo(index=index, name="recording double (ONNX Runtime)", compute_capability=COMPUTE_CAPABILITY)

    def stream(self) -> FakeStream:
        if self._recorder.note("stream"):
            raise InjectedFailure("CUDA cudaStreamCreateWithFlags failed (injected)", "")
        return FakeStream(self._recorder)

    def device_buffer(self, nbytes: int) -> FakeDeviceBuffer:
        if self._recorder.note("device_buffer", nbytes):
            raise InjectedFailure(f"CUDA cudaMalloc({nbytes}) failed: out of memory (injected)", "")
        return FakeDeviceBuffer(self._recorder, self._heap, nbytes)

    def pinned_buffer(self, count: int) -> FakePinned:
        if self._recorder.note("pinned_buffer", count):
            raise InjectedFailure(f"CUDA cudaMallocHost({count * 4}) failed (injected)", "")
        return FakePinned(self._recorder, count)

    def copy_to_device(self, device_ptr: int, host: HostMemory, nbytes: int, stream: CudaStream) -> None:
        self._recorder.note("htod", nbytes)
        data = _pinned(host).array.view(np.uint8)[:nbytes].copy()  # the copy reads the host buffer now

        def op() -> None:
            self._heap.blocks[device_ptr][:nbytes] = data

        _stream(stream).submit(op)

    def copy_to_host(self, host: HostMemory, device_ptr: int, nbytes: int, stream: CudaStream) -> None:
        self._recorder.note("dtoh", nbytes)
        target = _pinned(host).array.view(np.uint8)

        def op() -> None:
            target[:nbytes] = self._heap.blocks[device_ptr][:nbytes]

        _stream(stream).submit(op)

    def graph(self, stream: CudaStream) -> FakeGraph:
        return FakeGraph(self._recorder, _stream(stream))


def _stream(stream: CudaStream) -> FakeStream:
    if not isinstance(stream, FakeStream):
        raise TypeError(f"the double was handed a {type(stream).__name__}, not its own stream")
    return stream


def _pinned(host: HostMemory) -> FakePinned:
    if not isinstance(host, FakePinned):
        raise TypeError(f"the double was handed a {type(host).__name__}, not its own pinned buffer")
    return host


class FakeContext:
    """An execution context whose kernels are one ONNX Runtime call over the bound device buffers."""

    def __init__(self, engine: FakeEngine) -> None:
        self._engine = engine
        self._recorder = engine.recorder
        self.addresses: dict[str, int] = {}
        self._shape: tuple[int, ...] | None = None

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        rejected = self._recorder.note("set_input_shape", name, tuple(shape))
        inside = all(lo <= v <= hi for lo, v, hi in zip(self._engine.low, shape, self._engine.high, strict=True))
        if rejected or not inside:
            return False
        self._shape = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> Shape:
        if self._shape is None:
            raise AssertionError("get_tensor_shape before set_input_shape")  # TensorRT would answer -1s
        n, _, h, w = self._shape
        return (n, self._engine.out_channels, h, w) if name == self._engine.output else self._shape

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._recorder.note("set_tensor_address", name)
        self.addresses[name] = memory
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        if self._recorder.note("execute", self._shape):
            return False
        stream = self._engine.streams.get(stream_handle)
        shape = self._shape
        if stream is None or shape is None:
            raise AssertionError("execute_async_v3 on an unknown stream, or before set_input_shape")
        heap, engine = self._engine.heap, self._engine

        def op() -> None:
            x = heap.read(self.addresses["image"], shape)
            heap.write(self.addresses[engine.output], engine.compute(x))

        stream.submit(op)
        return True


class FakeEngine:
    """A deserialized engine: its profile, I/O and the ONNX graph that stands in for its kernels."""

    def __init__(self, spec: dict[str, Any], recorder: Recorder, heap: DeviceHeap, streams: dict[int, FakeStream]) -> None:
        self.recorder, self.heap, self.streams = recorder, heap, streams
        self.low, self.opt, self.high = (tuple(int(v) for v in spec[key]) for key in ("min", "opt", "max"))
        self.output = str(spec["output"])
        self.out_channels = int(spec["out_channels"])
        self._onnx = Path(spec["onnx"])
        self._session: Any = None

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> Sequence[Shape]:
        if name != "image" or profile_index != 0:
            raise AssertionError(f"profile of {name!r} #{profile_index} asked for")
        return [self.low, self.opt, self.high]

    def create_execution_context(self) -> ExecutionContext | None:
        if self.recorder.note("create_execution_context"):
            return None
        return FakeContext(self)

    def compute(self, x: np.ndarray) -> np.ndarray:
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(str(self._onnx), providers=["CPUExecutionProvider"])
        return np.asarray(self._session.run(None, {"image": x})[0], dtype=np.float32)


class FakeTensorRT:
    """The ``tensorrt`` module: a version and engine loading (from :func:`write_engine` files)."""

    def __init__(self, recorder: Recorder, heap: DeviceHeap, streams: dict[int, FakeStream], version: str = VERSION) -> None:
        self._recorder, self._heap, self._streams, self._version = recorder, heap, streams, version

    @property
    def version(self) -> str:
        return self._version

    def load_engine(self, path: Path) -> LoadedEngine:
        self._recorder.note("load_engine", path.name)
        spec = json.loads(path.read_text())
        engine = FakeEngine(spec, self._recorder, self._heap, self._streams)
        dims_in = (-1 if engine.low[0] != engine.high[0] else engine.low[0], 3,
                   -1 if engine.low[2] != engine.high[2] else engine.low[2], -1 if engine.low[3] != engine.high[3] else engine.low[3])
        dims_out = (dims_in[0], engine.out_channels, dims_in[2], dims_in[3])
        io = [TensorInfo("image", True, spec["dtypes"][0], dims_in), TensorInfo(engine.output, False, spec["dtypes"][1], dims_out)]
        return LoadedEngine(runtime=object(), engine=engine, io=io)


class TrackingCuda(FakeCuda):
    """The CUDA double, also telling the engine which streams exist (handles are plain integers)."""

    def __init__(self, recorder: Recorder, heap: DeviceHeap, streams: dict[int, FakeStream], devices: int = 1) -> None:
        super().__init__(recorder, heap, devices)
        self._streams = streams

    def stream(self) -> FakeStream:
        stream = super().stream()
        self._streams[stream.handle] = stream
        return stream


def recording_platform(fail: dict[str, int] | None = None, version: str = VERSION) -> tuple[Platform, Recorder]:
    """A platform for ``TensorRTBackend(..., platform=...)`` and the recorder that watches it."""
    recorder = Recorder(fail=dict(fail or {}))
    heap = DeviceHeap()
    streams: dict[int, FakeStream] = {}
    tensorrt: TensorRTApi = FakeTensorRT(recorder, heap, streams, version)
    cuda: CudaApi = TrackingCuda(recorder, heap, streams)
    return Platform(tensorrt=tensorrt, cuda=cuda), recorder


__all__ = ["COMPUTE_CAPABILITY", "VERSION", "InjectedFailure", "Recorder", "recording_platform", "write_engine"]
