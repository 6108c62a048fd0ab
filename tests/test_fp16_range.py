"""fp16 range safety: a checkpoint whose activations exceed 65504 still exports to onnx-fp16 with finite
outputs within every gate, and the keep list says why (issue 12, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from extras import need
from lotus_checkpoints import tiny_with_scaled_vae_layer

torch = need("torch")
need("onnxconverter_common")
need("onnxruntime")

from lotus_deploy.core.artifacts import open_artifact  # noqa: E402
from lotus_deploy.core.config import EngineKind, ExportConfig, ExportSettings, PrecisionSettings  # noqa: E402
from lotus_deploy.export import export_onnx  # noqa: E402
from lotus_deploy.precision import export_fp16  # noqa: E402
from lotus_deploy.precision.fp16 import FP16_MAX  # noqa: E402


@pytest.fixture(scope="module")
def loud_fp32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """builtin:tiny with the VAE decoder's first conv scaled 2e4x: activations reach ~1e5 (their squares
    inside GroupNorm ~1e10), while the normalizations bring the output back to the usual range."""
    work = tmp_path_factory.mktemp("fp16-range")
    folder = tiny_with_scaled_vae_layer(work / "loud", "decoder.conv_in", 2e4)
    out = work / "fp32"
    export_onnx(ExportConfig(model=str(folder), output=out, export=ExportSettings(parity_size=128)), quiet=True)
    return out


def test_activations_beyond_fp16_range_export_finite_and_within_the_gates(loud_fp32: Path) -> None:
    parent = open_artifact(loud_fp32)
    config = ExportConfig(model=parent.source_model, engine=EngineKind.ONNX_FP16, output=loud_fp32.parent / "fp16",
                          export=ExportSettings(parity_size=128), precision=PrecisionSettings(calib_size=128))
    result = export_fp16(parent, config, True)
    kept = result.manifest["fp16"]["kept_fp32_nodes"]
    assert kept and max(k["max_abs"] for k in kept) > FP16_MAX  # the activations really leave fp16's range
    assert any(k["reason"].startswith("reads ") for k in kept)  # consumers of huge tensors are kept too
    parity = result.manifest["parity"]
    assert parity["nan_inf_candidate"] == 0 and parity["passed"]
    assert parity["mean_abs"] <= parity["tolerances"]["mean_abs_max"] and parity["p99_abs"] <= parity["tolerances"]["p99_abs_max"]


def test_keep_list_equals_the_one_from_a_plain_all_tensor_pass(loud_fp32: Path, tmp_path: Path) -> None:
    """The scheduled range pass (reductions right after producers, node order, lean session) measures
    the same thing as the plain one (every float tensor a graph output, ONNX Runtime's default session):
    the keep list built from either is the same, on a checkpoint where it is not empty."""
    import numpy as np
    import onnx

    from lotus_deploy.onnxrt import make_session
    from lotus_deploy.precision import graph, inputs
    from lotus_deploy.precision.fp16 import DEFAULT_HEADROOM, keep_list

    parent = open_artifact(loud_fp32)
    config = ExportConfig(model=parent.source_model, engine=EngineKind.ONNX_FP16, output=tmp_path / "unused",
                          export=ExportSettings(parity_size=128), precision=PrecisionSettings(calib_size=128))
    images = inputs.prepare(config, parent.shape, require_calib=False)
    with graph.work_folder(parent.folder, under=tmp_path) as work:
        scheduled = graph.collect_ranges(parent.folder, images.calib, len(images.calib), work, True)
        model = graph.load_structure(parent.folder)
        names = graph.float_tensors(model)
        for name in names:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        path = work / "plain.onnx"
        graph.save_structure(model, path)
        session = make_session(path)
        plain: dict[str, tuple[float, float]] = {}
        for batch in images.calib:
            for name, value in zip(names, session.run(names, {"image": batch}), strict=True):
                low, high = plain.get(name, (np.inf, -np.inf))
                plain[name] = (min(low, float(value.min())), max(high, float(value.max())))
    assert set(scheduled) == set(plain)
    structure = graph.load_structure(parent.folder)
    from_scheduled = [(k["node"], k["reason"].split(" max|x|")[0]) for k in keep_list(structure, scheduled, DEFAULT_HEADROOM)]
    from_plain = [(k["node"], k["reason"].split(" max|x|")[0]) for k in keep_list(structure, plain, DEFAULT_HEADROOM)]
    assert from_scheduled and sorted(from_scheduled) == sorted(from_plain)
