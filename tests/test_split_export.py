"""``lotus-export --split``: three stage graphs whose composition is the fused graph (builtin:tiny)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from extras import need

need("torch")
need("diffusers")
ort = need("onnxruntime")

from lotus_deploy.core.artifacts import open_artifact  # noqa: E402
from lotus_deploy.core.config import ExportConfig, ExportSettings  # noqa: E402
from lotus_deploy.export.fused import export_onnx  # noqa: E402
from lotus_deploy.export.split import STAGES, split_paths  # noqa: E402


@pytest.fixture(scope="module")
def split_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("split") / "tiny"
    export_onnx(ExportConfig(model="builtin:tiny", output=out, export=ExportSettings(split=True, parity=False)), quiet=True)
    return open_artifact(out)


def _run(path, array):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: array})[0]


def test_three_graphs_with_external_data_and_manifest_entry(split_artifact):
    paths = split_paths(split_artifact.folder)
    assert list(paths) == list(STAGES)
    for stage, path in paths.items():
        assert path.is_file() and (path.parent / f"{stage}.onnx.data").is_file()
    entry = split_artifact.manifest["split"]
    assert set(entry["stages"]) == set(STAGES)
    assert entry["stages"]["encoder"]["input"] == "image" and entry["stages"]["decoder"]["output"] == "depth"
    on_disk = json.loads((split_artifact.folder / "split" / "split.json").read_text())
    assert on_disk == entry


@pytest.mark.parametrize("batch,size", [(1, (64, 128)), (2, (128, 64))])
def test_composition_matches_the_fused_graph(split_artifact, batch, size):
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (batch, 3, *size)).astype(np.float32)
    paths = split_paths(split_artifact.folder)
    latents = _run(paths["encoder"], image)
    assert latents.shape == (batch, 4, size[0] // 8, size[1] // 8)
    prediction = _run(paths["unet"], latents)
    assert prediction.shape == latents.shape
    chained = _run(paths["decoder"], prediction)
    fused = _run(split_artifact.model_path, image)
    assert chained.shape == fused.shape == (batch, 1, *size)
    np.testing.assert_allclose(chained, fused, atol=2e-5, rtol=0)


def test_stage_flops_add_up_to_the_fused_graph(split_artifact):
    from lotus_deploy.export.flops import count_flops

    paths = split_paths(split_artifact.folder)
    fused = count_flops(split_artifact.model_path, [1, 3, 128, 128])
    parts = [count_flops(paths["encoder"], [1, 3, 128, 128])] + [count_flops(paths[s], [1, 4, 16, 16]) for s in ("unet", "decoder")]
    assert fused.unknown == [] and all(p.unknown == [] for p in parts)
    assert sum(p.flops for p in parts) == fused.flops > 0
