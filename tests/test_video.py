"""Video I/O and the video → depth path (OpenCV from the `video` extra; builtin:tiny for end to end)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from extras import need

from lotus_deploy.core.config import ExportSettings, OutputMeaning, Task
from lotus_deploy.core.errors import LotusError

cv2 = need("cv2")

from lotus_deploy.stream import depth_video  # noqa: E402
from lotus_deploy.stream.depth_video import VideoOptions, run_depth_video  # noqa: E402
from lotus_deploy.stream.video import Frame, FrameSource, VideoError, VideoWriter, is_video_path, read_video_frames  # noqa: E402

STREET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "street.mp4"


def _frames(n: int = 6, h: int = 48, w: int = 64) -> list[np.ndarray]:
    out = []
    for i in range(n):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = 30 * i  # red ramps with the frame index
        frame[..., 2] = 200
        out.append(frame)
    return out


def test_video_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=5) as writer:
        for frame in _frames():
            writer.write(frame)
    assert path.is_file() and not list(tmp_path.glob(".*"))  # published; no temporary left behind
    with FrameSource(path) as source:
        assert source.frame_count == 6 and source.fps == pytest.approx(5)
        frames = list(source)
    assert [f.index for f in frames] == list(range(6)) and all(f.rgb is not None for f in frames)
    for got, want in zip([f.rgb for f in frames], _frames(), strict=True):
        assert got is not None and got.shape == want.shape
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 6  # lossy codec, same picture
    assert len(read_video_frames(path, max_frames=3)) == 3
    with pytest.raises(VideoError):
        VideoWriter(path, fps=5)  # exists, no force


def test_odd_sizes_are_padded_and_failed_writes_are_discarded(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "odd.mp4", fps=5) as writer:
        writer.write(np.zeros((33, 45, 3), np.uint8))
    assert read_video_frames(tmp_path / "odd.mp4")[0].shape == (34, 46, 3)
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "broken.mp4", fps=5) as writer:
        writer.write(np.zeros((32, 32, 3), np.uint8))
        raise RuntimeError("crash mid-stream")
    assert list(tmp_path.iterdir()) == [tmp_path / "odd.mp4"]


def test_unreadable_inputs_get_one_line_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 100)
    for source in (garbage, tmp_path / "missing.mp4", 99):
        with pytest.raises(VideoError) as info:
            FrameSource(source)
        assert "\n" not in str(info.value)
    assert is_video_path("a/B.MP4") and not is_video_path("a.png")


class _FakeEstimator:
    task = Task.DEPTH
    meaning = OutputMeaning.DEPTH
    processing_res = 0

    def describe_backend(self) -> dict[str, object]:
        return {"name": "fake"}

    def predict_each(self, items: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, object]]:
        class P:
            def __init__(self, values: np.ndarray) -> None:
                self.values = values

        for key, image in items:
            yield key, P(image[..., 0].astype(np.float32) / 255.0 * 0.5 + 0.25)


class _FlakySource:
    """Frames 2 and 5 cannot be decoded."""

    fps = 10.0
    expected = 8
    stop_reason = "end of video"

    def __init__(self, source: object, max_frames: int | None = None) -> None:
        self.frames = _frames(8)

    def __iter__(self) -> Iterator[Frame]:
        for i, frame in enumerate(self.frames):
            yield Frame(i, None if i in (2, 5) else frame)

    def __enter__(self) -> _FlakySource:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_failed_frames_are_reported_not_skipped_silently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(depth_video, "FrameSource", _FlakySource)
    out = tmp_path / "run"
    summary = run_depth_video(_FakeEstimator(), "flaky.mp4", out, VideoOptions(batch_size=3, align=True, quiet=True))  # type: ignore[arg-type]
    assert summary["failed_frames"] == {"count": 2, "indices": [2, 5]}
    assert summary["frames_processed"] == 6 and summary["frame_indices"] == [0, 1, 3, 4, 6, 7]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert sorted(p.name for p in (out / "frames").iterdir()) == [f"{i:06d}.npy" for i in (0, 1, 3, 4, 6, 7)]
    assert len(read_video_frames(out / "depth.mp4")) == 6
    assert len(summary["align"]["scale"]) == 6
    with pytest.raises(LotusError):  # outputs exist, no force
        run_depth_video(_FakeEstimator(), "flaky.mp4", out, VideoOptions(quiet=True))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lotus_deploy.core.config import ExportConfig
    from lotus_deploy.export.fused import export_onnx

    out = tmp_path_factory.mktemp("video-artifact") / "tiny"
    export_onnx(ExportConfig(model="builtin:tiny", output=out, export=ExportSettings(parity=False)), quiet=True)
    return out


def test_street_video_end_to_end_through_lotus_infer(tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not STREET.is_file():
        pytest.skip(f"test video not found at {STREET}")
    from lotus_deploy.cli.infer_cmd import main

    out = tmp_path / "street"
    args = [str(STREET), "-a", str(tiny_artifact), "-o", str(out), "--max-frames", "4", "--processing-res", "128",
            "--batch-size", "2", "--align", "--quiet"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["frames_processed"] == 4 and printed["failed_frames"]["count"] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frame_indices"] == [0, 1, 2, 3] and summary["stop_reason"] == "max frames reached"
    first = np.load(out / "frames" / "000000.npy")
    assert first.shape == (352, 1216) and first.dtype == np.float32 and np.isfinite(first).all()
    video = read_video_frames(out / "depth.mp4")
    assert len(video) == 4 and video[0].shape == (352, 1216, 3)
    assert main(args) == 2  # outputs exist: one-line error, exit code 2
    assert "already exists" in capsys.readouterr().err


def test_lotus_infer_still_runs_images_and_rejects_bad_video(tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from lotus_deploy.cli.infer_cmd import main

    Image.fromarray(_frames(1, 40, 56)[0]).save(tmp_path / "a.png")
    assert main([str(tmp_path / "a.png"), "-a", str(tiny_artifact), "-o", str(tmp_path / "out"), "--processing-res", "64", "--quiet"]) == 0
    assert (tmp_path / "out" / "a.npy").is_file()
    (tmp_path / "bad.mp4").write_bytes(b"\0" * 64)
    capsys.readouterr()
    assert main([str(tmp_path / "bad.mp4"), "-a", str(tiny_artifact), "-o", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lotus-infer: error: cannot open") and "\n" not in err
