"""``lotus-serve``: Triton model repositories from artifacts (``repo``) and serving through PyTriton (``run``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.config import DEFAULT_PROCESSING_RES
from .common import add_openvino_arguments, backend_options, processing_res_arg, run_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lotus-serve", description="Serve an artifact: write a Triton model repository, or serve it through PyTriton.")
    sub = p.add_subparsers(dest="command", required=True)

    repo = sub.add_parser("repo", help="write a Triton Inference Server model repository for an artifact",
                          description="Write a Triton model repository: the graph (onnxruntime_onnx or tensorrt_plan) with a config from the "
                                      "manifest, and Python-backend pre/post-processing so clients send encoded images.")
    repo.add_argument("artifact", type=Path, metavar="ARTIFACT", help="ONNX or TensorRT engine artifact folder")
    repo.add_argument("--out", type=Path, required=True, help="the repository folder to write")
    repo.add_argument("--max-batch", type=int, help="max_batch_size (default: the engine profile's max batch, or 8 for a dynamic ONNX graph)")
    repo.add_argument("--instance-kind", choices=("cpu", "gpu"), default="gpu", help="where the graph's instances run (default %(default)s)")
    repo.add_argument("--instances", type=int, default=1, help="instances of each model (default %(default)s)")
    repo.add_argument("--preprocess", choices=("python", "ensemble"), default="python",
                      help="python: one Python model calls the graph (BLS); ensemble: pre → graph → post (default %(default)s)")
    repo.add_argument("--link", action="store_true", help="hard-link the weights instead of copying them (same filesystem)")
    repo.add_argument("--name", help="the client-facing model name (default lotus_<task>); the graph is <name>_graph")
    repo.add_argument("--processing-res", type=processing_res_arg, default=None,
                      help=f"long edge the Python models resize to (default: the working resolution the model declares, else {DEFAULT_PROCESSING_RES})")
    repo.add_argument("--resample", choices=("nearest", "bilinear"), default="nearest", help="how outputs are resized back (default %(default)s)")
    repo.add_argument("--force", action="store_true", help="replace an existing repository folder (only once the new one is complete)")

    run = sub.add_parser("run", help="serve an artifact through PyTriton (a Triton server with our runtime inside)",
                         description="Serve DepthEstimator through PyTriton until Ctrl-C. Clients send one encoded image per request "
                                     "(input 'encoded', BYTES [1]) to model lotus_<task>, and get the prediction at the image's size.")
    run.add_argument("artifact", type=Path, metavar="ARTIFACT", help="artifact folder")
    run.add_argument("--backend", default="onnxruntime", help="runtime backend (default %(default)s)")
    run.add_argument("--http-port", type=int, default=8000, help="(default %(default)s)")
    run.add_argument("--grpc-port", type=int, default=8001, help="(default %(default)s)")
    run.add_argument("--metrics-port", type=int, default=8002, help="(default %(default)s)")
    run.add_argument("--address", default="127.0.0.1", help="address both endpoints listen on; 0.0.0.0 for other machines (default %(default)s)")
    run.add_argument("--max-batch", type=int, default=8, help="images per graph call; 1 turns dynamic batching off (default %(default)s)")
    run.add_argument("--max-queue-delay-us", type=int, default=2000, help="how long the batcher waits to fill a batch (default %(default)s)")
    run.add_argument("--name", help="the client-facing model name (default lotus_<task>)")
    run.add_argument("--processing-res", type=processing_res_arg, default=None,
                     help=f"(default: the working resolution the model declares, else {DEFAULT_PROCESSING_RES})")
    run.add_argument("--resample", choices=("nearest", "bilinear"), default="nearest", help="(default %(default)s)")
    add_openvino_arguments(run.add_argument_group("OpenVINO (--backend openvino)"))
    return p


def _repo(args: argparse.Namespace) -> int:
    from ..core.artifacts import open_artifact
    from ..serve.triton_repo import RepoSettings, write_repository

    artifact = open_artifact(args.artifact)
    settings = RepoSettings(max_batch=args.max_batch, instance_kind=args.instance_kind, instances=args.instances, preprocess=args.preprocess,
                            link=args.link, name=args.name, processing_res=args.processing_res, resample=args.resample)
    configs = write_repository(artifact, args.out, settings, force=args.force)
    print(json.dumps({"repository": str(args.out), "models": sorted(configs), "kind": artifact.kind}))
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..runtime.estimator import DepthEstimator
    from ..serve.pytriton_server import ServerSettings, load_pytriton, serve

    settings = ServerSettings(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port, address=args.address,
                              max_batch=args.max_batch, max_queue_delay_us=args.max_queue_delay_us, name=args.name)
    settings.check()
    load_pytriton()  # a missing PyTriton fails before the model loads
    args.model, args.task = None, None  # serve takes artifacts only
    options = backend_options(args)
    if args.backend == "onnxruntime":
        options["spinning"] = False  # a server's decoding and network threads need the cores between graph calls
    with DepthEstimator(args.artifact, backend=args.backend, processing_res=args.processing_res, resample=args.resample,
                        batch_size=settings.max_batch, **options) as estimator:
        name = settings.name or f"lotus_{estimator.task.value}"

        def ready() -> None:
            print(f"lotus-serve: serving {name} (and {name}_graph) on http://{settings.address}:{settings.http_port} and "
                  f"grpc://{settings.address}:{settings.grpc_port}; Ctrl-C stops", file=sys.stderr, flush=True)

        serve(estimator, settings, ready=ready)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run_main(lambda args: _repo(args) if args.command == "repo" else _run(args), parser, argv, interrupted="stopped")


if __name__ == "__main__":
    raise SystemExit(main())
