"""[torch, onnx] ``lotus-export --split``: the fused graph's three stages as separate ONNX graphs.

Written to ``<artifact>/split/`` beside the fused ``model.onnx``, each with its own external-data file,
so a benchmark can time the stages one by one and show where the time goes (docs/model.md: at pixel
resolution the VAE, not the UNet, dominates the FLOPs):

| graph | input | output |
|---|---|---|
| ``encoder.onnx`` | ``image`` [N,3,H,W] in [-1,1] | ``latents`` [N,4,H/8,W/8] (posterior mean × scaling factor) |
| ``unet.onnx`` | ``latents`` | ``prediction`` [N,4,H/8,W/8] (t=999, empty prompt, task switcher baked in) |
| ``decoder.onnx`` | ``prediction`` | ``depth`` [N,1,H,W] / ``normal`` [N,3,H,W] (the fused graph's output) |

Running the three in order computes exactly what the fused graph computes (a test holds them to it).
They are exported the same way as the fused graph (TorchScript exporter, onnxslim) so that their
timings add up comparably; they are a measuring aid, not a deployment format.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..core.artifacts import sha256_file
from ..core.config import ExportConfig
from ..core.contract import INPUT_NAME, GraphShape, output_name
from ..core.safe_io import write_json_atomic
from .common import TRACE_SIZE, clean, save_streaming, trace

SPLIT_DIR = "split"
STAGES = ("encoder", "unet", "decoder")
LATENTS = "latents"
PREDICTION = "prediction"


def stage_io(stage: str, task_output: str) -> tuple[str, str]:
    """(input name, output name) of a stage graph."""
    return {"encoder": (INPUT_NAME, LATENTS), "unet": (LATENTS, PREDICTION), "decoder": (PREDICTION, task_output)}[stage]


def stage_modules(module: Any) -> dict[str, Any]:
    """The fused LotusD module cut into three nn.Modules that call its stage functions
    (``encode``, ``predict``, ``decode_output``), so their composition is ``module.forward`` by construction."""
    import torch

    class Stage(torch.nn.Module):
        def __init__(self, method: str) -> None:
            super().__init__()
            self.fused = module
            self.method = method

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor = getattr(self.fused, self.method)(x)
            return result

    return {"encoder": Stage("encode").eval(), "unet": Stage("predict").eval(), "decoder": Stage("decode_output").eval()}


def _dummy_shape(stage: str, shape: GraphShape) -> tuple[int, int, int, int]:
    n, h, w = shape.batch or 1, shape.height or TRACE_SIZE, shape.width or TRACE_SIZE
    return (n, 3, h, w) if stage == "encoder" else (n, 4, h // 8, w // 8)


def _axes(shape: GraphShape, names: tuple[str, str]) -> dict[str, dict[int, str]] | None:
    axes: dict[int, str] = {}
    if shape.batch is None:
        axes[0] = "batch"
    if not shape.is_static:
        axes.update({2: "height", 3: "width"})
    return {name: dict(axes) for name in names} if axes else None


def export_split(module: Any, folder: Path, config: ExportConfig, shape: GraphShape) -> dict[str, Any]:
    """Write ``folder/split/{encoder,unet,decoder}.onnx`` (+ ``.onnx.data``); return the manifest entry."""
    out = Path(folder) / SPLIT_DIR
    out.mkdir(parents=True, exist_ok=True)
    modules = stage_modules(module)
    entry: dict[str, Any] = {"folder": SPLIT_DIR, "stages": {}}
    for stage in STAGES:
        entry["stages"][stage] = _export_stage(stage, modules[stage], module, out, config, shape)
    write_json_atomic(out / "split.json", entry)
    return entry


def _export_stage(stage: str, stage_module: Any, module: Any, out: Path, config: ExportConfig, shape: GraphShape) -> dict[str, Any]:
    """Trace one stage as the fused graph is traced (same exporter, same GroupNorm form), clean, save."""
    import torch

    names = stage_io(stage, output_name(config.task))
    dummy = torch.zeros(*_dummy_shape(stage, shape))
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        raw = Path(scratch) / "raw.onnx"
        trace(stage_module, dummy, raw, config.export.opset, names[0], names[1], _axes(shape, names), config.export.groupnorm, numerics_owner=module)
        model, counts, weights = clean(raw)
        path = out / f"{stage}.onnx"
        data = f"{stage}.onnx.data"
        save_streaming(model, weights, path, data)  # inside: the lifted weights are read from the raw export
        del model, weights
    return {
        "file": f"{SPLIT_DIR}/{stage}.onnx",
        "input": names[0],
        "output": names[1],
        "nodes": counts["after"],
        "cleaner": counts["cleaner"],
        "groupnorm": config.export.groupnorm,
        "files": {name: {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size} for name in (path.name, data)},
    }


def split_paths(artifact_folder: Path) -> dict[str, Path]:
    """The stage graphs of an artifact exported with ``--split`` ({} when it has none)."""
    out = Path(artifact_folder) / SPLIT_DIR
    paths = {stage: out / f"{stage}.onnx" for stage in STAGES}
    return paths if all(p.is_file() for p in paths.values()) else {}
