"""``lotus-video`` (and ``lotus-infer VIDEO`` / ``lotus-infer --camera N``): a stream → depth video + arrays."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.deps import require_all
from ..core.errors import ConfigError
from .common import (
    EXIT_INTERRUPTED,
    add_runtime_arguments,
    backend_options,
    note_processing_res,
    open_for_backend,
    run_main,
    warn_backend_flags,
    warn_unused,
)


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    """Flags that only matter for videos and cameras (shared with lotus-infer)."""
    g = p.add_argument_group("video and camera")
    g.add_argument("--camera", type=int, metavar="N", help="read camera N (OpenCV index) instead of files; stop with Ctrl-C or --max-frames")
    g.add_argument("--max-frames", type=int, help="process at most this many frames")
    g.add_argument("--align", action="store_true", help="align each frame's scale/shift to the previous frames (less flicker)")
    g.add_argument("--window", type=int, default=1, help="with --align: align to the mean of the last N aligned frames (default %(default)s)")
    g.add_argument("--no-frames", action="store_true", help="write only the video and summary, no per-frame .npy")
    g.add_argument("--fourcc", default="mp4v", help="video codec four-cc for OpenCV (default %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lotus-video",
        description="Depth for a video file or camera: writes depth.mp4 (colorized), frames/NNNNNN.npy and summary.json.",
    )
    p.add_argument("inputs", nargs="*", type=Path, help="video file (omit with --camera)")
    add_runtime_arguments(p, batch_default=4, batch_help="frames per batch")
    add_video_arguments(p)
    return p


def run_video(args: argparse.Namespace) -> int:
    """Run one video (or camera) with the parsed flags; prints the summary's counts as JSON."""
    from ..runtime.estimator import DepthEstimator
    from ..stream.depth_video import VideoOptions, run_depth_video

    options_for_backend = backend_options(args)
    inputs = list(args.inputs or [])
    if args.camera is not None and inputs:
        raise ConfigError("both --camera and input files given", "run a camera or files, not both")
    if args.camera is None and len(inputs) != 1:
        got = "no video given" if not inputs else f"{len(inputs)} inputs given ({', '.join(str(p) for p in inputs[:3])})"
        raise ConfigError(got, "pass exactly one video file (run once per video), or --camera N")
    require_all(["cv2"], "reading videos and cameras")  # before the model is loaded
    source: Path | int = args.camera if args.camera is not None else inputs[0]
    options = VideoOptions(max_frames=args.max_frames, batch_size=args.batch_size, align=args.align, window=args.window,
                           save_frames=not args.no_frames, fourcc=args.fourcc, force=args.force, quiet=args.quiet)
    artifact = None if args.artifact is None else open_for_backend(args.artifact, args.backend)  # a bare engine too
    estimator = DepthEstimator(artifact, backend=args.backend, processing_res=args.processing_res,
                               resample=args.resample, batch_size=args.batch_size, **options_for_backend)
    if not args.quiet:
        note_processing_res("lotus-video", estimator)
    with estimator:
        summary = run_depth_video(estimator, source, args.output, options)
    keys = ("source", "frames_read", "frames_processed", "failed_frames", "pending_at_interrupt", "nonfinite_frames", "stop_reason", "video", "fps_processed")
    summary_path = Path(args.output) / "summary.json"
    print(json.dumps({k: summary[k] for k in keys} | {"summary": str(summary_path)}), file=sys.stdout)
    if summary["interrupted"]:
        print(f"lotus-video: interrupted: {summary['frames_processed']} frame(s) written and kept, "
              f"{summary['pending_at_interrupt']['count']} read but not written; see {summary_path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


IMAGE_ONLY_FLAGS = ("resume", "fail_fast", "max_image_pixels")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()

    def body(args: argparse.Namespace) -> int:
        warn_unused(parser, args, IMAGE_ONLY_FLAGS, "for a video or camera")
        warn_backend_flags(parser, args)
        return run_video(args)

    return run_main(body, parser, argv, interrupted="interrupted before the first frame; nothing was written")


if __name__ == "__main__":
    raise SystemExit(main())
