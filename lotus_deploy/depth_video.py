"""Video/camera → depth video: the loop behind ``lotus-infer VIDEO`` / ``--camera N`` and the Python API.

Outputs in one folder (every file written atomically; see README "Video, stability and metric depth"):

* ``depth.mp4`` — colorized depth (Spectral; reversed for disparity; RGB normals), one frame per
  processed frame;
* ``frames/NNNNNN.npy`` — float32 HxW (HxWx3 for normals) per processed frame, named by the source
  frame index. Per-frame files rather than one stack, so an endless camera stream needs no memory
  for the whole run and an interrupted run keeps every finished frame. With ``align`` they hold the
  aligned values; ``summary.json`` lists each frame's (scale, shift) so ``raw = (v - shift) / scale``;
* ``summary.json`` — counts, the indices of frames that failed to decode or gave NaN/Inf, why the
  stream stopped, timings and the alignment parameters.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import write_json_atomic
from .config import OutputMeaning, Task
from .errors import ArtifactExistsError, ConfigError
from .postprocess import colorize_depth, normal_to_rgb
from .progress import bar
from .runtime.estimator import DepthEstimator
from .temporal import TemporalAligner
from .video import DEFAULT_FOURCC, Frame, FrameSource, VideoError, VideoWriter

VIDEO_NAME = "depth.mp4"
FRAMES_DIR = "frames"
SUMMARY_NAME = "summary.json"


@dataclass(frozen=True)
class VideoOptions:
    """How to run a stream (the CLI fills this from flags)."""

    max_frames: int | None = None
    batch_size: int = 4
    align: bool = False
    window: int = 1
    save_frames: bool = True
    fourcc: str = DEFAULT_FOURCC
    force: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size {self.batch_size} is not positive", "use 1 or more")
        if self.window < 1:
            raise ConfigError(f"--window {self.window} is not positive", "use 1 (previous frame) or more")


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def colorize(values: np.ndarray, meaning: OutputMeaning) -> np.ndarray:
    """One frame's values → uint8 RGB for the video (depth clipped to [0, 1])."""
    if meaning is OutputMeaning.NORMAL:
        return normal_to_rgb(values)
    return colorize_depth(np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0), reverse=meaning is OutputMeaning.DISPARITY)


def _check_output(out_dir: Path, force: bool) -> None:
    taken = [p for p in (out_dir / VIDEO_NAME, out_dir / SUMMARY_NAME) if p.exists()]
    frames = out_dir / FRAMES_DIR
    if frames.is_dir() and any(frames.glob("*.npy")):
        taken.append(frames)
    if taken and not force:
        raise ArtifactExistsError(f"{taken[0]} already exists", "pass --force to overwrite, or choose another --output")
    if force and frames.is_dir():
        for old in frames.glob("*.npy"):
            old.unlink()


class _Run:
    """State of one stream run: writer, aligner, counters."""

    def __init__(self, estimator: DepthEstimator, out_dir: Path, fps: float, options: VideoOptions) -> None:
        self.estimator = estimator
        self.meaning = estimator.meaning
        self.options = options
        self.frames_dir = out_dir / FRAMES_DIR
        if options.save_frames:
            self.frames_dir.mkdir(parents=True, exist_ok=True)
        self.writer = VideoWriter(out_dir / VIDEO_NAME, fps=fps, fourcc=options.fourcc, force=options.force)
        self.aligner = TemporalAligner(window=options.window) if options.align else None
        self.processed: list[int] = []
        self.nonfinite: list[int] = []
        self.infer_s = 0.0

    def flush(self, batch: list[Frame]) -> None:
        if not batch:
            return
        start = time.perf_counter()
        predictions = list(self.estimator.predict_many([f.rgb for f in batch]))
        self.infer_s += time.perf_counter() - start
        for frame, pred in zip(batch, predictions, strict=True):
            values = pred.values
            if not np.all(np.isfinite(values)):
                self.nonfinite.append(frame.index)
            if self.aligner is not None:
                values = self.aligner.align(values, frame.rgb)
            self.writer.write(colorize(values, self.meaning))
            if self.options.save_frames:
                _save_npy_atomic(self.frames_dir / f"{frame.index:06d}.npy", np.asarray(values, dtype=np.float32))
            self.processed.append(frame.index)


def run_depth_video(estimator: DepthEstimator, source: str | Path | int, out_dir: Path | str, options: VideoOptions | None = None) -> dict[str, Any]:
    """Run ``estimator`` over a video file or camera index; write the outputs above; return the summary.

    Ctrl-C ends a (camera) stream cleanly: what was processed is published and the summary says
    ``"interrupted": true``.
    """
    options = options or VideoOptions()
    if options.align and estimator.task is Task.NORMAL:
        raise ConfigError("temporal alignment is for depth/disparity, not normals", "drop --align")
    out_dir = Path(out_dir)
    _check_output(out_dir, options.force)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    failed: list[int] = []
    interrupted = False
    with FrameSource(source, max_frames=options.max_frames) as src:
        run = _Run(estimator, out_dir, src.fps, options)
        pending: list[Frame] = []
        try:
            for frame in bar(src, "frames", total=src.expected, disable=options.quiet):
                if frame.rgb is None:
                    failed.append(frame.index)
                    continue
                pending.append(frame)
                if len(pending) >= options.batch_size:
                    run.flush(pending)
                    pending = []
            run.flush(pending)
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            run.writer.close(publish=False)
            raise
        video = run.writer.close(publish=True)
        stop_reason = "interrupted" if interrupted else src.stop_reason
        expected = src.expected
    elapsed = time.perf_counter() - started
    summary: dict[str, Any] = {
        "source": str(source) if not isinstance(source, int) else f"camera:{source}",
        "meaning": run.meaning.value,
        "frames_expected": expected,
        "frames_processed": len(run.processed),
        "failed_frames": {"count": len(failed), "indices": failed},
        "nonfinite_frames": {"count": len(run.nonfinite), "indices": run.nonfinite},
        "stop_reason": stop_reason,
        "interrupted": interrupted,
        "video": str(video) if video else None,
        "frames_dir": str(run.frames_dir) if options.save_frames else None,
        "frame_indices": run.processed,
        "fps_source": src.fps,
        "seconds_total": round(elapsed, 3),
        "seconds_inference": round(run.infer_s, 3),
        "fps_processed": round(len(run.processed) / elapsed, 3) if elapsed > 0 else None,
        "batch_size": options.batch_size,
        "processing_res": estimator.processing_res,
        "align": None,
    }
    if run.aligner is not None:
        steps = run.aligner.steps
        summary["align"] = {
            "window": options.window,
            "scale": [round(s.scale, 6) for s in steps],
            "shift": [round(s.shift, 6) for s in steps],
            "fallback_frames": [idx for idx, s in zip(run.processed, steps, strict=True) if s.fallback],
        }
    write_json_atomic(out_dir / SUMMARY_NAME, summary)
    if not run.processed and not interrupted:
        raise VideoError(f"no frame of {summary['source']} could be read ({len(failed)} failed)", f"see {out_dir / SUMMARY_NAME}; check the video decodes")
    return summary
