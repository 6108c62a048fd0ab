"""[torch, onnx] ``lotus-export --split``: the fused graph's three stages as separate ONNX graphs.

Written to ``<artifact>/split/`` beside the fused ``model.onnx``, each with its own external-data file,
so a benchmark can time the stages one by one and show where the time goes (DESIGN.md §1: at pixel
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
import warnings
from pathlib import Path
from typing import Any

from .artifacts import sha256_file
from .config import ExportConfig
from .contract import INPUT_NAME, GraphShape, output_name
from .safe_io import write_json_atomic

SPLIT_DIR = "split"
STAGES = ("encoder", "unet", "decoder")
LATENTS = "latents"
PREDICTION = "prediction"
_TRACE_SIZE = 64


def stage_io(stage: str, task_output: str) -> tuple[str, str]:
    """(input name, output name) of a stage graph."""
    return {"encoder": (INPUT_NAME, LATENTS), "unet": (LATENTS, PREDICTION), "decoder": (PREDICTION, task_output)}[stage]


def stage_modules(module: Any) -> dict[str, Any]:
    """The fused LotusD module cut into three nn.Modules whose composition is ``module.forward``."""
    import torch

    from .config import Task

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vae = module.vae
            self.scaling_factor = module.scaling_factor

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.vae.encode(image).latent_dist.mode() * self.scaling_factor

    class UNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet = module.unet
            self.register_buffer("prompt_embeds", module.prompt_embeds.detach().clone())
            self.register_buffer("task_emb", module.task_emb.detach().clone())
            self.register_buffer("timestep", module.timestep.detach().clone())

        def forward(self, latents: torch.Tensor) -> torch.Tensor:
            n = latents.shape[0]
            prompt = self.get_buffer("prompt_embeds")
            task = self.get_buffer("task_emb")
            return self.unet(latents, self.timestep, encoder_hidden_states=prompt.expand(n, -1, -1), class_labels=task.expand(n, -1), return_dict=False)[0]

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vae = module.vae
            self.scaling_factor = module.scaling_factor
            self.task = module.task

        def forward(self, prediction: torch.Tensor) -> torch.Tensor:
            img = (self.vae.decode(prediction / self.scaling_factor, return_dict=False)[0] / 2 + 0.5).clamp(0, 1)
            return img.mean(dim=1, keepdim=True) if self.task is Task.DEPTH else img * 2 - 1

    return {"encoder": Encoder().eval(), "unet": UNet().eval(), "decoder": Decoder().eval()}


def _dummy_shape(stage: str, shape: GraphShape) -> tuple[int, int, int, int]:
    n, h, w = shape.batch or 1, shape.height or _TRACE_SIZE, shape.width or _TRACE_SIZE
    return (n, 3, h, w) if stage == "encoder" else (n, 4, h // 8, w // 8)


def _axes(shape: GraphShape, names: tuple[str, str]) -> dict[str, dict[int, str]] | None:
    axes: dict[int, str] = {}
    if shape.batch is None:
        axes[0] = "batch"
    if not shape.is_static:
        axes.update({2: "height", 3: "width"})
    return {name: dict(axes) for name in names} if axes else None


def clean_graph(raw: Path) -> tuple[Any, dict[str, Any]]:
    """Clean a freshly traced stage graph exactly as export.py cleans the fused one (onnxslim, also over 2 GB)."""
    from .export import _clean

    model, counts = _clean(raw)
    return model, {**counts, "cleaner": counts.get("cleaner", "onnxslim")}


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
    """Trace one stage as export.py traces the fused graph (same exporter, same GroupNorm form), clean, save."""
    import onnx
    import torch

    from .numerics import export_numerics

    names = stage_io(stage, output_name(config.task))
    dummy = torch.zeros(*_dummy_shape(stage, shape))
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        raw = Path(scratch) / "raw.onnx"
        with torch.no_grad(), warnings.catch_warnings(), export_numerics(module, config.groupnorm):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                stage_module, (dummy,), str(raw), dynamo=False, opset_version=config.opset,
                input_names=[names[0]], output_names=[names[1]], dynamic_axes=_axes(shape, names), do_constant_folding=True,
            )
        model, counts = clean_graph(raw)
    path = out / f"{stage}.onnx"
    data = f"{stage}.onnx.data"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data, size_threshold=1024)
    del model
    onnx.checker.check_model(str(path))
    return {
        "file": f"{SPLIT_DIR}/{stage}.onnx",
        "input": names[0],
        "output": names[1],
        "nodes": counts["after"],
        "cleaner": counts["cleaner"],
        "groupnorm": config.groupnorm,
        "files": {name: {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size} for name in (path.name, data)},
    }


def split_paths(artifact_folder: Path) -> dict[str, Path]:
    """The stage graphs of an artifact exported with ``--split`` ({} when it has none)."""
    out = Path(artifact_folder) / SPLIT_DIR
    paths = {stage: out / f"{stage}.onnx" for stage in STAGES}
    return paths if all(p.is_file() for p in paths.values()) else {}
