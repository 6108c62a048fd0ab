"""ONNX export of Lotus-D: parity at several sizes and batch 2, static graphs, unseen checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from extras import need_all

need_all("torch", "diffusers", "onnx", "onnxslim", "onnxruntime")
from lotus_checkpoints import independent_reference, make_unseen_checkpoint  # noqa: E402

from lotus_deploy.core.artifacts import ONNX_DATA, ONNX_FILE, open_artifact  # noqa: E402
from lotus_deploy.core.config import ExportConfig, ExportSettings, Task  # noqa: E402
from lotus_deploy.core.contract import GraphShape  # noqa: E402
from lotus_deploy.core.errors import ShapeError  # noqa: E402
from lotus_deploy.export.fused import export_onnx  # noqa: E402
from lotus_deploy.export.oracle import oracle_output  # noqa: E402
from lotus_deploy.model.checkpoint import load_checkpoint  # noqa: E402
from lotus_deploy.model.fused import build_module, task_embedding  # noqa: E402
from lotus_deploy.runtime.ort_backend import OnnxRuntimeBackend  # noqa: E402


def _batch(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape, dtype=np.float32) * 2 - 1).astype(np.float32)


def test_task_embedding_is_the_annotation_switch() -> None:
    assert task_embedding() == pytest.approx([np.sin(1.0), 0.0, np.cos(1.0), 1.0])


def test_manifest_describes_the_graph(tiny_depth_onnx: Path) -> None:
    artifact = open_artifact(tiny_depth_onnx)
    m = artifact.manifest
    assert m["schema_version"] == 1 and m["kind"] == "onnx" and m["precision"] == "fp32"
    assert m["task"] == "depth" and m["output_meaning"] == "depth" and m["opset"] == 17
    assert m["contract"]["inputs"][0]["name"] == "image" and m["contract"]["outputs"][0]["name"] == "depth"
    assert m["shape"] == {"batch": None, "height": None, "width": None}
    assert set(m["files"]) == {ONNX_FILE, ONNX_DATA, "polygraphy_inputs.json", "polygraphy_reference.json"}
    assert m["source"]["model"] == "builtin:tiny" and len(m["source"]["weights_sha256"]) == 64
    assert m["source"]["prompt_tokens"] == 2
    assert m["export"]["nodes"]["after"] < m["export"]["nodes"]["before"]
    assert m["parity"]["passed"] is True and m["parity"]["max_abs"] <= 1e-4
    assert json.loads((tiny_depth_onnx / "parity.json").read_text())["passed"] is True


def test_graph_is_dynamic_with_external_data(tiny_depth_onnx: Path) -> None:
    import onnx

    model = onnx.load(str(tiny_depth_onnx / ONNX_FILE), load_external_data=False)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external, "weights must live in model.onnx.data"
    assert (tiny_depth_onnx / ONNX_DATA).stat().st_size > (tiny_depth_onnx / ONNX_FILE).stat().st_size


@pytest.mark.parametrize("shape", [(2, 3, 128, 192), (1, 3, 256, 64)])
def test_ort_matches_float64_pytorch(tiny_depth_onnx: Path, shape: tuple[int, ...]) -> None:
    backend = OnnxRuntimeBackend(open_artifact(tiny_depth_onnx))
    checkpoint = load_checkpoint("builtin:tiny")
    batch = _batch(shape)
    out = backend.run(batch)
    assert out.shape == (shape[0], 1, shape[2], shape[3]) and out.dtype == np.float32
    assert np.abs(out - oracle_output(checkpoint, Task.DEPTH, batch)).max() <= 1e-4


@pytest.mark.parametrize("task", [Task.DEPTH, Task.NORMAL])
def test_the_fused_module_computes_what_the_independent_oracle_computes(task: Task) -> None:
    """Two separate writings of Lotus-D's semantics (the traced product, the parity oracle) agree in float64."""
    import torch

    checkpoint = load_checkpoint("builtin:tiny")
    module = build_module(checkpoint, task)
    batch = _batch((2, 3, 64, 128), seed=3)
    module.double()
    try:
        with torch.no_grad():
            fused = module(torch.from_numpy(batch).double()).numpy()
    finally:
        module.float()
    oracle = oracle_output(checkpoint, task, batch)
    assert fused.shape == oracle.shape and np.abs(fused - oracle).max() < 1e-6  # float32 constants (sin 1) vs float64: 1e-8


def test_static_graph_rejects_other_sizes(tmp_path: Path) -> None:
    out = tmp_path / "static"
    result = export_onnx(ExportConfig(model="builtin:tiny", output=out, height=128, width=192, export=ExportSettings(parity_size=192)), quiet=True)
    assert result.manifest["shape"] == {"batch": None, "height": 128, "width": 192}
    backend = OnnxRuntimeBackend(open_artifact(out))
    assert backend.run(_batch((1, 3, 128, 192))).shape == (1, 1, 128, 192)
    with pytest.raises(ShapeError, match="static graph built for 128x192"):
        backend.run(_batch((1, 3, 128, 128)))


@pytest.mark.parametrize("task", ["depth", "normal"])
def test_unseen_checkpoint_matches_independent_float64_reference(tmp_path: Path, task: str) -> None:
    """The issue's acceptance check: a folder never seen before, exported through the CLI."""
    from lotus_deploy.cli.export_cmd import main

    folder = make_unseen_checkpoint(tmp_path / "ckpt")
    out = tmp_path / f"art-{task}"
    assert main(["--model", str(folder), "--task", task, "--engine", "onnx", "--output", str(out), "--quiet"]) == 0
    artifact = open_artifact(out)
    assert artifact.task.value == task and artifact.meaning.value == task
    batch = _batch((2, 3, 128, 192), seed=7)
    got = OnnxRuntimeBackend(artifact).run(batch)
    want = independent_reference(folder, batch, task)
    assert got.shape == want.shape == (2, 1 if task == "depth" else 3, 128, 192)
    assert np.abs(got - want).max() <= 1e-4


def test_parity_uses_real_photos_when_given(tmp_path: Path, shared_images: Path) -> None:
    out = tmp_path / "photos"
    result = export_onnx(ExportConfig(model="builtin:tiny", output=out, export=ExportSettings(parity_images=shared_images)), quiet=True)
    assert result.parity is not None and result.parity.passed and result.parity.samples == 2


def test_graph_shape_contract() -> None:
    shape = GraphShape(batch=2)
    with pytest.raises(ShapeError, match="batch 1"):
        shape.check_input((1, 3, 64, 64))
    with pytest.raises(ShapeError, match="multiple of 64"):
        GraphShape().check_input((1, 3, 64, 100))


def test_cleaning_sees_only_the_structure_and_still_folds_every_constant_expression(tiny_depth_onnx: Path) -> None:
    """The weights are lifted out while onnxslim runs and streamed back when saving: the saved graph has
    every weight in its external data (page-aligned), no leftover weight inputs, and no node left whose
    inputs are all constants (the time-embedding projections of t=999 were folded with their weights)."""
    import onnx

    from lotus_deploy.export.common import constant_inputs

    model = onnx.load(str(tiny_depth_onnx / ONNX_FILE), load_external_data=False)
    assert [i.name for i in model.graph.input] == ["image"]
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external and all(len(t.raw_data) < 1024 for t in model.graph.initializer)
    offsets = [int({e.key: e.value for e in t.external_data}["offset"]) for t in external]
    assert all(offset % 4096 == 0 for offset in offsets)
    assert not constant_inputs(model), "a constant expression was left unfolded"
    assert (tiny_depth_onnx / ONNX_DATA).stat().st_size >= sum(int({e.key: e.value for e in t.external_data}["length"]) for t in external)


def test_lifting_keeps_only_the_weights_of_constant_expressions(tmp_path: Path) -> None:
    import onnx
    import torch

    from lotus_deploy.export.common import constant_inputs, lift_weights, trace
    from lotus_deploy.model.checkpoint import load_checkpoint
    from lotus_deploy.model.fused import build_module

    module = build_module(load_checkpoint("builtin:tiny"), Task.DEPTH)

    raw = tmp_path / "raw.onnx"
    trace(module, torch.zeros(1, 3, 64, 64), raw, 17, "image", "depth", None, "two-level", numerics_owner=module)
    model = onnx.load(str(raw), load_external_data=False)
    needed = constant_inputs(model)
    assert needed and any("time_emb" in name for name in needed)
    lifted = lift_weights(model, tmp_path)
    assert lifted.tensors and not (set(lifted.tensors) & needed)
    assert {i.name for i in model.graph.input} == {"image", *lifted.tensors}
    name = next(iter(lifted.tensors))
    assert len(lifted.data(name)) == int(np.prod(lifted.tensors[name].dims)) * 4


def test_declared_output_shape_follows_the_contract(tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "static-out"
    export_onnx(ExportConfig(model="builtin:tiny", output=out, height=128, width=192, export=ExportSettings(parity=False)), quiet=True)
    model = onnx.load(str(out / ONNX_FILE), load_external_data=False)
    dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, 128, 192]
