"""Optional-dependency gate.

The base install is numpy + Pillow only (a Jetson runtime has no torch). Heavy modules are imported
lazily through :func:`require`, which turns an ImportError into a one-line message naming the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import DependencyError

# module -> (pip extra, human hint)
_EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("export", "PyTorch (CPU: pip install torch; GPU: the build for your CUDA)"),
    "diffusers": ("export", "diffusers"),
    "transformers": ("export", "transformers"),
    "onnx": ("export", "onnx"),
    "onnxslim": ("export", "onnxslim (graph cleaner)"),
    "polygraphy": ("export", "Polygraphy (NVIDIA's comparison tool: parity inputs and references are saved in its format)"),
    "onnxruntime": ("ort", "onnxruntime (or onnxruntime-gpu via the ort-gpu extra)"),
    "onnxconverter_common": ("precision", "onnxconverter-common"),
    "tensorrt": ("trt-cu12", "TensorRT Python bindings (on Jetson they come with JetPack; CUDA 13 desktops: the trt-cu13 extra)"),
    "cuda": ("trt-cu12", "cuda-python of your CUDA major (cuda-python>=12,<13 for CUDA 12; the trt-cu13 extra for CUDA 13)"),
    "cv2": ("video", "opencv-python-headless"),
    "openvino": ("openvino", "OpenVINO (runtime and ONNX converter)"),
    "nncf": ("openvino-int8", "NNCF (OpenVINO's quantizer)"),
    "ray": ("ray", "Ray Data"),
    "pyarrow": ("ray", "pyarrow (Ray Data brings it)"),
    "tritonclient": ("serve", "Triton's client library (tritonclient[http,grpc])"),
    "google": ("serve", "protobuf"),
    "matplotlib": ("bench", "matplotlib"),
    "psutil": ("bench", "psutil"),
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise a DependencyError that says which extra installs it."""
    if module.split(".")[0] == "tensorrt":  # TensorRT needs more than an import (stubs, versions): the tensorrt/ stage checks it
        raise ValueError("use lotus_deploy.tensorrt.compat.load_tensorrt() for TensorRT")
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as exc:  # OSError: a native library of the package failed to load
        top = module.split(".")[0]
        extra, hint = _EXTRAS.get(top, ("", top))
        fix = f'pip install "lotus-deploy[{extra}]"' if extra else f"pip install {top}"
        raise DependencyError(
            f"{hint} is not importable ({exc.__class__.__name__}: {exc})", f"install it: {fix}"
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` imports; never raises (for TensorRT use ``tensorrt.compat.tensorrt_usable``)."""
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any import failure (ImportError, OSError from native libs) means "no"
        return False
    return True


def require_all(modules: list[str] | tuple[str, ...], purpose: str) -> None:
    """Raise one DependencyError naming every missing module and the extras that bring them.

    Commands call this before loading anything, so a missing package costs no time.
    """
    missing = [module for module in dict.fromkeys(modules) if not available(module)]
    if not missing:
        return
    extras = sorted({_EXTRAS.get(m.split(".")[0], ("", ""))[0] for m in missing} - {""})
    hints = ", ".join(_EXTRAS.get(m.split(".")[0], ("", m))[1] for m in missing)
    fix = "install " + " and ".join(f'"lotus-deploy[{extra}]"' for extra in extras) if extras else f"pip install {' '.join(missing)}"
    raise DependencyError(f"{purpose} needs {hints}, which {'is' if len(missing) == 1 else 'are'} not importable", fix)
