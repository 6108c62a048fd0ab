"""``lotus-infer``: run an artifact (or, with the torch backend, a checkpoint) on images and folders."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import ConfigError
from ..core.progress import tqdm_counter
from ..image.input_plan import plan_inputs
from ..image.preprocess import set_max_image_pixels
from ..runtime.batch import SUMMARY_NAME, OnExisting
from ..stream.video import is_video_path
from .common import (
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    add_runtime_arguments,
    backend_options,
    open_for_backend,
    run_main,
    warn_backend_flags,
    warn_unused,
)
from .video_cmd import IMAGE_ONLY_FLAGS, add_video_arguments, run_video


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lotus-infer",
        description="Predict depth/disparity/normals for images or folders; writes <stem>.npy, <stem>_16bit.png and <stem>_color.png "
                    "(subfolders of a folder argument are kept) and summary.json. Exit code 2 when any input failed.",
    )
    p.add_argument("inputs", nargs="*", type=Path, help="image files and/or folders of images, or one video file (see --camera)")
    add_runtime_arguments(p, batch_default=1, batch_help="images per batch for dynamic graphs")
    add_video_arguments(p)
    return p


def expand_inputs(inputs: Sequence[Path]) -> list[Path]:
    """Files as given, folders expanded to their images (recursive, hidden files skipped); a missing path is an error."""
    return [item.path for item in plan_inputs(inputs).inputs]


VIDEO_ONLY_FLAGS = ("max_frames", "align", "window", "no_frames", "fourcc")


def _warn_ignored(parser: argparse.ArgumentParser, args: argparse.Namespace, is_video: bool) -> None:
    if is_video:
        warn_unused(parser, args, IMAGE_ONLY_FLAGS, "for a video or camera")
    else:
        warn_unused(parser, args, VIDEO_ONLY_FLAGS, "for images (they apply to videos and cameras)")
    warn_backend_flags(parser, args)
    if args.backend != "torch" or args.artifact is not None:
        warn_unused(parser, args, ("model",), "without --backend torch and no --artifact")
        warn_unused(parser, args, ("task",), "with an artifact: its manifest says the task")


def _body(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..runtime import backend_names
    from ..runtime.batch import BatchInterrupted, check_results_folder, run_batch
    from ..runtime.estimator import DepthEstimator

    videos = [p for p in args.inputs if is_video_path(p)]
    _warn_ignored(parser, args, is_video=bool(videos) or args.camera is not None)
    if args.max_image_pixels is not None:
        set_max_image_pixels(args.max_image_pixels)
    if args.camera is not None or videos:
        if videos and len(args.inputs) > len(videos):
            raise ConfigError(f"{videos[0]} is a video, given together with {len(args.inputs) - len(videos)} other input(s)",
                              "run a video on its own (one command per video), and images in another command")
        return run_video(args)  # videos and cameras: lotus_deploy/cli/video_cmd.py
    if not args.inputs:
        raise ConfigError("no inputs given", "pass image files or folders, one video file, or --camera N")
    options = backend_options(args)
    if args.backend not in backend_names():
        raise ConfigError(f"unknown backend {args.backend!r}", f"choose one of: {', '.join(backend_names())}")
    on_existing: OnExisting = "overwrite" if args.force else "skip" if args.resume else "refuse"
    artifact = None if args.artifact is None else open_for_backend(args.artifact, args.backend)  # manifest and hashes only
    plan = plan_inputs(args.inputs, output=args.output)
    todo = check_results_folder(args.output, plan, on_existing)  # before the model is loaded
    estimator = DepthEstimator(artifact, backend=args.backend, processing_res=args.processing_res,
                               resample=args.resample, batch_size=args.batch_size, **options)
    with estimator, tqdm_counter(len(todo), "images", disable=args.quiet or not todo) as progress:
        try:
            summary = run_batch(estimator, plan, args.output, on_existing=on_existing, fail_fast=args.fail_fast,
                                progress=progress.update, report=lambda line: print(f"{parser.prog}: {line}", file=sys.stderr))
        except BatchInterrupted as stop:
            done = stop.summary
            print(f"{parser.prog}: interrupted: outputs of {len(done.done)} image(s) written and kept, {len(done.not_processed)} not processed; "
                  f"see {args.output / SUMMARY_NAME} (rerun with --resume to finish)", file=sys.stderr)
            return EXIT_INTERRUPTED
    counts = summary.to_json()["counts"]
    print(json.dumps({"images": len(summary.done), **counts, "output": str(args.output), "summary": str(args.output / SUMMARY_NAME),
                      "meaning": estimator.meaning.value, "backend": args.backend}), file=sys.stdout)
    if summary.failed:
        first = summary.failed[0]
        print(f"{parser.prog}: error: {len(summary.failed)} of {len(todo)} input(s) failed, the first {first['path']}: {first['error']} "
              f"(all are listed in {args.output / SUMMARY_NAME})", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run_main(lambda args: _body(args, parser), parser, argv, interrupted="interrupted before any output was written")


if __name__ == "__main__":
    raise SystemExit(main())
