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

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import Task
from ..core.errors import ArtifactExistsError, ConfigError, LotusError, OutputPathError
from ..core.progress import bar
from ..core.safe_io import atomic_write, check_writable_folder, ensure_folder, write_json_atomic
from ..image.postprocess import colorize
from ..runtime.estimator import DepthEstimator
from .temporal import AlignStep, TemporalAligner
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


def _save_npy_atomic(path: Path, array: np.ndarray, overwrite: bool) -> None:
    atomic_write(path, lambda handle: np.save(handle, array, allow_pickle=False), overwrite=overwrite)


def _check_output(out_dir: Path, force: bool) -> None:
    """Refuse (before any work) outputs of the same names, unless ``force``; never delete anything."""
    check_writable_folder(out_dir)
    taken = [p for p in (out_dir / VIDEO_NAME, out_dir / SUMMARY_NAME) if p.exists()]
    frames = out_dir / FRAMES_DIR
    if frames.exists() and not frames.is_dir():
        raise OutputPathError(f"{frames} is a file, but per-frame outputs go there", "move it away or choose another --output")
    if frames.is_dir() and any(frames.glob("*.npy")):
        taken.append(frames)
    if taken and not force:
        raise ArtifactExistsError(f"{taken[0]} already exists", "pass --force to overwrite outputs of the same name, or choose another --output")


class _Run:
    """State of one stream run: writer, aligner, and the fate of every frame read.

    Every frame read ends in exactly one list: ``processed`` (video frame and ``.npy`` written),
    ``failed`` (undecodable, or the model refused it) or, after Ctrl-C, pending.
    """

    def __init__(self, estimator: DepthEstimator, out_dir: Path, fps: float, options: VideoOptions) -> None:
        self.estimator = estimator
        self.meaning = estimator.meaning
        self.options = options
        self.frames_dir = out_dir / FRAMES_DIR
        self.writer = VideoWriter(out_dir / VIDEO_NAME, fps=fps, fourcc=options.fourcc, force=options.force)
        self.aligner = TemporalAligner(window=options.window) if options.align else None
        self.read: list[int] = []
        self.processed: list[int] = []
        self.failed: list[dict[str, Any]] = []
        self.nonfinite: list[int] = []
        self.align_steps: list[AlignStep] = []
        self.infer_s = 0.0

    def fail(self, index: int, error: str) -> None:
        self.failed.append({"index": index, "error": error})

    def pending(self) -> list[int]:
        done = set(self.processed) | {f["index"] for f in self.failed}
        return [index for index in self.read if index not in done]

    def flush(self, batch: list[Frame]) -> None:
        if not batch:
            return
        start = time.perf_counter()
        results = list(self.estimator.predict_each((f.index, f.rgb) for f in batch))
        self.infer_s += time.perf_counter() - start
        for frame, (_, result) in zip(batch, results, strict=True):
            if isinstance(result, LotusError):
                self.fail(frame.index, str(result))
                continue
            self._commit(frame, result.values)

    def _commit(self, frame: Frame, values: np.ndarray) -> None:
        step = None
        if self.aligner is not None:
            values = self.aligner.align(values, frame.rgb)
            step = self.aligner.steps[-1]
        self.writer.write(colorize(values, self.meaning))
        if self.options.save_frames:
            ensure_folder(self.frames_dir)
            _save_npy_atomic(self.frames_dir / f"{frame.index:06d}.npy", np.asarray(values, dtype=np.float32), overwrite=self.options.force)
        # bookkeeping last: a frame counts as processed only once all of its outputs exist
        if not np.all(np.isfinite(values)):
            self.nonfinite.append(frame.index)
        if step is not None:
            self.align_steps.append(step)
        self.processed.append(frame.index)


def run_depth_video(estimator: DepthEstimator, source: str | Path | int, out_dir: Path | str, options: VideoOptions | None = None) -> dict[str, Any]:
    """Run ``estimator`` over a video file or camera index; write the outputs above; return the summary.

    Ctrl-C ends the stream: what was processed is published, ``summary.json`` says
    ``"interrupted": true`` and lists the frames read but not written (``pending_at_interrupt``), and
    the summary is returned. A start that fails (unreadable video, bad codec) leaves no empty folders.
    """
    options = options or VideoOptions()
    if options.align and estimator.task is Task.NORMAL:
        raise ConfigError("temporal alignment is for depth/disparity, not normals", "drop --align")
    out_dir = Path(out_dir)
    _check_output(out_dir, options.force)
    created = _missing_folders(out_dir / FRAMES_DIR)
    started = time.perf_counter()
    interrupted = False
    video: Path | None = None
    try:
        with FrameSource(source, max_frames=options.max_frames) as src:
            run = _Run(estimator, out_dir, src.fps, options)
            pending: list[Frame] = []
            try:
                for frame in bar(src, "frames", total=src.expected, disable=options.quiet):
                    run.read.append(frame.index)
                    if frame.rgb is None:
                        run.fail(frame.index, "frame could not be decoded")
                        continue
                    pending.append(frame)
                    if len(pending) >= options.batch_size:
                        batch, pending = pending, []
                        run.flush(batch)
                batch, pending = pending, []
                run.flush(batch)
            except KeyboardInterrupt:
                interrupted = True
            except BaseException:
                run.writer.close(publish=False)
                raise
            video = run.writer.close(publish=True)
            stop_reason = "interrupted" if interrupted else src.stop_reason
            expected = src.expected
    except BaseException:
        _remove_if_empty(created)
        raise
    if not run.processed and not interrupted:
        _remove_if_empty(created)
        raise VideoError(f"no frame of {source} could be processed ({len(run.failed)} failed)", "check the video decodes (e.g. play it), or try another file")
    summary = _summary(run, source, options, estimator, stop_reason, interrupted, expected, video, time.perf_counter() - started)
    ensure_folder(out_dir)
    write_json_atomic(out_dir / SUMMARY_NAME, summary)
    return summary


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, outermost first."""
    missing: list[Path] = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


def _remove_if_empty(created: list[Path]) -> None:
    """Remove the folders this run created, if it left them empty (deepest first)."""
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _summary(run: _Run, source: str | Path | int, options: VideoOptions, estimator: DepthEstimator, stop_reason: str,
             interrupted: bool, expected: int | None, video: Path | None, elapsed: float) -> dict[str, Any]:
    """``summary.json``: frames_read = frames_processed + failed + pending_at_interrupt, always."""
    pending = run.pending()
    summary: dict[str, Any] = {
        "source": str(source) if not isinstance(source, int) else f"camera:{source}",
        "meaning": run.meaning.value,
        "frames_expected": expected,
        "frames_read": len(run.read),
        "frames_processed": len(run.processed),
        "failed_frames": {"count": len(run.failed), "indices": [f["index"] for f in run.failed]},
        "failed": run.failed,
        "pending_at_interrupt": {"count": len(pending), "indices": pending},
        "nonfinite_frames": {"count": len(run.nonfinite), "indices": run.nonfinite},
        "stop_reason": stop_reason,
        "interrupted": interrupted,
        "video": str(video) if video else None,
        "video_frames": run.writer.frames,
        "frames_dir": str(run.frames_dir) if options.save_frames and run.processed else None,
        "frame_indices": run.processed,
        "fps_source": run.writer.fps,
        "seconds_total": round(elapsed, 3),
        "seconds_inference": round(run.infer_s, 3),
        "fps_processed": round(len(run.processed) / elapsed, 3) if elapsed > 0 else None,
        "batch_size": options.batch_size,
        "processing_res": estimator.processing_res,
        "backend": estimator.describe_backend(),
        "align": None,
    }
    if run.aligner is not None:
        summary["align"] = {
            "window": options.window,
            "scale": [round(s.scale, 6) for s in run.align_steps],
            "shift": [round(s.shift, 6) for s in run.align_steps],
            "fallback_frames": [idx for idx, s in zip(run.processed, run.align_steps, strict=True) if s.fallback],
        }
    return summary
