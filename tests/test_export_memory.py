"""Memory discipline of lotus-export: the need is estimated and checked before any work, the peak is
reported after, each step's peak can be recorded, and the float64 oracle never holds a float64 copy of
the whole UNet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from extras import need_all
from fs_helpers import snapshot

from lotus_deploy.cli import export_cmd
from lotus_deploy.core import memory
from lotus_deploy.core.config import EngineKind, ExportConfig
from lotus_deploy.pipeline import MEMORY_FACTORS, fp32_weight_bytes, stages_to_run


def _fake_available(monkeypatch: pytest.MonkeyPatch, value: int) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: value)


def test_export_is_refused_before_any_work_when_memory_is_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    need_all("torch", "diffusers")
    weights = fp32_weight_bytes(ExportConfig(model="builtin:tiny"))
    assert weights and weights > 0
    _fake_available(monkeypatch, int(weights * MEMORY_FACTORS[EngineKind.ONNX]) - 1)
    out = tmp_path / "out"
    (tmp_path / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    assert export_cmd.main(["--model", "builtin:tiny", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs about" in err[0] and "available" in err[0] and "--skip-memory-check" in err[0]
    assert snapshot(tmp_path) == before and not out.exists()


def test_skip_memory_check_exports_anyway_and_reports_the_peak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    need_all("torch", "diffusers", "onnx", "onnxslim", "onnxruntime", "polygraphy")
    _fake_available(monkeypatch, 1)
    out, report = tmp_path / "out", tmp_path / "stages.json"
    assert export_cmd.main(["--model", "builtin:tiny", "--output", str(out), "--skip-memory-check", "--stage-report", str(report), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["memory"]["peak_resident_gib"] > 0 and summary["memory"]["fp32_weights_gib"] > 0
    stages = json.loads(report.read_text())
    names = [s["stage"] for s in stages["stages"]]
    assert any(n.startswith("loading") for n in names) and any(n.startswith("parity") for n in names)
    assert stages["overall_peak_gib"] == max(s["peak_gib"] for s in stages["stages"] if s["peak_gib"] is not None)
    assert stages["command"][:3] == ["lotus-export", "--model", "builtin:tiny"]


def test_memory_check_compares_with_mem_available() -> None:
    memory.check_memory(100, "x", available=100)
    with pytest.raises(memory.InsufficientMemoryError, match=r"needs about .* GiB of RAM and this machine has .* available"):
        memory.check_memory(101 << 30, "x", available=100 << 30)


def test_high_water_mark_follows_a_known_allocation() -> None:
    if memory.high_water_bytes() is None or not memory.reset_high_water():
        pytest.skip("no /proc high-water mark here")
    base = memory.high_water_bytes() or 0
    block = np.ones(256 << 20, dtype=np.uint8)  # 256 MiB, touched
    grown = (memory.high_water_bytes() or 0) - base
    del block
    assert 0.9 * (256 << 20) <= grown <= 1.1 * (256 << 20) + (16 << 20)
    memory.reset_high_water()
    assert (memory.high_water_bytes() or 0) < base + (64 << 20)


def test_an_existing_parent_is_not_counted_again(tiny_depth_onnx: Path) -> None:
    config = ExportConfig(model="builtin:tiny", engine=EngineKind.ONNX_FP16, output=tiny_depth_onnx.parent / "x")
    assert [c.engine for c in stages_to_run(config)][-1] is EngineKind.ONNX_FP16


def test_float64_oracle_matches_a_whole_model_float64_run_and_restores_the_weights() -> None:
    """One module at a time in float64 computes exactly what the whole model in float64 does."""
    need_all("torch", "diffusers")
    import contextlib

    import torch

    from lotus_deploy.core.config import Task
    from lotus_deploy.export import oracle
    from lotus_deploy.model.checkpoint import load_checkpoint

    checkpoint = load_checkpoint("builtin:tiny")
    before = {k: v.clone() for k, v in checkpoint.unet.state_dict().items()}
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    per_module = oracle.oracle_output(checkpoint, Task.NORMAL, batch)
    checkpoint.unet.double()
    checkpoint.vae.double()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(oracle, "float64_whole", lambda module: contextlib.nullcontext())
        patch.setattr(oracle, "float64_per_module", lambda module: contextlib.nullcontext())
        whole = oracle.oracle_output(checkpoint, Task.NORMAL, batch)
    checkpoint.unet.float()
    checkpoint.vae.float()
    np.testing.assert_array_equal(per_module, whole)
    assert per_module.dtype == np.float64
    after = checkpoint.unet.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == before[k].dtype for k in before)
