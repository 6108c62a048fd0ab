"""[onnx, onnxruntime] Reduced-precision ONNX graphs for strongly typed TensorRT (docs/tensorrt.md).

TensorRT 11 builds only strongly typed networks, so precision lives in the graph itself:

- ``export_fp16`` (``--engine onnx-fp16``): fp16 weights and compute with fp32 islands found by
  measuring tensor ranges on calibration images (``fp16.py``);
- ``export_int8`` (``--engine onnx-int8``): explicit symmetric Q/DQ around Conv/MatMul/Gemm, calibrated
  on real photos, with an accuracy-targeted search that returns the most sensitive layer groups to
  fp32 until held-out images meet the target (``int8.py``).

Both start from the verified fp32 ONNX artifact, keep fp32 ``image`` input and fp32 output, end with a
parity report against the fp32 graph on held-out images (``parity.json`` + manifest), and raise
``ParityError`` when the target is missed. Heavy imports happen inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .common import DEFAULT_TARGETS

if TYPE_CHECKING:
    from ..core.artifacts import Artifact
    from ..core.config import ExportConfig
    from ..core.results import ExportResult


def export_fp16(parent: Artifact, config: ExportConfig, quiet: bool = False) -> ExportResult:
    """fp16 ONNX artifact from the fp32 one (see ``lotus_deploy.precision.fp16``)."""
    from ..core.artifacts import check_artifact_output
    from .fp16 import export_fp16 as run

    check_artifact_output(config.artifact_dir, config.force)  # before any calibration work
    return run(parent, config, quiet)


def export_int8(parent: Artifact, config: ExportConfig, quiet: bool = False) -> ExportResult:
    """int8 Q/DQ ONNX artifact from the fp32 one (see ``lotus_deploy.precision.int8``)."""
    from ..core.artifacts import check_artifact_output
    from .int8 import export_int8 as run

    check_artifact_output(config.artifact_dir, config.force)  # before any calibration work
    return run(parent, config, quiet)


def validate_inputs(config: ExportConfig) -> None:
    """Cheap checks of --calib-dir/--eval-dir (missing, empty, unreadable) to run before building parents."""
    from ..core.config import Precision
    from ..image.preprocess import load_image
    from .inputs import choose

    calib, held, _, _ = choose(config, require_calib=config.engine.precision is Precision.INT8)
    for path in [*calib, *held]:
        load_image(path)


__all__ = ["export_fp16", "export_int8", "validate_inputs", "DEFAULT_TARGETS"]
