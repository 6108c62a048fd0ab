"""[tensorrt, onnxruntime] A built engine vs its parent ONNX graph, before the engine is published.

Running an engine is the runtime's job, so this check lives here and the builder receives it
(:func:`lotus_deploy.tensorrt.build.build_engine_artifact`'s ``check``): ``tensorrt/`` never imports
``runtime/``.
"""

from __future__ import annotations

from ..core.artifacts import Artifact
from ..core.config import ExportConfig, Precision
from ..core.deps import available
from ..core.parity import ABSOLUTE_GATES, ParityReport, compare, judge
from ..core.polygraphy_files import save_parity_files
from ..core.profile import EngineProfile
from ..core.progress import Steps
from ..export.parity_inputs import default_image_dir, parity_batch
from ..onnxrt import run_graph

# Engine vs its parent graph run in ONNX Runtime (CPU). fp32: max|Δ| ≤ max(--atol, this); reduced
# precision: task metrics (the parent graph already carries the precision, so these are loose checks
# that TensorRT computed the same graph, not accuracy targets).
FP32_ENGINE_MAX_ABS = 1e-3
REDUCED_TOLERANCES: dict[Precision, dict[str, float]] = {
    Precision.FP16: {"absrel": 0.02, "delta1": 0.98, "mean_angle_deg": 2.0},
    Precision.INT8: {"absrel": 0.05, "delta1": 0.95, "mean_angle_deg": 5.0},
}


def engine_parity(engine: Artifact, parent: Artifact, config: ExportConfig, profile: EngineProfile, steps: Steps) -> ParityReport | None:
    """Run the staged engine and its parent graph on the same batch at the profile's opt shape; judge the difference."""
    from .trt_backend import TensorRTBackend

    if not available("onnxruntime"):
        steps.say("    onnxruntime is not installed: parity skipped (pip install onnxruntime to check the engine)")
        return None
    shape = profile.opt_shape()
    image_dir = config.export.parity_images or default_image_dir()
    assert shape.height is not None and shape.width is not None and shape.batch is not None
    batch, names = parity_batch(shape, count=shape.batch, processing_res=max(shape.height, shape.width), image_dir=image_dir)
    steps.say(f"    inputs: {', '.join(names)} as one batch {list(batch.shape)}")
    trt_backend = TensorRTBackend(engine)
    try:
        candidate = trt_backend.run(batch)
    finally:
        trt_backend.close()
    reference = run_graph(parent.model_path, parent.shape, batch)
    if available("polygraphy"):
        save_parity_files(engine.folder, batch, reference, config.task.value, "parent-onnx-graph-onnxruntime-cpu")
    else:
        steps.say("    polygraphy is not installed: the parity inputs/reference for `polygraphy run` are not saved "
                  "(pip install polygraphy, or lotus-inspect --polygraphy-out later)")
    report = compare(candidate, reference, config.task)
    if config.engine.precision is Precision.FP32:
        report = judge(report, max_abs=max(config.export.atol, FP32_ENGINE_MAX_ABS))
    else:
        report = judge(report, **REDUCED_TOLERANCES[config.engine.precision], gates=ABSOLUTE_GATES[config.engine.precision.value])
    steps.say(f"    {report.summary()}  (tolerances {report.tolerances})")
    return report
