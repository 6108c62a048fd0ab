"""Polygraphy as the parity companion: every artifact saves its parity inputs and reference outputs in
Polygraphy's format, and ``lotus-inspect --polygraphy`` prints ``polygraphy run`` lines that re-check
them with the artifact's own tolerances, from any directory (on this CPU machine: without ``--trt``)."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from extras import need_all
from fs_helpers import snapshot
from polygraphy_helpers import run_line

from lotus_deploy.cli import inspect_cmd
from lotus_deploy.core.artifacts import MANIFEST, read_manifest, write_manifest
from lotus_deploy.core.polygraphy_files import INPUTS_FILE, REFERENCE_FILE, ParityFiles, polygraphy_commands, save_parity_files

need_all("polygraphy", "onnxruntime")


def _lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert inspect_cmd.main(["--polygraphy", *argv]) == 0
    return capsys.readouterr().out.strip().splitlines()


def _old_artifact(tiny_depth_onnx: Path, tmp_path: Path) -> Path:
    """A copy of the artifact as lotus-deploy wrote it before the parity files existed."""
    old = tmp_path / "old-artifact"
    shutil.copytree(tiny_depth_onnx, old)
    (old / INPUTS_FILE).unlink()
    (old / REFERENCE_FILE).unlink()
    manifest = read_manifest(old)
    for key in ("files", "schema_version", "created"):
        manifest.pop(key)
    write_manifest(old, manifest)
    return old


def test_export_saves_parity_files_that_the_manifest_lists(tiny_depth_onnx: Path):
    files = read_manifest(tiny_depth_onnx)["files"]
    assert INPUTS_FILE in files and REFERENCE_FILE in files
    feed = json.loads((tiny_depth_onnx / INPUTS_FILE).read_text())
    assert isinstance(feed, list) and len(feed) == 1  # one iteration: the batch parity ran


def test_printed_gate_line_passes_from_another_directory(tiny_depth_onnx: Path, tmp_path: Path, capsys):
    lines = _lines(capsys, str(tiny_depth_onnx))
    first = shlex.split(lines[0])
    parity = json.loads((tiny_depth_onnx / "parity.json").read_text())
    assert first[:3] == ["polygraphy", "run", str((tiny_depth_onnx / "model.onnx").resolve())]
    assert {"--trt", "--onnxrt"} <= set(first)
    assert first[first.index("--atol") + 1] == repr(parity["tolerances"]["max_abs"]) and first[first.index("--rtol") + 1] == "0.0"
    assert all(Path(first[first.index(flag) + 1]).is_absolute() for flag in ("--load-inputs", "--load-outputs"))
    assert "--onnx-outputs" in lines[-1] and "--trt-outputs" in lines[-1]  # then the layer-wise comparison
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_line(lines[0], cwd=elsewhere)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "PASSED" in result.stdout


def test_gate_line_fails_when_the_reference_is_off_by_more_than_the_tolerance(tiny_depth_onnx: Path, tmp_path: Path, capsys):
    """The printed check can fail: a reference shifted by 1e-3 (10x the fp32 rule) is refused."""
    from polygraphy.comparator import RunResults

    line = _lines(capsys, str(tiny_depth_onnx))[0]
    loaded = RunResults.load(str(tiny_depth_onnx / REFERENCE_FILE))
    reference = np.asarray(loaded[0][1][0]["depth"])
    # only the reference file is swapped in the line: the original inputs are used
    shifted = save_parity_files(tmp_path / "shifted", np.zeros((1, 3, 64, 64), np.float32), reference + 1e-3, "depth", "shifted")
    bad = line.replace(str((tiny_depth_onnx / REFERENCE_FILE).resolve()), str(shifted.reference))
    result = run_line(bad, cwd=tmp_path)
    assert result.returncode != 0 and "FAILED" in result.stdout


def test_artifact_without_parity_files_is_never_written_into(tiny_depth_onnx: Path, tmp_path: Path, capsys):
    old = _old_artifact(tiny_depth_onnx, tmp_path)
    before = snapshot(old)
    assert inspect_cmd.main(["--polygraphy", str(old)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--polygraphy-out" in err[0] and "--force" in err[0]
    assert snapshot(old) == before


def test_polygraphy_out_recomputes_the_files_elsewhere_and_the_line_passes(tiny_depth_onnx: Path, tmp_path: Path, capsys):
    need_all("torch", "diffusers")
    old = _old_artifact(tiny_depth_onnx, tmp_path)
    before = snapshot(old)
    out = tmp_path / "parity-files"
    lines = _lines(capsys, str(old), "--polygraphy-out", str(out))
    assert snapshot(old) == before
    assert sorted(p.name for p in out.iterdir()) == sorted([INPUTS_FILE, REFERENCE_FILE])
    assert str(out.resolve() / REFERENCE_FILE) in lines[0]
    result = run_line(lines[0], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]
    # a second run refuses to write into the now non-empty folder
    assert inspect_cmd.main(["--polygraphy", str(old), "--polygraphy-out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_polygraphy_out_needs_polygraphy_flag(tiny_depth_onnx: Path, tmp_path: Path, capsys):
    assert inspect_cmd.main([str(tiny_depth_onnx), "--polygraphy-out", str(tmp_path / "x")]) == 2
    assert "add --polygraphy" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_engine_lines_run_the_engine_and_compare_layers_on_the_parent_graph(tmp_path: Path):
    engine, parent = tmp_path / "e" / "model.engine", tmp_path / "p" / "model.onnx"
    files = ParityFiles.under(tmp_path / "e")
    checks = [{"check_error_stat": "mean", "atol": 0.002, "rtol": 0.0},
              {"check_error_stat": "quantile", "error_quantile": 0.99, "atol": 0.01, "rtol": 0.0}]
    lines = polygraphy_commands(engine, files, checks, engine=True, layerwise_onnx=parent)
    assert len(lines) == 3
    for line, stat in zip(lines[:2], ("mean", "quantile"), strict=True):
        argv = shlex.split(line)
        assert argv[2] == str(engine) and argv[3:6] == ["--model-type", "engine", "--trt"] and "--onnxrt" not in argv
        assert argv[argv.index("--check-error-stat") + 1] == stat
    assert "--error-quantile 0.99" in lines[1]
    assert shlex.split(lines[2])[2] == str(parent) and "--onnx-outputs" in lines[2]
    assert len(polygraphy_commands(engine, files, checks, engine=True)) == 2  # no parent graph: no layer-wise line


def test_old_parity_reports_still_give_their_tolerances():
    from lotus_deploy.core.polygraphy_files import checks_from_parity

    checks = checks_from_parity({"tolerances": {"mean_abs_max": 0.002, "p99_abs_max": 0.01}})
    assert [c["check_error_stat"] for c in checks] == ["mean", "quantile"]
    assert checks_from_parity(None) == [] and checks_from_parity({"tolerances": {}}) == []


def test_artifact_exported_without_parity_is_one_line_error(tiny_depth_onnx: Path, tmp_path: Path, capsys):
    copy = tmp_path / "no-parity"
    shutil.copytree(tiny_depth_onnx, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest.pop("parity")
    (copy / MANIFEST).write_text(json.dumps(manifest))
    assert inspect_cmd.main(["--polygraphy", str(copy)]) == 2
    assert "no parity record" in capsys.readouterr().err
