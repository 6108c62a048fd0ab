"""[torch, onnx] Fused Lotus-D module -> one cleaned ONNX graph with external data, checked and proven.

Stages: load checkpoint -> trace with the TorchScript exporter -> clean with onnxslim (constant
folding, dead nodes) -> save with external data -> onnx.checker on the saved path -> ONNX Runtime vs
float64 PyTorch parity -> manifest. Everything is written to a staging folder and published only when
parity passes, so a failed export leaves the previous artifact untouched.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import ONNX_DATA, ONNX_FILE, Artifact, record_parity, staged_artifact, tool_versions, write_manifest
from .config import EngineKind, ExportConfig
from .contract import INPUT_NAME, GraphShape, contract_json, dynamic_axes, output_name
from .errors import ConfigError
from .parity import ParityReport, compare, judge
from .progress import Steps

EXPORT_TOOLS = ("torch", "diffusers", "transformers", "onnx", "onnxslim", "onnxruntime")
_TRACE_SIZE = 64
_PROTOBUF_LIMIT = 2**31 - 1  # protobuf refuses to serialise a message this large
_PROTOBUF_MARGIN = 64 << 20  # room for the graph itself beside the weights


@dataclass
class ExportResult:
    folder: Path
    manifest: dict[str, Any]
    parity: ParityReport | None


def graph_shape(config: ExportConfig) -> GraphShape:
    return GraphShape(batch=config.batch, height=config.height, width=config.width)


def export_onnx(config: ExportConfig, quiet: bool = False) -> ExportResult:
    """Export ``config.model`` as an fp32 ONNX artifact in ``config.artifact_dir``."""
    if config.engine is not EngineKind.ONNX:
        raise ConfigError(f"export_onnx makes fp32 ONNX, not {config.engine.value}", "use lotus_deploy.pipeline.run_export")

    from .model import build_module, load_checkpoint, weights_hash

    steps = Steps((6 if config.parity else 5) + int(config.split), quiet=quiet)
    shape = graph_shape(config)
    with staged_artifact(config.artifact_dir, config.force) as staging:
        with steps.step(f"loading {config.model}"):
            checkpoint = load_checkpoint(config.model)
            module = build_module(checkpoint, config.task)
            source = {
                "model": config.model,
                "weights_sha256": weights_hash(checkpoint.folder),
                "config_sha256": checkpoint.config_hash,
                "licence": checkpoint.licence,
                "prompt_tokens": checkpoint.notes.get("prompt_tokens"),
            }
        with tempfile.TemporaryDirectory(dir=staging) as scratch:
            raw = Path(scratch) / "raw.onnx"
            with steps.step(f"tracing to ONNX (opset {config.opset}, {'static' if shape.is_static else 'dynamic'} H/W)"):
                _trace(module, raw, config, shape)
            with steps.step("cleaning the graph with onnxslim"):
                model, counts = _clean(raw)
                steps.say(f"    nodes: {counts['before']} before, {counts['after']} after cleaning")
            with steps.step("saving with external data and running onnx.checker"):
                _save_checked(model, staging, config, shape)
                del model
        split = None
        if config.split:  # the three stages as separate graphs in split/, for benchmarks (split_export.py)
            from .split_export import export_split

            with steps.step("writing VAE encoder, UNet and VAE decoder graphs to split/"):
                split = export_split(module, staging, config, shape)
        manifest = {
            "kind": "onnx",
            "engine": config.engine.value,
            "task": config.task.value,
            "output_meaning": config.meaning.value,
            "precision": "fp32",
            "shape": shape.to_json(),
            "contract": contract_json(config.task, shape),
            "opset": config.opset,
            "source": source,
            "parent": None,
            "export": {
                "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
                "cleaner": counts.pop("cleaner"),
                "nodes": counts,
                "groupnorm": config.groupnorm,
            },
            "tools": tool_versions(*EXPORT_TOOLS),
        }
        if split is not None:
            manifest["split"] = split
        report = None
        if config.parity:
            with steps.step("parity: ONNX Runtime vs PyTorch float64"):
                report = _parity(module, Artifact(staging, manifest), config, shape, steps)
            record_parity(staging, manifest, report.to_json(), bool(report.passed), f"ONNX graph fails parity: {report.summary()}",
                          "nothing was written; report this with the model id (or relax --atol knowingly)")
        with steps.step("writing manifest (hashing files)"):
            full = write_manifest(staging, manifest)
    return ExportResult(folder=config.artifact_dir, manifest=full, parity=report)


def _trace(module: Any, path: Path, config: ExportConfig, shape: GraphShape) -> None:
    import torch

    dummy = torch.zeros(shape.batch or 1, 3, shape.height or _TRACE_SIZE, shape.width or _TRACE_SIZE)
    axes = dynamic_axes(config.task)
    if shape.batch is not None:
        for per_tensor in axes.values():
            per_tensor.pop(0)
    if shape.is_static:
        for per_tensor in axes.values():
            per_tensor.pop(2)
            per_tensor.pop(3)
    from .numerics import export_numerics

    with torch.no_grad(), warnings.catch_warnings(), export_numerics(module, config.groupnorm):
        warnings.simplefilter("ignore")  # TracerWarnings about Python-side asserts are expected here
        torch.onnx.export(
            module,
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=config.opset,
            input_names=[INPUT_NAME],
            output_names=[output_name(config.task)],
            dynamic_axes={k: v for k, v in axes.items() if v} or None,
            do_constant_folding=True,
        )


def _clean(raw: Path) -> tuple[Any, dict[str, Any]]:
    """Constant folding and dead-node removal with onnxslim; node counts before and after.

    onnxslim's own shape inference serialises the whole model, which protobuf refuses beyond 2 GB
    (the full-size fp32 graph is ~3.8 GB). For such graphs shapes are inferred by onnx on the file
    (``infer_shapes_path`` has no size limit) and onnxslim runs without its shape inference; its
    constant folding handles large models itself. On builtin:tiny the two paths leave 1886 and 1911
    nodes of 3981.
    """
    import onnx
    import onnxslim

    model = onnx.load(str(raw), load_external_data=True)
    before = len(model.graph.node)
    # ModelProto.ByteSize() itself raises beyond 2 GB; the weights are what make a graph large.
    weight_bytes = sum(tensor.ByteSize() for tensor in model.graph.initializer)
    if weight_bytes < _PROTOBUF_LIMIT - _PROTOBUF_MARGIN:
        slimmed = onnxslim.slim(model)
        how = "onnxslim"
    else:
        del model
        inferred = raw.with_name("inferred.onnx")
        onnx.shape_inference.infer_shapes_path(str(raw), str(inferred))
        slimmed = onnxslim.slim(onnx.load(str(inferred), load_external_data=True), no_shape_infer=True)
        how = "onnx.shape_inference.infer_shapes_path + onnxslim (no_shape_infer: graph over 2 GB)"
    if slimmed is None:
        raise ConfigError("onnxslim returned no model", "this is a bug; export with a smaller model to reproduce and report it")
    return slimmed, {"before": before, "after": len(slimmed.graph.node), "cleaner": how}


def _declare_io_shapes(model: Any, config: ExportConfig, shape: GraphShape) -> None:
    """Write the contract's dims on the graph's input and output (names for dynamic axes, sizes for
    static ones), so tools that read the graph (TensorRT, lotus-inspect) see [N,C,H,W] and not the
    placeholder names shape inference left behind."""
    for value_info, dims in ((model.graph.input[0], shape.input_shape()), (model.graph.output[0], shape.output_shape(config.task))):
        tensor_shape = value_info.type.tensor_type.shape
        del tensor_shape.dim[:]
        for dim in dims:
            entry = tensor_shape.dim.add()
            if isinstance(dim, int):
                entry.dim_value = dim
            else:
                entry.dim_param = dim


def _save_checked(model: Any, folder: Path, config: ExportConfig, shape: GraphShape) -> None:
    import onnx

    _declare_io_shapes(model, config, shape)
    del model.metadata_props[:]
    for key, value in {"lotus.task": config.task.value, "lotus.output_meaning": config.meaning.value, "lotus.source": config.model}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    path = folder / ONNX_FILE
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=ONNX_DATA, size_threshold=1024)
    onnx.checker.check_model(str(path))
    loaded = onnx.load(str(path), load_external_data=False)
    inputs = [i.name for i in loaded.graph.input]
    outputs = [o.name for o in loaded.graph.output]
    if inputs != [INPUT_NAME] or outputs != [output_name(config.task)]:
        raise ConfigError(f"exported graph has inputs {inputs} and outputs {outputs}", "this is a bug in lotus-deploy; please report it")


def _parity(module: Any, artifact: Artifact, config: ExportConfig, shape: GraphShape, steps: Steps) -> ParityReport:
    from .parity_inputs import default_image_dir, parity_batch
    from .runtime.ort_backend import OnnxRuntimeBackend

    image_dir = config.parity_images or default_image_dir()
    batch, names = parity_batch(shape, count=2, processing_res=config.parity_size, image_dir=image_dir)
    steps.say(f"    inputs: {', '.join(names)} as one batch {list(batch.shape)} ({'photos from ' + str(image_dir) if image_dir else 'synthetic images'})")
    backend = OnnxRuntimeBackend(artifact)
    try:
        candidate = backend.run(batch)
    finally:
        backend.close()
    reference = reference_output(module, batch)
    report = judge(compare(candidate, reference, config.task), max_abs=config.atol)
    steps.say(f"    {report.summary()}  (tolerance max|Δ| ≤ {config.atol:g} vs float64 PyTorch)")
    return report


def reference_output(module: Any, batch: np.ndarray) -> np.ndarray:
    """Float64 PyTorch output for ``batch`` (the module is restored to float32 afterwards)."""
    import torch

    module.double()
    try:
        with torch.no_grad():
            out: np.ndarray = module(torch.from_numpy(batch).double()).numpy()
    finally:
        module.float()
    return out
