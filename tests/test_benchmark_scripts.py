"""Benchmark scripts run from a clean clone (a fast builtin:tiny smoke run each) and write results that
say how to regenerate them: a command, the commit, no absolute paths (issue 12, item 4)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
from extras import need, need_all

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _run_script(name: str, argv: list[str]) -> None:
    script = REPO / "benchmarks" / name
    old = sys.argv
    sys.argv = [str(script), *argv]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = old
    assert done.value.code == 0


def _no_absolute_path(value: Any, where: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _no_absolute_path(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_absolute_path(item, f"{where}[{index}]")
    elif isinstance(value, str):
        assert not (value.startswith("/") or str(REPO) in value or "/tmp/" in value), f"absolute path at {where}: {value}"


def check_result(doc: dict[str, Any]) -> None:
    """The rules every committed result follows: a command to regenerate it, the commit, no absolute paths."""
    assert isinstance(doc.get("command"), list) and doc["command"][0] in ("python", "lotus-bench")
    git = doc["provenance"]["git"]
    assert set(git) == {"commit", "tracked_changes"} and isinstance(git["tracked_changes"], bool)
    _no_absolute_path({k: v for k, v in doc.items() if k != "provenance"})


def test_stability_script_smoke(tmp_path: Path) -> None:
    need("torch")
    need("onnxruntime")
    need("cv2")
    _run_script("stability.py", ["--max-frames", "3", "--out", str(tmp_path)])
    doc = json.loads((tmp_path / "stability.json").read_text())
    check_result(doc)
    assert doc["metric_fit"] and doc["synthetic_flicker"] and (tmp_path / "stability.md").is_file()


def test_precision_gates_script_smoke(tmp_path: Path) -> None:
    need_all("torch", "onnxruntime", "onnxconverter_common")
    images = SHARED / "images"
    if not images.is_dir():
        pytest.skip(f"real photos not found at {images}")
    _run_script("precision_gates.py", ["--calib-dir", str(images), "--seeds", "--size", "64", "--out", str(tmp_path)])
    doc = json.loads((tmp_path / "precision_gates.json").read_text())
    check_result(doc)
    assert doc["command"][3] == "../shared/data/images" and {r["precision"] for r in doc["rows"]} == {"fp16", "int8"}


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "benchmarks" / "results").glob("*.json")))
def test_every_committed_result_follows_the_rules(name: str) -> None:
    """Each JSON in benchmarks/results/ names its command, its clean commit, and no absolute path (issue 12, item 4)."""
    doc = json.loads((REPO / "benchmarks" / "results" / name).read_text())
    check_result(doc)
    assert doc["provenance"]["git"]["tracked_changes"] is False


def test_run_cpu_full_script_smoke_from_a_clean_state(tmp_path: Path) -> None:
    """The CPU tables' script, at builtin:tiny size, from nothing: every step runs (step 2 used to refuse step 1's graph)."""
    import os
    import subprocess

    need_all("torch", "onnxruntime", "matplotlib")
    env = {**os.environ, "MODEL": "builtin:tiny", "SIZE": "64", "BIG_SIZE": "128", "ITERATIONS": "1",
           "OUT": str(tmp_path / "results"), "ENGINES": str(tmp_path / "engines"), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "run_cpu_full.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("cpu-full", "cpu-full-stages", "cpu-full-256-current"):
        doc = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        assert doc["command"][0] == "lotus-bench" and "commit" in doc["provenance"]["git"]
        assert all("error" not in row for row in doc["results"]), name
    stages = json.loads((tmp_path / "results" / "cpu-full-stages.json").read_text())
    assert {r.get("stage") for r in stages["results"]} >= {"encoder", "unet", "decoder"}


def test_precision_full_script_smoke(tmp_path: Path) -> None:
    need_all("torch", "onnxruntime", "onnxconverter_common")
    images = SHARED / "images"
    if not images.is_dir():
        pytest.skip(f"real photos not found at {images}")
    from lotus_deploy.core.config import ExportConfig, ExportSettings
    from lotus_deploy.export import export_onnx

    fp32 = tmp_path / "fp32"
    export_onnx(ExportConfig(model="builtin:tiny", output=fp32, export=ExportSettings(parity=False)), quiet=True)
    _run_script("precision_full.py", ["--fp32", str(fp32), "--calib-dir", str(images), "--work", str(tmp_path / "work"),
                                      "--size", "64", "--runs", "1", "--out", str(tmp_path / "out")])
    doc = json.loads((tmp_path / "out" / "precision_full_256.json").read_text())
    check_result(doc)
    assert doc["model"] == "builtin:tiny" and set(doc["latency"]) == {"fp32", "fp16", "int8"} and doc["int8"]["int8_mac_share"] > 0
    assert (tmp_path / "out" / "precision_full_256.md").is_file()


def test_export_memory_script_smoke(tmp_path: Path) -> None:
    """builtin:tiny through every engine: one process per engine, each step's peak, the weights beside it."""
    need_all("torch", "onnxruntime", "onnxconverter_common", "polygraphy")
    images = SHARED / "images"
    if not images.is_dir():
        pytest.skip(f"real photos not found at {images}")
    _run_script("export_memory.py", ["--model", "builtin:tiny", "--size", "64", "--calib-dir", str(images),
                                     "--scratch", str(tmp_path / "scratch"), "--out", str(tmp_path / "out")])
    doc = json.loads((tmp_path / "out" / "export_memory.json").read_text())
    check_result(doc)
    assert [s["engine"] for s in doc["stages"]] == ["onnx", "onnx-fp16", "onnx-int8"]
    for stage in doc["stages"]:
        steps = [s["stage"] for s in stage["steps"]]
        assert stage["peak_gib"] >= max(s["peak_gib"] or 0 for s in stage["steps"]) > 0 and stage["fp32_weights_gib"] > 0
        assert any("parity" in name for name in steps), steps
    assert any(s["stage"].startswith("tracing") for s in doc["stages"][0]["steps"])
    assert doc["checks"]["fp16_wall_over_fp32"] > 0 and (tmp_path / "out" / "export_memory.md").is_file()


def test_committed_export_memory_result_follows_the_rules() -> None:
    doc = json.loads((REPO / "benchmarks" / "results" / "export_memory.json").read_text())
    check_result(doc)
    assert doc["provenance"]["git"]["tracked_changes"] is False and [s["engine"] for s in doc["stages"]] == ["onnx", "onnx-fp16", "onnx-int8"]


def test_rewritten_results_do_not_count_as_changed_code(tmp_path: Path) -> None:
    """run_cpu_full.sh writes three results in turn: the later ones must not be labelled "tracked_changes"
    because the first was just rewritten; a changed source file still is."""
    import subprocess

    from lotus_deploy.bench.provenance import git_state

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "a.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    assert git_state(tmp_path)["tracked_changes"] is False
    (tmp_path / "benchmarks" / "results" / "a.json").write_text('{"new": 1}')
    assert git_state(tmp_path)["tracked_changes"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path)["tracked_changes"] is True


def test_openvino_cpu_script_smoke(tmp_path: Path) -> None:
    """OpenVINO vs ONNX Runtime vs eager at builtin:tiny size: exports, one lotus-bench per size, the ISA case and its goals."""
    need_all("torch", "onnxruntime", "openvino", "nncf", "polygraphy")
    images = SHARED / "images"
    if not images.is_dir():
        pytest.skip(f"real photos not found at {images}")
    _run_script("openvino_cpu.py", ["--model", "builtin:tiny", "--calib-dir", str(images), "--calib-size", "128", "--images", str(images),
                                    "--sizes", "64:1", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")])
    doc = json.loads((tmp_path / "out" / "openvino_cpu.json").read_text())
    check_result(doc)
    assert doc["case"] in ("amx", "no-amx") and doc["goals"] and all(isinstance(g["met"], bool) for g in doc["goals"])
    assert doc["ratios"]["64"]["f32"] > 0 and [a["engine"] for a in doc["artifacts"]] == ["onnx", "openvino", "openvino-int8"]
    assert doc["artifacts"][2]["int8_mac_share"] > 0 and (tmp_path / "out" / "openvino_cpu.md").is_file()


def _retrained_copy(tmp_path: Path, absrel_change: float, **replace: Any) -> Path:
    """The shipped card as a retrain's folder would hold it, with its depth AbsRel moved by ``absrel_change``;
    its plan written out in full, as today's training run writes it (the shipped card predates some knobs)."""
    from dataclasses import asdict

    from lotus_deploy.model.builtin import DEMO_CARD, DEMO_WEIGHTS
    from lotus_deploy.model.demo.train import TrainPlan

    card = json.loads((DEMO_WEIGHTS / DEMO_CARD).read_text())
    card["plan"] = asdict(TrainPlan())
    card["held_out"]["depth"]["absrel"] = round(card["held_out"]["depth"]["absrel"] + absrel_change, 4)
    card["weights_sha256"] = "0" * 64
    card.update(replace)
    folder = tmp_path / "retrained"
    folder.mkdir(parents=True)
    (folder / DEMO_CARD).write_text(json.dumps(card))
    return folder


@pytest.mark.parametrize(("change", "met"), [(0.015, True), (-0.019, True), (0.025, False), (-0.03, False)])
def test_retrain_script_judges_the_tolerance(tmp_path: Path, change: float, met: bool) -> None:
    """retrain.py's AbsRel goal is met inside ±0.02 of the shipped card and missed outside it, either way."""
    need("psutil")
    folder = _retrained_copy(tmp_path, change)
    _run_script("retrain.py", ["--trained", str(folder), "--out", str(tmp_path / "out")])
    results = list((tmp_path / "out").glob("retrain_*.json"))
    assert len(results) == 1 and results[0].with_suffix(".md").is_file()
    doc = json.loads(results[0].read_text())
    check_result(doc)
    absrel = next(g for g in doc["goals"] if "AbsRel" in g["goal"])
    assert absrel["met"] is met and absrel["measured"] == pytest.approx(change, abs=1e-4)
    assert doc["identical_weights"] is False and doc["command"] == ["python", "benchmarks/retrain.py", "--trained", "<scratch>/retrained"]


def test_retrain_script_refuses_a_card_of_another_recipe(tmp_path: Path) -> None:
    """A card trained with another seed measures nothing about reproducibility: a one-line refusal, no result."""
    need("psutil")
    from dataclasses import asdict

    from lotus_deploy.model.demo.train import TrainPlan, UnetPlan

    main = runpy.run_path(str(REPO / "benchmarks" / "retrain.py"), run_name="retrain")["main"]
    for what, replace in (("seed", {"seed": 1}), ("plan", {"plan": asdict(TrainPlan(depth=UnetPlan(steps=10000, batch=4, lr=2e-3, detail=2)))})):
        folder = _retrained_copy(tmp_path / what, 0.0, **replace)
        with pytest.raises(SystemExit, match=f"{what} differs"):
            main(["--trained", str(folder), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_demo_train_step_script_times_both_settings(tmp_path: Path) -> None:
    """demo_train_step.py trains the depth UNet in one process and in two, and reports a positive rate for each."""
    need_all("psutil", "torch", "diffusers")
    _run_script("demo_train_step.py", ["--steps", "2", "--out", str(tmp_path)])
    results = list(tmp_path.glob("demo_train_step_*.json"))
    assert len(results) == 1 and results[0].with_suffix(".md").is_file()
    doc = json.loads(results[0].read_text())
    check_result(doc)
    assert [row["processes"] for row in doc["rows"]] == [1, 2] and all(row["s_per_step"] > 0 for row in doc["rows"])
    assert doc["command"] == ["python", "benchmarks/demo_train_step.py", "--steps", "2"]


def test_demo_train_budget_script_projects_every_stage(tmp_path: Path) -> None:
    """demo_train_budget.py samples every stage of the committed recipe and adds them up against the budget."""
    need_all("psutil", "torch", "diffusers")
    from lotus_deploy.model.demo.train import TIME_BUDGET_S

    _run_script("demo_train_budget.py", ["--views", "12", "--steps", "2", "--out", str(tmp_path)])
    results = list(tmp_path.glob("demo_train_budget_*.json"))
    assert len(results) == 1 and results[0].with_suffix(".md").is_file()
    doc = json.loads(results[0].read_text())
    check_result(doc)
    assert doc["command"] == ["python", "benchmarks/demo_train_budget.py", "--views", "12", "--steps", "2"]
    rows, summary = doc["rows"], doc["summary"]
    assert {row["stage"] for row in rows} == {"render_s", "vae_s", "other_s", "unet_depth_s", "unet_normal_s"}
    assert all(row["unit_s"] > 0 and row["units"] > 0 for row in rows)
    assert summary["total_s"] == pytest.approx(sum(row["projected_s"] for row in rows), abs=0.5)
    assert summary["budget_s"] == TIME_BUDGET_S and summary["fits"] is (summary["total_s"] <= TIME_BUDGET_S)
    assert summary["shipped_run_s"]["total_s"] > 0
