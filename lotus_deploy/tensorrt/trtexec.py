"""The ``trtexec`` command line equivalent to a ``lotus-build`` (for users who prefer NVIDIA's tool).

Same profile, strongly typed network, workspace, optimization level and timing cache as
:func:`lotus_deploy.tensorrt.build.build_engine`. ``trtexec`` writes only the engine, no manifest: the
TensorRT backend accepts such an engine with a warning (it cannot check the TensorRT version and GPU).
Needs no TensorRT to compute.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ..core.contract import INPUT_NAME
from ..core.profile import Dims4, EngineProfile
from .build import BuildSettings


def _shape(dims: Dims4) -> str:
    return f"{INPUT_NAME}:{'x'.join(str(d) for d in dims)}"


def trtexec_command(onnx: Path | str, engine: Path | str, profile: EngineProfile, settings: BuildSettings,
                    trtexec: str = "trtexec", skip_inference: bool = True, graph_is_static: bool = False) -> list[str]:
    """argv for trtexec (on Jetson it lives in /usr/src/tensorrt/bin/trtexec).

    ``graph_is_static``: the ONNX graph has no dynamic axis (exported with --batch, --height and --width);
    trtexec 10.3 and 11.1 then refuse any shape flag ("Static model does not take explicit shapes").
    """
    argv = [trtexec, f"--onnx={onnx}", f"--saveEngine={engine}", "--stronglyTyped"]
    if graph_is_static:
        pass
    elif profile.is_static:
        argv.append(f"--shapes={_shape(profile.opt)}")
    else:
        argv += [f"--minShapes={_shape(profile.min)}", f"--optShapes={_shape(profile.opt)}", f"--maxShapes={_shape(profile.max)}"]
    argv.append(f"--memPoolSize=workspace:{round(settings.workspace_gib * 1024)}M")
    argv.append(f"--builderOptimizationLevel={settings.optimization_level}")
    if settings.fp32:
        argv.append("--noTF32")  # TensorRT 10.x; keeps an fp32 graph in float32 math, as lotus-build does
    if settings.timing_cache is not None:
        argv.append(f"--timingCacheFile={settings.timing_cache}")
    if skip_inference:
        argv.append("--skipInference")
    return argv


def format_command(argv: list[str]) -> str:
    """A shell-quoted single line."""
    return " ".join(shlex.quote(part) for part in argv)
