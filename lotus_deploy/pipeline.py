"""Stage orchestration: an ``--engine`` request becomes a chain of artifact -> artifact stages.

``onnx`` is exported from the checkpoint; ``onnx-fp16``/``onnx-int8`` are made from the fp32 ONNX
artifact; ``trt-*`` engines are built from the ONNX artifact of the same precision (precision lives in
the graph: TensorRT 11 builds only strongly typed networks). A missing parent is built first; an
existing one is reused when its manifest shows the same source and settings.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from .core.artifacts import ONNX_DATA, Artifact, check_artifact_output, holds_artifact, open_artifact
from .core.config import EngineKind, ExportConfig, ExportSettings, Precision
from .core.deps import require_all
from .core.errors import ConfigError, OutputPathError
from .core.memory import check_memory, gib
from .core.polygraphy_files import ParityFiles
from .core.profile import EngineProfile
from .core.results import ExportResult
from .core.safe_io import publish_lock
from .export.fused import export_onnx


def parent_config(config: ExportConfig) -> ExportConfig:
    """Settings of the artifact ``config`` is made from (always in the default engines/ folder)."""
    if config.engine.is_tensorrt:
        # The engine's optimization profile fixes its shapes; the parent graph stays dynamic so one
        # ONNX artifact serves every engine size (and can be copied to a Jetson to build there).
        return replace(config, engine=config.engine.onnx_parent, output=None, force=False, height=None, width=None, batch=None)
    return replace(config, engine=EngineKind.ONNX, output=None, force=False)


def _settings_match(artifact: Artifact, config: ExportConfig) -> list[str]:
    """The settings in which an existing artifact differs from what ``config`` asks for."""
    m = artifact.manifest
    wanted = {
        "source model": (m.get("source", {}).get("model"), config.model),
        "task": (m.get("task"), config.task.value),
        "output meaning": (m.get("output_meaning"), config.meaning.value),
        "engine": (m.get("engine"), config.engine.value),
        "opset": (m.get("opset"), config.export.opset),
        "shape": (m.get("shape"), {"batch": config.batch, "height": config.height, "width": config.width}),
    }
    if config.engine is EngineKind.ONNX:  # how the fp32 graph was traced (numerics.py) and whether split/ exists
        wanted["groupnorm"] = (m.get("export", {}).get("groupnorm"), config.export.groupnorm)
        if config.export.split:
            wanted["split graphs"] = ("split" in m, True)
    if config.engine is EngineKind.OPENVINO:
        wanted["weights compressed to fp16"] = (m.get("openvino", {}).get("compress_to_fp16"), config.openvino.compress_to_fp16)
    return [f"{key} {have!r} (wanted {want!r})" for key, (have, want) in wanted.items() if have != want]


def ensure_artifact(config: ExportConfig, quiet: bool = False, rebuild_mismatched: bool = False) -> Artifact:
    """Open the artifact ``config`` describes if it exists with the same settings; else build it."""
    folder = config.artifact_dir
    if holds_artifact(folder):
        existing = open_artifact(folder)
        differences = _settings_match(existing, config)
        if not differences:
            if not quiet:
                print(f"reusing {folder} (same source and settings)")
            return existing
        if not rebuild_mismatched:
            raise ConfigError(f"{folder} holds an artifact made with other settings: {'; '.join(differences)}", "pass --force to rebuild it, or move it away")
        config = replace(config, force=True)
    result = run_export(config, quiet=quiet)
    return open_artifact(result.folder, check_hashes=False)


def run_stage(parent: Artifact, config: ExportConfig, quiet: bool = False) -> ExportResult:
    """Make ``config.engine`` from its ``parent`` artifact (fp16/int8 graph, or a TensorRT engine with its parity check)."""
    if config.engine is EngineKind.ONNX_FP16:
        from .precision import export_fp16

        return export_fp16(parent, config, quiet)
    if config.engine is EngineKind.ONNX_INT8:
        from .precision import export_int8

        return export_int8(parent, config, quiet)
    if config.engine is EngineKind.OPENVINO:
        from .openvino import export_openvino

        return export_openvino(parent, config, quiet)
    if config.engine is EngineKind.OPENVINO_INT8:
        from .openvino import export_openvino_int8

        return export_openvino_int8(parent, config, quiet)
    if config.engine.is_tensorrt:
        from .runtime.engine_parity import engine_parity
        from .tensorrt.build import build_engine_artifact

        return build_engine_artifact(parent, config, quiet, check=engine_parity)
    raise ConfigError(f"{config.engine.value} is not made from a parent artifact", "use run_export")


EXPORT_MODULES = ("torch", "diffusers", "transformers", "onnx", "onnxslim")


def required_modules(config: ExportConfig) -> list[str]:
    """The Python packages producing ``config.engine`` will import (TensorRT is checked by preflight)."""
    needed: list[str] = []
    fp32 = config
    while fp32.engine is not EngineKind.ONNX:
        fp32 = parent_config(fp32)
    if fp32 is config or not holds_artifact(fp32.artifact_dir):
        needed += [*EXPORT_MODULES, *(["onnxruntime", "polygraphy"] if config.export.parity else [])]
    if config.engine.is_openvino:
        return [*needed, "openvino", "onnxruntime", "polygraphy", *(["nncf"] if config.engine is EngineKind.OPENVINO_INT8 else [])]
    if config.engine.precision is not Precision.FP32:
        needed += ["onnx", "onnxruntime", "polygraphy"] + (["onnxconverter_common"] if config.engine.precision is Precision.FP16 else [])
    return needed


# Peak resident memory of each ONNX stage as a multiple of the fp32 weight bytes: measured on builtin:full
# at 256x256 by benchmarks/export_memory.py (benchmarks/results/export_memory.json: onnx 1.84, onnx-fp16
# 1.82, onnx-int8 1.50), plus a margin for other image sizes and library versions. The OpenVINO stages were
# measured by benchmarks/openvino_cpu.py (benchmarks/results/openvino_cpu.json: openvino 2.37, openvino-int8
# 2.99 -- above the 2x goal, docs/openvino.md) and get the same margin. lotus-export refuses up front when
# MemAvailable is below factor x weights (--skip-memory-check overrides).
MEMORY_FACTORS: dict[EngineKind, float] = {EngineKind.ONNX: 2.2, EngineKind.ONNX_FP16: 2.2, EngineKind.ONNX_INT8: 2.2,
                                           EngineKind.OPENVINO: 2.6, EngineKind.OPENVINO_INT8: 3.3}


def stages_to_run(config: ExportConfig) -> list[ExportConfig]:
    """The ONNX stages ``config`` will run, parents first (an existing matching parent is not re-run)."""
    chain = [config]
    while chain[-1].engine is not EngineKind.ONNX:
        chain.append(parent_config(chain[-1]))
    chain.reverse()
    todo = [c for c in chain[:-1] if not holds_artifact(c.artifact_dir)] + [config]
    return [c for c in todo if not c.engine.is_tensorrt]


def fp32_weight_bytes(config: ExportConfig) -> int | None:
    """The fp32 weights the export handles: the fp32 parent's external data if it exists, else the
    checkpoint's UNet + VAE tensors counted from their safetensors headers (at 4 bytes each)."""
    fp32 = config
    while fp32.engine is not EngineKind.ONNX:
        fp32 = parent_config(fp32)
    data = fp32.artifact_dir / ONNX_DATA
    if holds_artifact(fp32.artifact_dir) and data.is_file():
        return data.stat().st_size
    from .model.checkpoint import checkpoint_weight_bytes, resolve_checkpoint

    return checkpoint_weight_bytes(resolve_checkpoint(config.model, config.task.value))


def check_export_memory(config: ExportConfig) -> tuple[int | None, int | None]:
    """(weight bytes, estimated need): refuse in one line when MemAvailable is below the need."""
    stages = stages_to_run(config)
    if not stages:
        return None, None
    weights = fp32_weight_bytes(config)
    if not weights:
        return weights, None
    need = int(max(MEMORY_FACTORS.get(stage.engine, 0.0) for stage in stages) * weights)
    if config.export.memory_check:
        check_memory(need, f"--engine {config.engine.value} of {config.model} ({gib(weights)} of fp32 weights)")
    return weights, need


def run_export(config: ExportConfig, quiet: bool = False) -> ExportResult:
    """Produce the artifact ``config.engine`` names, building missing parents first.

    The output folder is checked and locked before anything is loaded or built, so a refused
    ``--output`` costs nothing and a concurrent export to the same folder fails at once. So is the
    memory: an export that cannot fit in ``MemAvailable`` is refused before it starts.
    """
    if config.engine.is_tensorrt:
        from .tensorrt.build import preflight

        preflight(config)  # TensorRT, CUDA and the profile settings usable? (the first thing a trt-* export needs)
    require_all(required_modules(config), f"--engine {config.engine.value}")
    check_export_memory(config)
    with publish_lock(config.artifact_dir):
        check_artifact_output(config.artifact_dir, config.force)
        if config.engine is EngineKind.ONNX:
            return export_onnx(config, quiet=quiet)
        if config.engine.precision is not Precision.FP32:  # onnx-int8, openvino-int8 ...
            from .precision import validate_inputs

            validate_inputs(config)  # --calib-dir / --eval-dir readable? (before building any parent)
        parent = ensure_artifact(parent_config(config), quiet=quiet, rebuild_mismatched=config.force)
        return run_stage(parent, config, quiet)


def write_parity_files(artifact: Artifact, out: Path, image_dir: Path | None = None) -> ParityFiles:
    """Recompute an artifact's parity inputs and reference outputs, as its export did, into the new folder
    ``out`` (never into the artifact: one written before the files existed stays as it is).

    Reference: the float64 oracle of the source checkpoint for an fp32 graph; the parent fp32 graph in
    ONNX Runtime (CPU) for fp16/int8 graphs and for engines (at the engine profile's opt shape).
    """
    from .core.polygraphy_files import save_parity_files
    from .core.safe_io import make_temp_folder, normalize_permissions
    from .export.parity_inputs import default_image_dir, parity_batch

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputPathError(f"{out} already exists and is not an empty folder", "pass a new folder to --polygraphy-out (nothing is overwritten)")
    m = artifact.manifest
    image_dir = image_dir or default_image_dir()
    size = ExportSettings().parity_size
    if artifact.kind == "tensorrt" or artifact.precision is not Precision.FP32:
        require_all(["onnxruntime", "polygraphy"], "recomputing the parity reference")
        from .onnxrt import run_graph

        parent = open_artifact(Path(str((m.get("parent") or {}).get("folder", ""))))
        if artifact.kind == "tensorrt":
            shape = EngineProfile.from_json(m["tensorrt"]["profile"]).opt_shape()
            assert shape.height is not None and shape.width is not None and shape.batch is not None
            batch, _ = parity_batch(shape, count=shape.batch, processing_res=max(shape.height, shape.width), image_dir=image_dir)
        else:
            batch, _ = parity_batch(artifact.shape, count=2, processing_res=size, image_dir=image_dir)
        reference, label = run_graph(parent.model_path, parent.shape, batch), "parent-onnx-graph-onnxruntime-cpu"
    else:
        require_all([*EXPORT_MODULES, "polygraphy"], "recomputing the float64 reference")
        from .export.oracle import oracle_output
        from .model.checkpoint import load_checkpoint

        batch, _ = parity_batch(artifact.shape, count=2, processing_res=size, image_dir=image_dir)
        reference, label = oracle_output(load_checkpoint(artifact.source_model, artifact.task.value), artifact.task, batch), "float64-oracle"
    staging = make_temp_folder(out.parent if str(out.parent) else Path("."), f".{out.name}.")
    try:
        save_parity_files(staging, batch, reference, artifact.task.value, label)
        normalize_permissions(staging)
        if out.exists():
            out.rmdir()  # empty (checked above)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ParityFiles.under(out)
