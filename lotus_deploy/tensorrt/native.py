"""[tensorrt, cuda-python] The real platform behind the backend's seam: the ``tensorrt`` module and cuda-python.

:func:`load_platform` is the only way the backend gets TensorRT and CUDA outside the tests. The
``TYPE_CHECKING`` block below makes mypy (run with tensorrt-stubs by ``scripts/typecheck.sh``) prove that
TensorRT's own ``ICudaEngine`` and ``IExecutionContext`` satisfy the seam's Protocols, so a renamed or
retyped TensorRT call fails the type check instead of a Jetson at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .compat import load_tensorrt
from .cuda_mem import CudaRuntime, load_cudart
from .engine import deserialize, engine_io
from .seam import LoadedEngine, Platform

if TYPE_CHECKING:
    import tensorrt as trt_t

    from .seam import CudaEngine, ExecutionContext

    def _engine_fits_seam(engine: trt_t.ICudaEngine) -> CudaEngine:
        return engine

    def _context_fits_seam(context: trt_t.IExecutionContext) -> ExecutionContext:
        return context


class TensorRTLibrary:
    """The ``tensorrt`` module behind the :class:`~lotus_deploy.tensorrt.seam.TensorRTApi` seam."""

    def __init__(self, trt: Any) -> None:
        self._trt = trt

    @property
    def version(self) -> str:
        return str(self._trt.__version__)

    def load_engine(self, path: Path) -> LoadedEngine:
        runtime, engine = deserialize(self._trt, path)
        return LoadedEngine(runtime=runtime, engine=engine, io=engine_io(self._trt, engine))


def load_platform() -> Platform:
    """TensorRT and cuda-python, each loaded or refused with a one-line DependencyError naming the extra."""
    return Platform(tensorrt=TensorRTLibrary(load_tensorrt()), cuda=CudaRuntime(load_cudart()))
