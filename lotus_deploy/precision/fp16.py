"""[onnx, onnxconverter-common, onnxruntime] ``onnx-fp16``: fp16 weights and compute, fp32 islands found by measurement.

Converter: onnxconverter-common's ``convert_float_to_float16`` (maintained, pure Python, no CUDA
dependency; ModelOpt AutoCast failed here on dynamic H/W graphs, docs/tensorrt.md). The graph keeps its fp32
``image`` input and fp32 output (``keep_io_types``); every other float tensor becomes fp16 except in the
nodes kept in fp32.

What stays fp32 is measured, not guessed: the fp32 graph runs on the calibration images with every
float tensor's min/max recorded (shared with the int8 calibration cache), and a node is kept in fp32
when

- its output approaches the fp16 limit: ``max|x| > 65504 / headroom`` (headroom 8 by default), or
- it feeds a phase (Sin/Cos) whose input is so large that fp16's absolute rounding error
  (``max|x| * 2**-11``) exceeds 1e-3 rad, e.g. the timestep embedding ``999 * freq``: both the node
  computing that input and the Sin/Cos stay fp32.

The fp16 graph is then checked against the fp32 graph on held-out images. If it misses the target the
headroom is raised (16x more margin per round, two rounds) before giving up with a ParityError.

Two fixes on the converter's output, both type bookkeeping, not graph surgery: stale ``value_info``
entries are dropped (the converter leaves duplicates that ONNX Runtime rejects) and ``Cast(to=float)``
nodes of the original graph that are not kept in fp32 are retargeted to float16 (the converter leaves
them as they are, which mixes float and float16 inputs downstream).

On the CPU, ONNX Runtime stores these tensors in fp16 but computes many fp16 ops in fp32, so CPU parity
is labelled "fp16 storage"; fp16-compute parity needs a GPU (CUDA/TensorRT) and is a GPU-marked test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.artifacts import Artifact, staged_artifact
from ..core.config import ExportConfig
from ..core.deps import require
from ..core.memory import release_memory
from ..core.progress import Steps
from ..core.results import ExportResult
from ..export.common import save_with_external_data
from ..onnxrt import run_graph
from . import common, inputs
from .graph import drop_unused, load_structure, save_structure, work_folder

FP16_MAX = 65504.0
DEFAULT_HEADROOM = 8.0
ESCALATION = 16.0
MAX_ROUNDS = 3
PHASE_OPS = ("Sin", "Cos")
PHASE_ABS_ERROR = 1e-3
FP16_EPS = 2.0**-11
CPU_LABEL = "fp16 storage (ONNX Runtime CPU computes many fp16 ops in fp32)"


def keep_list(model: Any, ranges: dict[str, tuple[float, float]], headroom: float) -> list[dict[str, Any]]:
    """Nodes to keep in fp32, each with the measurement that put it there."""
    producers = {o: n for n in model.graph.node for o in n.output}
    limit = FP16_MAX / headroom
    kept: dict[str, dict[str, Any]] = {}
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        peaks = [max(abs(ranges[o][0]), abs(ranges[o][1])) for o in node.output if o in ranges]
        if peaks and max(peaks) > limit:
            kept[node.name] = {"node": node.name, "op": node.op_type, "reason": f"output max|x| {max(peaks):.4g} > 65504/{headroom:g}",
                               "max_abs": max(peaks)}
    # Consumers too: an fp16 node that reads such a tensor gets it through a Cast to fp16, which turns
    # values beyond 65504 into inf (a GroupNorm whose output is small again still reads the huge input).
    for node in model.graph.node:
        if node.op_type == "Constant" or node.name in kept:
            continue
        reads = [(name, max(abs(ranges[name][0]), abs(ranges[name][1]))) for name in node.input if name in ranges]
        big = [(name, peak) for name, peak in reads if peak > limit]
        if big:
            name, peak = max(big, key=lambda item: item[1])
            kept[node.name] = {"node": node.name, "op": node.op_type, "reason": f"reads {name} max|x| {peak:.4g} > 65504/{headroom:g}",
                               "max_abs": peak}
    for node in model.graph.node:
        if node.op_type not in PHASE_OPS:
            continue
        for name in node.input:
            if name not in ranges:
                continue
            peak = max(abs(ranges[name][0]), abs(ranges[name][1]))
            if peak * FP16_EPS > PHASE_ABS_ERROR:
                why = f"{node.op_type} input max|x| {peak:.4g}: fp16 rounding error {peak * FP16_EPS:.2g} rad"
                kept.setdefault(node.name, {"node": node.name, "op": node.op_type, "reason": why, "max_abs": peak})
                producer = producers.get(name)
                if producer is not None and producer.op_type != "Constant":
                    kept.setdefault(producer.name, {"node": producer.name, "op": producer.op_type, "reason": f"feeds {why}", "max_abs": peak})
    return sorted(kept.values(), key=lambda k: -k["max_abs"])


def unshare_constants(model: Any, fp32_nodes: set[str]) -> int:
    """Give every node kept in fp32 its own copy of each initializer it shares with an fp16 node.

    The converter turns an initializer to fp16 when any reader is converted, so a shared constant (the
    GroupNorm epsilon, say) would reach the fp32 node as fp16 and ONNX Runtime refuses the graph
    ("Type parameter (T) of Optype (Add) bound to different types"). Returns the copies made.
    """
    import onnx

    initializers = {t.name: t for t in model.graph.initializer}
    readers: dict[str, set[bool]] = {}
    for node in model.graph.node:
        for name in node.input:
            if name in initializers:
                readers.setdefault(name, set()).add(node.name in fp32_nodes)
    shared = {name for name, kinds in readers.items() if kinds == {True, False}}
    copies = 0
    for node in model.graph.node:
        if node.name not in fp32_nodes:
            continue
        for index, name in enumerate(node.input):
            if name in shared:
                copy = onnx.TensorProto()
                copy.CopyFrom(initializers[name])
                copy.name = f"{name}__fp32_{copies}"
                model.graph.initializer.append(copy)
                node.input[index] = copy.name
                copies += 1
    return copies


def bypass_round_trips(model: Any) -> int:
    """Let fp32 nodes read fp32 tensors directly: remove Cast(fp16) → Cast(fp32) round trips.

    The converter wraps each kept node on its own (Cast to fp32 in front, Cast to fp16 behind), so a
    tensor passing from one kept node to the next still goes through fp16 — and a value beyond 65504
    becomes inf on the way (seen on a checkpoint whose activations reach 1.3e5). Each round trip is
    replaced by the original fp32 tensor; Casts left without readers are dropped. Returns the bypassed count.
    """
    import onnx

    graph = model.graph
    outputs = {o.name for o in graph.output}

    def cast_to(node: Any) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((a.i for a in node.attribute if a.name == "to"), None)

    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    bypassed = 0
    for down in [n for n in graph.node if cast_to(n) == onnx.TensorProto.FLOAT16]:
        source = down.input[0]
        for up in readers.get(down.output[0], []):
            if cast_to(up) != onnx.TensorProto.FLOAT or up.output[0] in outputs:
                continue
            for reader in readers.get(up.output[0], []):
                for index, name in enumerate(reader.input):
                    if name == up.output[0]:
                        reader.input[index] = source
            bypassed += 1
    if bypassed:
        drop_unused(model)
    return bypassed


def convert(parent: Artifact, work: Path, block: list[str]) -> tuple[Path, list[str]]:
    """fp16 graph in ``work/fp16.onnx`` (+ data), fp32 I/O, ``block`` nodes and the converter's default ops in fp32."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    float16 = require("onnxconverter_common.float16")
    model = load_structure(parent.folder)
    original_casts = {n.name for n in model.graph.node if n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT for a in n.attribute)}
    present_ops = {n.op_type for n in model.graph.node}
    model = onnx.shape_inference.infer_shapes(model)
    load_external_data_for_model(model, str(work))
    op_block = list(float16.DEFAULT_OP_BLOCK_LIST)
    unshare_constants(model, set(block) | {n.name for n in model.graph.node if n.op_type in op_block})
    converted = float16.convert_float_to_float16(model, min_positive_val=1e-7, max_finite_val=FP16_MAX, keep_io_types=True,
                                                 disable_shape_infer=True, op_block_list=op_block, node_block_list=block)
    del model
    release_memory()
    del converted.graph.value_info[:]
    bypass_round_trips(converted)
    blocked = set(block)
    for node in converted.graph.node:
        if node.name in original_casts and node.name not in blocked:
            for attr in node.attribute:
                if attr.name == "to" and attr.i == onnx.TensorProto.FLOAT:
                    attr.i = onnx.TensorProto.FLOAT16
    path = work / "fp16.onnx"
    save_with_external_data(converted, path, "fp16.onnx.data", check=False)
    del converted
    release_memory()
    return path, sorted(op for op in op_block if op in present_ops)


def export_fp16(parent: Artifact, config: ExportConfig, quiet: bool = False) -> ExportResult:
    """Make the ``onnx-fp16`` artifact from the verified fp32 ONNX artifact ``parent``."""
    require("onnx")
    require("onnxruntime")
    require("onnxconverter_common")
    shape = parent.shape
    images = inputs.prepare(config, shape, require_calib=False)  # one-line errors before heavy work
    target = common.target_for("fp16", config)
    steps = Steps(4, quiet=quiet)
    steps.say(f"fp16 target: {target.describe()}; parity label: {CPU_LABEL}")
    for note in images.notes:
        steps.say(f"note: {note}")
    with staged_artifact(config.artifact_dir, config.force) as staging, work_folder(parent.folder, under=staging.parent) as work:
        with steps.step(f"fp32 tensor ranges on {len(images.calib)} calibration images"):
            ranges, _, calib_info = common.cached_ranges(parent, images, config, shape, work, steps, quiet)
            structure = load_structure(parent.folder)
        with steps.step(f"fp32 reference on {len(images.eval_names)} held-out images ({images.eval_source})"):
            reference = common.reference_outputs(parent, images, config, steps)
        rounds = []
        headroom = DEFAULT_HEADROOM
        with steps.step("converting to fp16 and checking held-out parity"):
            for attempt in range(MAX_ROUNDS):
                kept = keep_list(structure, ranges, headroom)
                steps.say(f"    round {attempt + 1}: headroom {headroom:g}x -> {len(kept)} node(s) kept in fp32")
                for entry in kept[:40]:
                    steps.say(f"      fp32: {entry['node']} ({entry['op']}): {entry['reason']}")
                if len(kept) > 40:
                    steps.say(f"      ... and {len(kept) - 40} more (all listed in the manifest)")
                path, kept_ops = convert(parent, work, [k["node"] for k in kept])
                report = common.evaluate(run_graph(path, shape, images.eval_batch, lean=True), reference, target)
                steps.say(f"    held-out parity ({CPU_LABEL}): {report.summary()}")
                rounds.append({"headroom": headroom, "kept": len(kept), "error": target.error_of(report), "passed": report.passed})
                if report.passed:
                    break
                headroom *= ESCALATION
        with steps.step("publishing (fp32 I/O, external data) and writing the manifest"):
            _publish(path, staging)
            manifest = common.base_manifest(parent, config, "fp16")
            manifest["fp16"] = {
                "converter": "onnxconverter_common.float16.convert_float_to_float16(keep_io_types=True)",
                "kept_fp32_nodes": kept,
                "kept_fp32_op_types": kept_ops,
                "rule": {"headroom": headroom, "fp16_max": FP16_MAX, "phase_ops": list(PHASE_OPS), "phase_abs_error": PHASE_ABS_ERROR},
                "rounds": rounds,
                "calibration": calib_info,
                "images": images.describe(),
                "parity_label": CPU_LABEL,
                "target": target.to_json(),
            }
            full = common.finish(staging, manifest, report, target, CPU_LABEL, images.eval_batch, reference)
    return ExportResult(folder=config.artifact_dir, manifest=full, parity=report)


def _publish(path: Path, staging: Path) -> None:
    """Move the converted graph into the staging folder as model.onnx + model.onnx.data."""
    import onnx

    from ..core.artifacts import ONNX_DATA, ONNX_FILE

    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = ONNX_DATA
    data = path.with_name(path.name + ".data")
    data.replace(staging / ONNX_DATA)
    save_structure(model, staging / ONNX_FILE)
    onnx.checker.check_model(str(staging / ONNX_FILE))
    path.unlink(missing_ok=True)


__all__ = ["export_fp16", "keep_list", "convert", "CPU_LABEL"]
