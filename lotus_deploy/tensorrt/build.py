"""[tensorrt] Strongly typed TensorRT engine from an ONNX artifact: profile, timing cache, manifest, parity.

Precision lives in the ONNX graph (docs/tensorrt.md): an fp16 graph carries fp16 weights and casts, an int8
graph explicit Q/DQ pairs; the builder never sets FP16/INT8 flags. On TensorRT 10.x the network is
created with the STRONGLY_TYPED flag; TensorRT 11 networks are always strongly typed (see
:mod:`lotus_deploy.tensorrt.compat`, the one place where the versions differ). For fp32 graphs TF32 is
switched off where the flag exists, so "fp32" means float32 math.

"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..core.artifacts import (
    ENGINE_FILE,
    MANIFEST,
    Artifact,
    check_artifact_output,
    record_parity,
    sha256_file,
    staged_artifact,
    tool_versions,
    write_manifest,
)
from ..core.config import DEFAULT_OPT_LEVEL, DEFAULT_WORKSPACE_GIB, EngineKind, ExportConfig, Precision, check_build_limits
from ..core.contract import INPUT_NAME, GraphShape, contract_json
from ..core.errors import ArtifactError, ConfigError
from ..core.parity import ParityReport
from ..core.profile import EngineProfile, derive_profile, describe_profile
from ..core.progress import Steps
from ..core.results import ExportResult
from ..core.safe_io import atomic_write, ensure_folder

if TYPE_CHECKING:
    # Type stubs only (tensorrt-stubs, 10.x): TensorRT objects below are annotated with these so mypy checks
    # every call against the real API even though the module itself arrives untyped from load_tensorrt().
    import tensorrt as trt_t

DEFAULT_TIMING_CACHE = Path("engines") / "timing.cache"
ENGINE_TOOLS = ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "cuda-python", "cuda-bindings", "onnxruntime", "onnxruntime-gpu", "numpy")

def profile_from_config(config: ExportConfig, parent: GraphShape) -> EngineProfile:
    return derive_profile(parent, config.height, config.width, config.batch, config.tensorrt.dynamic_profile,
                          config.tensorrt.max_height, config.tensorrt.max_width, config.tensorrt.max_batch)


@dataclass(frozen=True)
class BuildSettings:
    """What the builder needs besides the graph and the profile."""

    workspace_gib: float = DEFAULT_WORKSPACE_GIB
    optimization_level: int = DEFAULT_OPT_LEVEL
    timing_cache: Path | None = DEFAULT_TIMING_CACHE
    fp32: bool = False  # an fp32 graph: keep TF32 off

    def __post_init__(self) -> None:
        check_build_limits(self.workspace_gib, self.optimization_level)

    @property
    def workspace_bytes(self) -> int:
        return int(self.workspace_gib * (1 << 30))


def settings_from_config(config: ExportConfig) -> BuildSettings:
    return BuildSettings(
        workspace_gib=config.tensorrt.workspace_gib,
        optimization_level=config.tensorrt.optimization_level,
        timing_cache=config.tensorrt.timing_cache if config.tensorrt.timing_cache is not None else DEFAULT_TIMING_CACHE,
        fp32=config.engine.precision is Precision.FP32,
    )


def preflight(config: ExportConfig) -> None:
    """Fail fast, before any parent artifact is built: settings valid, TensorRT, CUDA and a GPU usable."""
    from .compat import load_tensorrt
    from .cuda_mem import device_info, load_cudart

    profile_from_config(config, GraphShape())
    settings_from_config(config)
    load_tensorrt()
    device_info(load_cudart())


EngineCheck = Callable[[Artifact, Artifact, ExportConfig, EngineProfile, Steps], "ParityReport | None"]


def build_engine_artifact(parent: Artifact, config: ExportConfig, quiet: bool, check: EngineCheck | None = None) -> ExportResult:
    """Build ``config.engine`` (trt-*) from the ONNX artifact ``parent`` into ``config.artifact_dir``.

    ``check(engine, parent, config, profile, steps)`` is the parity check of the staged engine (it runs
    the engine, which is the runtime's job: :func:`lotus_deploy.runtime.engine_parity.engine_parity`);
    the artifact is published only when it passes.
    """
    from .compat import load_tensorrt
    from .cuda_mem import device_info, load_cudart

    if not config.engine.is_tensorrt:
        raise ConfigError(f"build_engine_artifact builds TensorRT engines, not {config.engine.value}", "use lotus_deploy.pipeline.run_export")
    check_artifact_output(config.artifact_dir, config.force)  # before TensorRT is loaded
    trt = load_tensorrt()
    cudart = load_cudart()
    _check_parent(parent, config)
    profile = profile_from_config(config, parent.shape)
    settings = settings_from_config(config)
    device = device_info(cudart)
    steps = Steps(4 if config.export.parity and check is not None else 3, quiet=quiet)
    with staged_artifact(config.artifact_dir, config.force) as staging:
        with steps.step(f"building TensorRT {trt.__version__} engine on {device.name} (sm {device.compute_capability}), profile {describe_profile(profile)}"):
            start = time.perf_counter()
            build_info = build_engine(trt, parent.model_path, staging / ENGINE_FILE, profile, settings, config.task.value, say=steps.say)
            seconds = time.perf_counter() - start
        shape = profile.graph_shape()
        manifest: dict[str, Any] = {
            "kind": "tensorrt",
            "engine": config.engine.value,
            "task": config.task.value,
            "output_meaning": parent.meaning.value,
            "precision": config.engine.precision.value,
            "shape": shape.to_json(),
            "contract": contract_json(config.task, shape),
            "opset": parent.manifest.get("opset"),
            "source": parent.manifest.get("source", {}),
            "parent": {
                "folder": str(parent.folder),
                "engine": parent.manifest.get("engine"),
                "manifest_sha256": sha256_file(parent.folder / MANIFEST),
            },
            "tensorrt": {
                "version": str(trt.__version__),
                "compute_capability": device.compute_capability,
                "gpu_name": device.name,
                "strongly_typed": True,
                "profile": profile.to_json(),
                "workspace_gib": settings.workspace_gib,
                "builder_optimization_level": settings.optimization_level,
                "tf32": build_info["tf32"],
                "timing_cache": None if settings.timing_cache is None else str(settings.timing_cache),
                "build_seconds": round(seconds, 1),
            },
            "tools": tool_versions(*ENGINE_TOOLS),
        }
        report = None
        if config.export.parity and check is not None:
            with steps.step("parity: TensorRT engine vs the parent graph in ONNX Runtime (CPU)"):
                report = check(Artifact(staging, manifest), parent, config, profile, steps)
            if report is not None:
                record_parity(staging, manifest, report.to_json(), bool(report.passed), f"TensorRT engine fails parity: {report.summary()}",
                              "nothing was published; rebuild with --no-parity to keep it anyway, and report it")
        with steps.step("writing manifest (hashing files)"):
            full = write_manifest(staging, manifest)
    return ExportResult(folder=config.artifact_dir, manifest=full, parity=report)


def _check_parent(parent: Artifact, config: ExportConfig) -> None:
    if parent.kind != "onnx":
        raise ConfigError(f"{parent.folder} is a {parent.kind} artifact, not an ONNX graph", "build engines from an ONNX artifact folder")
    if parent.precision is not config.engine.precision:
        wanted = EngineKind(f"trt-{parent.precision.value}").value
        raise ConfigError(f"{parent.folder} holds a {parent.precision.value} graph but {config.engine.value} was asked for",
                          f"use --engine {wanted} (precision lives in the ONNX graph)")
    if parent.task is not config.task:
        raise ConfigError(f"{parent.folder} predicts {parent.task.value}, not {config.task.value}", f"use --task {parent.task.value}")


def build_engine(trt: ModuleType, onnx_path: Path, engine_path: Path, profile: EngineProfile, settings: BuildSettings, task: str,
                 say: Callable[[str], None] = print) -> dict[str, Any]:
    """Parse ``onnx_path``, build a strongly typed engine with ``profile``, write it to ``engine_path``."""
    from .compat import disable_tf32, get_logger, network_flags, parser_errors, progress_monitor
    from .engine import dims_tuple

    logger: trt_t.ILogger = get_logger(trt)
    builder: trt_t.Builder = trt.Builder(logger)
    network: trt_t.INetworkDefinition = builder.create_network(network_flags(trt))
    parser: trt_t.OnnxParser = trt.OnnxParser(network, logger)
    # parse_from_file resolves model.onnx.data relative to the graph file.
    if not parser.parse_from_file(str(onnx_path)):
        errors = parser_errors(parser) or ["no error recorded by the parser"]
        for line in errors:
            say(f"    parser: {line}")
        raise ArtifactError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {len(errors)} error(s): " + " | ".join(errors),
                            "check the opset (≤ 19) and the operators; re-export, or report the node above")
    _check_network_io(network, onnx_path, task)

    config: trt_t.IBuilderConfig = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_bytes)
    config.builder_optimization_level = settings.optimization_level
    tf32 = not (settings.fp32 and disable_tf32(trt, config))
    monitor = progress_monitor(trt, say)
    if monitor is not None:
        config.progress_monitor = monitor
    trt_profile: trt_t.IOptimizationProfile = builder.create_optimization_profile()
    network_input = dims_tuple(network.get_input(0).shape)
    try:
        # The Python binding raises RuntimeError ("Shape provided for min is inconsistent...") where the C++
        # setDimensions returns false (python/src/infer/pyCore.cpp, 10.3 and 11.1); it returns nothing.
        trt_profile.set_shape(INPUT_NAME, trt.Dims(list(profile.min)), trt.Dims(list(profile.opt)), trt.Dims(list(profile.max)))
    except RuntimeError as exc:
        raise ArtifactError(f"TensorRT refused the profile {describe_profile(profile)} for input {INPUT_NAME!r} of shape {network_input} "
                            f"({str(exc).strip().splitlines()[0] if str(exc).strip() else 'inconsistent shapes'})",
                            "the profile must match the graph's static axes; drop --height/--width/--batch that contradict it") from None
    if config.add_optimization_profile(trt_profile) < 0:  # -1: an invalid profile
        raise ArtifactError(f"TensorRT rejected the optimization profile {describe_profile(profile)} (input {INPUT_NAME!r} of shape {network_input})",
                            "check min <= opt <= max on every axis, or rebuild without --dynamic")
    _load_timing_cache(config, settings.timing_cache, say)

    serialized: trt_t.IHostMemory | None = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ArtifactError(f"TensorRT could not build an engine from {onnx_path} (its log above says why)",
                            "try a larger --workspace-gib, a smaller profile, or --opt-level 2")
    with open(engine_path, "wb") as handle:
        handle.write(memoryview(serialized))
    del serialized
    if settings.timing_cache is not None:
        _save_timing_cache(config, settings.timing_cache, say)
    return {"tf32": tf32}


def _check_network_io(network: trt_t.INetworkDefinition, onnx_path: Path, task: str) -> None:
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    if inputs != [INPUT_NAME] or outputs != [task]:
        raise ArtifactError(f"{onnx_path} has inputs {inputs} and outputs {outputs}",
                            f"a Lotus graph has input {INPUT_NAME!r} and output {task!r}; re-export it with lotus-export")


def _load_timing_cache(config: trt_t.IBuilderConfig, path: Path | None, say: Callable[[str], None]) -> None:
    data = b""
    if path is not None and Path(path).is_file():
        data = Path(path).read_bytes()
        say(f"    timing cache: reusing {path} ({len(data) // 1024} KiB)")
    elif path is not None:
        say(f"    timing cache: {path} is new")
    cache = config.create_timing_cache(data)
    if cache is None or not config.set_timing_cache(cache, False):
        # A cache written by another TensorRT version or GPU: start empty rather than fail.
        say(f"    timing cache: {path} does not fit this TensorRT/GPU; starting an empty one")
        config.set_timing_cache(config.create_timing_cache(b""), False)


def _save_timing_cache(config: trt_t.IBuilderConfig, path: Path, say: Callable[[str], None]) -> None:
    """Write the builder's timing cache atomically (temporary file + rename), so parallel builds never tear it."""
    path = Path(path)
    ensure_folder(path.parent)
    data = memoryview(config.get_timing_cache().serialize())
    atomic_write(path, lambda handle: handle.write(data))
    say(f"    timing cache: saved {path} ({data.nbytes // 1024} KiB)")
