"""[tensorrt] Engine files: deserialize, read I/O and profile, check compatibility, open bare engines.

What the runtime backend, ``lotus-inspect`` and the builder share about an engine that exists. Running
one is :mod:`lotus_deploy.runtime.trt_backend`'s job.

* Compatibility: an engine is tied to the TensorRT version and the GPU architecture. An engine whose
  manifest names another TensorRT version (major.minor.patch) or compute capability is refused with a
  one-line CompatibilityError telling how to rebuild it; an engine without a manifest (built by
  ``trtexec``, say) is accepted with an :class:`EngineManifestWarning`.
* I/O names, dtypes and the optimization profile are read from the engine itself and checked against
  the contract (input ``image``, output ``depth`` or ``normal``, float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.artifacts import ENGINE_FILE, MANIFEST, Artifact, open_artifact, read_manifest
from ..core.config import Task
from ..core.contract import INPUT_NAME, contract_json
from ..core.errors import ArtifactError, CompatibilityError
from ..core.profile import EngineProfile
from .compat import version_tuple
from .seam import CudaEngine, Shape, TensorInfo

__all__ = ["BareEngine", "EngineManifestWarning", "TensorInfo", "bare_manifest", "check_engine_compatibility", "deserialize",
           "dims_tuple", "dtype_name", "engine_io", "engine_profile", "lists_engine", "open_engine", "task_from_io"]

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


def dims_tuple(dims: Shape) -> tuple[int, ...]:
    """A TensorRT Dims as a tuple of ints (-1 marks a dynamic axis)."""
    return tuple(int(dims[i]) for i in range(len(dims)))


# TensorRT DataType member names -> numpy-style names. ``trt.nptype()`` raises TypeError for BF16, FP8
# and INT4 (no numpy type), so names are compared instead; an unknown name is reported as it is.
_DTYPE_NAMES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32", "INT64": "int64",
                "UINT8": "uint8", "BOOL": "bool", "FP8": "float8", "INT4": "int4", "FP4": "float4"}


def dtype_name(dtype: Any) -> str:
    """A TensorRT DataType as a readable name ("float32", "bfloat16", ...), for any DataType TensorRT has."""
    raw = str(getattr(dtype, "name", dtype)).split(".")[-1]
    return _DTYPE_NAMES.get(raw.upper(), raw.lower())


def engine_io(trt: Any, engine: trt_t.ICudaEngine) -> list[TensorInfo]:
    """Names, directions, dtypes and shapes of an engine's I/O tensors."""
    tensors = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        mode = engine.get_tensor_mode(name)
        dtype = dtype_name(engine.get_tensor_dtype(name))
        tensors.append(TensorInfo(name=name, is_input=mode == trt.TensorIOMode.INPUT, dtype=dtype, shape=dims_tuple(engine.get_tensor_shape(name))))
    return tensors


def engine_profile(engine: CudaEngine) -> EngineProfile:
    """Profile 0 of input ``image`` as min/opt/max."""
    low, opt, high = (dims_tuple(dims) for dims in engine.get_tensor_profile_shape(INPUT_NAME, 0))
    return EngineProfile.from_json({"min": low, "opt": opt, "max": high})


def task_from_io(tensors: list[TensorInfo], where: str) -> Task:
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


def deserialize(trt: Any, path: Path) -> tuple[trt_t.Runtime, trt_t.ICudaEngine]:
    from .compat import get_logger

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


def bare_manifest(task: Task, profile: EngineProfile) -> dict[str, Any]:
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


def lists_engine(folder: Path, name: str) -> bool:
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
    if path.is_dir() or (path.is_file() and (path.parent / MANIFEST).is_file() and lists_engine(path.parent, path.name)):
        return open_artifact(path, check_hashes=check_hashes)
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist", "pass an engine file or an engine artifact folder")
    from .compat import load_tensorrt
    from .cuda_mem import load_cudart

    trt = load_tensorrt()
    load_cudart()
    _runtime, engine = deserialize(trt, path)
    task = task_from_io(engine_io(trt, engine), str(path))
    profile = engine_profile(engine)
    del engine, _runtime
    return BareEngine(folder=path.parent, manifest=bare_manifest(task, profile), path=path)
