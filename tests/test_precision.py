"""onnx-fp16 / onnx-int8 on builtin:tiny: graph types, Q/DQ placement, calibration cache, targets, bad inputs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from extras import need

onnx = need("onnx")
need("onnxruntime")

from lotus_deploy.core.artifacts import PARITY, holds_artifact, open_artifact  # noqa: E402
from lotus_deploy.core.config import EngineKind, ExportConfig, ExportSettings, PrecisionSettings  # noqa: E402
from lotus_deploy.core.errors import ConfigError, InputImageError, LotusError, NoImagesError, ParityError  # noqa: E402

SHARED_IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images"
SIZE = 128  # calibration and held-out processing size: keeps the suite fast


def _write_images(folder: Path, count: int, seed: int = 0) -> Path:
    from PIL import Image

    from lotus_deploy.export.parity_inputs import synthetic_images

    folder.mkdir(parents=True, exist_ok=True)
    for index, img in enumerate(synthetic_images(count, size=(150, 200), seed=seed)):
        Image.fromarray(img).save(folder / f"img{index:02d}.png")
    return folder


@pytest.fixture(scope="session")
def tiny_fp32(tmp_path_factory: pytest.TempPathFactory):
    from lotus_deploy.export.fused import export_onnx

    out = tmp_path_factory.mktemp("prec") / "engines" / "tiny-fp32"
    export_onnx(ExportConfig(model="builtin:tiny", output=out, export=ExportSettings(parity=False)), quiet=True)
    return open_artifact(out)


@pytest.fixture(scope="session")
def calib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_images(tmp_path_factory.mktemp("calib"), 5)


def _config(parent, engine: EngineKind, out: Path, calib: Path | None, **precision) -> ExportConfig:
    return ExportConfig(model="builtin:tiny", engine=engine, output=out, export=ExportSettings(parity_size=SIZE),
                        precision=PrecisionSettings(calib_dir=calib, calib_size=SIZE, **precision))


@pytest.fixture(scope="session")
def fp16_result(tiny_fp32, calib_dir):
    need("onnxconverter_common")
    from lotus_deploy.precision import export_fp16

    out = tiny_fp32.folder.parent / "tiny-fp16"
    return export_fp16(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_FP16, out, calib_dir), True)


@pytest.fixture(scope="session")
def int8_result(tiny_fp32, calib_dir):
    """A loose AbsRel target: the absolute gates decide what (if anything) returns to fp32."""
    from lotus_deploy.precision import export_int8

    out = tiny_fp32.folder.parent / "tiny-int8"
    return export_int8(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_INT8, out, calib_dir, accuracy_target=1.0), True)


def _types(path: Path) -> tuple[object, dict[str, int]]:
    model = onnx.load(str(path), load_external_data=False)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    return inferred, types


# ---------------------------------------------------------------- fp16


def test_fp16_computes_in_fp16_with_fp32_io_and_islands(fp16_result):
    folder = fp16_result.folder
    assert (folder / "model.onnx").is_file() and (folder / "model.onnx.data").is_file()
    model, types = _types(folder / "model.onnx")
    F32, F16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert [types[i.name] for i in model.graph.input] == [F32]
    assert [types[o.name] for o in model.graph.output] == [F32]
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(types[n.input[1]] == F16 and types[n.output[0]] == F16 for n in convs)
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    assert all(types[n.output[0]] == F16 for n in matmuls)
    # the timestep/task embedding is a float64-computed constant in the graph (numerics.baked_embeddings):
    # no sin/cos(999 * f) is left to compute, in fp16 or otherwise; what stays fp32 is listed and typed fp32
    assert not [n for n in model.graph.node if n.op_type in ("Sin", "Cos")]
    kept = fp16_result.manifest["fp16"]["kept_fp32_nodes"]
    assert isinstance(kept, list)
    by_name = {n.name: n for n in model.graph.node}
    for entry in kept:
        node = by_name[entry["node"]]
        assert all(types[t] == F32 for t in node.output if t in types)
    m = fp16_result.manifest
    assert m["precision"] == "fp16" and m["engine"] == "onnx-fp16" and m["parent"]["manifest_sha256"]
    assert m["parity"]["label"].startswith("fp16 storage") and m["parity"]["passed"]
    assert json.loads((folder / PARITY).read_text())["label"].startswith("fp16 storage")
    open_artifact(folder)  # hashes verify


def test_fp16_output_close_to_fp32(fp16_result, tiny_fp32):
    from lotus_deploy.runtime.ort_backend import OnnxRuntimeBackend

    x = np.random.default_rng(3).uniform(-1, 1, (2, 3, 128, 192)).astype(np.float32)
    ref = OnnxRuntimeBackend(tiny_fp32).run(x)
    out = OnnxRuntimeBackend(open_artifact(fp16_result.folder)).run(x)
    assert out.dtype == np.float32 and out.shape == ref.shape
    from lotus_deploy.core.parity import ABSOLUTE_GATES, compare, judge
    from lotus_deploy.precision.common import DEFAULT_TARGETS

    report = judge(compare(out, ref, tiny_fp32.task), absrel=DEFAULT_TARGETS["fp16"][tiny_fp32.task], gates=ABSOLUTE_GATES["fp16"])
    assert report.passed, report.summary()  # the targets the fp16 stage claims: AbsRel 0.005, mean 2e-3, p99 1e-2


@pytest.mark.cuda
def test_fp16_compute_parity_on_gpu(fp16_result, tiny_fp32):
    ort = need("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu with CUDA (fp16 compute parity)")
    from lotus_deploy.core.parity import compare
    from lotus_deploy.runtime.ort_backend import OnnxRuntimeBackend

    x = np.random.default_rng(4).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    ref = OnnxRuntimeBackend(tiny_fp32).run(x)
    out = OnnxRuntimeBackend(open_artifact(fp16_result.folder), providers=["CUDAExecutionProvider"]).run(x)
    assert compare(out, ref, tiny_fp32.task).absrel < 0.01


def test_fp16_unreachable_target_fails_clearly(tiny_fp32, calib_dir):
    need("onnxconverter_common")
    from lotus_deploy.precision import export_fp16

    out = tiny_fp32.folder.parent / "tiny-fp16-strict"
    with pytest.raises(ParityError, match="misses its accuracy target"):
        export_fp16(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_FP16, out, calib_dir, accuracy_target=1e-12), True)
    assert not holds_artifact(out)


# ---------------------------------------------------------------- int8


def test_int8_qdq_around_conv_and_matmul_not_on_kept_layers(int8_result):
    from lotus_deploy.precision.int8 import default_kept

    folder = int8_result.folder
    model, types = _types(folder / "model.onnx")
    assert [types[i.name] for i in model.graph.input] == [onnx.TensorProto.FLOAT]
    assert [types[o.name] for o in model.graph.output] == [onnx.TensorProto.FLOAT]
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {t.name: t for t in model.graph.initializer}
    parent = onnx.load(int8_result.manifest["parent"]["folder"] + "/model.onnx", load_external_data=False)
    kept = default_kept(parent)
    assert any("conv_in" in k for k in kept) and any("conv_out" in k for k in kept)
    # time embeddings are folded into constants at export (t is fixed), so no time-embedding matmul is left to quantize
    assert [n.name for n in parent.graph.node if "time_emb" in n.name and n.op_type in ("Gemm", "MatMul")] == []

    def dq(name: str):
        node = producers.get(name)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    d = int8_result.manifest["int8"]
    returned = {n for g in d["returned_groups"] for n in g["nodes"]}
    quantized = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        if node.name in kept or node.name in returned:
            assert not any(dq(i) for i in node.input), f"kept layer {node.name} has Q/DQ"
            continue
        activation, weight = dq(node.input[0]), dq(node.input[1])
        assert activation is not None and weight is not None, f"{node.name} lacks Q/DQ"
        quantized += 1
        w = inits[weight.input[0]]
        assert w.data_type == onnx.TensorProto.INT8
        if node.op_type == "Conv":  # per-channel: one scale per output channel
            scale = inits[weight.input[1]]
            assert list(scale.dims) == [w.dims[0]]
    assert quantized > 50
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zp = onnx.numpy_helper.to_array(inits[node.input[2]])
            assert zp.dtype == np.int8 and not zp.any()  # symmetric int8
        if node.op_type not in ("Conv", "MatMul", "Gemm", "QuantizeLinear", "DequantizeLinear"):
            assert not any(dq(i) for i in node.input), f"{node.op_type} {node.name} reads a dequantized tensor"
    # random tiny weights: the search returns many groups, but int8 stays on a real share of the MACs
    assert 0.3 < d["int8_mac_share"] < 1.0 and quantized > 0 and returned
    assert int8_result.manifest["precision"] == "int8"
    parity = int8_result.manifest["parity"]  # the published graph meets every absolute gate, in absolute units
    assert parity["tolerances"]["mean_abs_max"] == pytest.approx(0.02) and parity["tolerances"]["p99_abs_max"] == pytest.approx(0.1)
    assert parity["mean_abs"] <= 0.02 and parity["p99_abs"] <= 0.1 and parity["nan_inf_candidate"] == 0
    open_artifact(folder)


def test_calibration_cache_is_reused(int8_result, tiny_fp32, calib_dir, monkeypatch):
    from lotus_deploy.precision import export_int8, graph

    cache = Path(int8_result.manifest["int8"]["calibration"]["cache"])
    assert cache.is_file() and cache.parent.parent.name == ".calib-cache"

    def boom(*args, **kwargs):
        raise AssertionError("recalibrated although the cache matches")

    monkeypatch.setattr(graph, "collect_ranges", boom)
    out = tiny_fp32.folder.parent / "tiny-int8-again"
    again = export_int8(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_INT8, out, calib_dir, accuracy_target=1.0), True)
    assert again.manifest["int8"]["calibration"]["reused"] is True
    assert again.manifest["int8"]["calibration"]["cache"] == str(cache)


def test_int8_search_returns_sensitive_groups(tiny_fp32, calib_dir):
    """A target between all-int8 and fp32: the search measures sensitivities and returns groups."""
    from lotus_deploy.precision import export_int8

    out = tiny_fp32.folder.parent / "tiny-int8-search"
    result = export_int8(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_INT8, out, calib_dir, accuracy_target=0.01), True)
    d = result.manifest["int8"]
    assert d["sensitivities"] and d["returned_groups"]
    assert result.manifest["parity"]["absrel"] <= 0.01
    returned = [g["group"] for g in d["returned_groups"]]
    ranked = sorted(d["sensitivities"], key=lambda g: -d["sensitivities"][g])
    assert set(returned) == set(ranked[: len(returned)])  # most sensitive first
    if d["int8_mac_share"] < 0.5:
        assert d["blocked_by"]


def test_int8_unreachable_target_fails_clearly(tiny_fp32, calib_dir):
    from lotus_deploy.precision import export_int8

    out = tiny_fp32.folder.parent / "tiny-int8-strict"
    with pytest.raises(ParityError, match="cannot meet"):
        export_int8(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_INT8, out, calib_dir, accuracy_target=1e-30), True)
    assert not holds_artifact(out)


# ---------------------------------------------------------------- bad calibration folders


@pytest.fixture()
def no_heavy_work(monkeypatch):
    from lotus_deploy.precision import graph

    def boom(*args, **kwargs):
        raise AssertionError("calibration started before the inputs were checked")

    monkeypatch.setattr(graph, "collect_ranges", boom)


@pytest.mark.parametrize("case", ["missing", "empty", "unreadable", "not-a-folder"])
def test_bad_calib_dir_is_a_one_line_error(case, tiny_fp32, tmp_path, no_heavy_work):
    from lotus_deploy.precision import export_int8, validate_inputs

    folder = tmp_path / "calib"
    if case == "empty":
        folder.mkdir()
    elif case == "unreadable":
        _write_images(folder, 3)
        (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    elif case == "not-a-folder":
        folder.write_text("x")
    config = _config(tiny_fp32, EngineKind.ONNX_INT8, tmp_path / "out", folder)
    expected = {"missing": NoImagesError, "empty": NoImagesError, "unreadable": InputImageError, "not-a-folder": InputImageError}[case]
    with pytest.raises(expected) as info:
        export_int8(tiny_fp32, config, True)
    assert "\n" not in str(info.value) and str(folder) in str(info.value)
    with pytest.raises(expected):
        validate_inputs(config)
    assert not holds_artifact(tmp_path / "out")


def test_int8_without_calib_dir_and_bad_target(tiny_fp32, tmp_path, calib_dir, no_heavy_work):
    from lotus_deploy.precision import export_int8

    with pytest.raises(ConfigError, match="--calib-dir"):
        export_int8(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_INT8, tmp_path / "o", None), True)
    with pytest.raises(ConfigError, match="accuracy-target"):
        export_int8(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_INT8, tmp_path / "o", calib_dir, accuracy_target=-1.0), True)


def test_cli_reports_bad_calib_dir_in_one_line(tmp_path, capsys, monkeypatch):
    from lotus_deploy.cli.export_cmd import main

    monkeypatch.chdir(tmp_path)  # the fp32 parent goes to ./engines/

    code = main(["--model", "builtin:tiny", "--engine", "onnx-int8", "--output", str(tmp_path / "o"), "--calib-dir", str(tmp_path / "nope"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--calib-dir" in err


# ---------------------------------------------------------------- pieces


def test_split_is_deterministic_and_disjoint(tmp_path):
    from lotus_deploy.precision.inputs import choose

    folder = _write_images(tmp_path / "imgs", 9)
    config = ExportConfig(model="builtin:tiny", engine=EngineKind.ONNX_INT8, precision=PrecisionSettings(calib_dir=folder))
    calib, held, _, how = choose(config, True)
    assert [p.name for p in held] == ["img03.png", "img07.png"] and "held out" in how
    assert not set(calib) & set(held) and len(calib) == 7
    assert choose(config, True)[:2] == (calib, held)
    evald = _write_images(tmp_path / "eval", 2, seed=5)
    calib2, held2, _, how2 = choose(replace(config, precision=replace(config.precision, eval_dir=evald)), True)
    assert len(calib2) == 9 and [p.parent for p in held2] == [evald, evald] and "--eval-dir" in how2


def test_groups_from_scoped_names():
    from lotus_deploy.precision.graph import group_of

    assert group_of("/unet/down_blocks.1/resnets.0/conv1/Conv") == "unet/down_blocks.1/resnets.0"
    assert group_of("/decoder/up_blocks.3/upsamplers.0/conv/Conv") == "decoder/up_blocks.3/upsamplers.0"
    assert group_of("/unet/mid_block/attentions.0/proj_in/MatMul") == "unet/mid_block/attentions.0"
    assert group_of("/unet/conv_in/Conv") == "unet/conv_in"
    assert group_of("/quant_conv/Conv") == "quant_conv"


def test_real_photos_calibrate_int8(tiny_fp32, tmp_path):
    if not SHARED_IMAGES.is_dir():
        pytest.skip(f"real photos not found at {SHARED_IMAGES}")
    from lotus_deploy.precision import export_int8

    result = export_int8(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_INT8, tmp_path / "real", SHARED_IMAGES, accuracy_target=1.0), True)
    from lotus_deploy.image.preprocess import list_images

    held = result.manifest["int8"]["images"]["held_out"]
    assert held["images"] == [p.name for i, p in enumerate(list_images(SHARED_IMAGES)) if i % 4 == 3]
    assert result.manifest["parity"]["nan_inf_candidate"] == 0


def test_errors_are_lotus_errors():
    assert issubclass(NoImagesError, LotusError) and issubclass(ParityError, LotusError)


def test_precision_imports_nothing_heavy_at_top_level():
    import subprocess
    import sys

    code = ("import sys, lotus_deploy.precision, lotus_deploy.precision.fp16, lotus_deploy.precision.int8; "
            "heavy = [m for m in ('onnx', 'onnxruntime', 'onnxconverter_common', 'torch', 'modelopt') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("which", ["fp16", "int8"])
def test_reduced_precision_gates_rerun_with_polygraphy(which, fp16_result, int8_result, tmp_path, capsys):
    """The fp16/int8 artifact's absolute gates, as printed by lotus-inspect --polygraphy (one line per gate:
    mean, then the 0.99 quantile), pass in Polygraphy itself against the saved fp32 reference."""
    need("polygraphy")
    import shlex

    from polygraphy_helpers import run_line

    from lotus_deploy.cli import inspect_cmd

    result = fp16_result if which == "fp16" else int8_result
    assert inspect_cmd.main(["--polygraphy", str(result.folder)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    gates = lines[:-1]
    stats = [shlex.split(line)[shlex.split(line).index("--check-error-stat") + 1] for line in gates]
    assert stats == ["mean", "quantile"]
    tolerances = result.manifest["parity"]["tolerances"]
    assert f"--atol {tolerances['mean_abs_max']!r}" in gates[0] and f"--atol {tolerances['p99_abs_max']!r}" in gates[1]
    for line in gates:
        outcome = run_line(line, cwd=tmp_path)
        assert outcome.returncode == 0, outcome.stdout[-2000:]


@pytest.mark.parametrize("tensors", ["all", "compute-inputs"])
def test_range_pass_reports_each_tensors_own_min_and_max(tiny_fp32, tensors, tmp_path):
    """The reductions run right after their producers and are read back by name: each range is the
    min/max of that very tensor (a misaligned read once swapped ranges between tensors)."""
    from lotus_deploy.onnxrt import make_session
    from lotus_deploy.precision import graph

    batch = np.random.default_rng(3).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    with graph.work_folder(tiny_fp32.folder, under=tmp_path) as work:
        ranges = graph.collect_ranges(tiny_fp32.folder, [batch], 1, work, True, tensors=tensors)
        model = graph.load_structure(tiny_fp32.folder)
        names = sorted(ranges)[:: max(1, len(ranges) // 12)]
        for name in names:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        path = work / "probe.onnx"
        graph.save_structure(model, path)
        values = make_session(path).run(names, {"image": batch})
    for name, value in zip(names, values, strict=True):  # (the probe graph fuses differently: float32 rounding apart)
        np.testing.assert_allclose(ranges[name], (float(value.min()), float(value.max())), rtol=1e-4, atol=1e-5, err_msg=name)


def test_int8_export_does_not_depend_on_what_was_exported_before(tiny_fp32, calib_dir, tmp_path):
    """int8 from the same parent and images, with and without an fp16 export's all-tensor ranges in the
    cache beside it: the same Q/DQ placement, search and share (the all-tensor cache once changed them)."""
    import shutil

    from lotus_deploy.precision import export_fp16, export_int8

    results = []
    for with_fp16 in (False, True):
        folder = tmp_path / ("after-fp16" if with_fp16 else "alone")
        folder.mkdir()
        if with_fp16:
            export_fp16(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_FP16, folder / "fp16", calib_dir), True)
        results.append(export_int8(tiny_fp32, _config(tiny_fp32, EngineKind.ONNX_INT8, folder / "int8", calib_dir, accuracy_target=1.0), True))
        shutil.rmtree(folder / "int8")
    alone, after = (r.manifest["int8"] for r in results)
    assert after["int8_mac_share"] == alone["int8_mac_share"] and after["int8_nodes"] == alone["int8_nodes"]
    assert [g["group"] for g in after["returned_groups"]] == [g["group"] for g in alone["returned_groups"]]
