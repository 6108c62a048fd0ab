"""[torch, onnx] Fused Lotus-D module -> one cleaned ONNX graph with external data, checked and proven.

Stages: load checkpoint -> float64 oracle output on the parity batch -> trace with the TorchScript
exporter -> (free the module) clean with onnxslim (constant folding, dead nodes) -> save with external
data -> onnx.checker on the saved path -> ONNX Runtime vs the float64 oracle -> manifest. Everything is written to a staging folder and published only when
parity passes, so a failed export leaves the previous artifact untouched.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifacts import ONNX_DATA, ONNX_FILE, Artifact, record_parity, staged_artifact, tool_versions, write_manifest
from ..core.config import EngineKind, ExportConfig
from ..core.contract import INPUT_NAME, GraphShape, contract_json, dynamic_axes, output_name
from ..core.errors import ConfigError
from ..core.memory import release_memory
from ..core.parity import ParityReport, compare, judge
from ..core.polygraphy_files import save_parity_files
from ..core.progress import Steps
from ..core.results import ExportResult
from ..onnxrt import run_graph
from .common import TRACE_SIZE, LiftedWeights, clean, save_streaming, trace
from .oracle import oracle_output

EXPORT_TOOLS = ("torch", "diffusers", "transformers", "onnx", "onnxslim", "onnxruntime")


def graph_shape(config: ExportConfig) -> GraphShape:
    return GraphShape(batch=config.batch, height=config.height, width=config.width)


def export_onnx(config: ExportConfig, quiet: bool = False) -> ExportResult:
    """Export ``config.model`` as an fp32 ONNX artifact in ``config.artifact_dir``.

    Ordered so that at most one full copy of the weights is alive beside the one being written: the
    float64 reference is computed first (one module at a time in float64), the PyTorch module is freed
    once traced, the raw graph once cleaned, and the ONNX Runtime parity session opens last, alone.
    """
    if config.engine is not EngineKind.ONNX:
        raise ConfigError(f"export_onnx makes fp32 ONNX, not {config.engine.value}", "use lotus_deploy.pipeline.run_export")

    from ..model.checkpoint import load_checkpoint, weights_hash
    from ..model.fused import build_module

    steps = Steps((7 if config.export.parity else 5) + int(config.export.split), quiet=quiet)
    shape = graph_shape(config)
    with staged_artifact(config.artifact_dir, config.force) as staging:
        with steps.step(f"loading {config.model}"):
            checkpoint = load_checkpoint(config.model, config.task.value)
            source = {
                "model": config.model,
                "weights_sha256": weights_hash(checkpoint.folder),
                "config_sha256": checkpoint.config_hash,
                "licence": checkpoint.licence,
                "prompt_tokens": checkpoint.notes.get("prompt_tokens"),
                **{key: checkpoint.notes[key] for key in ("processing_res", "training") if checkpoint.notes.get(key)},
            }
        evidence = None
        if config.export.parity:
            with steps.step("float64 reference: the oracle (diffusers components, upstream order), one module at a time"):
                evidence = _reference(checkpoint, config, shape, steps)
        module = build_module(checkpoint, config.task)
        with tempfile.TemporaryDirectory(dir=staging) as scratch:
            raw = Path(scratch) / "raw.onnx"
            with steps.step(f"tracing to ONNX (opset {config.export.opset}, {'static' if shape.is_static else 'dynamic'} H/W)"):
                _trace(module, raw, config, shape)
            split = None
            if config.export.split:  # the three stages as separate graphs in split/, for benchmarks (split_export.py)
                from .split import export_split

                with steps.step("writing VAE encoder, UNet and VAE decoder graphs to split/"):
                    split = export_split(module, staging, config, shape)
            del module, checkpoint  # the PyTorch weights are not needed from here on
            release_memory()
            with steps.step("cleaning the graph with onnxslim (structure only: weights lifted out)"):
                model, counts, weights = clean(raw)
                release_memory()
                steps.say(f"    nodes: {counts['before']} before, {counts['after']} after cleaning")
            with steps.step("saving with external data (streamed, one weight at a time) and running onnx.checker"):
                _save_checked(model, weights, staging, config, shape)
                del model, weights
                release_memory()  # onnxslim's graphs hold reference cycles: free them before the parity session
        manifest = {
            "kind": "onnx",
            "engine": config.engine.value,
            "task": config.task.value,
            "output_meaning": config.meaning.value,
            "precision": "fp32",
            "shape": shape.to_json(),
            "contract": contract_json(config.task, shape),
            "opset": config.export.opset,
            "source": source,
            "parent": None,
            "export": {
                "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
                "cleaner": counts.pop("cleaner"),
                "nodes": counts,
                "groupnorm": config.export.groupnorm,
            },
            "tools": tool_versions(*EXPORT_TOOLS),
        }
        if split is not None:
            manifest["split"] = split
        report = None
        if evidence is not None:
            with steps.step("parity: ONNX Runtime vs the float64 oracle"):
                report = _parity(Artifact(staging, manifest), config, shape, evidence, steps)
            record_parity(staging, manifest, report.to_json(), bool(report.passed), f"ONNX graph fails parity: {report.summary()}",
                          "nothing was written; report this with the model id (or relax --atol knowingly)")
        with steps.step("writing manifest (hashing files)"):
            full = write_manifest(staging, manifest)
    return ExportResult(folder=config.artifact_dir, manifest=full, parity=report)


def _trace(module: Any, path: Path, config: ExportConfig, shape: GraphShape) -> None:
    import torch

    dummy = torch.zeros(shape.batch or 1, 3, shape.height or TRACE_SIZE, shape.width or TRACE_SIZE)
    axes = dynamic_axes(config.task)
    if shape.batch is not None:
        for per_tensor in axes.values():
            per_tensor.pop(0)
    if shape.is_static:
        for per_tensor in axes.values():
            per_tensor.pop(2)
            per_tensor.pop(3)
    trace(module, dummy, path, config.export.opset, INPUT_NAME, output_name(config.task), {k: v for k, v in axes.items() if v},
          config.export.groupnorm, numerics_owner=module)


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


def _save_checked(model: Any, weights: LiftedWeights, folder: Path, config: ExportConfig, shape: GraphShape) -> None:
    import onnx

    _declare_io_shapes(model, config, shape)
    del model.metadata_props[:]
    for key, value in {"lotus.task": config.task.value, "lotus.output_meaning": config.meaning.value, "lotus.source": config.model}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    path = folder / ONNX_FILE
    save_streaming(model, weights, path, ONNX_DATA)
    loaded = onnx.load(str(path), load_external_data=False)
    inputs = [i.name for i in loaded.graph.input]
    outputs = [o.name for o in loaded.graph.output]
    if inputs != [INPUT_NAME] or outputs != [output_name(config.task)]:
        raise ConfigError(f"exported graph has inputs {inputs} and outputs {outputs}", "this is a bug in lotus-deploy; please report it")


def _reference(checkpoint: Any, config: ExportConfig, shape: GraphShape, steps: Steps) -> tuple[np.ndarray, np.ndarray]:
    """The parity batch and the independent float64 oracle's output on it (not the traced module)."""
    from .parity_inputs import default_image_dir, parity_batch

    image_dir = config.export.parity_images or default_image_dir()
    batch, names = parity_batch(shape, count=2, processing_res=config.export.parity_size, image_dir=image_dir)
    steps.say(f"    inputs: {', '.join(names)} as one batch {list(batch.shape)} ({'photos from ' + str(image_dir) if image_dir else 'synthetic images'})")
    return batch, oracle_output(checkpoint, config.task, batch)


def _parity(artifact: Artifact, config: ExportConfig, shape: GraphShape, evidence: tuple[np.ndarray, np.ndarray], steps: Steps) -> ParityReport:
    """The staged graph in ONNX Runtime (a lean session: no pre-packed weight copies) vs the oracle's output."""
    batch, reference = evidence
    candidate = run_graph(artifact.model_path, shape, batch, lean=True)
    report = judge(compare(candidate, reference, config.task), max_abs=config.export.atol)
    save_parity_files(artifact.folder, batch, reference, config.task.value, "float64-oracle")  # for polygraphy run --load-outputs
    steps.say(f"    {report.summary()}  (tolerance max|Δ| ≤ {config.export.atol:g} vs the float64 oracle)")
    return report
