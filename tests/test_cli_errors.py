"""Every expected failure gets one line (cause — fix), exit code 2, and leaves what was on disk intact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from extras import need_all
from lotus_checkpoints import make_unseen_checkpoint, put_in_hf_cache

from lotus_deploy.cli import export_cmd, infer_cmd
from lotus_deploy.core.artifacts import ONNX_DATA, open_artifact
from lotus_deploy.core.errors import ArtifactError


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture()
def artifact_copy(tiny_depth_onnx: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(tiny_depth_onnx, target)
    return target


def test_corrupt_image(tmp_path: Path, tiny_depth_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    assert infer_cmd.main([str(bad), "-a", str(tiny_depth_onnx), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    _one_line_error(capsys, "broken.jpg")
    assert not (tmp_path / "out" / "broken.npy").exists()


def test_folder_without_images(tmp_path: Path, tiny_depth_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    assert infer_cmd.main([str(empty), "-a", str(tiny_depth_onnx), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    _one_line_error(capsys, "empty")


def test_missing_input_and_missing_artifact(tmp_path: Path, tiny_depth_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert infer_cmd.main([str(tmp_path / "nope.jpg"), "-a", str(tiny_depth_onnx), "--quiet"]) == 2
    _one_line_error(capsys, "nope.jpg", "does not exist")
    assert infer_cmd.main([str(tmp_path), "-a", str(tmp_path / "no-artifact"), "--quiet"]) == 2
    _one_line_error(capsys, "no-artifact")


def test_folder_that_is_not_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_all("torch", "diffusers", "onnx", "onnxruntime")
    folder = tmp_path / "random-folder"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    assert export_cmd.main(["--model", str(folder), "--task", "depth", "--output", str(tmp_path / "o"), "--quiet"]) == 2
    _one_line_error(capsys, "not a Lotus-D checkpoint", "unet/config.json")
    assert not (tmp_path / "o").exists()


def test_lotus_g_or_plain_sd_unet_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_all("torch", "diffusers", "onnx", "onnxruntime")
    folder = make_unseen_checkpoint(tmp_path / "ckpt")
    config = json.loads((folder / "unet" / "config.json").read_text())
    config["class_embed_type"] = None
    (folder / "unet" / "config.json").write_text(json.dumps(config))
    assert export_cmd.main(["--model", str(folder), "--task", "depth", "--output", str(tmp_path / "o"), "--quiet"]) == 2
    _one_line_error(capsys, "not a Lotus UNet")


def test_existing_artifact_is_refused_then_replaced_only_with_force(artifact_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (artifact_copy / "manifest.json").read_bytes()
    assert export_cmd.main(["--model", "builtin:tiny", "--output", str(artifact_copy), "--quiet"]) == 2
    _one_line_error(capsys, "already holds an artifact", "--force")
    assert (artifact_copy / "manifest.json").read_bytes() == before
    # A forced export that fails (impossible tolerance) must leave the old artifact as it was.
    assert export_cmd.main(["--model", "builtin:tiny", "--output", str(artifact_copy), "--force", "--atol", "1e-12", "--quiet"]) == 2
    _one_line_error(capsys, "fails parity")
    assert (artifact_copy / "manifest.json").read_bytes() == before
    open_artifact(artifact_copy)
    assert not [p for p in artifact_copy.parent.iterdir() if p.name.startswith(".")], "staging folders must be cleaned up"


def test_missing_external_data(artifact_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (artifact_copy / ONNX_DATA).unlink()
    with pytest.raises(ArtifactError, match="model.onnx.data is missing"):
        open_artifact(artifact_copy)
    assert infer_cmd.main([str(artifact_copy), "-a", str(artifact_copy), "--quiet"]) == 2
    _one_line_error(capsys, "model.onnx.data is missing")


def test_modified_weights_fail_the_hash(artifact_copy: Path) -> None:
    data = artifact_copy / ONNX_DATA
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="no longer matches the sha256"):
        open_artifact(artifact_copy)


def test_static_graph_and_unknown_backend(artifact_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert infer_cmd.main([str(artifact_copy), "-a", str(artifact_copy), "--backend", "warp-drive", "--quiet"]) == 2
    _one_line_error(capsys, "unknown backend", "onnxruntime")


def test_bad_flags_are_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_all("torch", "diffusers", "onnx", "onnxruntime")
    assert export_cmd.main(["--model", "builtin:tiny", "--height", "100", "--width", "128", "--output", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "multiple of 64")
    assert export_cmd.main(["--model", "builtin:nope", "--output", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "builtin:tiny")
    assert export_cmd.main(["--model", "jingheya/lotus-normal-d-v1-1", "--task", "depth"]) == 2
    _one_line_error(capsys, "contradicts")


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lotus_deploy.cli.export_cmd", *args], env=env, capture_output=True, text=True, timeout=600)


def test_hub_id_exports_offline_from_the_cache(tmp_path: Path) -> None:
    need_all("torch", "diffusers", "onnx", "onnxruntime")
    checkpoint = make_unseen_checkpoint(tmp_path / "ckpt")
    hf_home = tmp_path / "hf"
    put_in_hf_cache(checkpoint, hf_home, "lotus-tests/tiny-lotus-depth")
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "by-id"
    done = _cli(["--model", "lotus-tests/tiny-lotus-depth", "--output", str(out), "--quiet"], env)
    assert done.returncode == 0, done.stderr
    artifact = open_artifact(out)
    assert artifact.source_model == "lotus-tests/tiny-lotus-depth" and artifact.task.value == "depth"


def test_hub_id_without_cache_or_network_names_the_builtins(tmp_path: Path) -> None:
    need_all("torch", "diffusers", "onnx", "onnxruntime")
    env = {**os.environ, "HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_OFFLINE": "1"}
    done = _cli(["--model", "jingheya/lotus-depth-d-v1-0", "--output", str(tmp_path / "o"), "--quiet"], env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "not in the local Hugging Face cache" in lines[0] and "builtin:tiny" in lines[0] and "builtin:full" in lines[0]
    assert not (tmp_path / "o").exists()
