"""The one interface every backend implements, and the registry that finds them by name.

Backends are registered as ``module:Class`` strings so that looking one up never imports torch,
onnxruntime or tensorrt until that backend is actually asked for.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

import numpy as np

from ..core.artifacts import Artifact
from ..core.config import Task
from ..core.contract import GraphShape
from ..core.errors import ConfigError


@runtime_checkable
class Backend(Protocol):
    """Runs an NCHW float32 batch in [-1, 1] and returns the contract's float32 output batch."""

    name: str
    task: Task
    shape: GraphShape

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


# name -> "module:factory". A factory takes (artifact, **options) and returns a Backend.
_REGISTRY: dict[str, str] = {
    "onnxruntime": "lotus_deploy.runtime.ort_backend:OnnxRuntimeBackend",
    "torch": "lotus_deploy.runtime.torch_backend:TorchBackend",
    "tensorrt": "lotus_deploy.runtime.trt_backend:TensorRTBackend",
    "ort-cuda": "lotus_deploy.runtime.ort_gpu:OrtCudaBackend",
    "ort-trt": "lotus_deploy.runtime.ort_gpu:OrtTensorRTBackend",
    "openvino": "lotus_deploy.runtime.openvino_backend:OpenVINOBackend",
    "torch-upstream": "lotus_deploy.runtime.torch_variants:TorchUpstreamBackend",
    "torch-optimized": "lotus_deploy.runtime.torch_variants:TorchOptimizedBackend",
}


def describe_backend(backend: Backend) -> dict[str, object]:
    """What a loaded backend runs on, for summaries and bench rows (its ``describe()`` when it has one)."""
    info: dict[str, object] = {"name": getattr(backend, "name", type(backend).__name__)}
    describe = getattr(backend, "describe", None)
    if callable(describe):
        info.update(describe())
    return info


def register_backend(name: str, target: str) -> None:
    """Add a backend (``target`` is ``'package.module:Factory'``)."""
    _REGISTRY[name] = target


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def load_backend(name: str, artifact: Artifact | None, **options: object) -> Backend:
    """Instantiate backend ``name`` for ``artifact``; unknown names get a one-line error."""
    target = _REGISTRY.get(name)
    if target is None:
        raise ConfigError(f"unknown backend {name!r}", f"choose one of: {', '.join(backend_names())}")
    module_name, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    backend: Backend = factory(artifact, **options)
    return backend
