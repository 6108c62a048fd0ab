"""Artifact folders are ours or refused: no user file is ever lost, concurrent exports never replace each
other, parents stay read-only, files follow the umask, and manifests are validated on open (issue 10)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from extras import need

need("onnx")
need("onnxruntime")

from fs_helpers import REPO, make_messy_tree, read_only, run_cli, snapshot  # noqa: E402

from lotus_deploy.core.artifacts import MANIFEST, check_artifact_output, foreign_entries, holds_artifact, open_artifact  # noqa: E402
from lotus_deploy.core.errors import ArtifactError, ArtifactExistsError, OutputPathError  # noqa: E402
from lotus_deploy.core.safe_io import lock_path, publish_lock  # noqa: E402


def _one_line_error(result: subprocess.CompletedProcess[str], prog: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith(f"{prog}: warning:")]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error:") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# ------------------------------------------------------------------- item 1: foreign folders are refused


@pytest.mark.parametrize("engine", ["onnx", "onnx-fp16"])
@pytest.mark.parametrize("force", [False, True])
def test_export_refuses_a_folder_that_is_not_an_artifact(tmp_path: Path, engine: str, force: bool) -> None:
    target = tmp_path / "mine"
    before = make_messy_tree(target)
    result = run_cli("export_cmd", "--model", "builtin:tiny", "--engine", engine, "--output", str(target), "--quiet",
                     *(["--force"] if force else []), cwd=tmp_path)
    assert "not a lotus-deploy artifact" in _one_line_error(result, "lotus-export")
    assert snapshot(target) == before
    assert not (tmp_path / "engines").exists()  # refused before any parent was built
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder, no lock left behind


def test_export_to_the_current_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"x")
    before = snapshot(tmp_path)
    result = run_cli("export_cmd", "--model", "builtin:tiny", "--output", ".", "--quiet", cwd=tmp_path)
    assert "not a lotus-deploy artifact" in _one_line_error(result, "lotus-export")
    assert snapshot(tmp_path) == before and not list(tmp_path.parent.glob(f".{tmp_path.name}.*"))


def test_build_refuses_a_folder_that_is_not_an_artifact(tiny_depth_onnx: Path, tmp_path: Path) -> None:
    target = tmp_path / "mine"
    before = make_messy_tree(target)
    result = run_cli("build_cmd", str(tiny_depth_onnx), "--output", str(target), "--force", "--quiet")
    assert "not a lotus-deploy artifact" in _one_line_error(result, "lotus-build")
    assert snapshot(target) == before


def test_precision_stage_refuses_a_folder_that_is_not_an_artifact(tiny_depth_onnx: Path, tmp_path: Path) -> None:
    from lotus_deploy.core.config import EngineKind, ExportConfig
    from lotus_deploy.precision import export_int8

    target = tmp_path / "mine"
    before = make_messy_tree(target)
    config = ExportConfig(model="builtin:tiny", engine=EngineKind.ONNX_INT8, output=target, force=True)
    with pytest.raises(ArtifactExistsError, match="not a lotus-deploy artifact"):
        export_int8(open_artifact(tiny_depth_onnx), config, True)
    assert snapshot(target) == before


def test_an_artifact_with_a_foreign_file_is_not_replaced_even_with_force(tiny_depth_onnx: Path, tmp_path: Path) -> None:
    copy = tmp_path / "art"
    shutil.copytree(tiny_depth_onnx, copy)
    assert holds_artifact(copy) and foreign_entries(copy) == []
    check_artifact_output(copy, force=True)  # ours: replaceable with --force
    with pytest.raises(ArtifactExistsError, match="already holds an artifact"):
        check_artifact_output(copy, force=False)
    (copy / "notes.txt").write_text("mine")
    assert foreign_entries(copy) == ["notes.txt"] and not holds_artifact(copy)
    with pytest.raises(ArtifactExistsError, match=r"not a lotus-deploy artifact \(notes.txt\)"):
        check_artifact_output(copy, force=True)
    (copy / "notes.txt").unlink()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactExistsError, match="is not a folder"):
        check_artifact_output(tmp_path / "file", force=True)


def test_an_empty_folder_and_our_artifact_with_force_are_written(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    first = run_cli("export_cmd", "--model", "builtin:tiny", "--output", str(target), "--no-parity", "--quiet")
    assert first.returncode == 0, first.stderr
    again = run_cli("export_cmd", "--model", "builtin:tiny", "--output", str(target), "--no-parity", "--quiet", "--force")
    assert again.returncode == 0, again.stderr
    assert holds_artifact(target) and not list(tmp_path.glob(".*"))


# ------------------------------------------------------------------- item 2: one export per folder at a time


def test_a_held_lock_makes_a_second_export_fail_in_one_line(tmp_path: Path) -> None:
    target = tmp_path / "art"
    with publish_lock(target):
        result = run_cli("export_cmd", "--model", "builtin:tiny", "--output", str(target), "--quiet")
    assert "another lotus-deploy process is writing" in _one_line_error(result, "lotus-export")
    assert not target.exists() and not lock_path(target.absolute()).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    target = tmp_path / "art"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    import socket

    lock_path(target.absolute()).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    with publish_lock(target) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_two_concurrent_exports_to_one_folder_exactly_one_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "art"
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda: results.append(run_cli("export_cmd", "--model", "builtin:tiny", "--output", str(target),
                                                                            "--quiet"))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [(r.returncode, r.stderr[-300:]) for r in results]
    loser = next(r for r in results if r.returncode == 2)
    line = _one_line_error(loser, "lotus-export")
    assert "another lotus-deploy process is writing" in line or "already holds an artifact" in line
    assert holds_artifact(target) and open_artifact(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


# ------------------------------------------------------------------- item 6: permissions follow the umask


def _modes(root: Path) -> tuple[set[int], set[int]]:
    files = {stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}
    dirs = {stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")] if p.is_dir()}
    return files, dirs


def test_every_file_written_follows_the_umask(tmp_path: Path) -> None:
    home = tmp_path / "home"  # a fresh built-in model cache, generated under this umask
    art = tmp_path / "art"
    export = run_cli("export_cmd", "--model", "builtin:tiny", "--output", str(art), "--split", "--quiet", umask=0o022,
                     env={"LOTUS_DEPLOY_HOME": str(home)})
    assert export.returncode == 0, export.stderr
    assert (art / "model.onnx.data").is_file() and (art / "split" / "unet.onnx.data").is_file()
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    Image.new("RGB", (40, 30), (90, 120, 200)).save(images / "a.png")
    out = tmp_path / "out"
    infer = run_cli("infer_cmd", str(images), "-a", str(art), "-o", str(out / "nested"), "--processing-res", "64", "--quiet", umask=0o022)
    assert infer.returncode == 0, infer.stderr
    assert (out / "nested" / "summary.json").is_file()
    for root in (art, out, home / "builtin"):
        files, dirs = _modes(root)
        assert files == {0o644}, (root, sorted(map(oct, files)))
        assert dirs == {0o755}, (root, sorted(map(oct, dirs)))
    # and another umask is followed as well (not a fixed 0644)
    strict = run_cli("infer_cmd", str(images), "-a", str(art), "-o", str(tmp_path / "strict"), "--processing-res", "64", "--quiet", umask=0o027)
    assert strict.returncode == 0, strict.stderr
    assert _modes(tmp_path / "strict") == ({0o640}, {0o750})


# ------------------------------------------------------------------- item 8: parents are read-only to us


def test_int8_from_a_read_only_parent_writes_nothing_into_it(tiny_depth_onnx: Path, tmp_path: Path) -> None:
    from PIL import Image

    from lotus_deploy.core.config import EngineKind, ExportConfig, ExportSettings, PrecisionSettings
    from lotus_deploy.export.parity_inputs import synthetic_images
    from lotus_deploy.precision import export_int8

    parent = tmp_path / "store" / "fp32"
    shutil.copytree(tiny_depth_onnx, parent)
    calib = tmp_path / "calib"
    calib.mkdir()
    for index, img in enumerate(synthetic_images(3, size=(96, 128), seed=3)):
        Image.fromarray(img).save(calib / f"{index}.png")
    before = snapshot(parent)
    config = ExportConfig(model="builtin:tiny", engine=EngineKind.ONNX_INT8, output=tmp_path / "int8", export=ExportSettings(parity_size=64), precision=PrecisionSettings(calib_dir=calib, calib_count=3, calib_size=64, accuracy_target=1.0))
    with read_only(parent):
        export_int8(open_artifact(parent), config, True)
    assert snapshot(parent) == before
    assert holds_artifact(tmp_path / "int8")


# ------------------------------------------------------------------- item 9: manifests validated on open


@pytest.mark.parametrize(("content", "expected"), [
    ("[]", "JSON list, not an object"),
    ("null", "JSON NoneType, not an object"),
    ("PATCH_TASK", "\"task\" is 'banana'"),
    ("DROP_FILES", "\"files\" is missing"),
    ("BAD_FILES", "has no valid \"sha256\""),
    ("ESCAPING", "leaves the artifact folder"),
])
def test_malformed_manifests_fail_in_one_line(tiny_depth_onnx: Path, tmp_path: Path, content: str, expected: str) -> None:
    copy = tmp_path / "art"
    shutil.copytree(tiny_depth_onnx, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    if content == "PATCH_TASK":
        manifest["task"] = "banana"
    elif content == "DROP_FILES":
        del manifest["files"]
    elif content == "BAD_FILES":
        manifest["files"]["model.onnx"]["sha256"] = 42
    elif content == "ESCAPING":
        manifest["files"]["../outside"] = manifest["files"]["model.onnx"]
    text = json.dumps(manifest) if content.isupper() else content
    (copy / MANIFEST).write_text(text)
    with pytest.raises(ArtifactError, match="not a valid lotus-deploy manifest") as info:
        open_artifact(copy)
    assert expected in str(info.value) and "\n" not in str(info.value)
    for module, prog in (("inspect_cmd", "lotus-inspect"), ("infer_cmd", "lotus-infer")):
        extra = [str(REPO / "examples" / "images"), "-o", str(tmp_path / "o")] if module == "infer_cmd" else []
        args = [str(copy)] if module == "inspect_cmd" else ["-a", str(copy)]
        result = run_cli(module, *extra, *args)
        assert expected in _one_line_error(result, prog)


def test_truncated_split_graph_fails_verification(tmp_path: Path) -> None:
    art = tmp_path / "art"
    from lotus_deploy.core.config import ExportConfig, ExportSettings
    from lotus_deploy.export.fused import export_onnx

    export_onnx(ExportConfig(model="builtin:tiny", output=art, export=ExportSettings(split=True, parity=False)), quiet=True)
    open_artifact(art)
    data = art / "split" / "unet.onnx.data"
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(ArtifactError, match="unet.onnx.data has"):
        open_artifact(art)
    result = run_cli("inspect_cmd", str(art))
    assert "split/unet.onnx.data" in _one_line_error(result, "lotus-inspect")


def test_output_that_cannot_be_created_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = run_cli("export_cmd", "--model", "builtin:tiny", "--output", str(tmp_path / "file" / "art"), "--quiet")
    assert "not a folder" in _one_line_error(result, "lotus-export")
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        result = run_cli("export_cmd", "--model", "builtin:tiny", "--output", str(locked / "art"), "--quiet")
        line = _one_line_error(result, "lotus-export")
    assert str(locked) in line
    with pytest.raises(OutputPathError):
        from lotus_deploy.core.safe_io import check_writable_folder

        check_writable_folder(tmp_path / "file")
