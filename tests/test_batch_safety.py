"""lotus-infer over folders: one bad input never sinks a run, outputs never collide or replace a user's
files, inputs are bounded, and output paths are checked before any work (issue 10, items 3-5, 7, 11)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from extras import need
from PIL import Image

need("onnxruntime")

from fs_helpers import read_only, snapshot  # noqa: E402

from lotus_deploy.cli import infer_cmd  # noqa: E402
from lotus_deploy.core.errors import ConfigError, InputImageError, NoImagesError, ShapeError  # noqa: E402
from lotus_deploy.image.input_plan import plan_inputs  # noqa: E402
from lotus_deploy.image.preprocess import MAX_GRAPH_PIXELS, load_image, preprocess, set_max_image_pixels  # noqa: E402
from lotus_deploy.runtime import DepthEstimator  # noqa: E402

RES = "64"


def _photo(path: Path, seed: int, size: tuple[int, int] = (48, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(seed).random((*size, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _messy(folder: Path) -> Path:
    """Good photos, a truncated JPEG, a 0-byte file, a text file named .png, ._x.jpg, two photos with one stem."""
    _photo(folder / "a.jpg", 0)
    _photo(folder / "x.webp", 1)
    _photo(folder / "x.tiff", 2)
    _photo(folder / "sub" / "b.png", 3)
    good = _photo(folder / "c.jpg", 4, size=(120, 90))
    (folder / "truncated.jpg").write_bytes(good.read_bytes()[:300])
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "text.png").write_text("this is not a picture\n")
    (folder / "._a.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    return folder


GOOD_KEYS = ["a", "x.webp", "x.tiff", "sub/b", "c"]
BAD = ["truncated.jpg", "zero.jpg", "text.png"]


def _infer(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = infer_cmd.main([*argv, "--processing-res", RES, "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_messy_folder_writes_every_good_image_and_lists_every_bad_one(tiny_depth_onnx: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = _messy(tmp_path / "in")
    out = tmp_path / "out"
    code, stdout, stderr = _infer(capsys, str(folder), "-a", str(tiny_depth_onnx), "-o", str(out), "--batch-size", "3")
    assert code == 2
    for key in GOOD_KEYS:
        for suffix in (".npy", "_16bit.png", "_color.png"):
            assert (out / f"{key}{suffix}").is_file(), key
    assert np.load(out / "x.webp.npy").shape == (48, 64) and np.load(out / "c.npy").shape == (120, 90)
    assert not np.array_equal(np.load(out / "x.webp.npy"), np.load(out / "x.tiff.npy"))  # two different photos, two outputs
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(Path(f["path"]).name for f in summary["failed"]) == sorted(BAD)
    assert all(f["error"] for f in summary["failed"])
    assert summary["counts"] == {"done": 5, "skipped_existing": 0, "hidden_skipped": 1, "failed": 3, "not_processed": 0}
    assert [Path(p).name for p in summary["hidden_skipped"]] == ["._a.jpg"]
    for name in BAD:
        assert sum(1 for line in stderr.splitlines() if name in line and line.startswith("lotus-infer: failed:")) == 1
    assert json.loads(stdout)["failed"] == 3
    assert sum("error:" in line for line in stderr.splitlines()) == 1


def test_fail_fast_stops_at_the_first_bad_input(tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    _photo(folder / "0_good.jpg", 0)
    (folder / "1_bad.jpg").write_bytes(b"")
    _photo(folder / "2_good.jpg", 1)
    out = tmp_path / "out"
    code, _, _ = _infer(capsys, str(folder), "-a", str(tiny_depth_onnx), "-o", str(out), "--fail-fast")
    assert code == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_at_failure"] and [Path(f["path"]).name for f in summary["failed"]] == ["1_bad.jpg"]
    assert [Path(p).name for p in summary["done"]] == ["0_good.jpg"] and [Path(p).name for p in summary["not_processed"]] == ["2_good.jpg"]
    assert not (out / "2_good.npy").exists()


def test_images_already_batched_are_written_when_a_later_file_is_unreadable(tiny_depth_onnx: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    _photo(folder / "0.jpg", 0)
    (folder / "1.jpg").write_bytes(_photo(tmp_path / "full.jpg", 5).read_bytes()[:200])
    out = tmp_path / "out"
    code, _, _ = _infer(capsys, str(folder), "-a", str(tiny_depth_onnx), "-o", str(out), "--batch-size", "4")
    assert code == 2 and (out / "0.npy").is_file()


def test_hidden_files_alone_are_a_clear_error(tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    _photo(folder / "._a.jpg", 0)
    code, _, stderr = _infer(capsys, str(folder), "-a", str(tiny_depth_onnx), "-o", str(tmp_path / "out"))
    assert code == 2 and "1 hidden files skipped" in stderr and not (tmp_path / "out").exists()


# ------------------------------------------------------------------- names


def test_output_names_keep_subfolders_and_disambiguate_stems(tmp_path: Path) -> None:
    folder = _messy(tmp_path / "in")
    direct = _photo(tmp_path / "elsewhere" / "direct.jpg", 9)
    plan = plan_inputs([folder, direct], output=folder / "out")
    keys = [item.key for item in plan.inputs]
    assert keys[0] == "direct" and sorted(keys[1:]) == sorted(GOOD_KEYS + ["truncated", "zero", "text"])
    assert [p.name for p in plan.hidden_skipped] == ["._a.jpg"]
    # the output folder inside an input folder is never read back as input
    _photo(folder / "out" / "old.png", 1)
    assert "out/old" not in [item.key for item in plan_inputs([folder], output=folder / "out").inputs]


def test_inputs_that_would_share_a_name_are_refused_before_any_work(tiny_depth_onnx: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _photo(tmp_path / "d1" / "x.jpg", 0)
    _photo(tmp_path / "d2" / "x.jpg", 1)
    with pytest.raises(ConfigError, match="would both be written as x") as info:
        plan_inputs([tmp_path / "d1", tmp_path / "d2"])
    assert "d1/x.jpg" in str(info.value) and "d2/x.jpg" in str(info.value) and "common parent" in str(info.value)
    code, _, stderr = _infer(capsys, str(tmp_path / "d1"), str(tmp_path / "d2"), "-a", str(tiny_depth_onnx), "-o", str(tmp_path / "out"))
    assert code == 2 and "common parent" in stderr and not (tmp_path / "out").exists()
    code, _, _ = _infer(capsys, str(tmp_path), "-a", str(tiny_depth_onnx), "-o", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "d1" / "x.npy").is_file() and (tmp_path / "out" / "d2" / "x.npy").is_file()


def test_a_results_folder_keeps_every_file_it_did_not_write(tiny_depth_onnx: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    _photo(folder / "a.jpg", 0)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "sub" / "keep.npy").write_bytes(b"mine too")
    (out / "b_color.png").write_bytes(b"an unrelated file")
    before = snapshot(out)
    for flags in ([], ["--force"], ["--resume"]):
        code, _, _ = _infer(capsys, str(folder), "-a", str(tiny_depth_onnx), "-o", str(out), *flags)
        assert code == 0, flags
        after = snapshot(out)
        assert {k: v for k, v in after.items() if k in before} == before


def test_existing_outputs_are_refused_unless_force_or_resume(tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    _photo(folder / "a.jpg", 0)
    _photo(folder / "b.jpg", 1)
    out = tmp_path / "out"
    assert _infer(capsys, str(folder), "-a", str(tiny_depth_onnx), "-o", str(out))[0] == 0
    first = snapshot(out)
    code, _, stderr = _infer(capsys, str(folder), "-a", str(tiny_depth_onnx), "-o", str(out))
    assert code == 2 and "already exists" in stderr and "--resume" in stderr and snapshot(out) == first
    (out / "b.npy").unlink()  # an interrupted run: b unfinished
    code, stdout, _ = _infer(capsys, str(folder), "-a", str(tiny_depth_onnx), "-o", str(out), "--resume")
    assert code == 0 and json.loads(stdout)["skipped_existing"] == 1 and (out / "b.npy").is_file()
    assert snapshot(out)["a.npy"] == first["a.npy"]
    with pytest.raises(SystemExit):  # --force and --resume contradict each other
        infer_cmd.main([str(folder), "-a", str(tiny_depth_onnx), "-o", str(out), "--force", "--resume"])


def test_same_run_never_overwrites_its_own_output(tiny_depth_onnx: Path, tmp_path: Path) -> None:
    from lotus_deploy.image.input_plan import PlannedInput
    from lotus_deploy.runtime.batch import _save

    with DepthEstimator(tiny_depth_onnx, processing_res=64) as est:
        prediction = est.predict(np.zeros((20, 30, 3), np.uint8))
    written: set[Path] = set()
    item = PlannedInput(tmp_path / "a.jpg", Path("."), "a")
    _save(prediction, tmp_path / "out", item, overwrite=True, written=written)
    with pytest.raises(Exception, match="already written by this run"):
        _save(prediction, tmp_path / "out", item, overwrite=True, written=written)


# ------------------------------------------------------------------- item 5: bounded inputs


@pytest.mark.parametrize("value", ["-1", "1000000", "abc"])
def test_processing_res_out_of_range_is_refused(value: str, tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        infer_cmd.main([str(tmp_path), "-a", str(tiny_depth_onnx), "--processing-res", value])
    assert info.value.code == 2 and "--processing-res" in capsys.readouterr().err


def test_estimator_validates_processing_res_and_pixel_count(tiny_depth_onnx: Path) -> None:
    for bad in (-5, 10**6):
        with pytest.raises(ConfigError, match="processing resolution"):
            DepthEstimator(tiny_depth_onnx, processing_res=bad)
    big = np.zeros((5000, 4000, 3), np.uint8)
    with pytest.raises(ShapeError, match=r"GiB .* the limit is 16.8 MP") as info:
        preprocess(big, processing_res=0)
    assert "--processing-res" in str(info.value)
    assert 4096 * 4096 == MAX_GRAPH_PIXELS
    tensor, _ = preprocess(big, processing_res=256)  # the same image, resized, is fine
    assert tensor.shape == (1, 3, 256, 256)


def test_decompression_bomb_limit_can_be_raised(tmp_path: Path) -> None:
    path = _photo(tmp_path / "big.png", 0, size=(100, 100))
    default = Image.MAX_IMAGE_PIXELS
    try:
        set_max_image_pixels(1000)
        with pytest.raises(InputImageError, match="--max-image-pixels"):
            load_image(path)
        set_max_image_pixels(0)
        assert load_image(path).shape == (100, 100, 3)
    finally:
        Image.MAX_IMAGE_PIXELS = default


# ------------------------------------------------------------------- item 7: outputs checked before work


def test_unwritable_outputs_fail_before_the_model_is_loaded(tiny_depth_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from lotus_deploy.runtime import estimator

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(estimator, "load_backend", no_loading)
    folder = tmp_path / "in"
    _photo(folder / "a.jpg", 0)
    missing_artifact = tiny_depth_onnx
    (tmp_path / "file").write_text("x")
    code, _, stderr = _infer(capsys, str(folder), "-a", str(missing_artifact), "-o", str(tmp_path / "file"))
    assert code == 2 and "is not a folder" in stderr and "Traceback" not in stderr
    code, _, stderr = _infer(capsys, str(folder), "-a", str(missing_artifact), "-o", str(tmp_path / "file" / "sub"))
    assert code == 2 and "is a file" in stderr
    (tmp_path / "out" / "a.npy").mkdir(parents=True)
    code, _, stderr = _infer(capsys, str(folder), "-a", str(missing_artifact), "-o", str(tmp_path / "out"))
    assert code == 2 and "is a folder" in stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        code, _, stderr = _infer(capsys, str(folder), "-a", str(missing_artifact), "-o", str(locked))
    assert code == 2 and f"cannot write {locked}" in stderr and len(stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------- item 11: API and messages


def test_pil_inputs_get_their_exif_orientation(tiny_depth_onnx: Path, tmp_path: Path) -> None:
    pixels = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    with DepthEstimator(tiny_depth_onnx, processing_res=0) as est, Image.open(tmp_path / "rotated.jpg") as image:
        from_pil = est.predict(image)
        from_path = est.predict(tmp_path / "rotated.jpg")
    assert from_pil.values.shape == from_path.values.shape == (60, 40)
    np.testing.assert_array_equal(from_pil.values, from_path.values)


def test_predict_after_close_is_a_clear_error(tiny_depth_onnx: Path) -> None:
    est = DepthEstimator(tiny_depth_onnx, processing_res=64)
    est.close()
    est.close()  # twice is harmless
    with pytest.raises(ConfigError, match="closed"):
        est.predict(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ConfigError, match="closed"):
        list(est.predict_many([np.zeros((8, 8, 3), np.uint8)]))


def test_flags_that_do_nothing_warn_in_one_line(tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _photo(tmp_path / "in" / "a.jpg", 0)
    code, _, stderr = _infer(capsys, str(tmp_path / "in"), "-a", str(tiny_depth_onnx), "-o", str(tmp_path / "out"), "--align", "--task", "normal")
    assert code == 0
    warnings = [line for line in stderr.splitlines() if line.startswith("lotus-infer: warning:")]
    assert any("--align" in line and "no effect for images" in line for line in warnings)
    assert any("--task" in line and "manifest says the task" in line for line in warnings)


def test_one_video_among_images_gets_an_accurate_message(tiny_depth_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("cv2")
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 16)
    _photo(tmp_path / "a.jpg", 0)
    code, _, stderr = _infer(capsys, str(tmp_path / "clip.mp4"), str(tmp_path / "a.jpg"), "-a", str(tiny_depth_onnx))
    assert code == 2 and "is a video, given together with 1 other input" in stderr and "2 video inputs" not in stderr


def test_normals_are_unit_vectors_with_either_resampling(tmp_path: Path) -> None:
    from lotus_deploy.core.config import ExportConfig, ExportSettings, Task
    from lotus_deploy.export.fused import export_onnx

    art = tmp_path / "normal"
    export_onnx(ExportConfig(model="builtin:tiny", task=Task.NORMAL, output=art, export=ExportSettings(parity=False)), quiet=True)
    image = (np.random.default_rng(2).random((50, 70, 3)) * 255).astype(np.uint8)
    for resample in ("nearest", "bilinear"):
        with DepthEstimator(art, processing_res=64, resample=resample) as est:
            norms = np.linalg.norm(est.predict(image).values, axis=2)
        nonzero = norms[norms > 0]
        assert nonzero.size and np.allclose(nonzero, 1.0, atol=1e-5), (resample, float(nonzero.min()), float(nonzero.max()))


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(NoImagesError, match="no images found"):
        plan_inputs([tmp_path])
    shutil.rmtree(tmp_path / "notes.txt", ignore_errors=True)
