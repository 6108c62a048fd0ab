"""OpenVINO IR artifacts (``--engine openvino`` / ``openvino-int8``) for Intel CPUs, iGPUs and NPUs.

Both start from the verified fp32 ONNX artifact: ``openvino`` converts it (fp32 weights; parity f32
against the float64 oracle, plus bf16 where the CPU has it natively), ``openvino-int8`` quantizes it
with NNCF against the same held-out gates as ``onnx-int8``. Nothing here imports openvino or nncf at
module level; the ``openvino`` extra brings the runtime and converter, ``openvino-int8`` adds NNCF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.artifacts import Artifact
    from ..core.config import ExportConfig
    from ..core.results import ExportResult


def export_openvino(parent: Artifact, config: ExportConfig, quiet: bool = False) -> ExportResult:
    """fp32 OpenVINO IR from the fp32 ONNX artifact (see ``lotus_deploy.openvino.convert``)."""
    from ..core.artifacts import check_artifact_output
    from .convert import export_openvino as run

    check_artifact_output(config.artifact_dir, config.force)
    return run(parent, config, quiet)


def export_openvino_int8(parent: Artifact, config: ExportConfig, quiet: bool = False) -> ExportResult:
    """int8 OpenVINO IR, NNCF-quantized from the fp32 ONNX artifact (see ``lotus_deploy.openvino.int8``)."""
    from ..core.artifacts import check_artifact_output
    from .int8 import export_openvino_int8 as run

    check_artifact_output(config.artifact_dir, config.force)
    return run(parent, config, quiet)
