"""[tensorrt] THE one place where TensorRT 10.x and TensorRT 11 differ, and how TensorRT is loaded.

Supported: TensorRT 10.3 (JetPack 6, Orin) through 10.13+ (JetPack 7) and 11.x (desktop wheels), with
one code path everywhere else. Each version-dependent branch below says which version it serves.
Everything here takes the imported ``tensorrt`` module as an argument, so the rest of the package never
imports TensorRT at module level (docs/architecture.md).

Loading: ``import tensorrt`` can fail in more ways than ImportError: the bindings wheel installs on
machines whose ``libnvinfer`` then fails to load (OSError), and an installed ``tensorrt-stubs`` package
makes ``import tensorrt`` *succeed* as an empty namespace package holding only ``__init__.pyi``. All of
these mean "TensorRT is not usable here" and become one DependencyError line.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..core.errors import DependencyError

if TYPE_CHECKING:
    import tensorrt as trt

MIN_VERSION = (10, 3)
INSTALL_HINT = (
    'desktop: pip install "lotus-deploy[trt]" (TensorRT + cuda-python<13 for a CUDA 12 driver; CUDA 13: "lotus-deploy[trt-cu13]"); '
    "Jetson: TensorRT comes with JetPack (sudo apt install python3-libnvinfer; use a venv with --system-site-packages)"
)


def load_tensorrt() -> ModuleType:
    """Import TensorRT, or raise a one-line DependencyError saying what is missing and how to install it."""
    try:
        module = importlib.import_module("tensorrt")
    except Exception as exc:  # noqa: BLE001 - ImportError, OSError (libnvinfer), RuntimeError from the bindings
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise DependencyError(f"TensorRT is not usable here ({exc.__class__.__name__}: {first})", INSTALL_HINT) from None
    if not hasattr(module, "Builder") or not hasattr(module, "__version__"):
        # tensorrt-stubs (type stubs only) installs a bare `tensorrt/` folder that imports as a namespace package.
        raise DependencyError("TensorRT is not usable here (`tensorrt` imports but has no Builder: only type stubs are installed)", INSTALL_HINT)
    if version_tuple(str(module.__version__))[:2] < MIN_VERSION:
        raise DependencyError(
            f"TensorRT {module.__version__} is too old (need {MIN_VERSION[0]}.{MIN_VERSION[1]} or newer)",
            "upgrade TensorRT (JetPack 6.1+ ships 10.3)",
        )
    return module


def tensorrt_usable() -> tuple[bool, str]:
    """(True, version) when TensorRT loads, else (False, the reason); never raises."""
    try:
        module = load_tensorrt()
    except DependencyError as exc:
        return False, str(exc)
    return True, str(module.__version__)


_LOGGERS: dict[int, Any] = {}


def get_logger(trt_module: ModuleType, quiet: bool = False) -> Any:
    """One shared ``trt.Logger`` per severity (TensorRT expects the same logger across builder and runtimes)."""
    severity = trt_module.Logger.ERROR if quiet else trt_module.Logger.WARNING
    key = int(severity)
    if key not in _LOGGERS:
        _LOGGERS[key] = trt_module.Logger(severity)
    return _LOGGERS[key]


def version_tuple(version: str) -> tuple[int, ...]:
    """'10.3.0.30' -> (10, 3, 0, 30); non-numeric parts end the tuple."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def major(trt_module: ModuleType) -> int:
    return version_tuple(str(trt_module.__version__))[0]


def network_flags(trt_module: ModuleType) -> int:
    """Creation flags for a strongly typed network (precision comes from the ONNX graph, docs/tensorrt.md)."""
    flag_enum = getattr(trt_module, "NetworkDefinitionCreationFlag", None)
    flag = getattr(flag_enum, "STRONGLY_TYPED", None)
    if major(trt_module) >= 11:
        # TensorRT 11: every network is strongly typed; the flag is gone or ignored. Set it only where it
        # still exists (harmless), never require it.
        return 0 if flag is None else 1 << int(flag)
    # TensorRT 10.x (10.3 JetPack 6 ... 10.13+ JetPack 7): strongly typed is opt-in through this flag.
    if flag is None:
        raise DependencyError(f"TensorRT {trt_module.__version__} has no STRONGLY_TYPED network flag", "use TensorRT 10.3 or newer")
    return 1 << int(flag)


def disable_tf32(trt_module: ModuleType, config: trt.IBuilderConfig) -> bool:
    """Keep float32 math in float32 for fp32 graphs; True when TF32 was switched off."""
    flag = getattr(getattr(trt_module, "BuilderFlag", None), "TF32", None)
    if flag is None:
        # Not seen in any supported release: BuilderFlag.TF32 exists in 10.3 through 11.1 (only the
        # precision flags FP16/INT8/FP8/BF16/INT4/FP4 left the builder in 11). Report TF32 as possibly on.
        return False
    # TensorRT 10.x and 11.x: TF32 is on by default for float32 convolutions/matmuls on Ampere+ (Orin included).
    config.clear_flag(flag)
    return True


def parser_errors(parser: trt.OnnxParser) -> list[str]:
    """Every ONNX parser error as one line naming its node (index, name, operator)."""
    lines = []
    for index in range(parser.num_errors):
        error: Any = parser.get_error(index)
        node = _call(error, "node", -1)
        # node_name()/node_operator(): TensorRT 10.x (10.0+) and 11; absent on older parsers -> index only.
        name = _call(error, "node_name", "")
        operator = _call(error, "node_operator", "")
        desc = _call(error, "desc", str(error))
        where = f"node {node}" if node is not None and node != -1 else "graph"
        if name:
            where += f" {name!r}"
        if operator:
            where += f" ({operator})"
        # local_function_stack(): TensorRT 10.x (10.2+) and 11 only; errors inside ONNX local functions.
        stack = _call(error, "local_function_stack", None)
        if stack:
            where += f" in function {' > '.join(str(s) for s in stack)}"
        lines.append(f"{where}: {desc}")
    return lines


def _call(obj: Any, method: str, default: Any) -> Any:
    function = getattr(obj, method, None)
    if function is None:
        return default
    try:
        return function()
    except Exception:  # noqa: BLE001 - an accessor that exists but fails reports nothing useful
        return default


def progress_monitor(trt_module: ModuleType, say: Any) -> Any | None:
    """A build-progress monitor printing phases, or None where the API is absent."""
    base = getattr(trt_module, "IProgressMonitor", None)
    if base is None:
        # Builds without IProgressMonitor (none in 10.3+, kept for safety): no phase progress, the build still runs.
        return None

    # TensorRT 10.x and 11: IProgressMonitor with phase_start / step_complete / phase_finish.
    class _Monitor(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self._depth: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            depth = self._depth.get(parent_phase, -1) + 1 if parent_phase else 0
            self._depth[phase_name] = depth
            if depth <= 1:  # top two levels; deeper ones (per-tactic) are noise
                say(f"    {'  ' * depth}{phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # True = keep building

        def phase_finish(self, phase_name: str) -> None:
            self._depth.pop(phase_name, None)

    return _Monitor()
