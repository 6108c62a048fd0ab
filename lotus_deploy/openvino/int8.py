"""[openvino, nncf, onnxruntime] ``--engine openvino-int8``: OpenVINO's own quantizer, on the same
calibration images and judged by the same held-out gates as ``onnx-int8``.

NNCF post-training quantization (``nncf.quantize``: MinMax statistics on the calibration images,
symmetric int8 weights per channel, no bias correction) places FakeQuantize on the inputs of
convolutions and matmuls only (every other op is in NNCF's ignored scope, as ``onnx-int8`` quantizes
Conv/MatMul/Gemm inputs only), and the layers ``onnx-int8`` keeps in float by rule stay float here too.

Accuracy: NNCF's own accuracy-controlled quantization (``quantize_with_accuracy_control``) can
express our gates (its metric can be minus the worst error-to-limit ratio), but it ranks every
quantizer one at a time: on builtin:tiny 619 of them, some 30 minutes on two cores before the first
layer is returned. So the search is ours, shared with ``onnx-int8`` (``precision.int8.search_groups``):
per-group sensitivity on a probe image, then the fewest most-sensitive groups returned to float by
bisection on the held-out images. A group returns to float by bypassing its activation FakeQuantize
nodes and reading its weights from the float model again; nothing is re-calibrated. Acceptance is decided on the held-out images with f32
inference outside the int8 layers; a model with no int8 multiply-accumulates left is refused. The
report gives the share of MACs OpenVINO actually ran in int8 (``openvino.macs``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from typing import Any

import numpy as np

from ..core.artifacts import IR_FILE, Artifact, record_parity, staged_artifact, write_manifest
from ..core.config import ExportConfig
from ..core.cpu import cpu_identity
from ..core.deps import require
from ..core.errors import ParityError
from ..core.memory import release_memory
from ..core.parity import compare
from ..core.progress import Steps
from ..core.results import ExportResult
from ..onnxrt import run_graph
from ..precision import common, inputs
from ..precision.graph import group_of, load_structure
from ..precision.int8 import default_kept, probe_batch, search_groups
from .convert import check_contract, ir_manifest, warn_if_bf16_missed
from .device import compile_config, make_core, ov_module
from .macs import MAC_OPS, int8_mac_share, macs_by_op
from .parity import PARITY_DEVICE, bf16_check, describe_bf16, run_compiled

PASSTHROUGH = ("Convert", "Reshape", "Transpose", "Squeeze", "Unsqueeze")  # between a FakeQuantize and the op it feeds


def fake_quantize_consumers(model: Any) -> dict[str, set[str]]:
    """Friendly name of each FakeQuantize -> the convolutions/matmuls it feeds (through reshapes and converts)."""
    found: dict[str, set[str]] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() != "FakeQuantize":
            continue
        consumers: set[str] = set()
        pending = [t.get_node() for t in op.output(0).get_target_inputs()]
        while pending:
            node = pending.pop()
            if node.get_type_name() in MAC_OPS:
                consumers.add(node.get_friendly_name())
            elif node.get_type_name() in PASSTHROUGH:
                pending.extend(t.get_node() for t in node.output(0).get_target_inputs())
        found[op.get_friendly_name()] = consumers
    return found


class FakeQuantizeVariants:
    """The quantized model with some convolutions/matmuls back in float: their activation FakeQuantize
    bypassed and their weight (which NNCF stores as int8 constant -> Convert -> scale) read again from
    the float model's own constant, shared, not copied."""

    def __init__(self, core: Any, quantized: Any, float_model: Any) -> None:
        self.core = core
        self.quantized = quantized
        self.consumers = fake_quantize_consumers(quantized)
        self.float_weights = {op.get_friendly_name(): op.input_value(1) for op in float_model.get_ordered_ops()
                              if op.get_type_name() in MAC_OPS and op.input_value(1).get_node().get_type_name() == "Constant"}

    def int8_ops(self) -> set[str]:
        return {name for names in self.consumers.values() for name in names}

    def build(self, nodes: set[str]) -> Any:
        model = self.quantized.clone()
        for op in model.get_ordered_ops():
            name = op.get_friendly_name()
            if op.get_type_name() == "FakeQuantize" and self.consumers.get(name, set()) & nodes:
                for target in list(op.output(0).get_target_inputs()):
                    target.replace_source_output(op.input_value(0))
            elif name in nodes and name in self.float_weights and op.input_value(1).get_node().get_type_name() != "Constant":
                op.input(1).replace_source_output(self.float_weights[name])
        return model

    def error(self, nodes: set[str], batch: np.ndarray, reference: np.ndarray, target: common.Target, shape: Any) -> tuple[float, Any]:
        compiled = self.core.compile_model(self.build(nodes), PARITY_DEVICE, compile_config(self.core, PARITY_DEVICE, "f32"))
        report = target.judge(compare(run_compiled(compiled, shape, batch), reference, target.task))
        return target.error_of(report), report


def _reads_constant(op: Any, index: int) -> bool:
    node = op.input_value(index).get_node()
    while node.get_type_name() in PASSTHROUGH:
        node = node.input_value(0).get_node()
    return bool(node.get_type_name() == "Constant")


def kept_by_rule(model: Any, structure: Any) -> dict[str, str]:
    """The convolutions/matmuls ``onnx-int8`` keeps in float by rule (``precision.int8.default_kept``), by
    OpenVINO name: a biased Conv ``X`` becomes ``X/WithoutBiases`` (or ``<its output>/WithoutBiases``) plus an
    Add, and a matmul of two activations (the attention core) is recognised by its inputs."""
    rules = default_kept(structure)
    by_output = {out: node.name for node in structure.graph.node for out in node.output}
    kept: dict[str, str] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() not in MAC_OPS:
            continue
        name = op.get_friendly_name()
        base = name.removesuffix("/WithoutBiases")
        onnx_name = base if base in rules else by_output.get(base, base)
        if onnx_name in rules:
            kept[name] = rules[onnx_name]
        elif op.get_type_name() == "MatMul" and not (_reads_constant(op, 0) or _reads_constant(op, 1)):
            kept[name] = "attention core (activation x activation, around softmax)"
    return kept


X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686"})
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


def overflow_fix(cpu: dict[str, Any]) -> str:
    """NNCF's overflow fix for the CPU that exports (and checks) the IR: ``enable`` on an x86 CPU without
    VNNI, else ``default`` (NNCF's own choice, as before). Without VNNI, int8 convolutions multiply u8 by s8 in pairs
    summed in int16 (VPMADDUBSW), which saturates unless weights keep to 7 bits: measured on a 2-core AVX2
    EPYC, builtin:tiny's int8 IR missed the gates with any layer in int8 without the fix, and met them with
    12 % of its MACs in int8 with it."""
    x86 = str(cpu.get("machine", "")).lower() in X86_MACHINES
    return "enable" if x86 and not VNNI_FLAGS & set(cpu.get("simd", [])) else "default"


def quantize(model: Any, calib: list[np.ndarray], kept: list[str], quiet: bool, overflow: str) -> Any:
    """NNCF PTQ with FakeQuantize on convolution/matmul inputs only, ``kept`` ops left in float. Bias
    correction is off, so bypassing a FakeQuantize gives back exactly the float layer (the search relies on it).
    ``overflow``: NNCF's overflow fix (``overflow_fix`` says which this CPU needs)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    nncf.set_log_level(logging.ERROR if quiet else logging.WARNING)  # INFO lists every ignored node
    others = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() not in MAC_OPS]
    # NNCF draws its progress bars on stdout, where lotus-export prints its JSON summary: send them to stderr
    with contextlib.redirect_stdout(io.StringIO() if quiet else sys.stderr):
        return nncf.quantize(model, nncf.Dataset(calib), preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(calib),
                             ignored_scope=nncf.IgnoredScope(names=[*kept, *others], validate=False),
                             advanced_parameters=AdvancedQuantizationParameters(disable_bias_correction=True,
                                                                                 overflow_fix=OverflowFix.ENABLE if overflow == "enable" else None))


def export_openvino_int8(parent: Artifact, config: ExportConfig, quiet: bool = False) -> ExportResult:
    """Make the ``openvino-int8`` artifact from the verified fp32 ONNX artifact ``parent``."""
    ov = ov_module()
    require("nncf")
    shape = parent.shape
    images = inputs.prepare(config, shape, require_calib=True)  # one-line errors before heavy work
    target = common.target_for("int8", config)
    steps = Steps(6, quiet=quiet)
    steps.say(f"int8 target: {target.describe()}")
    started = time.perf_counter()
    with staged_artifact(config.artifact_dir, config.force) as staging:
        with steps.step(f"fp32 reference on {len(images.eval_names)} held-out images ({images.eval_source}) and the probe"):
            reference = common.reference_outputs(parent, images, config, steps)
            probe = probe_batch(images, config, shape)
            probe_reference = run_graph(parent.model_path, shape, probe)
        with steps.step(f"NNCF post-training quantization on {len(images.calib)} calibration images"):
            model = ov.convert_model(str(parent.model_path))
            check_contract(model, parent.task, str(parent.model_path))
            kept_rules = kept_by_rule(model, load_structure(parent.folder))
            fix = overflow_fix(cpu_identity())
            if fix == "enable":
                steps.say("    this CPU has no VNNI: NNCF's overflow fix keeps int8 weights to 7 bits, as its int8 convolutions need")
            quantized = quantize(model, images.calib, sorted(kept_rules), quiet, fix)
            core = make_core()
            variants = FakeQuantizeVariants(core, quantized, model)  # shares the float weights a returned layer needs
            macs = macs_by_op(quantized, tuple(images.eval_batch[:1].shape))
            groups: dict[str, list[str]] = {}
            for name in sorted(variants.int8_ops()):
                groups.setdefault(group_of(name), []).append(name)
            total = sum(macs.values()) or 1
            steps.say(f"    {len(variants.int8_ops())} convolutions/matmuls quantized in {len(groups)} groups; "
                      f"{len(kept_rules)} kept by rule; int8 share of MACs {sum(macs.get(n, 0) for n in variants.int8_ops()) / total:.3f}")
        search = search_groups(variants, groups, macs, images, reference, probe, probe_reference, target, shape, steps, quiet)
        returned = {n for g in search["returned_groups"] for n in groups[g]}
        with steps.step("saving the IR"):
            ov.save_model(variants.build(returned), str(staging / IR_FILE), compress_to_fp16=False)
            del variants, quantized, model
            release_memory()
        with steps.step("held-out parity of the saved IR: OpenVINO CPU (f32 outside the int8 layers) vs the fp32 graph"):
            compiled = core.compile_model(str(staging / IR_FILE), PARITY_DEVICE, compile_config(core, PARITY_DEVICE, "f32"))
            report = common.evaluate(run_compiled(compiled, shape, images.eval_batch), reference, target)
            counted = int8_mac_share(core.read_model(str(staging / IR_FILE)), compiled, tuple(images.eval_batch[:1].shape))
            del compiled
            steps.say(f"    {report.summary()}; {counted['share']:.1%} of the MACs ran in int8 ({counted['int8_ops']} of {counted['ops']} convolutions/matmuls)")
            if counted["int8"] == 0:
                raise ParityError("the int8 IR meets its gates only with no int8 multiply-accumulates left (int8 share 0)",
                                  "nothing was published; use --engine openvino (f32), or relax the target knowingly with --accuracy-target")
            bf16 = bf16_check(core, staging / IR_FILE, shape, images.eval_batch, reference, parent.task, dict(target.gates))
            steps.say(f"    {describe_bf16(bf16)} (int8 gates)")
        with steps.step("writing the manifest"):
            manifest = ir_manifest(parent, config, "int8", "int8 (quantized layers) and fp32")
            manifest["int8"] = {
                "quantizer": "nncf.quantize (performance preset: symmetric int8; FakeQuantize on convolution/matmul inputs only; no bias correction)",
                "overflow_fix": fix,  # "enable" (7-bit weights) where the exporting CPU has no VNNI
                "int8_mac_share": counted["share"],
                "macs_per_image": {"total": counted["total"], "int8": counted["int8"], "at": counted["at"],
                                   "how": "Convolution/GroupConvolution/MatMul shapes; int8 = runtimePrecision I8/U8 in the compiled CPU model"},
                "int8_ops": counted["int8_ops"], "mac_ops": counted["ops"],
                "kept_by_rule": [{"node": n, "rule": r} for n, r in sorted(kept_rules.items())],
                "returned_groups": [{"group": g, "sensitivity": search["sensitivity"].get(g), "macs": sum(macs.get(n, 0) for n in groups[g]),
                                     "nodes": groups[g]} for g in search["returned_groups"]],
                "sensitivities": search["sensitivity"],
                "sensitivity_probe": {"image": images.calib_names[0], "input_shape": list(probe.shape), "base_error": search.get("probe_base_error")},
                "search": {k: v for k, v in search.items() if k not in ("sensitivity", "returned_groups")},
                "images": images.describe(), "target": target.to_json(), "seconds": round(time.perf_counter() - started, 1),
            }
            parity = {**report.to_json(), "reference": "fp32 ONNX graph, ONNX Runtime CPU", "device": PARITY_DEVICE, "precision_used": "f32",
                      "label": "int8 (OpenVINO CPU; f32 outside the int8 layers)", "target": target.to_json(), "bf16": bf16}
            record_parity(staging, manifest, parity, bool(report.passed), f"int8 IR misses its accuracy target: {report.summary()}",
                          f"nothing was published; target was {target.describe()}; relax it knowingly with --accuracy-target")
            full = write_manifest(staging, manifest)
    warn_if_bf16_missed(parity)
    return ExportResult(folder=config.artifact_dir, manifest=full, parity=report)
