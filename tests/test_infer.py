"""lotus-infer and DepthEstimator on real photos: any size, gray, RGBA, EXIF; outputs at the input size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from extras import need_all
from PIL import Image

from lotus_deploy.cli import infer_cmd
from lotus_deploy.core.config import ExportSettings, OutputMeaning
from lotus_deploy.image.preprocess import load_image
from lotus_deploy.runtime import DepthEstimator


def test_folder_of_photos(shared_images: Path, tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert infer_cmd.main([str(shared_images), "-a", str(tiny_depth_onnx), "-o", str(out), "--processing-res", "128", "--batch-size", "2", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 12 and summary["meaning"] == "depth"
    for name in ("04.jpg", "07.jpg"):  # RGBA and grayscale inputs
        stem = Path(name).stem
        depth = np.load(out / f"{stem}.npy")
        h, w = load_image(shared_images / name).shape[:2]
        assert depth.shape == (h, w) and depth.dtype == np.float32
        assert np.isfinite(depth).all() and depth.std() > 0  # a real map, not a constant fill
        png16 = Image.open(out / f"{stem}_16bit.png")
        assert png16.size == (w, h) and png16.mode.startswith("I")
        color = Image.open(out / f"{stem}_color.png")
        assert color.size == (w, h) and color.mode == "RGB"


def test_batched_equals_one_by_one(shared_images: Path, tiny_depth_onnx: Path) -> None:
    paths = sorted(shared_images.glob("0[0-3].*"))
    with DepthEstimator(tiny_depth_onnx, processing_res=128, batch_size=4) as est:
        batched = list(est.predict_many(paths))
        single = [est.predict(p) for p in paths]
    for a, b in zip(batched, single, strict=True):
        assert a.values.shape == b.values.shape
        assert np.abs(a.values - b.values).max() < 1e-5


def test_exif_rotated_jpeg(tmp_path: Path, tiny_depth_onnx: Path) -> None:
    pixels = (np.random.default_rng(0).random((80, 120, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    with DepthEstimator(tiny_depth_onnx, processing_res=0) as est:
        pred = est.predict(tmp_path / "rotated.jpg")
    assert pred.values.shape == (120, 80)


def test_torch_backend_agrees_with_onnxruntime(tiny_depth_onnx: Path, tmp_path: Path) -> None:
    image = (np.random.default_rng(1).random((100, 150, 3)) * 255).astype(np.uint8)
    with DepthEstimator(tiny_depth_onnx, backend="onnxruntime", processing_res=128) as ort_est:
        a = ort_est.predict(image)
    with DepthEstimator(tiny_depth_onnx, backend="torch", processing_res=128) as torch_est:
        b = torch_est.predict(image)
    assert a.meaning is b.meaning is OutputMeaning.DEPTH
    assert np.abs(a.values - b.values).max() < 1e-3


def test_torch_backend_without_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_all("torch", "diffusers", "onnx", "onnxruntime")
    image = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(2).random((70, 90, 3)) * 255).astype(np.uint8)).save(image)
    assert infer_cmd.main([str(image), "--backend", "torch", "--model", "builtin:tiny", "--task", "normal", "-o", str(tmp_path / "o"), "--processing-res", "64", "--quiet"]) == 0
    normal = np.load(tmp_path / "o" / "in.npy")
    assert normal.shape == (70, 90, 3)
    assert json.loads(capsys.readouterr().out)["meaning"] == "normal"


def test_normal_bilinear_is_unit_length(tmp_path: Path) -> None:
    need_all("torch", "diffusers", "onnx", "onnxruntime")
    from lotus_deploy.core.config import ExportConfig, Task
    from lotus_deploy.export.fused import export_onnx

    out = tmp_path / "normal"
    export_onnx(ExportConfig(model="builtin:tiny", task=Task.NORMAL, meaning=OutputMeaning.NORMAL, output=out, export=ExportSettings(parity=False)), quiet=True)
    image = (np.random.default_rng(3).random((90, 130, 3)) * 255).astype(np.uint8)
    with DepthEstimator(out, processing_res=128, resample="bilinear") as est:
        pred = est.predict(image)
    assert pred.values.shape == (90, 130, 3)
    norms = np.linalg.norm(pred.values, axis=-1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-5)
