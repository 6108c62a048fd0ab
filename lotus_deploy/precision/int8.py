"""[onnx, onnxruntime] ``onnx-int8``: explicit Q/DQ for strongly typed TensorRT, with an accuracy-targeted search.

Quantizer: ONNX Runtime's ``quantize_static`` in QDQ format, chosen over ModelOpt's ONNX PTQ because it
needs nothing beyond the ``onnx``/``onnxruntime`` this project already installs (``nvidia-modelopt[onnx]``
drags in onnxruntime-gpu, cupy and an older onnx, docs/tensorrt.md), takes pre-computed ranges as its
calibration cache (``calibration_cache_path``), and emits the layout TensorRT's explicit-quantization
path consumes and fuses:

- symmetric int8 everywhere (zero points 0), weights per output channel, activations per tensor;
- Q/DQ only on the *inputs* of Conv / MatMul / Gemm (``OpTypesToExcludeOutputQuantization``), so
  TensorRT fuses each DQ pair into the int8 kernel and its epilogue; biases stay fp32
  (``QuantizeBias`` off: TensorRT folds fp32 bias into the fused layer);
- MinMax calibration on real photos (``--calib-dir``), cached (see ``common``).

Kept in higher precision by default (no Q/DQ at all): the first and last convolution of the VAE
encoder, the UNet and the VAE decoder plus ``quant_conv``/``post_quant_conv``; the timestep and class
embeddings (``time_embedding``, ``class_embedding``, every ResNet's ``time_emb_proj``); the two
attention-core MatMuls (Q·Kᵀ and softmax·V, whose inputs are activations on both sides) so softmax
outputs are never quantized; normalizations and softmax are not quantizable ops here anyway.

Accuracy-targeted mixed precision (beyond quantize_static): Conv/MatMul/Gemm nodes are grouped by
module (one ResNet, one attention block, one up/down-sampler...). Starting from the calibrated graph
with every group quantized, each group's *sensitivity* is measured by dropping that group's Q/DQ
(its fp32 weights come back from the parent's data file) and measuring the error drop on one
calibration image (the probe). The probe runs at half the calibration size (``probe_size`` in ``ExportConfig.extra``)
and its sessions skip ONNX Runtime's QDQ fusion, which keeps a full-size search near half an hour on
two CPU cores; acceptance is always decided on the held-out images at full size. Groups are then
returned to fp32 most-sensitive first, the smallest
count found by bisection, until the held-out images meet the target. Every variant is a small graph
file referencing the quantized and the parent weights, so no variant copies gigabytes. The report
gives the share of multiply-accumulates still in int8 and, below one half, the groups that blocked it.
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..core.artifacts import Artifact, staged_artifact, write_json_atomic
from ..core.config import ExportConfig
from ..core.deps import require
from ..core.errors import DependencyError, ParityError
from ..core.progress import Steps, bar
from ..core.results import ExportResult
from ..onnxrt import run_graph
from . import common, inputs
from .graph import (
    COMPUTE_OPS,
    constant_names,
    drop_unused,
    group_of,
    load_structure,
    materialize,
    runtime_macs,
    save_structure,
    work_folder,
)

EMBEDDING_MARKERS = ("time_embedding", "class_embedding", "time_emb_proj", "time_proj")
LATENT_CONVS = ("quant_conv", "post_quant_conv")
CPU_LABEL = ("int8 Q/DQ semantics: ONNX Runtime CPU with QDQ fusion off (exact dequantize-then-fp32 math, what TensorRT's "
             "int8 kernels with int32 accumulation compute)")


QUANT_SETTINGS: dict[str, Any] = {
    "format": "QDQ", "activation": "QInt8", "weight": "QInt8", "per_channel": True, "calibration": "MinMax",
    "extra_options": {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                      "OpTypesToExcludeOutputQuantization": list(COMPUTE_OPS)},
}


def default_kept(model: Any) -> dict[str, str]:
    """Compute nodes kept out of int8 by rule, with the rule's name."""
    constants = constant_names(model)
    kept: dict[str, str] = {}
    convs_by_net: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        group = group_of(node.name)
        net = group.split("/")[0]
        if node.op_type == "Conv":
            convs_by_net.setdefault(net, []).append(node.name)
        if any(marker in node.name for marker in EMBEDDING_MARKERS):
            kept[node.name] = "time/class embedding"
        elif net in LATENT_CONVS:
            kept[node.name] = "latent 1x1 conv (quant_conv/post_quant_conv)"
        elif node.op_type == "MatMul" and not any(i in constants for i in node.input[:2]):
            kept[node.name] = "attention core (activation x activation, around softmax)"
    for net, convs in convs_by_net.items():
        if net in ("encoder", "unet", "decoder"):
            kept.setdefault(convs[0], f"first convolution of the {net}")
            kept.setdefault(convs[-1], f"last convolution of the {net}")
    return kept


def quantize_base(work: Path, ranges_path: Path, exclude: list[str], structure: Any) -> Path:
    """All non-excluded Conv/MatMul/Gemm quantized: ``work/int8.onnx`` + ``int8.onnx.data``."""
    require("onnxruntime.quantization")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        raise DependencyError("this onnxruntime's quantize_static has no calibration_cache_path", "pip install 'onnxruntime>=1.32' (tested: 1.32.0)")
    source = work / "parent.onnx"
    save_structure(structure, source)  # weights stay in the parent's data file (linked into work/)
    out = work / "int8.onnx"
    quantize_static(
        str(source), str(out), calibration_data_reader=None, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(COMPUTE_OPS),
        per_channel=True, reduce_range=False, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude, use_external_data_format=True, calibrate_method=CalibrationMethod.MinMax,
        extra_options=dict(QUANT_SETTINGS["extra_options"]),  # type: ignore[call-overload]
        calibration_cache_path=str(ranges_path),
    )
    return out


class Variants:
    """Graphs that differ from the quantized base only in which groups have their Q/DQ dropped."""

    def __init__(self, work: Path, base_path: Path, parent_structure: Any) -> None:
        import onnx

        self.work = work
        self.base = onnx.load(str(base_path), load_external_data=False)
        self.rewired = keep_qdq_on_compute_inputs_only(self.base)
        self.fp32_weights = {t.name: t for t in parent_structure.graph.initializer}
        self.count = 0

    def build(self, nodes: set[str]) -> Any:
        import onnx

        model = onnx.ModelProto()
        model.CopyFrom(self.base)
        producers = {o: n for n in model.graph.node for o in n.output}
        initializers = {t.name for t in model.graph.initializer}
        added: set[str] = set()
        for node in model.graph.node:
            if node.name not in nodes:
                continue
            for index, name in enumerate(node.input):
                dq = producers.get(name)
                if dq is None or dq.op_type != "DequantizeLinear":
                    continue
                source = dq.input[0]
                if source in initializers:  # a weight: bring the fp32 original back
                    original = source[: -len("_quantized")] if source.endswith("_quantized") else source
                    if original not in self.fp32_weights:
                        raise KeyError(f"cannot find the fp32 weight behind {source}")
                    node.input[index] = original
                    if original not in added and original not in initializers:
                        model.graph.initializer.append(self.fp32_weights[original])
                        added.add(original)
                else:
                    q = producers.get(source)
                    if q is not None and q.op_type == "QuantizeLinear":
                        node.input[index] = q.input[0]
        drop_unused(model)
        return model

    def save(self, nodes: set[str]) -> Path:
        self.count += 1
        path = self.work / f"variant-{self.count}.onnx"
        save_structure(self.build(nodes), path)
        return path

    def error(self, nodes: set[str], batch: np.ndarray, reference: np.ndarray, target: common.Target, shape: Any) -> tuple[float, Any]:
        path = self.save(nodes)
        try:
            # "basic": no QDQ fusion at session creation (much faster to load); same fake-quant numerics
            report = common.evaluate(run_graph(path, shape, batch, optimization="basic"), reference, target)
        finally:
            path.unlink(missing_ok=True)
        return target.error_of(report), report


def keep_qdq_on_compute_inputs_only(model: Any) -> int:
    """Point every non-Conv/MatMul/Gemm reader of a dequantized activation back at the fp32 tensor.

    ``quantize_static`` hands the dequantized tensor to *all* readers of a quantized activation
    (residual Adds, Shape...), which would put quantization noise on the fp32 residual stream; here only
    the int8 layers read it. Returns how many inputs were rewired.
    """
    producers = {o: n for n in model.graph.node for o in n.output}
    initializers = {t.name for t in model.graph.initializer}
    count = 0
    for node in model.graph.node:
        if node.op_type in COMPUTE_OPS or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for index, name in enumerate(node.input):
            dq = producers.get(name)
            if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] in initializers:
                continue
            q = producers.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[index] = q.input[0]
                count += 1
    drop_unused(model)
    return count


def int8_nodes(model: Any) -> set[str]:
    """Compute nodes whose data input comes through a DequantizeLinear (i.e. run in int8)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    return {n.name for n in model.graph.node if n.op_type in COMPUTE_OPS and getattr(producers.get(n.input[0]), "op_type", "") == "DequantizeLinear"}


def probe_batch(images: inputs.ImageSet, config: ExportConfig, shape: Any) -> np.ndarray:
    """The first calibration image at half the calibration size (at least 64): ranks groups 4x faster."""
    from ..image.preprocess import load_image, preprocess

    size = config.precision.probe_size or max(64, config.precision.calib_size // 2)
    if shape.is_static or not images.calib_paths:
        return images.calib[0]
    return preprocess(load_image(images.calib_paths[0]), processing_res=size)[0]


def export_int8(parent: Artifact, config: ExportConfig, quiet: bool = False) -> ExportResult:
    """Make the ``onnx-int8`` artifact from the verified fp32 ONNX artifact ``parent``."""
    require("onnx")
    require("onnxruntime")
    shape = parent.shape
    images = inputs.prepare(config, shape, require_calib=True)  # one-line errors before heavy work
    target = common.target_for("int8", config)
    steps = Steps(6, quiet=quiet)
    steps.say(f"int8 target: {target.describe()}")
    started = time.perf_counter()
    with staged_artifact(config.artifact_dir, config.force) as staging, work_folder(parent.folder, under=staging.parent) as work:
        with steps.step(f"calibrating on {len(images.calib)} images ({images.calib_source})"):
            ranges, ranges_path, calib_info = common.cached_ranges(parent, images, config, shape, work, steps, quiet, "compute-inputs")
        with steps.step(f"fp32 reference on {len(images.eval_names)} held-out images ({images.eval_source}) and the probe"):
            reference = common.reference_outputs(parent, images, config, steps)
            probe = probe_batch(images, config, shape)
            probe_reference = run_graph(parent.model_path, shape, probe)
        with steps.step("quantizing (Q/DQ, symmetric int8, per-channel weights)"):
            structure = load_structure(parent.folder)
            kept_rules = default_kept(structure)
            macs = runtime_macs(parent.model_path, structure, images.eval_batch[:1])
            base_path = quantize_base(work, ranges_path, sorted(kept_rules), structure)
            variants = Variants(work, base_path, structure)
            quantized = int8_nodes(variants.base)
            groups: dict[str, list[str]] = {}
            for name in sorted(quantized):
                groups.setdefault(group_of(name), []).append(name)
            total_macs = sum(macs.values()) or 1
            steps.say(f"    {len(quantized)} Conv/MatMul/Gemm in int8 in {len(groups)} groups; {len(kept_rules)} kept by rule; "
                      f"int8 share of MACs {sum(macs.get(n, 0) for n in quantized) / total_macs:.3f}")
        cache_key = {"ranges": str(ranges_path), "kept": sorted(kept_rules), "groups": groups, "probe": [images.calib_names[0], list(probe.shape)],
                     "metric": target.metric, "quantizer": QUANT_SETTINGS}
        sensitivity_cache = ranges_path.parent / f"sensitivity-{common.digest(cache_key)}.json"
        search = search_groups(variants, groups, macs, images, reference, probe, probe_reference, target, shape, steps, quiet, sensitivity_cache)
        returned: set[str] = {n for g in search["returned_groups"] for n in groups[g]}
        with steps.step("publishing (fp32 I/O, external data)"):
            final_path = variants.save(returned)
            materialize(final_path, staging)
        with steps.step("held-out parity of the published graph"):
            import onnx

            published = onnx.load(str(staging / "model.onnx"), load_external_data=False)
            in_int8 = int8_nodes(published)
            del published
            report = common.evaluate(run_graph(staging / "model.onnx", shape, images.eval_batch, optimization="basic"), reference, target)
            steps.say(f"    {report.summary()}  ({CPU_LABEL})")
            fused = common.evaluate(run_graph(staging / "model.onnx", shape, images.eval_batch), reference, target)
            steps.say(f"    for information, ONNX Runtime's fused int8 CPU kernels: {fused.summary()}")
        share = sum(macs.get(n, 0) for n in in_int8) / total_macs
        check_int8_left(len(in_int8), share)
        blocked = []
        if share < 0.5:
            blocked = [{"group": g, "sensitivity": search["sensitivity"].get(g), "macs": sum(macs.get(n, 0) for n in groups[g])}
                       for g in search["returned_groups"]]
            steps.say(f"    less than half of the MACs stay in int8 ({share:.3f}); blocked by: "
                      + ", ".join(f"{b['group']} (sensitivity {b['sensitivity']:.3g})" for b in blocked if b["sensitivity"] is not None))
        steps.say(f"    int8 share of multiply-accumulates: {share:.3f} ({len(in_int8)} nodes); total time {time.perf_counter() - started:.0f} s")
        manifest = common.base_manifest(parent, config, "int8")
        manifest["int8"] = {
            "quantizer": "onnxruntime.quantization.quantize_static (QDQ; symmetric int8; per-channel weights; per-tensor activations; "
                         "Q/DQ on Conv/MatMul/Gemm inputs only; fp32 bias)",
            "int8_mac_share": round(share, 4),
            "macs_per_image": {"total": total_macs, "int8": sum(macs.get(n, 0) for n in in_int8),
                               "at": list(images.eval_batch.shape[2:]), "counted_ops": list(COMPUTE_OPS),
                               "how": "shapes from ONNX Runtime's profiler on the first held-out image"},
            "int8_nodes": len(in_int8),
            "kept_by_rule": [{"node": n, "rule": r, "macs": macs.get(n, 0)} for n, r in sorted(kept_rules.items())],
            "returned_groups": [{"group": g, "sensitivity": search["sensitivity"].get(g), "macs": sum(macs.get(n, 0) for n in groups[g]),
                                 "nodes": groups[g]} for g in search["returned_groups"]],
            "sensitivities": search["sensitivity"],
            "sensitivity_probe": {"image": images.calib_names[0], "input_shape": list(probe.shape), "metric": target.metric, "base_error": search.get("probe_base_error")},
            "search": {k: v for k, v in search.items() if k not in ("sensitivity", "returned_groups")},
            "blocked_by": blocked,
            "ort_fused_cpu_parity": {**fused.to_json(), "note": "ONNX Runtime's fused int8 CPU kernels (all optimizations); informational: "
                                     "on AVX2 CPUs without VNNI its s8s8 kernels can saturate, so it may differ from the Q/DQ semantics"},
            "calibration": calib_info,
            "images": images.describe(),
            "target": target.to_json(),
            "seconds": round(time.perf_counter() - started, 1),
        }
        full = common.finish(staging, manifest, report, target, CPU_LABEL, images.eval_batch, reference)
    return ExportResult(folder=config.artifact_dir, manifest=full, parity=report)


def check_int8_left(int8_nodes: int, share: float) -> None:
    """A graph that meets its gates only with every multiply-accumulate back in fp32 is no int8 artifact."""
    if int8_nodes == 0 or share <= 0.0:
        raise ParityError("the int8 graph meets its gates only with no int8 multiply-accumulates left (int8 share 0)",
                          "nothing was published; use --engine onnx-fp16 for this checkpoint, or relax --accuracy-target knowingly")


class VariantSet(Protocol):
    """Graphs that differ from a quantized base in which nodes run in float (ONNX Q/DQ here, OpenVINO FakeQuantize too)."""

    def error(self, nodes: set[str], batch: np.ndarray, reference: np.ndarray, target: common.Target, shape: Any) -> tuple[float, Any]: ...


def search_groups(variants: VariantSet, groups: dict[str, list[str]], macs: dict[str, int], images: inputs.ImageSet, reference: np.ndarray,
            probe: np.ndarray, probe_reference: np.ndarray, target: common.Target, shape: Any, steps: Steps, quiet: bool,
            sensitivity_cache: Path | None = None) -> dict[str, Any]:
    """Return the fewest most-sensitive groups to fp32 that make the held-out images meet the target."""
    result: dict[str, Any] = {"sensitivity": {}, "returned_groups": [], "evaluations": []}
    start = time.perf_counter()
    with steps.step("accuracy-targeted search (held-out check, then per-group sensitivity if needed)"):
        error, report = variants.error(set(), images.eval_batch, reference, target, shape)
        steps.say(f"    all groups int8: held-out {report.summary()}")
        result["evaluations"].append({"returned": 0, "held_out_error": error, "passed": report.passed})
        if report.passed:
            result["seconds"] = round(time.perf_counter() - start, 1)
            return result
        every = {n for g in groups for n in groups[g]}
        error, report = variants.error(every, images.eval_batch, reference, target, shape)
        result["evaluations"].append({"returned": len(groups), "held_out_error": error, "passed": report.passed})
        steps.say(f"    every searchable group in fp32: held-out {report.summary()}")
        if not report.passed:
            from ..core.errors import ParityError

            raise ParityError(f"int8 graph cannot meet {target.describe()} even with every searchable group in fp32 "
                              f"(best: {report.summary()})",
                              "the layers kept by rule are not enough either; relax --accuracy-target knowingly or use onnx-fp16")
        names = sorted(groups)
        cache = sensitivity_cache
        if cache is not None and cache.is_file():
            stored = json.loads(cache.read_text())
            result["sensitivity"], result["probe_base_error"] = stored["sensitivity"], stored["probe_base_error"]
            result["sensitivity_cache"] = {"path": str(cache), "reused": True}
            steps.say(f"    sensitivities from cache: {cache}")
        else:
            base_probe, _ = variants.error(set(), probe, probe_reference, target, shape)
            result["probe_base_error"] = base_probe
            for name in bar(names, desc="sensitivity", disable=quiet):
                err, _ = variants.error(set(groups[name]), probe, probe_reference, target, shape)
                result["sensitivity"][name] = round(base_probe - err, 6) if np.isfinite(err) and np.isfinite(base_probe) else (float("inf") if np.isfinite(err) else 0.0)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(cache, {"sensitivity": result["sensitivity"], "probe_base_error": base_probe})
                result["sensitivity_cache"] = {"path": str(cache), "reused": False}
        order = sorted(names, key=lambda g: (-result["sensitivity"][g], sum(macs.get(n, 0) for n in groups[g])))
        top = ", ".join(f"{g} {result['sensitivity'][g]:.3g}" for g in order[:8])
        steps.say(f"    sensitivity (probe error drop when the group is fp32), most sensitive first: {top}")

        def held_out(k: int) -> bool:
            nodes = {n for g in order[:k] for n in groups[g]}
            err, rep = variants.error(nodes, images.eval_batch, reference, target, shape)
            result["evaluations"].append({"returned": k, "held_out_error": err, "passed": rep.passed})
            steps.say(f"    {k} most sensitive group(s) in fp32: held-out {rep.summary()}")
            return bool(rep.passed)

        low, high = 0, len(order)  # invariant: returning `low` groups fails, returning `high` passes
        while high - low > 1:
            mid = (low + high) // 2
            if held_out(mid):
                high = mid
            else:
                low = mid
        result["returned_groups"] = order[:high]
        result["seconds"] = round(time.perf_counter() - start, 1)
    return result


__all__ = ["export_int8", "default_kept", "int8_nodes", "probe_batch", "search_groups", "Variants", "CPU_LABEL"]
