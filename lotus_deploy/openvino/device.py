"""[openvino] One place for OpenVINO's runtime rules: the Core, devices, the inference precision asked
for and the one actually used.

OpenVINO picks a device's inference precision itself unless told: on a CPU with native bf16 (AVX-512
BF16 or AMX) its default is bf16, so an fp32 IR silently runs in bf16. Parity and benchmarks therefore
always say which precision ran (``compiled.get_property(INFERENCE_PRECISION_HINT)``), and a precision a
device cannot run natively is refused in one line instead of being emulated or ignored.
"""

from __future__ import annotations

from typing import Any

from ..core.deps import require
from ..core.errors import ConfigError

PRECISIONS = ("auto", "f32", "bf16", "f16")  # --ov-precision; auto = the device's own default
DEVICES = ("CPU", "GPU", "NPU", "AUTO")  # --ov-device (GPU.1 and the like are accepted too)
# OPTIMIZATION_CAPABILITIES entry a device must list to run a precision natively
CAPABILITY = {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}


def ov_module() -> Any:
    """``openvino``, or a one-line error naming the extra."""
    require("openvino")
    import openvino

    return openvino


def make_core() -> Any:
    return ov_module().Core()


def check_precision_name(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"--ov-precision {precision!r} is unknown", f"use one of: {', '.join(PRECISIONS)}")
    return precision


def check_device(core: Any, device: str) -> str:
    """``device`` if this machine has it (AUTO needs any device); else a one-line error listing those it has."""
    available = [str(d) for d in core.available_devices]
    wanted = device.upper()
    if (wanted == "AUTO" and available) or wanted in available or any(d.split(".")[0] == wanted for d in available):
        return wanted  # "GPU" stands for GPU.0 when OpenVINO lists GPU.0, GPU.1
    shown = ", ".join(available) or "none"
    raise ConfigError(f"OpenVINO device {device!r} is not available on this machine (OpenVINO sees: {shown})",
                      "pass --ov-device with one of those (CPU is always there on x86 and ARM)")


def capabilities(core: Any, device: str) -> list[str]:
    return [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]


def has_native(core: Any, device: str, precision: str) -> bool:
    """Whether ``device`` runs ``precision`` natively (CPU bf16: AVX-512 BF16 or AMX; f16: AVX-512 FP16/AMX-FP16)."""
    return CAPABILITY[precision] in capabilities(core, device)


def compile_config(core: Any, device: str, precision: str, threads: int = 0) -> dict[str, Any]:
    """Properties for ``core.compile_model``: the precision hint (none for auto) and the thread count."""
    import openvino.properties as props
    import openvino.properties.hint as hints

    check_precision_name(precision)
    config: dict[str, Any] = {}
    if precision != "auto":
        if device != "AUTO" and not has_native(core, device, precision):
            raise ConfigError(f"--ov-precision {precision}: {device} has no native {precision} (it lists {', '.join(capabilities(core, device))})",
                              "use --ov-precision f32 or auto on this device")
        config[hints.inference_precision] = getattr(ov_module().Type, precision)
    if threads:
        config[props.inference_num_threads] = int(threads)
    return config


def used_precision(core: Any, compiled: Any, device: str) -> str:
    """The inference precision the compiled model actually runs ("f32", "bf16", "f16"), as OpenVINO reports it."""
    import openvino.properties.hint as hints

    if device == "AUTO":  # AUTO does not report the hint itself: ask the device it chose
        chosen = [str(d) for d in compiled.get_property("EXECUTION_DEVICES")]
        value = core.get_property(chosen[0].split(" ")[0], hints.inference_precision) if chosen else None
    else:
        value = compiled.get_property(hints.inference_precision)
    return str(value.get_type_name()) if value is not None else "unknown"


def compile_model(core: Any, model: Any, device: str, precision: str, threads: int = 0) -> tuple[Any, str]:
    """(compiled model, precision used) for an ``ov.Model`` or an IR/ONNX path."""
    device = check_device(core, device)
    compiled = core.compile_model(model, device, compile_config(core, device, precision, threads))
    return compiled, used_precision(core, compiled, device)
