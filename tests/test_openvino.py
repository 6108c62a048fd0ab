"""OpenVINO IR artifacts and the openvino backend on builtin:tiny: contract, f32 parity against the
float64 oracle, bf16 where the CPU has it natively, fp16-compressed weights, errors (issue 15)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from extras import need, need_all

ov = need("openvino")
need_all("torch", "onnxruntime", "polygraphy")

from lotus_deploy.core.artifacts import PARITY, ArtifactError, open_artifact  # noqa: E402
from lotus_deploy.core.config import EngineKind, ExportConfig, ExportSettings, OpenVINOSettings  # noqa: E402
from lotus_deploy.core.errors import ConfigError, ParityError  # noqa: E402
from lotus_deploy.openvino import export_openvino  # noqa: E402
from lotus_deploy.openvino.device import has_native, make_core  # noqa: E402

NATIVE_BF16 = has_native(make_core(), "CPU", "bf16")
NO_BF16 = "this CPU has no native bf16 (OpenVINO's OPTIMIZATION_CAPABILITIES lacks BF16)"


def _config(parent: Path, out: Path, **kwargs: object) -> ExportConfig:
    return ExportConfig(model="builtin:tiny", engine=EngineKind.OPENVINO, output=out, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ir(tiny_depth_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ov") / "tiny-openvino"
    export_openvino(open_artifact(tiny_depth_onnx), _config(tiny_depth_onnx, out), True)
    return out


def test_ir_artifact_is_one_xml_and_bin_with_the_graph_contract(ir: Path) -> None:
    assert sorted(p.name for p in ir.iterdir()) == ["manifest.json", "model.bin", "model.xml", "parity.json"]
    artifact = open_artifact(ir)
    m = artifact.manifest
    assert (m["kind"], m["engine"], m["precision"]) == ("openvino", "openvino", "fp32")
    assert m["openvino"]["compress_to_fp16"] is False and set(m["files"]) == {"model.xml", "model.bin"}
    model = make_core().read_model(str(artifact.model_path))
    (image,) = model.inputs
    assert image.get_any_name() == "image" and image.get_element_type() == ov.Type.f32
    assert str(image.get_partial_shape()) == "[?,3,?,?]"  # dynamic, like its parent
    assert [o.get_any_name() for o in model.outputs] == ["depth"]
    # fp32 weights: the IR's weights are as large as the parent's external data
    parent = Path(m["parent"]["folder"])
    assert artifact.folder.joinpath("model.bin").stat().st_size >= 0.95 * parent.joinpath("model.onnx.data").stat().st_size


def test_f32_parity_against_the_float64_oracle_and_bf16_recorded(ir: Path) -> None:
    parity = json.loads((ir / PARITY).read_text())
    assert parity["passed"] and parity["precision_used"] == "f32" and parity["max_abs"] <= 1e-4
    assert parity["reference"].startswith("float64 oracle")
    if NATIVE_BF16:
        bf16 = parity["bf16"]
        assert bf16["precision_used"] == "bf16" and bf16["passed"] and bf16["tolerances"] == {"mean_abs_max": 1e-2, "p99_abs_max": 5e-2}
        assert bf16["max_abs"] > parity["max_abs"]  # really ran in bf16
    else:
        assert "no native bf16" in parity["bf16"]["skipped"]


@pytest.mark.parametrize("precision", ["f32", "bf16"])
def test_backend_runs_the_precision_it_was_asked_for(ir: Path, tiny_depth_onnx: Path, precision: str) -> None:
    """The precision OpenVINO actually used, read back with compiled.get_property(INFERENCE_PRECISION_HINT)."""
    import openvino.properties.hint as hints

    from lotus_deploy.runtime.openvino_backend import OpenVINOBackend
    from lotus_deploy.runtime.ort_backend import OnnxRuntimeBackend

    if precision == "bf16" and not NATIVE_BF16:
        pytest.skip(NO_BF16)
    backend = OpenVINOBackend(open_artifact(ir), precision=precision)
    assert backend.compiled.get_property(hints.inference_precision).get_type_name() == precision == backend.inference_precision
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 128)).astype(np.float32)
    out = backend.run(x)
    ref = OnnxRuntimeBackend(open_artifact(tiny_depth_onnx)).run(x)
    error = float(np.abs(out - ref).max())
    assert out.shape == ref.shape == (2, 1, 64, 128)
    assert error <= 1e-4 if precision == "f32" else 1e-4 < error < 0.2


def test_auto_precision_is_the_devices_default_and_recorded(ir: Path) -> None:
    from lotus_deploy.runtime.openvino_backend import OpenVINOBackend

    backend = OpenVINOBackend(open_artifact(ir))
    assert backend.describe()["precision_used"] == ("bf16" if NATIVE_BF16 else "f32")


def test_fp16_weights_only_on_request_and_judged_by_the_fp32_rule(tiny_depth_onnx: Path, tmp_path: Path) -> None:
    parent = open_artifact(tiny_depth_onnx)
    out = tmp_path / "fp16-weights"
    with pytest.raises(ParityError, match="fails the fp32 rule"):
        export_openvino(parent, _config(tiny_depth_onnx, out, openvino=OpenVINOSettings(compress_to_fp16=True)), True)
    assert not out.exists()  # nothing published
    relaxed = _config(tiny_depth_onnx, out, openvino=OpenVINOSettings(compress_to_fp16=True), export=ExportSettings(atol=5e-2))
    result = export_openvino(parent, relaxed, True)
    assert result.manifest["openvino"]["weights"] == "fp16" and result.parity.passed
    assert (out / "model.bin").stat().st_size < 0.6 * (tiny_depth_onnx / "model.onnx.data").stat().st_size


def test_bf16_miss_is_recorded_and_warned_but_publishes(tiny_depth_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    if not NATIVE_BF16:
        pytest.skip(NO_BF16)
    from lotus_deploy.openvino import convert
    from lotus_deploy.runtime.openvino_backend import OpenVINOBackend

    monkeypatch.setattr(convert, "bf16_gates", lambda: {"mean_abs": 1e-7, "p99_abs": 1e-7})  # gates no bf16 run can meet
    out = tmp_path / "strict-bf16"
    result = export_openvino(open_artifact(tiny_depth_onnx), _config(tiny_depth_onnx, out), True)
    parity = json.loads((out / PARITY).read_text())
    assert result.parity.passed and parity["bf16"]["passed"] is False and parity["bf16"]["failures"]
    assert "bf16 check missed its gates" in capsys.readouterr().err
    OpenVINOBackend(open_artifact(out), precision="bf16")
    assert "bf16 check missed its gates" in capsys.readouterr().err  # repeated at run time
    OpenVINOBackend(open_artifact(out), precision="f32")
    assert "bf16" not in capsys.readouterr().err


def test_absent_device_and_tampered_ir_get_one_line_errors(ir: Path, tmp_path: Path) -> None:
    from lotus_deploy.runtime.openvino_backend import OpenVINOBackend

    with pytest.raises(ConfigError, match="not available on this machine.*OpenVINO sees: .*CPU"):
        OpenVINOBackend(open_artifact(ir), device="GPU.9")
    copy = tmp_path / "tampered"
    shutil.copytree(ir, copy)
    data = bytearray((copy / "model.bin").read_bytes())
    data[100] ^= 0xFF
    (copy / "model.bin").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="no longer matches the sha256"):
        open_artifact(copy)


def test_parent_without_parity_evidence_is_refused_up_front(tiny_depth_onnx: Path, tmp_path: Path) -> None:
    bare = tmp_path / "no-evidence"
    shutil.copytree(tiny_depth_onnx, bare)
    manifest = json.loads((bare / "manifest.json").read_text())
    for name in ("polygraphy_inputs.json", "polygraphy_reference.json"):
        (bare / name).unlink()
        manifest["files"].pop(name, None)
    (bare / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="holds no parity evidence"):
        export_openvino(open_artifact(bare), _config(bare, tmp_path / "out"), True)
    assert not (tmp_path / "out").exists()


def test_runtime_needs_no_torch(ir: Path) -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np\n"
            "from lotus_deploy.runtime import DepthEstimator\n"
            f"est = DepthEstimator({str(ir)!r}, backend='openvino', precision='f32', processing_res=64)\n"
            "p = est.predict(np.full((48, 64, 3), 128, np.uint8)); print(p.values.shape)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "(48, 64)", done.stderr[-2000:]


def test_lotus_infer_records_the_precision_used(ir: Path, shared_images: Path, tmp_path: Path) -> None:
    from lotus_deploy.cli.infer_cmd import main

    image = sorted(shared_images.iterdir())[0]
    out = tmp_path / "out"
    assert main([str(image), "--artifact", str(ir), "--backend", "openvino", "--ov-precision", "f32", "--processing-res", "128",
                 "-o", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend_details"] == {"name": "openvino", "device": "CPU", "precision_requested": "f32", "precision_used": "f32",
                                          "artifact_precision": "fp32", "artifact_kind": "openvino"}
    assert (out / f"{image.stem}.npy").is_file()


def test_unknown_ov_precision_and_non_native_precision_are_refused(ir: Path) -> None:
    from lotus_deploy.runtime.openvino_backend import OpenVINOBackend

    with pytest.raises(ConfigError, match="--ov-precision 'fp64' is unknown"):
        OpenVINOBackend(open_artifact(ir), precision="fp64")
    if has_native(make_core(), "CPU", "f16"):
        pytest.skip("this CPU runs f16 natively: no non-native precision to refuse")
    with pytest.raises(ConfigError, match="has no native f16"):
        OpenVINOBackend(open_artifact(ir), precision="f16")


@pytest.fixture(scope="module")
def int8_ir(tiny_depth_onnx: Path, shared_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("nncf")
    from lotus_deploy.core.config import PrecisionSettings
    from lotus_deploy.openvino import export_openvino_int8

    out = tmp_path_factory.mktemp("ov-int8") / "tiny-openvino-int8"
    config = ExportConfig(model="builtin:tiny", engine=EngineKind.OPENVINO_INT8, output=out,
                          precision=PrecisionSettings(calib_dir=shared_images, calib_size=128))
    export_openvino_int8(open_artifact(tiny_depth_onnx), config, True)
    return out


def test_int8_ir_meets_the_int8_gates_with_int8_macs_left(int8_ir: Path) -> None:
    m = open_artifact(int8_ir).manifest
    assert (m["kind"], m["engine"], m["precision"]) == ("openvino", "openvino-int8", "int8")
    parity = json.loads((int8_ir / PARITY).read_text())
    assert parity["passed"] and parity["tolerances"] == {"absrel": 0.02, "mean_abs_max": 0.02, "p99_abs_max": 0.1}
    assert parity["mean_abs"] <= 0.02 * parity["output_range"] and parity["p99_abs"] <= 0.1 * parity["output_range"]
    info = m["int8"]
    assert 0 < info["int8_mac_share"] <= 1 and info["macs_per_image"]["int8"] > 0 and info["int8_ops"] > 0
    assert info["int8_mac_share"] == round(info["macs_per_image"]["int8"] / info["macs_per_image"]["total"], 4)
    assert any(k["rule"].startswith("first convolution") for k in info["kept_by_rule"])
    assert ("skipped" in parity["bf16"]) != NATIVE_BF16
    from lotus_deploy.core.cpu import cpu_identity
    from lotus_deploy.openvino.int8 import overflow_fix

    assert info["overflow_fix"] == overflow_fix(cpu_identity())


@pytest.mark.parametrize(("machine", "simd", "fix"), [
    ("x86_64", ["avx", "avx2", "fma"], "enable"),  # AVX2 only: u8 x s8 pairs summed in int16 saturate
    ("x86_64", ["avx2", "avx512f", "avx512_vnni"], "default"),
    ("x86_64", ["avx2", "avx_vnni"], "default"),
    ("AMD64", ["avx2"], "enable"),
    ("aarch64", ["asimd"], "default"),  # not x86: no VPMADDUBSW
])
def test_the_overflow_fix_follows_the_cpu(machine: str, simd: list[str], fix: str) -> None:
    from lotus_deploy.openvino.int8 import overflow_fix

    assert overflow_fix({"machine": machine, "simd": simd}) == fix


def test_bypassing_every_fake_quantize_gives_back_the_float_model(tiny_depth_onnx: Path, shared_images: Path) -> None:
    """The search returns groups to float by bypassing their FakeQuantize nodes and restoring their float
    weights: with all returned, the model is the fp32 graph again (bias correction is off), with none it is not."""
    need("nncf")
    from lotus_deploy.onnxrt import run_graph
    from lotus_deploy.openvino.device import compile_config
    from lotus_deploy.openvino.int8 import FakeQuantizeVariants, quantize
    from lotus_deploy.openvino.parity import run_compiled

    parent = open_artifact(tiny_depth_onnx)
    rng = np.random.default_rng(1)
    calib = [rng.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32) for _ in range(2)]
    float_model = ov.convert_model(str(parent.model_path))
    variants = FakeQuantizeVariants(make_core(), quantize(float_model, calib, [], True, "default"), float_model)
    assert len(variants.int8_ops()) > 50
    x = calib[0]
    ref = run_graph(parent.model_path, parent.shape, x)

    def error(nodes: set[str]) -> float:
        core = variants.core
        compiled = core.compile_model(variants.build(nodes), "CPU", compile_config(core, "CPU", "f32"))
        return float(np.abs(run_compiled(compiled, parent.shape, x) - ref).max())

    assert error(variants.int8_ops()) <= 1e-4 < error(set())


def test_bench_has_one_row_per_openvino_precision(ir: Path, tiny_depth_onnx: Path, tmp_path: Path) -> None:
    from lotus_deploy.bench.plan import check_backends, plan
    from lotus_deploy.cli.bench_cmd import main

    artifacts = [open_artifact(tiny_depth_onnx), open_artifact(ir)]
    candidates = plan(["onnxruntime", "openvino:f32", "openvino:bf16"], artifacts)
    assert [(c.backend, c.options, c.artifact.kind if c.artifact else None) for c in candidates] == [
        ("onnxruntime", {}, "onnx"), ("openvino", {"precision": "f32"}, "openvino"), ("openvino", {"precision": "bf16"}, "openvino")]
    assert [c.backend for c in plan(["openvino"], artifacts[:1])] == ["openvino"]  # ONNX too, when no IR is given
    with pytest.raises(ConfigError, match="only openvino takes a precision"):
        check_backends(["onnxruntime:f32"])
    with pytest.raises(ConfigError, match="only openvino takes a precision"):
        check_backends(["openvino:fp64"])
    backends = ["--backend", "onnxruntime", "--backend", "openvino:f32"] + (["--backend", "openvino:bf16"] if NATIVE_BF16 else [])
    assert main(["--artifact", str(tiny_depth_onnx), "--artifact", str(ir), *backends, "--size", "64", "--iterations", "1", "--warmup", "0",
                 "--matmul-size", "0", "--reference", "none", "--no-chart", "-o", str(tmp_path), "--quiet"]) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["results"]
    used = {row["label"]: (row["precision"], row["backend_details"].get("precision_used")) for row in rows}
    assert used["openvino:f32 fp32 IR"] == ("f32", "f32")
    if NATIVE_BF16:
        assert used["openvino:bf16 fp32 IR"] == ("bf16", "bf16")
    assert all("stats" in row for row in rows)


def test_lotus_inspect_reads_the_ir_and_explains_polygraphy(ir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lotus_deploy.cli.inspect_cmd import main

    assert main([str(ir)]) == 0
    out = capsys.readouterr().out
    assert "read from model.xml with OpenVINO" in out and "image    f32      [?, 3, ?, ?]" in out
    assert ("bf16 check skipped" in out) != NATIVE_BF16
    assert main([str(ir), "--polygraphy"]) == 2
    assert "Polygraphy cannot run" in capsys.readouterr().err
