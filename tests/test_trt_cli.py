"""lotus-inspect, lotus-build and lotus-export --engine trt-* on a machine without TensorRT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from trt_helpers import tiny_onnx_artifact

from lotus_deploy.cli import build_cmd, export_cmd, inspect_cmd
from lotus_deploy.core.artifacts import MANIFEST, ONNX_DATA, ONNX_FILE, read_manifest, write_manifest
from lotus_deploy.tensorrt.compat import tensorrt_usable

TRT_USABLE, TRT_REASON = tensorrt_usable()
needs_no_tensorrt = pytest.mark.skipif(TRT_USABLE, reason=f"TensorRT {TRT_REASON} is usable here: these tests check the no-TensorRT path")


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx_artifact(tmp_path_factory)


@pytest.fixture()
def onnx_copy(tiny_onnx: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(tiny_onnx, target)
    return target


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# -- lotus-inspect --------------------------------------------------------------------------------


def test_inspect_onnx_artifact(tiny_onnx: Path, capsys):
    assert inspect_cmd.main([str(tiny_onnx)]) == 0
    out = capsys.readouterr().out
    assert "kind       onnx (engine onnx, precision fp32)" in out
    assert "task       depth (output meaning: depth)" in out
    assert "source     builtin:tiny" in out
    assert "(read from model.onnx)" in out
    assert "input   image    float32  [batch, 3, height, width]" in out
    assert "output  depth    float32  [batch, 1, height, width]" in out
    assert "shape      batch dynamic, height dynamic, width dynamic" in out
    assert f"{ONNX_DATA}" in out and "verify     all files match the manifest" in out


def test_inspect_json(tiny_onnx: Path, capsys):
    assert inspect_cmd.main([str(tiny_onnx / ONNX_FILE), "--json"]) == 0  # a file inside the artifact works too
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "onnx" and report["failures"] == []
    assert [(r["direction"], r["name"], r["dtype"]) for r in report["io"]] == [("input", "image", "float32"), ("output", "depth", "float32")]
    assert {row["file"]: row["status"] for row in report["files"]} == {ONNX_FILE: "ok", ONNX_DATA: "ok"}


def test_inspect_detects_modified_file(onnx_copy: Path, capsys):
    data = onnx_copy / ONNX_DATA
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, different content
    data.write_bytes(bytes(raw))
    assert inspect_cmd.main([str(onnx_copy)]) == 2
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and "1 file(s) do NOT match the manifest" in captured.out
    line = _one_error_line(captured.err)
    assert line.startswith("lotus-inspect: error: ") and f"{data} no longer matches the sha256 in its manifest" in line
    assert "re-export" in line


def test_inspect_detects_truncated_and_missing_files(onnx_copy: Path, capsys):
    (onnx_copy / ONNX_DATA).unlink()
    with open(onnx_copy / ONNX_FILE, "ab") as handle:
        handle.write(b"\0")
    assert inspect_cmd.main([str(onnx_copy)]) == 2
    captured = capsys.readouterr()
    assert "2 file(s) do NOT match the manifest" in captured.out
    line = _one_error_line(captured.err)
    assert "bytes, its manifest says" in line and "(and 1 more file(s), listed above)" in line


def test_inspect_no_verify_skips_hashes(onnx_copy: Path, capsys):
    data = onnx_copy / ONNX_DATA
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF
    data.write_bytes(bytes(raw))
    assert inspect_cmd.main([str(onnx_copy), "--no-verify"]) == 0
    assert "size ok" in capsys.readouterr().out


def test_inspect_bare_onnx_file(onnx_copy: Path, capsys):
    (onnx_copy / MANIFEST).unlink()
    assert inspect_cmd.main([str(onnx_copy / ONNX_FILE)]) == 0
    out = capsys.readouterr().out
    assert "no manifest" in out and "output  depth" in out


def test_inspect_folder_without_manifest(tmp_path: Path, capsys):
    assert inspect_cmd.main([str(tmp_path)]) == 2
    assert "has no manifest.json" in _one_error_line(capsys.readouterr().err)
    assert inspect_cmd.main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in _one_error_line(capsys.readouterr().err)


def test_inspect_engine_manifest_without_tensorrt(onnx_copy: Path, tmp_path: Path, capsys):
    """Manifest-only fixture: the engine bytes are a placeholder, so I/O must come from the manifest."""
    if TRT_USABLE:
        pytest.skip("TensorRT is usable here: it would try to load the placeholder engine")
    parent = read_manifest(onnx_copy)
    folder = tmp_path / "engine"
    folder.mkdir()
    (folder / "model.engine").write_bytes(b"placeholder, not an engine")
    manifest = {**parent, "kind": "tensorrt", "engine": "trt-fp32", "shape": {"batch": 1, "height": 512, "width": 512},
                "tensorrt": {"version": "10.3.0.30", "compute_capability": "8.7", "gpu_name": "Orin", "strongly_typed": True,
                             "profile": {"input": "image", "min": [1, 3, 512, 512], "opt": [1, 3, 512, 512], "max": [1, 3, 512, 512]}}}
    manifest.pop("files")
    write_manifest(folder, manifest)
    assert inspect_cmd.main([str(folder)]) == 0
    out = capsys.readouterr().out
    assert "from the manifest's contract (TensorRT is not usable here" in out
    assert "profile    static image 1x3x512x512" in out
    assert "tensorrt   10.3.0.30, compute capability 8.7 (Orin)" in out


# -- lotus-build ----------------------------------------------------------------------------------


def test_build_print_trtexec_static(tiny_onnx: Path, capsys):
    assert build_cmd.main([str(tiny_onnx), "--print-trtexec", "--output", "out/eng"]) == 0
    captured = capsys.readouterr()
    line = captured.out.strip()
    assert line.startswith("trtexec ")
    assert f"--onnx={tiny_onnx / ONNX_FILE}" in line
    assert "--saveEngine=out/eng/model.engine" in line
    assert "--stronglyTyped --shapes=image:1x3x512x512 --memPoolSize=workspace:4096M --builderOptimizationLevel=3" in line
    assert "--noTF32" in line  # fp32 graph
    assert "--timingCacheFile=engines/timing.cache" in line
    assert "trtexec writes the engine only" in captured.err


def test_build_print_trtexec_dynamic(tiny_onnx: Path, capsys):
    args = [str(tiny_onnx), "--print-trtexec", "--dynamic", "--max-height", "1024", "--max-width", "1024", "--max-batch", "2",
            "--workspace-gib", "2", "--opt-level", "4", "--timing-cache", "/tmp/t.cache"]
    assert build_cmd.main(args) == 0
    line = capsys.readouterr().out.strip()
    for part in ("--minShapes=image:1x3x64x64", "--optShapes=image:1x3x512x512", "--maxShapes=image:2x3x1024x1024",
                 "--memPoolSize=workspace:2048M", "--builderOptimizationLevel=4", "--timingCacheFile=/tmp/t.cache"):
        assert part in line
    assert "engines/builtin-tiny-depth-trt-fp32/model.engine" in line  # default output folder


def test_build_bad_profile_is_one_line(tiny_onnx: Path, capsys):
    assert build_cmd.main([str(tiny_onnx), "--print-trtexec", "--max-height", "1024"]) == 2
    assert "only apply to a dynamic profile" in _one_error_line(capsys.readouterr().err)


@needs_no_tensorrt
def test_build_without_tensorrt_fails_cleanly(tiny_onnx: Path, tmp_path: Path, capsys):
    out = tmp_path / "engine"
    assert build_cmd.main([str(tiny_onnx), "--output", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("lotus-build: error: TensorRT is not usable here") and 'pip install "lotus-deploy[trt]"' in line
    assert not out.exists()


def test_build_rejects_non_onnx_artifact(tmp_path: Path, capsys):
    folder = tmp_path / "eng"
    folder.mkdir()
    (folder / "model.engine").write_bytes(b"placeholder")
    write_manifest(folder, {"kind": "tensorrt", "task": "depth", "precision": "fp16"})
    assert build_cmd.main([str(folder)]) == 2
    assert "is a tensorrt artifact, not an ONNX graph" in _one_error_line(capsys.readouterr().err)


# -- lotus-export --engine trt-* ------------------------------------------------------------------


@needs_no_tensorrt
@pytest.mark.parametrize("engine", ["trt-fp16", "trt-fp32", "trt-int8"])
def test_export_trt_without_tensorrt(engine: str, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "engine"
    code = export_cmd.main(["--model", "builtin:tiny", "--engine", engine, "--output", str(out)])
    assert code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("lotus-export: error: TensorRT is not usable here")
    assert 'pip install "lotus-deploy[trt]"' in line and "JetPack" in line
    assert not out.exists()
    assert not (tmp_path / "engines").exists()  # no parent ONNX was built either
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging folder left behind


@needs_no_tensorrt
@pytest.mark.parametrize("command", ["video", "infer"])
def test_bare_engine_file_reaches_the_engine_opener_for_videos_too(tmp_path: Path, capsys, command: str):
    """lotus-video and lotus-infer VIDEO open a bare engine (no manifest) as lotus-infer does for images:
    here that means asking for TensorRT, not refusing the file for lacking a manifest."""
    from extras import need

    need("cv2")
    import numpy as np

    from lotus_deploy.cli import infer_cmd, video_cmd
    from lotus_deploy.stream.video import VideoWriter

    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, fps=5) as writer:
        for index in range(2):
            writer.write(np.full((32, 48, 3), 60 * index, np.uint8))
    bare = tmp_path / "from-trtexec.plan"
    bare.write_bytes(b"not opened here: TensorRT is asked for first")
    main = video_cmd.main if command == "video" else infer_cmd.main
    assert main([str(clip), "-a", str(bare), "--backend", "tensorrt", "-o", str(tmp_path / "out"), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "TensorRT is not usable here" in line and MANIFEST not in line
