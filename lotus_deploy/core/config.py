"""Settings as frozen dataclasses, validated in one place.

The CLI parses flags into these and the library functions take them, so the Python API and the CLI
cannot drift apart.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .sizes import check_size_flag

DEFAULT_MODEL = "jingheya/lotus-depth-d-v1-0"
DEFAULT_OPSET = 17
MAX_OPSET = 19  # TensorRT 10.x's parser supports up to 20; stay below (docs/tensorrt.md)
DEFAULT_PROCESSING_RES = 768


class Task(str, enum.Enum):
    DEPTH = "depth"
    NORMAL = "normal"


class OutputMeaning(str, enum.Enum):
    """What the numbers in the output mean; decides colorization and metric fitting."""

    DEPTH = "depth"
    DISPARITY = "disparity"
    NORMAL = "normal"


class Precision(str, enum.Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class EngineKind(str, enum.Enum):
    """What ``--engine`` asks for: an ONNX graph of some precision, a TensorRT engine, or an OpenVINO IR."""

    ONNX = "onnx"
    ONNX_FP16 = "onnx-fp16"
    ONNX_INT8 = "onnx-int8"
    TRT_FP32 = "trt-fp32"
    TRT_FP16 = "trt-fp16"
    TRT_INT8 = "trt-int8"
    OPENVINO = "openvino"
    OPENVINO_INT8 = "openvino-int8"

    @property
    def precision(self) -> Precision:
        if self.value.endswith("fp16"):
            return Precision.FP16
        if self.value.endswith("int8"):
            return Precision.INT8
        return Precision.FP32

    @property
    def is_tensorrt(self) -> bool:
        return self.value.startswith("trt")

    @property
    def is_openvino(self) -> bool:
        return self.value.startswith("openvino")

    @property
    def onnx_parent(self) -> EngineKind:
        """The ONNX artifact a TensorRT engine is built from (precision lives in the graph)."""
        return {Precision.FP32: EngineKind.ONNX, Precision.FP16: EngineKind.ONNX_FP16, Precision.INT8: EngineKind.ONNX_INT8}[
            self.precision
        ]


# Released Lotus-D checkpoints: task and output meaning are known, flags may not contradict them.
KNOWN_CHECKPOINTS: dict[str, tuple[Task, OutputMeaning]] = {
    "jingheya/lotus-depth-d-v1-0": (Task.DEPTH, OutputMeaning.DEPTH),
    "jingheya/lotus-depth-d-v2-0-disparity": (Task.DEPTH, OutputMeaning.DISPARITY),
    "jingheya/lotus-normal-d-v1-1": (Task.NORMAL, OutputMeaning.NORMAL),
}


def infer_task(model: str, task: Task | None, meaning: OutputMeaning | None) -> tuple[Task, OutputMeaning]:
    """Task and output meaning: from the known-checkpoint table, else from flags (with defaults)."""
    known = KNOWN_CHECKPOINTS.get(model.rstrip("/"))
    if known is not None:
        known_task, known_meaning = known
        if task is not None and task != known_task:
            raise ConfigError(f"--task {task.value} contradicts {model}, a {known_task.value} checkpoint", f"drop --task or use --task {known_task.value}")
        if meaning is not None and meaning != known_meaning:
            raise ConfigError(f"--output-meaning {meaning.value} contradicts {model} ({known_meaning.value})", "drop --output-meaning")
        return known
    if task is None:
        lowered = model.lower()
        if "normal" in lowered:
            task = Task.NORMAL
        elif "depth" in lowered or model.startswith("builtin:"):
            task = Task.DEPTH
        else:
            raise ConfigError(f"cannot tell whether {model} predicts depth or normals", "pass --task depth or --task normal")
    if task is Task.NORMAL:
        if meaning not in (None, OutputMeaning.NORMAL):
            raise ConfigError(f"--output-meaning {meaning.value} does not fit a normal model", "drop --output-meaning")
        return task, OutputMeaning.NORMAL
    if meaning is OutputMeaning.NORMAL:
        raise ConfigError("--output-meaning normal does not fit a depth model", "use depth or disparity")
    if meaning is None:
        meaning = OutputMeaning.DISPARITY if "disparity" in model.lower() else OutputMeaning.DEPTH
    return task, meaning


def safe_name(text: str) -> str:
    """Filesystem-safe model name: 'jingheya/lotus-depth-d-v1-0' -> 'jingheya--lotus-depth-d-v1-0'."""
    text = text.rstrip("/").replace("builtin:", "builtin-")
    if "/" in text and Path(text).exists():
        text = Path(text).resolve().name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.replace("/", "--")).strip("-") or "model"


GROUPNORM_MODES = ("two-level", "native")  # see model/numerics.py
MIN_OPSET = 11
DEFAULT_PARITY_SIZE = 256
DEFAULT_ATOL = 1e-4
DEFAULT_WORKSPACE_GIB = 4.0
DEFAULT_OPT_LEVEL = 3
MAX_OPT_LEVEL = 5


def check_build_limits(workspace_gib: float, optimization_level: int) -> None:
    """TensorRT builder limits (one rule for lotus-export, lotus-build and the builder itself)."""
    if not workspace_gib > 0:
        raise ConfigError(f"--workspace-gib {workspace_gib:g} must be positive", "use e.g. 4 (Jetson Orin Nano: 2)")
    if not 0 <= optimization_level <= MAX_OPT_LEVEL:
        raise ConfigError(f"--opt-level {optimization_level} is outside 0..{MAX_OPT_LEVEL}", "use 3 (TensorRT's default)")


@dataclass(frozen=True)
class ExportSettings:
    """How the fp32 graph is traced and proven (``lotus-export --engine onnx``)."""

    opset: int = DEFAULT_OPSET
    parity: bool = True
    parity_images: Path | None = None
    parity_size: int = DEFAULT_PARITY_SIZE
    atol: float = DEFAULT_ATOL
    split: bool = False
    groupnorm: str = GROUPNORM_MODES[0]  # "native" keeps torch's InstanceNormalization export
    memory_check: bool = True  # refuse up front when MemAvailable is below the estimated need

    def __post_init__(self) -> None:
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise ConfigError(f"--opset {self.opset} is outside {MIN_OPSET}..{MAX_OPSET}", f"use {DEFAULT_OPSET} (TensorRT 10.3 parses up to 20)")
        check_size_flag("--parity-size", self.parity_size)
        if self.groupnorm not in GROUPNORM_MODES:
            raise ConfigError(f"--groupnorm {self.groupnorm!r} is unknown", "use two-level (default) or native")
        if self.atol <= 0:
            raise ConfigError(f"--atol {self.atol} must be positive", f"use the default {DEFAULT_ATOL:g}")


@dataclass(frozen=True)
class PrecisionSettings:
    """How the fp16/int8 graphs are calibrated and judged (``--engine onnx-fp16/onnx-int8``)."""

    calib_dir: Path | None = None
    eval_dir: Path | None = None
    calib_count: int = 32
    calib_size: int = 256
    accuracy_target: float | None = None  # AbsRel after scale-and-shift vs fp32; None = the precision's default
    probe_size: int | None = None  # int8 sensitivity probe size; None = half the calibration size


@dataclass(frozen=True)
class EngineSettings:
    """How a TensorRT engine is built (``--engine trt-*``, ``lotus-build``)."""

    dynamic_profile: bool = False
    max_height: int | None = None
    max_width: int | None = None
    max_batch: int | None = None
    workspace_gib: float = DEFAULT_WORKSPACE_GIB
    optimization_level: int = DEFAULT_OPT_LEVEL
    timing_cache: Path | None = None

    def __post_init__(self) -> None:
        check_build_limits(self.workspace_gib, self.optimization_level)


@dataclass(frozen=True)
class OpenVINOSettings:
    """How an OpenVINO IR is written (``--engine openvino``/``openvino-int8``)."""

    compress_to_fp16: bool = False  # openvino.save_model's own default is True: fp16 weights, not what the fp32 rule checks


@dataclass(frozen=True)
class ExportConfig:
    """What to make (model, task, engine, where, static shape) and each stage's settings, validated at construction."""

    model: str = DEFAULT_MODEL
    task: Task = Task.DEPTH
    meaning: OutputMeaning = OutputMeaning.DEPTH
    engine: EngineKind = EngineKind.ONNX
    output: Path | None = None
    height: int | None = None
    width: int | None = None
    batch: int | None = None
    force: bool = False
    export: ExportSettings = field(default_factory=ExportSettings)
    precision: PrecisionSettings = field(default_factory=PrecisionSettings)
    tensorrt: EngineSettings = field(default_factory=EngineSettings)
    openvino: OpenVINOSettings = field(default_factory=OpenVINOSettings)

    def __post_init__(self) -> None:
        if (self.height is None) != (self.width is None):
            raise ConfigError("only one of --height/--width was given", "give both for a static graph, or neither for a dynamic one")
        check_size_flag("--height", self.height)
        check_size_flag("--width", self.width)
        if self.batch is not None and self.batch < 1:
            raise ConfigError(f"--batch {self.batch} is not positive", "use --batch 1 or leave it dynamic")

    @property
    def artifact_dir(self) -> Path:
        """``--output``, else ``engines/<model>-<task>-<engine>[-HxW][-bN]`` (shape keys the folder)."""
        if self.output is not None:
            return Path(self.output)
        return Path("engines") / default_artifact_name(self.model, self.task, self.engine, self.height, self.width, self.batch)


def default_artifact_name(model: str, task: Task, engine: EngineKind, height: int | None, width: int | None, batch: int | None) -> str:
    name = f"{safe_name(model)}-{task.value}-{engine.value}"
    if height is not None and width is not None:
        name += f"-{height}x{width}"
    if batch is not None:
        name += f"-b{batch}"
    return name
