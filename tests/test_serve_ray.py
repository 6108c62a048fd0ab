"""Ray Data batch inference (lotus-infer --ray): the same outputs as the plain run, failures listed, resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from extras import need

from lotus_deploy.cli import infer_cmd
from lotus_deploy.core.errors import ArtifactExistsError, ConfigError, InputImageError
from lotus_deploy.image.input_plan import plan_inputs
from lotus_deploy.image.preprocess import decode_image, load_image
from lotus_deploy.serve.ray_batch import (
    RaySettings,
    check_concurrency,
    check_parquet_output,
    default_concurrency,
    part_name,
    row_values,
    write_part,
)


def test_decoding_bytes_gives_the_pixels_of_the_file(shared_images: Path) -> None:
    for path in sorted(shared_images.iterdir())[:3]:
        assert np.array_equal(decode_image(path.read_bytes(), str(path)), load_image(path))


def test_a_corrupt_buffer_is_named_by_its_file_not_by_the_stream() -> None:
    with pytest.raises(InputImageError, match=r"cannot read image photos/bad\.jpg: cannot identify image file 'photos/bad\.jpg'"):
        decode_image(b"not an image", "photos/bad.jpg")


def test_actor_count_leaves_a_cpu_for_reading() -> None:
    assert default_concurrency(cpus=2, gpus=0, gpus_per_actor=0) == 1
    assert default_concurrency(cpus=1, gpus=0, gpus_per_actor=0) == 1
    assert default_concurrency(cpus=16, gpus=4, gpus_per_actor=0.5) == 8
    check_concurrency(1, cpus=2, gpus_per_actor=0, local=True)
    with pytest.raises(ConfigError, match="leaves no CPU for reading"):
        check_concurrency(2, cpus=2, gpus_per_actor=0, local=True)
    check_concurrency(2, cpus=2, gpus_per_actor=0, local=False)  # a cluster's own CPUs are its business


@pytest.mark.parametrize(("settings", "message"), [
    (RaySettings(concurrency=0), "not positive"),
    (RaySettings(gpus_per_actor=-1), "negative"),
    (RaySettings(output_format="csv"), "unknown --ray-output"),  # type: ignore[arg-type]
])
def test_bad_ray_settings_are_refused(settings: RaySettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings.check()


def _rows(*keys: str) -> list[dict[str, object]]:
    return [{"key": key, "path": f"/x/{key}.png", "meaning": "depth", "shape": [1, 2], "dtype": "<f4",
             "values": np.array([[1, 2]], np.float32).tobytes()} for key in keys]


def test_parquet_parts_are_refused_resumed_or_replaced_never_lost(tmp_path: Path) -> None:
    need("pyarrow")
    images = tmp_path / "in"
    images.mkdir()
    for name in ("a", "b", "c"):
        (images / f"{name}.png").write_bytes(b"")
    plan = plan_inputs([images])
    out = tmp_path / "out"
    parts = out / "predictions"
    parts.mkdir(parents=True)
    write_part(parts, _rows("a", "b"), overwrite=False)
    other = write_part(parts, _rows("z"), overwrite=False)  # another run's output
    assert part_name(["b", "a"]) == part_name(["a", "b"])
    with pytest.raises(ArtifactExistsError, match="part-.*already exists"):
        check_parquet_output(out, plan, "refuse")
    assert [item.key for item in check_parquet_output(out, plan, "skip")] == ["c"]
    assert len(check_parquet_output(out, plan, "overwrite")) == 3
    assert sorted(p.name for p in parts.iterdir()) == [other.name]  # only the part of recomputed outputs went
    write_part(parts, _rows("a", "y"), overwrite=False)
    with pytest.raises(ArtifactExistsError, match="of this run's inputs and of others"):
        check_parquet_output(out, plan, "overwrite")
    assert row_values(_rows("a")[0]).shape == (1, 2)


@pytest.fixture(scope="module")
def messy_images(tmp_path_factory: pytest.TempPathFactory, shared_images: Path) -> Path:
    """Real photos (two in a subfolder) and two corrupt files: one not an image, one cut short."""
    folder = tmp_path_factory.mktemp("ray-inputs") / "images"
    (folder / "sub").mkdir(parents=True)
    photos = sorted(p for p in shared_images.iterdir() if p.suffix.lower() in {".jpg", ".png"})[:4]
    for index, photo in enumerate(photos):
        shutil.copy(photo, folder / ("sub" if index >= 2 else "") / photo.name)
    (folder / "not_an_image.jpg").write_bytes(b"this is text, not a JPEG")
    (folder / "cut_short.png").write_bytes(photos[-1].read_bytes()[:2000] if photos[-1].suffix == ".png" else b"\x89PNG\r\n\x1a\n\0\0")
    return folder


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = infer_cmd.main(list(argv))
    line = capsys.readouterr().out.strip().splitlines()[-1]
    return code, json.loads(line)


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "summary.json"}


def test_ray_on_a_local_cluster_matches_the_plain_run_and_resumes(tiny_depth_onnx: Path, messy_images: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    need("ray")
    common = [str(messy_images), "-a", str(tiny_depth_onnx), "--processing-res", "128", "--batch-size", "1", "--quiet"]
    plain_code, _ = _run(capsys, *common, "-o", str(tmp_path / "plain"))
    code, line = _run(capsys, *common, "-o", str(tmp_path / "ray"), "--ray", "local")
    assert (plain_code, code) == (2, 2)  # two corrupt inputs: exit code 2 on both paths
    plain, ray = _outputs(tmp_path / "plain"), _outputs(tmp_path / "ray")
    assert len(plain) == 4 * 3 and sum(name.startswith("sub/") for name in plain) == 2 * 3
    assert ray == plain  # byte-identical .npy and PNGs under the same names
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    plain_summary = json.loads((tmp_path / "plain" / "summary.json").read_text())
    assert summary["done"] == plain_summary["done"] and summary["failed"] == plain_summary["failed"]
    assert sorted(Path(f["path"]).name for f in summary["failed"]) == ["cut_short.png", "not_an_image.jpg"]
    assert summary["runner"]["name"] == "ray" and summary["runner"]["actors"] >= 1 and line["done"] == 4

    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("*") if p.is_file() and p.name != "summary.json"}
    code, line = _run(capsys, *common, "-o", str(tmp_path / "ray"), "--ray", "local", "--resume")
    assert code == 2 and line["done"] == 0 and line["skipped_existing"] == 4 and line["failed"] == 2  # only the corrupt ones retried
    assert {p: p.stat().st_mtime_ns for p in written} == written  # nothing recomputed or rewritten

    code, _ = _run(capsys, *common, "-o", str(tmp_path / "parquet"), "--ray", "local", "--ray-output", "parquet")
    pq = need("pyarrow.parquet")
    rows = [row for part in sorted((tmp_path / "parquet" / "predictions").glob("part-*.parquet")) for row in pq.read_table(part).to_pylist()]
    assert sorted(row["key"] for row in rows) == sorted(k[:-len(".npy")] for k in plain if k.endswith(".npy"))
    for row in rows:
        assert np.array_equal(row_values(row), np.load(tmp_path / "plain" / f"{row['key']}.npy"))


def test_ray_flags_without_ray_warn_and_video_with_ray_is_refused(tiny_depth_onnx: Path, messy_images: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    photo = next((messy_images / "sub").iterdir())
    assert infer_cmd.main([str(photo), "-a", str(tiny_depth_onnx), "--processing-res", "64", "--ray-concurrency", "3", "--quiet",
                           "-o", str(tmp_path / "plain")]) == 0
    assert "--ray-concurrency has no effect without --ray" in capsys.readouterr().err
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert infer_cmd.main([str(video), "-a", str(tiny_depth_onnx), "--ray", "local", "-o", str(tmp_path / "o")]) == 2
    assert "--ray runs images and folders, not videos" in capsys.readouterr().err
