"""builtin:demo: a trained model that sees depth. Its shipped weights, its export, its quick start, its wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from extras import need_all
from PIL import Image

from lotus_deploy.cli import infer_cmd
from lotus_deploy.model.builtin import DEMO_CARD, DEMO_FILES, DEMO_WEIGHTS
from lotus_deploy.model.demo.train import TIME_BUDGET_S
from lotus_deploy.synthetic.accuracy import MAX_DEPTH_M, spearman
from lotus_deploy.synthetic.render import Box, Camera, Material, Plane, Scene, render

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20


def test_the_shipped_weights_meet_the_size_rules() -> None:
    shipped = sorted(REPO.joinpath("lotus_deploy").rglob("*.safetensors"))
    assert sorted(p.name for p in shipped) == sorted(DEMO_FILES.values())
    assert all(p.stat().st_size < 2 * MIB for p in shipped), {p.name: p.stat().st_size for p in shipped}
    assert sum(p.stat().st_size for p in shipped) <= 8 * MIB
    card = json.loads((DEMO_WEIGHTS / DEMO_CARD).read_text())
    from lotus_deploy.model.demo.train import SEED, weights_digest

    assert card["seed"] == SEED and card["weights_sha256"] == weights_digest(DEMO_WEIGHTS)  # the card describes these very files
    assert card["licence"].startswith("Apache-2.0") and card["processing_res"] == 256
    assert card["timings_s"]["total_s"] <= TIME_BUDGET_S  # the training run that made them took under 45 minutes (recorded, not timed here)


def test_a_short_retraining_lowers_the_loss(tmp_path: Path) -> None:
    need_all("torch", "diffusers", "transformers", "safetensors")
    from lotus_deploy.model.demo.train import TrainPlan, train

    card = train(tmp_path, seed=7, plan=TrainPlan.quick(), say=lambda line: None)
    for name, losses in card["losses"].items():
        assert losses[-1] < losses[0], (name, losses)
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == sorted(DEMO_FILES.values())


@pytest.fixture(scope="module")
def demo_depth_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """builtin:demo's depth UNet exported as the fp32 ONNX graph (parity against the float64 oracle included)."""
    need_all("torch", "diffusers", "onnx", "onnxslim", "onnxruntime")
    from lotus_deploy.core.config import ExportConfig, Task
    from lotus_deploy.export.fused import export_onnx

    out = tmp_path_factory.mktemp("demo") / "demo-depth-onnx"
    export_onnx(ExportConfig(model="builtin:demo", task=Task.DEPTH, output=out), quiet=True)
    return out


def test_the_export_matches_its_oracle_and_carries_its_provenance(demo_depth_onnx: Path) -> None:
    manifest = json.loads((demo_depth_onnx / "manifest.json").read_text())
    parity = manifest["parity"]
    assert parity["passed"] and parity["max_abs"] <= 1e-4
    source = manifest["source"]
    assert source["model"] == "builtin:demo" and source["processing_res"] == 256
    assert source["licence"].startswith("Apache-2.0") and source["training"]["seed"] == json.loads((DEMO_WEIGHTS / DEMO_CARD).read_text())["seed"]
    assert manifest["output_meaning"] == "depth"


def _box_on_a_plane() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 320x240 render no training uses: a ground plane to the horizon under a sky, one box standing on it."""
    ground = Plane((0, 0, 0), (0, 1, 0), Material((0.45, 0.42, 0.38), kind="noise", scale=1.2, contrast=0.5))
    box = Box((0.4, 0.9, 7.0), (1.0, 0.9, 0.8), Material((0.7, 0.3, 0.25), kind="noise", scale=2.0, contrast=0.3), yaw=0.5)
    camera = Camera((0.0, 1.6, 0.0), pitch=-0.12, fov_deg=60.0)

    def scene(*primitives: object) -> Scene:
        return Scene(tuple(primitives), sun=(0.4, 0.8, -0.45), sky_horizon=(0.85, 0.88, 0.92), sky_zenith=(0.3, 0.5, 0.85),  # type: ignore[arg-type]
                     haze_m=150.0)

    with_box = render(scene(ground, box), camera, 240, 320, seed=99)
    without = render(scene(ground), camera, 240, 320, seed=99)
    box_mask = with_box.valid & (np.abs(with_box.depth - without.depth) > 1e-3)
    return with_box.rgb, np.where(with_box.valid, with_box.depth, 0), box_mask


def test_lotus_infer_defaults_see_a_box_standing_on_a_ground_plane(demo_depth_onnx: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rgb, truth, box = _box_on_a_plane()
    Image.fromarray(rgb).save(tmp_path / "box.png")
    assert infer_cmd.main([str(tmp_path / "box.png"), "-a", str(demo_depth_onnx), "-o", str(tmp_path / "out")]) == 0
    assert "processing at 256 px, the working resolution this model declares" in capsys.readouterr().err
    pred = np.load(tmp_path / "out" / "box.npy")
    valid = (truth > 0) & (truth <= MAX_DEPTH_M)
    assert spearman(pred[valid], truth[valid]) >= 0.6
    ground_beside = valid & ~box & box.any(axis=1)[:, None]  # ground on the rows the box covers
    box_depth = float(np.median(pred[box]))
    ground_depth = float(np.median(pred[ground_beside]))
    assert box_depth < ground_depth, (box_depth, ground_depth)  # near = small: the box is nearer than the ground beside it


def test_the_quick_start_output_follows_the_committed_ground_truth(demo_depth_onnx: Path, tmp_path: Path) -> None:
    assert infer_cmd.main([str(REPO / "examples" / "images"), "-a", str(demo_depth_onnx), "-o", str(tmp_path), "--quiet"]) == 0
    pred = np.load(tmp_path / "sample_scene.npy")
    truth = np.asarray(Image.open(REPO / "examples" / "ground_truth" / "sample_scene_depth_mm.png")).astype(np.float64) / 1000
    valid = (truth > 0) & (truth <= MAX_DEPTH_M)
    assert pred.shape == truth.shape and spearman(pred[valid], truth[valid]) >= 0.8


def test_builtin_demo_loads_from_an_installed_wheel(tmp_path: Path) -> None:
    """Editable installs hide missing package data: build the wheel, install it alone, load the model from it."""
    need_all("torch", "diffusers", "transformers", "safetensors")
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(wheels)],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("lotus_deploy-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    # the heavy dependencies come from this environment (a path only: its .pth hooks, the editable install among them, stay off)
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = ("import lotus_deploy, json; from pathlib import Path; from lotus_deploy.model.checkpoint import load_checkpoint\n"
              "c = load_checkpoint('builtin:demo', 'normal')\n"
              "print(json.dumps({'package': lotus_deploy.__file__, 'folder': str(c.folder), 'res': c.notes['processing_res']}))\n")
    env = {**os.environ, "LOTUS_DEPLOY_HOME": str(tmp_path / "home"), "PYTHONPATH": ""}
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["package"].startswith(str(site)) and loaded["res"] == 256
    assert "demo-normal" in loaded["folder"]
