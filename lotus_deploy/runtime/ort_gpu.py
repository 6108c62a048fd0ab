"""[onnxruntime-gpu] ONNX Runtime on the GPU: the ``ort-cuda`` and ``ort-trt`` backends (the ``ort-gpu`` extra).

* ``ort-cuda``: CUDA execution provider.
* ``ort-trt``: TensorRT execution provider, with its engine cache and timing cache on disk so the
  (slow) engine build happens once per graph, profile, TensorRT version and GPU. Precision lives in
  the graph, so the EP's own ``trt_fp16_enable``/``trt_int8_enable`` are never set: with both off,
  onnxruntime-gpu >= 1.18 builds a strongly typed TensorRT network (PR #19695), so an fp16/int8 graph
  runs in the precision it states (the ``ort-gpu`` extra's floor). The profile is the
  one :mod:`lotus_deploy.core.profile` derives (dynamic by default here: 64..768, opt 512), so new image
  sizes inside it never trigger a rebuild.

ONNX Runtime silently falls back to the CPU when a provider cannot load (missing CUDA/cuDNN/TensorRT
libraries); both backends check that their provider is really in the session and fail with one line
otherwise.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..core.artifacts import MANIFEST, Artifact, sha256_file
from ..core.cache import cache_root
from ..core.config import Precision
from ..core.contract import INPUT_NAME
from ..core.deps import require
from ..core.errors import ConfigError, DependencyError
from ..core.profile import EngineProfile, derive_profile
from .ort_backend import CPU, OnnxRuntimeBackend

CUDA_EP = "CUDAExecutionProvider"
TRT_EP = "TensorrtExecutionProvider"
GPU_HINT = 'install onnxruntime-gpu instead of onnxruntime (pip uninstall onnxruntime; pip install "lotus-deploy[ort-gpu]") with CUDA 12 and cuDNN 9 libraries'


def _require_provider(provider: str) -> None:
    ort = require("onnxruntime")
    available = ort.get_available_providers()
    if provider not in available:
        raise DependencyError(f"ONNX Runtime {ort.__version__} has no {provider} (available: {', '.join(available)})", GPU_HINT)


def _check_used(backend: OnnxRuntimeBackend, provider: str) -> None:
    if provider not in backend.providers:
        raise DependencyError(f"ONNX Runtime could not start {provider} for {backend.artifact.model_path} (running on {', '.join(backend.providers)})",
                              "check that the CUDA, cuDNN (and TensorRT) libraries load: see ONNX Runtime's log with log_severity_level=0")


def _onnx_only(artifact: Artifact | None, name: str) -> Artifact:
    if artifact is None:
        raise ConfigError(f"the {name} backend needs an ONNX artifact", "pass --artifact ONNX_DIR from lotus-export")
    if artifact.kind != "onnx":
        raise ConfigError(f"{artifact.folder} is a {artifact.kind} artifact; {name} runs ONNX graphs", "use --backend tensorrt for engines")
    return artifact


def cuda_provider_options(artifact: Artifact, device_id: int = 0) -> dict[str, Any]:
    """CUDA EP options: TF32 off for fp32 graphs (the EP enables it by default), so "fp32" means float32 math,
    as lotus-build's engines do. The TensorRT EP has no TF32 switch: ``ort-trt`` on fp32 graphs may use TF32."""
    options: dict[str, Any] = {"device_id": device_id}
    if artifact.precision is Precision.FP32:
        options["use_tf32"] = 0
    return options


class OrtCudaBackend(OnnxRuntimeBackend):
    """ONNX Runtime with the CUDA execution provider."""

    name = "ort-cuda"

    def __init__(self, artifact: Artifact | None, device_id: int = 0, threads: int = 0, optimization: str = "all") -> None:
        artifact = _onnx_only(artifact, self.name)
        _require_provider(CUDA_EP)
        providers: list[Any] = [(CUDA_EP, cuda_provider_options(artifact, device_id)), CPU]
        super().__init__(artifact, providers=providers, threads=threads, optimization=optimization)
        _check_used(self, CUDA_EP)


def default_cache_dir(artifact: Artifact, profile: EngineProfile, workspace_gib: float, optimization_level: int) -> Path:
    """``$LOTUS_DEPLOY_HOME``/ort-trt/<folder>-<key>: one per graph *and* build settings (manifest hash, profile,
    workspace, optimization level), so an engine built with other settings is never picked up."""
    try:
        manifest = sha256_file(artifact.folder / MANIFEST)
    except OSError:
        manifest = "nomanifest"
    key = json.dumps({"manifest": manifest, "profile": profile.to_json(), "workspace_gib": workspace_gib,
                      "optimization_level": optimization_level}, sort_keys=True)
    return cache_root() / "ort-trt" / f"{artifact.folder.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def shapes_option(profile: EngineProfile, which: str) -> str:
    """'image:1x3x512x512' for the EP's trt_profile_{min,opt,max}_shapes."""
    dims: tuple[int, ...] = getattr(profile, which)
    return f"{INPUT_NAME}:{'x'.join(str(d) for d in dims)}"


def trt_provider_options(profile: EngineProfile, cache_dir: Path, device_id: int = 0, workspace_gib: float = 4.0,
                         optimization_level: int = 3) -> dict[str, Any]:
    """The TensorRT EP options: engine + timing caches, explicit profile, workspace, optimization level."""
    return {
        "device_id": device_id,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache_dir),
        "trt_max_workspace_size": int(workspace_gib * (1 << 30)),
        "trt_builder_optimization_level": optimization_level,
        "trt_profile_min_shapes": shapes_option(profile, "min"),
        "trt_profile_opt_shapes": shapes_option(profile, "opt"),
        "trt_profile_max_shapes": shapes_option(profile, "max"),
    }


class OrtTensorRTBackend(OnnxRuntimeBackend):
    """ONNX Runtime with the TensorRT execution provider (CUDA EP, then CPU, for unsupported nodes)."""

    name = "ort-trt"

    def __init__(self, artifact: Artifact | None, device_id: int = 0, cache_dir: str | Path | None = None, dynamic: bool = True,
                 height: int | None = None, width: int | None = None, batch: int | None = None, max_height: int | None = None,
                 max_width: int | None = None, max_batch: int | None = None, workspace_gib: float = 4.0,
                 optimization_level: int = 3, threads: int = 0) -> None:
        artifact = _onnx_only(artifact, self.name)
        _require_provider(TRT_EP)
        self.profile = derive_profile(artifact.shape, height, width, batch, dynamic, max_height, max_width, max_batch)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(artifact, self.profile, workspace_gib, optimization_level)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        options = trt_provider_options(self.profile, self.cache_dir, device_id, workspace_gib, optimization_level)
        providers: list[Any] = [(TRT_EP, options), (CUDA_EP, {"device_id": device_id}), CPU]
        super().__init__(artifact, providers=providers, threads=threads)
        _check_used(self, TRT_EP)
        self.shape = self.profile.graph_shape()

    def run(self, batch: Any) -> Any:
        self.profile.check_input(tuple(batch.shape))
        if batch.shape[0] > self.profile.max[0]:
            raise ConfigError(f"batch {batch.shape[0]} exceeds the TensorRT EP profile's max batch {self.profile.max[0]}",
                              "pass max_batch= when creating the backend, or run smaller batches")
        return super().run(batch)
