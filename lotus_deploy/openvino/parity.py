"""How an OpenVINO artifact is judged (docs/openvino.md).

- **f32**, always, under the fp32 rule: the IR compiled with ``INFERENCE_PRECISION_HINT=f32`` against
  the float64 oracle's outputs that the fp32 parent's own parity check saved (its Polygraphy files),
  max|Δ| ≤ the export's ``--atol`` (1e-4). This check decides whether the artifact is published.
- **bf16**, where the CPU runs bf16 natively (OpenVINO's default precision there): against the fp32
  graph (the parent in ONNX Runtime) under the bf16 absolute gates. A miss is recorded and printed as a
  warning, and the backend repeats it when bf16 runs; it does not block publishing, since the
  artifact's own precision is f32. Where the CPU has no native bf16 the check is recorded as skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifacts import Artifact
from ..core.contract import INPUT_NAME, GraphShape
from ..core.errors import ConfigError
from ..core.parity import ABSOLUTE_GATES, ParityReport, compare, judge
from ..core.polygraphy_files import ParityFiles
from .device import compile_model, has_native

PARITY_DEVICE = "CPU"  # export-time checks run here; other devices are checked by the user's own runs


def run_compiled(compiled: Any, shape: GraphShape, batch: np.ndarray) -> np.ndarray:
    """Outputs for ``batch`` ([N,3,H,W]); a graph with a static batch size runs it in slices of that size."""
    step = shape.batch or len(batch)
    request = compiled.create_infer_request()
    outputs = []
    for start in range(0, len(batch), step):
        result = request.infer({INPUT_NAME: np.ascontiguousarray(batch[start:start + step], dtype=np.float32)})
        outputs.append(np.array(result[compiled.output(0)], dtype=np.float32, copy=True))
    return np.concatenate(outputs)


def oracle_evidence(parent: Artifact) -> tuple[np.ndarray, np.ndarray]:
    """(parity batch, float64 oracle output) that the fp32 parent's export saved beside its graph."""
    files = ParityFiles.under(parent.folder)
    if not files.exist():
        raise ConfigError(f"{parent.folder} holds no parity evidence (polygraphy_inputs.json / polygraphy_reference.json): it was exported "
                          "without parity", "re-export the fp32 parent with parity (drop --no-parity), then export the OpenVINO IR again")
    from polygraphy.json import load_json

    feeds = load_json(str(files.inputs))
    results = load_json(str(files.reference))
    batch = np.asarray(feeds[0][INPUT_NAME], dtype=np.float32)
    _, iterations = results[0]
    reference = np.asarray(next(iter(iterations[0].values())), dtype=np.float32)
    return batch, reference


def f32_check(core: Any, model_path: Path, shape: GraphShape, evidence: tuple[np.ndarray, np.ndarray], task: Any, atol: float) -> ParityReport:
    """The IR in f32 against the float64 oracle, under the fp32 rule."""
    batch, reference = evidence
    compiled, _ = compile_model(core, str(model_path), PARITY_DEVICE, "f32")
    return judge(compare(run_compiled(compiled, shape, batch), reference, task), max_abs=atol)


def bf16_check(core: Any, model_path: Path, shape: GraphShape, batch: np.ndarray, fp32_reference: np.ndarray, task: Any,
               gates: dict[str, float]) -> dict[str, Any]:
    """The IR in bf16 against the fp32 graph (absolute gates), or why it was skipped."""
    if not has_native(core, PARITY_DEVICE, "bf16"):
        return {"skipped": f"this CPU has no native bf16 (OpenVINO lists {', '.join(map(str, core.get_property(PARITY_DEVICE, 'OPTIMIZATION_CAPABILITIES')))})"}
    compiled, used = compile_model(core, str(model_path), PARITY_DEVICE, "bf16")
    report = judge(compare(run_compiled(compiled, shape, batch), fp32_reference, task), gates=gates)
    return {**report.to_json(), "precision_used": used, "reference": "fp32 ONNX graph, ONNX Runtime CPU"}


def describe_bf16(entry: dict[str, Any]) -> str:
    """One line for a bf16 check's outcome."""
    if "skipped" in entry:
        return f"bf16 check skipped: {entry['skipped']}"
    verdict = "PASS" if entry["passed"] else "FAIL: " + "; ".join(entry["failures"])
    return f"bf16: mean|Δ| {entry['mean_abs']:.3g}, p99|Δ| {entry['p99_abs']:.3g}, max|Δ| {entry['max_abs']:.3g} {verdict}"


def bf16_gates() -> dict[str, float]:
    return dict(ABSOLUTE_GATES["bf16"])


def bf16_warning(parity: dict[str, Any] | None) -> str | None:
    """The warning for an artifact whose export-time bf16 check missed its gates (None otherwise)."""
    entry = (parity or {}).get("bf16")
    if not isinstance(entry, dict) or entry.get("passed", True) or "skipped" in entry:
        return None
    failures = "; ".join(entry.get("failures") or []) or "see parity.json"
    return (f"this artifact's bf16 check missed its gates at export ({failures}); bf16 outputs are less accurate than its f32 parity says "
            "- pass --ov-precision f32 for the fp32 graph's accuracy")
