"""[tensorrt] Strongly typed TensorRT engine from an ONNX artifact: profile, timing cache, manifest, parity.

Precision lives in the ONNX graph (DESIGN.md §2): an fp16 graph carries fp16 weights and casts, an int8
graph explicit Q/DQ pairs; the builder never sets FP16/INT8 flags. On TensorRT 10.x the network is
created with the STRONGLY_TYPED flag; TensorRT 11 networks are always strongly typed (see
:mod:`lotus_deploy.trt_compat`, the one place where the versions differ). For fp32 graphs TF32 is
switched off where the flag exists, so "fp32" means float32 math.

Profile (the engine's input shapes, derived from the contract: input ``image`` [N, 3, H, W], H and W
multiples of 64):

* static (default): N x 3 x H x W with H x W = ``--height/--width`` if given, else the parent graph's
  static size, else **512 x 512**; N = ``--batch``, else the parent's, else **1**. 512 x 512 is the
  size the SD2-base UNet was trained at and a sensible Jetson Orin default (768 x 768 costs 2.4x).
* dynamic (``--dynamic``): min 1 x 3 x 64 x 64; opt as the static size above; max
  ``--max-batch`` x 3 x ``--max-height`` x ``--max-width``, defaulting to the opt batch and to
  768 x 768 (upstream's processing resolution, so any aspect ratio at long edge 768 fits).

Axes that the parent graph fixes stay fixed (min = opt = max). Nothing here imports TensorRT at module
level: profile derivation and the trtexec command line work without it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .artifacts import (
    ENGINE_FILE,
    MANIFEST,
    Artifact,
    check_artifact_output,
    record_parity,
    staged_artifact,
    tool_versions,
    write_manifest,
)
from .config import EngineKind, ExportConfig, Precision
from .contract import INPUT_CHANNELS, INPUT_NAME, SPATIAL_MULTIPLE, GraphShape, contract_json
from .errors import ArtifactError, ConfigError, ShapeError
from .parity import ParityReport, compare, judge
from .progress import Steps
from .safe_io import atomic_write, ensure_folder

if TYPE_CHECKING:
    # Type stubs only (tensorrt-stubs, 10.x): TensorRT objects below are annotated with these so mypy checks
    # every call against the real API even though the module itself arrives untyped from load_tensorrt().
    import tensorrt as trt_t

    from .export import ExportResult

DEFAULT_HEIGHT = 512
DEFAULT_WIDTH = 512
DEFAULT_BATCH = 1
DYNAMIC_MIN_SIZE = SPATIAL_MULTIPLE
DYNAMIC_DEFAULT_MAX = 768
DEFAULT_TIMING_CACHE = Path("engines") / "timing.cache"
MAX_OPT_LEVEL = 5
# Engine vs its parent graph run in ONNX Runtime (CPU). fp32: max|Δ| ≤ max(--atol, this); reduced
# precision: task metrics (the parent graph already carries the precision, so these are loose checks
# that TensorRT computed the same graph, not accuracy targets).
FP32_ENGINE_MAX_ABS = 1e-3
REDUCED_TOLERANCES: dict[Precision, dict[str, float]] = {
    Precision.FP16: {"absrel": 0.02, "delta1": 0.98, "mean_angle_deg": 2.0},
    Precision.INT8: {"absrel": 0.05, "delta1": 0.95, "mean_angle_deg": 5.0},
}
ENGINE_TOOLS = ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "cuda-python", "cuda-bindings", "onnxruntime", "onnxruntime-gpu", "numpy")

Dims4 = tuple[int, int, int, int]


@dataclass(frozen=True)
class EngineProfile:
    """One optimization profile for input ``image``: min/opt/max NCHW shapes."""

    min: Dims4
    opt: Dims4
    max: Dims4

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max

    def graph_shape(self) -> GraphShape:
        """The contract shape: an axis is fixed where min == max, else dynamic (None)."""
        fixed = [lo if lo == hi else None for lo, hi in zip(self.min, self.max, strict=True)]
        return GraphShape(batch=fixed[0], height=fixed[2], width=fixed[3])

    def opt_shape(self) -> GraphShape:
        return GraphShape(batch=self.opt[0], height=self.opt[2], width=self.opt[3])

    def to_json(self) -> dict[str, Any]:
        return {"input": INPUT_NAME, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EngineProfile:
        def dims(key: str) -> Dims4:
            n, c, h, w = (int(v) for v in data[key])
            return (n, c, h, w)

        return cls(min=dims("min"), opt=dims("opt"), max=dims("max"))

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Raise ShapeError unless an NCHW shape lies inside the profile (batch may exceed: run in chunks)."""
        if len(shape) != 4 or shape[1] != INPUT_CHANNELS:
            raise ShapeError(f"input shape {tuple(shape)} is not [N, 3, H, W]", "pass an NCHW RGB batch")
        _, _, h, w = shape
        for axis, value in ((2, h), (3, w)):
            lo, hi = self.min[axis], self.max[axis]
            if not lo <= value <= hi or value % SPATIAL_MULTIPLE:
                allowed = f"{lo}" if lo == hi else f"{lo}..{hi} in steps of {SPATIAL_MULTIPLE}"
                raise ShapeError(
                    f"input {h}x{w} is outside the engine's profile ({'height' if axis == 2 else 'width'} {allowed})",
                    "let the preprocessor pad/resize to the engine size, or rebuild the engine with --dynamic / --max-height / --max-width",
                )


def _dims(batch: int, height: int, width: int) -> Dims4:
    return (batch, INPUT_CHANNELS, height, width)


def _check_multiple(flag: str, value: int | None) -> None:
    if value is not None and (value <= 0 or value % SPATIAL_MULTIPLE):
        raise ConfigError(f"{flag} {value} is not a positive multiple of {SPATIAL_MULTIPLE}", f"use {max(SPATIAL_MULTIPLE, -(-value // SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE)}")


def derive_profile(parent: GraphShape, height: int | None = None, width: int | None = None, batch: int | None = None,
                   dynamic: bool = False, max_height: int | None = None, max_width: int | None = None,
                   max_batch: int | None = None) -> EngineProfile:
    """The optimization profile for a graph of shape ``parent`` (see the module docstring for defaults)."""
    for flag, value in (("--height", height), ("--width", width), ("--max-height", max_height), ("--max-width", max_width)):
        _check_multiple(flag, value)
    for flag, value in (("--batch", batch), ("--max-batch", max_batch)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value} is not positive", f"use {flag} 1 or more")
    if (height is None) != (width is None):
        raise ConfigError("only one of --height/--width was given", "give both, or neither for the default 512x512")
    if not dynamic:
        given = [flag for flag, value in (("--max-height", max_height), ("--max-width", max_width), ("--max-batch", max_batch)) if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply to a dynamic profile", "add --dynamic, or drop them for a static engine")
    for flag, asked, fixed in (("--height", height, parent.height), ("--width", width, parent.width), ("--batch", batch, parent.batch),
                               ("--max-height", max_height, parent.height), ("--max-width", max_width, parent.width),
                               ("--max-batch", max_batch, parent.batch)):
        if asked is not None and fixed is not None and asked != fixed:
            raise ConfigError(f"{flag} {asked} contradicts the ONNX graph, which is static at {fixed} on that axis", "drop the flag, or export a dynamic graph")
    opt = _dims(batch or parent.batch or DEFAULT_BATCH, height or parent.height or DEFAULT_HEIGHT, width or parent.width or DEFAULT_WIDTH)
    if not dynamic:
        return EngineProfile(min=opt, opt=opt, max=opt)
    low = _dims(parent.batch or 1, parent.height or DYNAMIC_MIN_SIZE, parent.width or DYNAMIC_MIN_SIZE)
    high = _dims(
        max_batch or parent.batch or opt[0],
        max_height or parent.height or max(opt[2], DYNAMIC_DEFAULT_MAX),
        max_width or parent.width or max(opt[3], DYNAMIC_DEFAULT_MAX),
    )
    for axis, (name, flag) in {0: ("batch", "--max-batch"), 2: ("height", "--max-height"), 3: ("width", "--max-width")}.items():
        if opt[axis] > high[axis]:
            raise ConfigError(f"opt {name} {opt[axis]} is above {flag} {high[axis]}", f"raise {flag} or lower --{name}")
    return EngineProfile(min=low, opt=opt, max=high)


def profile_from_config(config: ExportConfig, parent: GraphShape) -> EngineProfile:
    return derive_profile(parent, config.height, config.width, config.batch, config.dynamic_profile,
                          config.max_height, config.max_width, config.max_batch)


@dataclass(frozen=True)
class BuildSettings:
    """What the builder needs besides the graph and the profile."""

    workspace_gib: float = 4.0
    optimization_level: int = 3
    timing_cache: Path | None = DEFAULT_TIMING_CACHE
    fp32: bool = False  # an fp32 graph: keep TF32 off

    def __post_init__(self) -> None:
        if not self.workspace_gib > 0:
            raise ConfigError(f"--workspace-gib {self.workspace_gib} must be positive", "use e.g. 4 (Jetson Orin Nano: 2)")
        if not 0 <= self.optimization_level <= MAX_OPT_LEVEL:
            raise ConfigError(f"--opt-level {self.optimization_level} is outside 0..{MAX_OPT_LEVEL}", "use 3 (TensorRT's default)")

    @property
    def workspace_bytes(self) -> int:
        return int(self.workspace_gib * (1 << 30))


def settings_from_config(config: ExportConfig) -> BuildSettings:
    return BuildSettings(
        workspace_gib=config.workspace_gib,
        optimization_level=config.builder_optimization_level,
        timing_cache=config.timing_cache if config.timing_cache is not None else DEFAULT_TIMING_CACHE,
        fp32=config.engine.precision is Precision.FP32,
    )


def preflight(config: ExportConfig) -> None:
    """Fail fast, before any parent artifact is built: settings valid, TensorRT, CUDA and a GPU usable."""
    from .runtime.cuda_mem import device_info, load_cudart
    from .trt_compat import load_tensorrt

    profile_from_config(config, GraphShape())
    settings_from_config(config)
    load_tensorrt()
    device_info(load_cudart())


def build_engine_artifact(parent: Artifact, config: ExportConfig, quiet: bool) -> ExportResult:
    """Build ``config.engine`` (trt-*) from the ONNX artifact ``parent`` into ``config.artifact_dir``."""
    from .export import ExportResult
    from .runtime.cuda_mem import device_info, load_cudart
    from .trt_compat import load_tensorrt

    if not config.engine.is_tensorrt:
        raise ConfigError(f"build_engine_artifact builds TensorRT engines, not {config.engine.value}", "use lotus_deploy.pipeline.run_export")
    check_artifact_output(config.artifact_dir, config.force)  # before TensorRT is loaded
    trt = load_tensorrt()
    cudart = load_cudart()
    _check_parent(parent, config)
    profile = profile_from_config(config, parent.shape)
    settings = settings_from_config(config)
    device = device_info(cudart)
    steps = Steps(4 if config.parity else 3, quiet=quiet)
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
                "manifest_sha256": _sha256(parent.folder / MANIFEST),
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
        if config.parity:
            with steps.step("parity: TensorRT engine vs the parent graph in ONNX Runtime (CPU)"):
                report = _parity(Artifact(staging, manifest), parent, config, profile, steps)
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


def describe_profile(profile: EngineProfile) -> str:
    def fmt(d: Dims4) -> str:
        return "x".join(str(v) for v in d)

    if profile.is_static:
        return f"static {fmt(profile.opt)}"
    return f"min {fmt(profile.min)} opt {fmt(profile.opt)} max {fmt(profile.max)}"


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def build_engine(trt: ModuleType, onnx_path: Path, engine_path: Path, profile: EngineProfile, settings: BuildSettings, task: str,
                 say: Callable[[str], None] = print) -> dict[str, Any]:
    """Parse ``onnx_path``, build a strongly typed engine with ``profile``, write it to ``engine_path``."""
    from .trt_compat import disable_tf32, get_logger, network_flags, parser_errors, progress_monitor

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
    trt_profile.set_shape(INPUT_NAME, trt.Dims(list(profile.min)), trt.Dims(list(profile.opt)), trt.Dims(list(profile.max)))
    config.add_optimization_profile(trt_profile)
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


def _parity(engine: Artifact, parent: Artifact, config: ExportConfig, profile: EngineProfile, steps: Steps) -> ParityReport | None:
    from .deps import available
    from .parity_inputs import default_image_dir, parity_batch
    from .runtime.ort_backend import OnnxRuntimeBackend
    from .runtime.trt_backend import TensorRTBackend

    if not available("onnxruntime"):
        steps.say("    onnxruntime is not installed: parity skipped (pip install onnxruntime to check the engine)")
        return None
    shape = profile.opt_shape()
    image_dir = config.parity_images or default_image_dir()
    assert shape.height is not None and shape.width is not None and shape.batch is not None
    batch, names = parity_batch(shape, count=shape.batch, processing_res=max(shape.height, shape.width), image_dir=image_dir)
    steps.say(f"    inputs: {', '.join(names)} as one batch {list(batch.shape)}")
    trt_backend = TensorRTBackend(engine)
    try:
        candidate = trt_backend.run(batch)
    finally:
        trt_backend.close()
    ort_backend = OnnxRuntimeBackend(parent)
    try:
        reference = ort_backend.run(batch)
    finally:
        ort_backend.close()
    report = compare(candidate, reference, config.task)
    if config.engine.precision is Precision.FP32:
        report = judge(report, max_abs=max(config.atol, FP32_ENGINE_MAX_ABS))
    else:
        report = judge(report, **REDUCED_TOLERANCES[config.engine.precision])
    steps.say(f"    {report.summary()}  (tolerances {report.tolerances})")
    return report
