"""Video and camera frames in, colorized depth video out (OpenCV, imported lazily: the ``video`` extra).

Why OpenCV (``opencv-python-headless``): one self-contained wheel (FFmpeg inside) that reads MP4 and
writes it (``mp4v``), opens cameras by index on every OS, and is usually already present on robots
(ROS' cv_bridge, JetPack). It is only imported when a video or camera is actually used.

Frames that cannot be decoded are never skipped silently: :class:`FrameSource` yields them as
``Frame(index, None)`` so the caller can count and report them. A video file reports its frame count
up front; a read failure before that count is a failed frame, and the source keeps reading until
``max_failures`` consecutive failures (then it stops and says so in :attr:`FrameSource.stop_reason`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..core.deps import require
from ..core.errors import ConfigError, LotusError
from ..core.safe_io import FILE_MODE, ensure_folder, publish_file

VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
DEFAULT_FOURCC = "mp4v"
MAX_CONSECUTIVE_FAILURES = 30


class VideoError(LotusError):
    """A video or camera cannot be opened or read, or a depth video cannot be written."""


def is_video_path(path: Path | str) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _cv2() -> ModuleType:
    # FFmpeg prints its own diagnostics ("moov atom not found") before OpenCV returns a failure we
    # already turn into a one-line error; keep them off the terminal unless the user asked for them.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    return require("cv2")


@dataclass
class Frame:
    """One frame of a stream: ``rgb`` is uint8 HxWx3, or None when it could not be read."""

    index: int
    rgb: np.ndarray | None


class FrameSource:
    """Frames of a video file (path) or a camera (int index), as RGB uint8 arrays.

    >>> with FrameSource("street.mp4", max_frames=8) as src:    # doctest: +SKIP
    ...     for frame in src: ...
    """

    def __init__(self, source: str | Path | int, max_frames: int | None = None, max_failures: int = MAX_CONSECUTIVE_FAILURES) -> None:
        if max_frames is not None and max_frames < 1:
            raise ConfigError(f"max frames {max_frames} is not positive", "use 1 or more, or leave it unset")
        cv2 = _cv2()
        self.is_camera = isinstance(source, int)
        self.name = f"camera {source}" if self.is_camera else str(source)
        if not isinstance(source, int):
            path = Path(source)
            if not path.is_file():
                raise VideoError(f"video {path} does not exist", "pass an existing video file, or --camera N for a camera")
        self._cap = cv2.VideoCapture(source if self.is_camera else str(source))
        if not self._cap.isOpened():
            fix = "check the camera index and that no other program holds it" if self.is_camera else "check it is a complete video (MP4/AVI/MOV/MKV) that FFmpeg can decode"
            raise VideoError(f"cannot open {self.name}", fix)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = None if self.is_camera or count <= 0 else count
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else 30.0
        self.max_frames = max_frames
        self.max_failures = max_failures
        self.stop_reason = ""

    @property
    def expected(self) -> int | None:
        """Frames this source should deliver (None: unknown, e.g. a camera without --max-frames)."""
        if self.frame_count is None:
            return self.max_frames
        return min(self.frame_count, self.max_frames) if self.max_frames else self.frame_count

    def __iter__(self) -> Iterator[Frame]:
        cv2 = _cv2()
        index, failures = 0, 0
        while self.max_frames is None or index < self.max_frames:
            if self.frame_count is not None and index >= self.frame_count:
                self.stop_reason = "end of video"
                return
            ok, bgr = self._cap.read()
            if ok and bgr is not None and bgr.size:
                failures = 0
                rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB) if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield Frame(index, np.ascontiguousarray(rgb))
            else:
                if self.frame_count is None and not self.is_camera:
                    self.stop_reason = "end of video"
                    return
                failures += 1
                if failures > self.max_failures:
                    self.stop_reason = f"{failures} consecutive unreadable frames"
                    return
                yield Frame(index, None)
            index += 1
        self.stop_reason = "max frames reached"

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoWriter:
    """Write RGB uint8 frames to a video, atomically: a hidden temporary file renamed on success.

    An interrupted or failed run leaves no half-written file under the final name, and nothing at
    all (no folder, no temporary) before the first frame. The frame size is fixed by the first
    frame; odd sizes are padded by one edge pixel (most codecs need even sizes).
    """

    def __init__(self, path: Path | str, fps: float, fourcc: str = DEFAULT_FOURCC, force: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not force:
            raise VideoError(f"{self.path} already exists", "pass --force to overwrite it, or choose another output")
        if len(fourcc) != 4:
            raise ConfigError(f"fourcc {fourcc!r} is not four characters", f"use {DEFAULT_FOURCC}")
        self.fps = float(fps)
        self.fourcc = fourcc
        self.force = force
        self.frames = 0
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self._tmp = self.path.parent / f".{self.path.stem}.{uuid.uuid4().hex[:12]}{self.path.suffix or '.mp4'}"

    def write(self, rgb: np.ndarray) -> None:
        cv2 = _cv2()
        frame = np.asarray(rgb, dtype=np.uint8)
        h, w = frame.shape[:2]
        size = (w + w % 2, h + h % 2)
        if self._writer is None:
            ensure_folder(self.path.parent)
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
            if not self._writer.isOpened():
                self._writer = None
                self._tmp.unlink(missing_ok=True)
                raise VideoError(f"OpenCV cannot write {self.fourcc} video to {self.path}", f"try --fourcc {DEFAULT_FOURCC} and an .mp4/.avi name")
            self._size = size
        elif size != self._size:
            raise VideoError(f"frame of size {w}x{h} after frames of size {self._size}", "write frames of one size")
        if (w, h) != size:
            frame = np.pad(frame, ((0, size[1] - h), (0, size[0] - w), (0, 0)), mode="edge")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self, publish: bool = True) -> Path | None:
        """Finish the file; publish it under its final name (True) or discard it."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if publish and self.frames:
            os.chmod(self._tmp, FILE_MODE)
            publish_file(self._tmp, self.path, overwrite=self.force)
            return self.path
        self._tmp.unlink(missing_ok=True)
        return None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(publish=exc_type is None)


def read_video_frames(path: Path | str, max_frames: int | None = None) -> list[np.ndarray]:
    """All readable frames of a file as RGB arrays (for tests and small clips)."""
    with FrameSource(path, max_frames=max_frames) as source:
        return [f.rgb for f in source if f.rgb is not None]
