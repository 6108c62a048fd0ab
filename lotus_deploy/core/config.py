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
    """What ``--engine`` asks for: an ONNX graph of some precision, or a TensorRT engine."""

    ONNX = "onnx"
    ONNX_FP16 = "onnx-fp16"
    ONNX_INT8 = "onnx-int8"
    TRT_FP32 = "trt-fp32"
    TRT_FP16 = "trt-fp16"
    TRT_INT8 = "trt-int8"

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


@dataclass(frozen=True)
class ExportConfig:
    """Everything ``lotus-export`` needs, validated at construction."""

    model: str = DEFAULT_MODEL
    task: Task = Task.DEPTH
    meaning: OutputMeaning = OutputMeaning.DEPTH
    engine: EngineKind = EngineKind.ONNX
    output: Path | None = None
    height: int | None = None
    width: int | None = None
    batch: int | None = None
    opset: int = DEFAULT_OPSET
    force: bool = False
    parity: bool = True
    parity_images: Path | None = None
    parity_size: int = 256
    atol: float = 1e-4
    split: bool = False
    groupnorm: str = "two-level"  # see numerics.py: "native" keeps torch's InstanceNormalization export
    # precision (onnx-fp16 / onnx-int8 and the TensorRT engines built from them)
    calib_dir: Path | None = None
    eval_dir: Path | None = None
    calib_count: int = 32
    calib_size: int = 256
    accuracy_target: float | None = None  # AbsRel after scale-and-shift vs fp32; None = the precision's default
    # TensorRT engine build
    dynamic_profile: bool = False
    max_height: int | None = None
    max_width: int | None = None
    max_batch: int | None = None
    workspace_gib: float = 4.0
    builder_optimization_level: int = 3
    timing_cache: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.height is None) != (self.width is None):
            raise ConfigError("only one of --height/--width was given", "give both for a static graph, or neither for a dynamic one")
        for name, value in (("height", self.height), ("width", self.width)):
            if value is not None and (value <= 0 or value % 64):
                raise ConfigError(f"--{name} {value} is not a positive multiple of 64", f"use {max(64, -(-value // 64) * 64)}")
        if self.batch is not None and self.batch < 1:
            raise ConfigError(f"--batch {self.batch} is not positive", "use --batch 1 or leave it dynamic")
        if not 11 <= self.opset <= MAX_OPSET:
            raise ConfigError(f"--opset {self.opset} is outside 11..{MAX_OPSET}", f"use {DEFAULT_OPSET} (TensorRT 10.3 parses up to 20)")
        if self.parity_size <= 0 or self.parity_size % 64:
            raise ConfigError(f"--parity-size {self.parity_size} is not a multiple of 64", "use 256")
        if self.groupnorm not in ("two-level", "native"):
            raise ConfigError(f"--groupnorm {self.groupnorm!r} is unknown", "use two-level (default) or native")
        if self.atol <= 0:
            raise ConfigError(f"--atol {self.atol} must be positive", "use the default 1e-4")

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
