"""Results folders of lotus-video and lotus-bench keep the user's files; dependencies are checked before
any work; closed pipes, repair hints and no-op flags behave (issue 10, items 1, 11 and the extras)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from extras import need
from fs_helpers import REPO, snapshot

from lotus_deploy.cli import bench_cmd, export_cmd
from lotus_deploy.core import deps


def _user_files(folder: Path) -> dict[str, str]:
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    (folder / "sub" / "000000.npy").write_bytes(b"not ours")
    (folder / "bench.csv").write_text("a,b\n")
    return snapshot(folder)


def test_lotus_bench_keeps_every_file_already_in_its_output(tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("onnxruntime")
    out = tmp_path / "out"
    before = _user_files(out)
    argv = ["--artifact", str(tiny_depth_onnx), "--backend", "onnxruntime", "--size", "64", "--iterations", "1", "--warmup", "0",
            "--matmul-size", "0", "--reference", "none", "--no-chart", "-o", str(out), "--quiet"]
    assert bench_cmd.main(argv) == 0, capsys.readouterr().err
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k in before} == before and {"bench.json", "bench.md"} <= set(after)
    capsys.readouterr()
    assert bench_cmd.main(argv) == 2  # its own reports exist: refused without --force, before any work
    assert "already exists" in capsys.readouterr().err and snapshot(out) == after
    assert bench_cmd.main([*argv, "--force"]) == 0
    assert {k: v for k, v in snapshot(out).items() if k in before} == before


def test_lotus_video_keeps_every_file_already_in_its_output(tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("cv2")
    from lotus_deploy.cli import video_cmd
    from lotus_deploy.stream.video import VideoWriter

    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, fps=5) as writer:
        for index in range(3):
            writer.write(np.full((32, 48, 3), 40 * index, np.uint8))
    out = tmp_path / "out"
    before = _user_files(out)
    (out / "frames").mkdir()
    (out / "frames" / "keep.txt").write_text("mine")
    before = snapshot(out)
    argv = [str(clip), "-a", str(tiny_depth_onnx), "-o", str(out), "--processing-res", "64", "--quiet"]
    assert video_cmd.main(argv) == 0
    assert video_cmd.main([*argv, "--force"]) == 0
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert {"depth.mp4", "summary.json", "frames/000000.npy"} <= set(after)


def test_missing_dependencies_are_named_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = deps.available
    monkeypatch.setattr(deps, "available", lambda module: module != "onnxruntime" and real(module))
    out = tmp_path / "art"
    assert export_cmd.main(["--model", "builtin:tiny", "--output", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "onnxruntime" in err and 'lotus-deploy[ort]' in err and not out.exists()
    with pytest.raises(deps.DependencyError, match="onnxconverter-common"):
        monkeypatch.setattr(deps, "available", lambda module: module != "onnxconverter_common")
        deps.require_all(["onnx", "onnxconverter_common"], "--engine onnx-fp16")


def test_flags_that_do_nothing_for_an_engine_warn_not_fail(tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an existing artifact without --force: the command stops right after the warnings (nothing is exported)
    code = export_cmd.main(["--model", "builtin:tiny", "--output", str(tiny_depth_onnx), "--calib-dir", str(tmp_path),
                            "--workspace-gib", "2", "--quiet"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and err[-1].startswith("lotus-export: error:")
    warnings = [line for line in err if line.startswith("lotus-export: warning:")]
    assert any("--calib-dir" in line and "--engine onnx" in line for line in warnings)
    assert any("--workspace-gib" in line and "trt-*" in line for line in warnings)


def test_inspect_into_a_closed_pipe_has_no_traceback(tiny_depth_onnx: Path) -> None:
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from lotus_deploy.cli.inspect_cmd import main; "
            f"raise SystemExit(main([{str(tiny_depth_onnx)!r}, '--json']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()  # like `| head -c 10`
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
    assert proc.returncode in (0, 141)


def test_a_broken_builtin_model_says_how_to_regenerate_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lotus_deploy.core.cache import cache_root
    from lotus_deploy.model.checkpoint import repair_hint

    monkeypatch.setenv("LOTUS_DEPLOY_HOME", str(tmp_path))
    builtin = cache_root() / "builtin" / "tiny-v1"
    assert "generated again on next use" in repair_hint(builtin) and "re-download" not in repair_hint(builtin)
    assert "re-download" in repair_hint(tmp_path / "my-checkpoint")
    broken = builtin / "unet"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{ not json")
    from lotus_deploy.core.errors import CheckpointError
    from lotus_deploy.model.checkpoint import validate_lotus_configs

    with pytest.raises(CheckpointError, match="generated again"):
        validate_lotus_configs(builtin)


def test_summary_json_of_a_results_folder_is_valid_json(tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from lotus_deploy.cli import infer_cmd

    Image.new("RGB", (30, 20)).save(tmp_path / "a.png")
    assert infer_cmd.main([str(tmp_path / "a.png"), "-a", str(tiny_depth_onnx), "-o", str(tmp_path / "o"), "--processing-res", "64", "--quiet"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["counts"]["done"] == 1 and summary["failed"] == [] and summary["interrupted"] is False


def test_lotus_deploy_home_is_the_one_cache_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from lotus_deploy.core import cache

    monkeypatch.delenv("LOTUS_DEPLOY_HOME", raising=False)
    monkeypatch.setenv("LOTUS_DEPLOY_CACHE", str(tmp_path / "old"))
    monkeypatch.setattr(cache, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.cache_root() == tmp_path / "old"
        assert cache.cache_root() == tmp_path / "old"
    assert len([w for w in caught if "LOTUS_DEPLOY_HOME" in str(w.message)]) == 1  # one line, once
    monkeypatch.setenv("LOTUS_DEPLOY_HOME", str(tmp_path / "new"))
    assert cache.cache_root() == tmp_path / "new"
