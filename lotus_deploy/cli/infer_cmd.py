"""``lotus-infer``: run an artifact (or, with the torch backend, a checkpoint) on images and folders."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..artifacts import Artifact, open_artifact
from ..errors import ConfigError, InputImageError
from ..video import is_video_path
from .common import add_runtime_arguments, run_main
from .video_cmd import add_video_arguments, run_video


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lotus-infer",
        description="Predict depth/disparity/normals for images or folders; writes <stem>.npy, <stem>_16bit.png and <stem>_color.png.",
    )
    p.add_argument("inputs", nargs="*", type=Path, help="image files and/or folders of images, or one video file (see --camera)")
    add_runtime_arguments(p, batch_default=1, batch_help="images per batch for dynamic graphs")
    add_video_arguments(p)
    return p


def expand_inputs(inputs: Sequence[Path]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted); a missing path is an error."""
    from ..preprocess import list_images

    images: list[Path] = []
    for path in inputs:
        if path.is_dir():
            images.extend(list_images(path))
        elif path.is_file():
            images.append(path)
        else:
            raise InputImageError(f"{path} does not exist", "pass image files or folders that exist")
    return images


def open_for_backend(path: Path, backend: str) -> Artifact:
    """An artifact folder; for the TensorRT backend also a bare engine file (e.g. from trtexec)."""
    if backend == "tensorrt":
        from ..runtime.trt_backend import open_engine

        return open_engine(path)
    return open_artifact(path)


def _body(args: argparse.Namespace) -> int:
    from ..progress import bar
    from ..runtime import backend_names
    from ..runtime.estimator import DepthEstimator

    if args.camera is not None or any(is_video_path(p) for p in args.inputs):
        return run_video(args)  # videos and cameras: lotus_deploy/cli/video_cmd.py
    if not args.inputs:
        raise ConfigError("no inputs given", "pass image files or folders, one video file, or --camera N")
    if args.artifact is None and not (args.backend == "torch" and args.model):
        raise ConfigError("no --artifact given", "pass --artifact ENGINE_DIR (from lotus-export), or --backend torch --model ID")
    if args.backend not in backend_names():
        raise ConfigError(f"unknown backend {args.backend!r}", f"choose one of: {', '.join(backend_names())}")
    options = {"model": args.model, "task": args.task} if args.backend == "torch" and args.model else {}
    artifact = None if args.artifact is None else open_for_backend(args.artifact, args.backend)
    images = expand_inputs(args.inputs)
    estimator = DepthEstimator(artifact, backend=args.backend, processing_res=args.processing_res,
                               resample=args.resample, batch_size=args.batch_size, **options)
    written = 0
    with estimator:
        for path, prediction in zip(images, bar(estimator.predict_many(images), "images", total=len(images), disable=args.quiet), strict=True):
            prediction.save(args.output, path.stem, force=args.force)
            written += 1
    print(json.dumps({"images": written, "output": str(args.output), "meaning": estimator.meaning.value, "backend": args.backend}), file=sys.stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_body, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
