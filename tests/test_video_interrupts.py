"""The video loop under Ctrl-C and failed starts: a consistent summary.json (read = written + failed +
pending), exit code 130, and no empty folders left behind (issue 10, item 10)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from extras import need

cv2 = need("cv2")

from fs_helpers import REPO  # noqa: E402

from lotus_deploy.core.config import ExportSettings, OutputMeaning, Task  # noqa: E402
from lotus_deploy.core.errors import LotusError  # noqa: E402
from lotus_deploy.stream import depth_video  # noqa: E402
from lotus_deploy.stream.depth_video import VideoOptions, run_depth_video  # noqa: E402
from lotus_deploy.stream.temporal import TemporalAligner  # noqa: E402
from lotus_deploy.stream.video import Frame, VideoWriter  # noqa: E402

FRAMES = 10


class _Prediction:
    def __init__(self, values: np.ndarray) -> None:
        self.values = values


class _FakeEstimator:
    """A stand-in model: depth from the red channel (the loop, not the network, is under test)."""

    task = Task.DEPTH
    meaning = OutputMeaning.DEPTH
    processing_res = 0

    def describe_backend(self) -> dict[str, object]:
        return {"name": "fake"}

    def predict_each(self, items: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, object]]:
        for key, image in items:
            yield key, _Prediction(image[..., 0].astype(np.float32) / 255.0 * 0.5 + 0.25 + 0.01 * key)


def _frame(index: int) -> np.ndarray:
    frame = np.full((32, 48, 3), 200, np.uint8)
    frame[..., 0] = 20 * index
    frame[4:12, 4 + index:12 + index] = 30
    return frame


def _source_class(interrupt_after: int | None) -> type:
    class Source:
        fps = 10.0
        expected = FRAMES
        stop_reason = "end of video"

        def __init__(self, source: object, max_frames: int | None = None) -> None:
            pass

        def __iter__(self) -> Iterator[Frame]:
            for index in range(FRAMES):
                if interrupt_after is not None and index == interrupt_after:
                    raise KeyboardInterrupt  # Ctrl-C while the next frame is being read
                yield Frame(index, None if index == 3 else _frame(index))

        def __enter__(self) -> Source:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    return Source


def _nth_call_raises(original, n: int):  # type: ignore[no-untyped-def]
    calls = {"count": 0}

    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["count"] += 1
        if calls["count"] == n:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    return wrapper


def _after_nth_call_raises(original, n: int):  # type: ignore[no-untyped-def]
    calls = {"count": 0}

    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = original(*args, **kwargs)
        calls["count"] += 1
        if calls["count"] == n:
            raise KeyboardInterrupt
        return result

    return wrapper


def _check_consistent(out: Path, summary: dict) -> None:
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary and summary["interrupted"] and summary["stop_reason"] == "interrupted"
    read = summary["frames_read"]
    assert read == summary["frames_processed"] + summary["failed_frames"]["count"] + summary["pending_at_interrupt"]["count"], summary
    listed = sorted(summary["frame_indices"] + summary["failed_frames"]["indices"] + summary["pending_at_interrupt"]["indices"])
    assert listed == list(range(read))
    npys = sorted(int(p.stem) for p in (out / "frames").glob("*.npy")) if (out / "frames").is_dir() else []
    assert set(summary["frame_indices"]) <= set(npys)  # every frame counted as written is on disk
    assert len(summary["align"]["scale"]) == summary["frames_processed"]


@pytest.mark.parametrize("where", ["while reading", "after alignment", "during the video write", "during the npy write", "with frames pending"])
def test_interrupt_at_each_step_leaves_a_consistent_summary(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    interrupt_after = {"while reading": 5, "with frames pending": 8}.get(where)
    monkeypatch.setattr(depth_video, "FrameSource", _source_class(interrupt_after))
    if where == "after alignment":
        monkeypatch.setattr(TemporalAligner, "align", _after_nth_call_raises(TemporalAligner.align, 3))
    elif where == "during the video write":
        monkeypatch.setattr(VideoWriter, "write", _nth_call_raises(VideoWriter.write, 4))
    elif where == "during the npy write":
        monkeypatch.setattr(depth_video, "_save_npy_atomic", _nth_call_raises(depth_video._save_npy_atomic, 2))
    out = tmp_path / "run"
    summary = run_depth_video(_FakeEstimator(), "clip.mp4", out, VideoOptions(batch_size=3, align=True, quiet=True))  # type: ignore[arg-type]
    _check_consistent(out, summary)
    if where == "with frames pending":
        assert summary["pending_at_interrupt"]["indices"] == [7]  # read into the next batch but never run
    if where in ("after alignment", "during the video write", "during the npy write"):
        assert summary["pending_at_interrupt"]["count"] >= 1


def _write_clip(path: Path, frames: int) -> Path:
    with VideoWriter(path, fps=10) as writer:
        for index in range(frames):
            writer.write(_frame(index % 12))
    return path


@pytest.fixture(scope="module")
def tiny_video_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lotus_deploy.core.config import ExportConfig
    from lotus_deploy.export.fused import export_onnx

    out = tmp_path_factory.mktemp("video-int") / "tiny"
    export_onnx(ExportConfig(model="builtin:tiny", output=out, export=ExportSettings(parity=False)), quiet=True)
    return out


def test_interrupted_cli_run_exits_130(tiny_video_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from lotus_deploy.cli import video_cmd

    clip = _write_clip(tmp_path / "clip.mp4", 8)
    monkeypatch.setattr(VideoWriter, "write", _nth_call_raises(VideoWriter.write, 3))
    out = tmp_path / "out"
    code = video_cmd.main([str(clip), "-a", str(tiny_video_artifact), "-o", str(out), "--processing-res", "64", "--batch-size", "2", "--quiet"])
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted: 2 frame(s) written and kept" in err and "nothing was published" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == 2 and summary["frames_read"] == summary["frames_processed"] + summary["pending_at_interrupt"]["count"]


def _ctrl_c_as_in_a_terminal() -> None:
    """A foreground command gets SIGINT's default action; a shell without job control starts background
    jobs (a test suite run with ``&``) with SIGINT ignored, which the child would inherit and keep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_real_sigint_to_a_running_lotus_video(tiny_video_artifact: Path, tmp_path: Path) -> None:
    clip = _write_clip(tmp_path / "long.mp4", 2000)  # long enough that the signal always lands mid-run (400 frames once ran out first)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "lotus_deploy.cli.video_cmd", str(clip), "-a", str(tiny_video_artifact), "-o", str(out),
                             "--processing-res", "64", "--batch-size", "2", "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal)
    deadline = time.monotonic() + 120
    while not (out / "frames" / "000003.npy").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no frame written in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and 4 <= summary["frames_processed"] < 2000
    assert summary["frames_read"] == summary["frames_processed"] + summary["failed_frames"]["count"] + summary["pending_at_interrupt"]["count"]
    assert (out / "depth.mp4").is_file() and not list(out.glob(".*"))


def test_failed_starts_leave_no_empty_folders(tiny_video_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lotus_deploy.cli import video_cmd

    clip = _write_clip(tmp_path / "clip.mp4", 3)
    out = tmp_path / "new" / "out"
    code = video_cmd.main([str(clip), "-a", str(tiny_video_artifact), "-o", str(out), "--processing-res", "64", "--fourcc", "ZZZZ", "--quiet"])
    assert code == 2 and "fourcc" in capsys.readouterr().err.lower()
    assert not (tmp_path / "new").exists()
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 50)
    code = video_cmd.main([str(tmp_path / "bad.mp4"), "-a", str(tiny_video_artifact), "-o", str(tmp_path / "out2"), "--quiet"])
    assert code == 2 and not (tmp_path / "out2").exists()


def test_a_frame_the_model_refuses_is_listed_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing(_FakeEstimator):
        def predict_each(self, items: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, object]]:
            for key, result in super().predict_each(items):
                yield key, (LotusError("too large for the engine") if key == 5 else result)

    monkeypatch.setattr(depth_video, "FrameSource", _source_class(None))
    summary = run_depth_video(Refusing(), "clip.mp4", tmp_path / "run", VideoOptions(batch_size=2, quiet=True))  # type: ignore[arg-type]
    assert summary["failed_frames"]["indices"] == [3, 5] and summary["frames_processed"] == FRAMES - 2
    assert {"index": 5, "error": "too large for the engine"} in summary["failed"]
