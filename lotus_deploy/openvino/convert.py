"""[openvino, onnxruntime, polygraphy] ``--engine openvino``: the fp32 ONNX parent converted to one
OpenVINO IR (``model.xml`` + ``model.bin``), fp32 weights unless ``--compress-to-fp16``.

``openvino.save_model`` compresses weights to fp16 by default; that default is turned off here, because
the artifact is judged under the fp32 rule (on builtin:tiny: max|Δ| 4e-3 against float64 with fp16
weights, 5e-6 without). The IR keeps the graph contract: input ``image`` float32 [N,3,H,W] (dynamic
unless the parent is static), output ``depth``/``normal``, no pre/post-processing folded in.
"""

from __future__ import annotations

import sys
from typing import Any

from ..core.artifacts import IR_FILE, Artifact, record_parity, staged_artifact, tool_versions, write_manifest
from ..core.config import ExportConfig, Task
from ..core.contract import INPUT_CHANNELS, INPUT_NAME, output_name
from ..core.errors import ArtifactError
from ..core.memory import release_memory
from ..core.progress import Steps
from ..core.results import ExportResult
from ..onnxrt import run_graph
from ..precision.common import base_manifest
from .device import make_core, ov_module
from .parity import bf16_check, bf16_gates, bf16_warning, describe_bf16, f32_check, oracle_evidence

OPENVINO_TOOLS = ("openvino", "nncf", "onnxruntime", "numpy")


def check_contract(model: Any, task: Task, where: str) -> None:
    """The converted model has exactly the contract's one float32 NCHW input and one output."""
    inputs = [(i.get_any_name(), str(i.get_element_type().get_type_name()), i.get_partial_shape()) for i in model.inputs]
    outputs = [o.get_any_name() for o in model.outputs]
    shape = inputs[0][2] if len(inputs) == 1 else None
    if ([i[:2] for i in inputs] != [(INPUT_NAME, "f32")] or outputs != [output_name(task)] or shape is None
            or shape.rank.get_length() != 4 or shape[1].get_length() != INPUT_CHANNELS):
        raise ArtifactError(f"{where} converts to inputs {[i[:2] for i in inputs]} and outputs {outputs}",
                            f"a Lotus graph has one float32 input {INPUT_NAME!r} [N,3,H,W] and one output {output_name(task)!r}; re-export the parent")


def ir_manifest(parent: Artifact, config: ExportConfig, precision: str, weights: str) -> dict[str, Any]:
    """The manifest fields every OpenVINO artifact shares (``openvino`` and ``openvino-int8``)."""
    manifest = base_manifest(parent, config, precision)
    manifest.update(kind="openvino", tools=tool_versions(*OPENVINO_TOOLS))
    manifest["openvino"] = {"version": ov_module().get_version(), "converter": "openvino.convert_model + openvino.save_model",
                            "compress_to_fp16": config.openvino.compress_to_fp16 and precision == "fp32", "weights": weights}
    return manifest


def warn_if_bf16_missed(parity: dict[str, Any]) -> None:
    warning = bf16_warning(parity)
    if warning:
        print(f"lotus-export: warning: {warning}", file=sys.stderr)


def export_openvino(parent: Artifact, config: ExportConfig, quiet: bool = False) -> ExportResult:
    """Make the ``openvino`` artifact from the verified fp32 ONNX artifact ``parent``."""
    ov = ov_module()
    evidence = oracle_evidence(parent)  # one-line error before any heavy work when the parent has none
    compress = config.openvino.compress_to_fp16
    steps = Steps(4, quiet=quiet)
    with staged_artifact(config.artifact_dir, config.force) as staging:
        with steps.step(f"converting {parent.model_path.name} to OpenVINO IR ({'fp16' if compress else 'fp32'} weights)"):
            model = ov.convert_model(str(parent.model_path))
            check_contract(model, parent.task, str(parent.model_path))
            ov.save_model(model, str(staging / IR_FILE), compress_to_fp16=compress)
            del model
            release_memory()  # the converted weights are on disk now; the checks read the IR back
        core = make_core()
        with steps.step(f"parity: OpenVINO CPU f32 vs the float64 oracle (max|Δ| ≤ {config.export.atol:g})"):
            report = f32_check(core, staging / IR_FILE, parent.shape, evidence, parent.task, config.export.atol)
            steps.say(f"    {report.summary()}")
        with steps.step("bf16 check: OpenVINO CPU bf16 vs the fp32 graph (where the CPU has native bf16)"):
            batch = evidence[0]
            bf16 = bf16_check(core, staging / IR_FILE, parent.shape, batch, run_graph(parent.model_path, parent.shape, batch, lean=True),
                              parent.task, bf16_gates())
            steps.say(f"    {describe_bf16(bf16)}")
        with steps.step("writing the manifest"):
            manifest = ir_manifest(parent, config, "fp32", "fp16" if compress else "fp32")
            parity = {**report.to_json(), "reference": "float64 oracle (the fp32 parent's parity evidence)", "device": "CPU",
                      "precision_used": "f32", "bf16": bf16}
            fix = ("weights compressed to fp16 (--compress-to-fp16) usually miss the fp32 rule: relax it knowingly with --atol"
                   if compress else "nothing was published; compare the parent's own parity, or report it")
            record_parity(staging, manifest, parity, bool(report.passed), f"OpenVINO IR fails the fp32 rule: {report.summary()}", fix)
            full = write_manifest(staging, manifest)
    warn_if_bf16_missed(parity)
    return ExportResult(folder=config.artifact_dir, manifest=full, parity=report)
