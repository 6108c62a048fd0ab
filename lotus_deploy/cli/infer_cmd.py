"""``lotus-infer``: run an artifact (or, with the torch backend, a checkpoint) on images and folders."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.progress import tqdm_counter
from ..image.input_plan import InputPlan, plan_inputs
from ..image.preprocess import set_max_image_pixels
from ..runtime.batch import SUMMARY_NAME, BatchSummary, OnExisting
from ..stream.video import is_video_path
from .common import (
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    add_runtime_arguments,
    backend_options,
    note_processing_res,
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
    add_ray_arguments(p.add_argument_group("Ray Data (dataset-scale runs; the ray extra)"))
    return p


RAY_FLAGS = ("ray_concurrency", "ray_gpus_per_actor", "ray_output")


def add_ray_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--ray", metavar="ADDRESS", help="run on Ray Data: 'local' starts a cluster on this machine, else a cluster address (ray://host:10001 or host:6379)")
    g.add_argument("--ray-concurrency", type=int, help="actors, each loading the artifact once (default: every CPU but one, or one per --ray-gpus-per-actor GPUs)")
    g.add_argument("--ray-gpus-per-actor", type=float, default=0.0, help="GPUs each actor reserves (default %(default)s: CPU actors)")
    g.add_argument("--ray-output", choices=("files", "parquet"), default="files",
                   help="files: the plain command's outputs; parquet: rows of path, shape and array under OUTPUT/predictions/ (default %(default)s)")


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
    if args.ray is None:
        warn_unused(parser, args, RAY_FLAGS, "without --ray")
    else:
        warn_unused(parser, args, ("fail_fast",), "with --ray (every input is attempted; failures are listed)")
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
        if args.ray is not None:
            raise ConfigError("--ray runs images and folders, not videos or cameras", "drop --ray for a video, or pass image files and folders")
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
    if args.ray is not None:
        return _run_on_ray(args, parser, plan, on_existing, options)
    todo = check_results_folder(args.output, plan, on_existing)  # before the model is loaded
    estimator = DepthEstimator(artifact, backend=args.backend, processing_res=args.processing_res,
                               resample=args.resample, batch_size=args.batch_size, **options)
    if not args.quiet:
        note_processing_res(parser.prog, estimator)
    with estimator, tqdm_counter(len(todo), "images", disable=args.quiet or not todo) as progress:
        try:
            summary = run_batch(estimator, plan, args.output, on_existing=on_existing, fail_fast=args.fail_fast,
                                progress=progress.update, report=lambda line: print(f"{parser.prog}: {line}", file=sys.stderr))
        except BatchInterrupted as stop:
            done = stop.summary
            print(f"{parser.prog}: interrupted: outputs of {len(done.done)} image(s) written and kept, {len(done.not_processed)} not processed; "
                  f"see {args.output / SUMMARY_NAME} (rerun with --resume to finish)", file=sys.stderr)
            return EXIT_INTERRUPTED
    return _report(summary, args, parser, len(todo))


def _run_on_ray(args: argparse.Namespace, parser: argparse.ArgumentParser, plan: InputPlan, on_existing: OnExisting,
                options: dict[str, Any]) -> int:
    """The same batch run on Ray Data (lotus_deploy/serve/ray_batch.py)."""
    from ..runtime.batch import BatchInterrupted
    from ..serve.ray_batch import RaySettings, check_ray_output, run_ray_batch

    settings = RaySettings(address=args.ray, concurrency=args.ray_concurrency, gpus_per_actor=args.ray_gpus_per_actor,
                           output_format=args.ray_output)
    settings.check()
    todo = check_ray_output(args.output, plan, settings, on_existing)  # before the cluster starts
    estimator_options = {"backend": args.backend, "processing_res": args.processing_res, "resample": args.resample, **options}
    with tqdm_counter(len(todo), "images", disable=args.quiet or not todo) as progress:
        try:
            summary = run_ray_batch(args.artifact, plan, todo, args.output, settings, estimator_options, on_existing=on_existing,
                                    batch_size=args.batch_size, max_image_pixels=args.max_image_pixels, progress=progress.update,
                                    report=lambda line: print(f"{parser.prog}: {line}", file=sys.stderr))
        except BatchInterrupted as stop:
            print(f"{parser.prog}: interrupted: {len(stop.summary.done)} image(s) finished and kept; see {args.output / SUMMARY_NAME} "
                  "(rerun with --resume to finish)", file=sys.stderr)
            return EXIT_INTERRUPTED
    return _report(summary, args, parser, len(todo))


def _report(summary: BatchSummary, args: argparse.Namespace, parser: argparse.ArgumentParser, todo: int) -> int:
    """The one JSON line on stdout; exit code 2 (naming the first failure) when any input failed."""
    counts = summary.to_json()["counts"]
    print(json.dumps({"images": len(summary.done), **counts, "output": str(args.output), "summary": str(args.output / SUMMARY_NAME),
                      "meaning": summary.meaning, "backend": args.backend}), file=sys.stdout)
    if summary.failed:
        first = summary.failed[0]
        print(f"{parser.prog}: error: {len(summary.failed)} of {todo} input(s) failed, the first {first['path']}: {first['error']} "
              f"(all are listed in {args.output / SUMMARY_NAME})", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run_main(lambda args: _body(args, parser), parser, argv, interrupted="interrupted before any output was written")


if __name__ == "__main__":
    raise SystemExit(main())
