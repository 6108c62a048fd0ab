"""``lotus-build ONNX_DIR``: build a TensorRT engine where it will run, from an ONNX artifact made elsewhere.

The Jetson workflow: export (and calibrate) on a desktop, copy the ONNX artifact folder to the device,
build the engine there. ``--print-trtexec`` prints the equivalent ``trtexec`` command instead (needs no
TensorRT on this machine).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.artifacts import ENGINE_FILE, Artifact, check_artifact_output, open_artifact
from ..core.config import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, EngineKind, ExportConfig, ExportSettings
from ..core.errors import ConfigError
from .common import add_engine_arguments, engine_settings, field_default, print_export_summary, run_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lotus-build",
        description="Build a strongly typed TensorRT engine from a lotus-export ONNX artifact (fp32, fp16 or int8 Q/DQ graph), on the machine that will run it.",
    )
    p.add_argument("onnx_dir", type=Path, metavar="ONNX_DIR", help="ONNX artifact folder (model.onnx + model.onnx.data + manifest.json)")
    p.add_argument("--output", type=Path, help="engine artifact folder (default: engines/<model>-<task>-trt-<precision>[-HxW][-bN])")
    p.add_argument("--height", type=int, help="static (or opt) height, multiple of 64 (default 512)")
    p.add_argument("--width", type=int, help="static (or opt) width, multiple of 64 (default 512)")
    p.add_argument("--batch", type=int, help="static (or opt) batch (default 1)")
    add_engine_arguments(p)
    p.add_argument("--force", action="store_true", help="replace an existing artifact in the output folder")
    p.add_argument("--no-parity", dest="parity", action="store_false", help="skip the engine-vs-ONNX Runtime parity check")
    p.add_argument("--parity-images", type=Path, help="folder of photos for the parity check (default: synthetic images)")
    p.add_argument("--atol", type=float, default=field_default(ExportSettings, "atol"), help="fp32 engine parity: max abs error vs the graph is max(--atol, 1e-3)")
    p.add_argument("--print-trtexec", action="store_true", help="print the equivalent trtexec command line and exit (builds nothing)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="do not re-hash the ONNX artifact's files before building")
    p.add_argument("--quiet", action="store_true", help="print only the result")
    return p


def config_for(parent: Artifact, args: argparse.Namespace) -> ExportConfig:
    """The ExportConfig of an engine built from ``parent`` with the command's flags."""
    if parent.kind != "onnx":
        raise ConfigError(f"{parent.folder} is a {parent.kind} artifact, not an ONNX graph", "pass the ONNX artifact folder the engine should be built from")
    opset = parent.manifest.get("opset")
    export = ExportSettings(opset=opset if isinstance(opset, int) and MIN_OPSET <= opset <= MAX_OPSET else DEFAULT_OPSET,
                            parity=args.parity, parity_images=args.parity_images, atol=args.atol)
    return ExportConfig(
        model=parent.source_model or parent.folder.name, task=parent.task, meaning=parent.meaning,
        engine=EngineKind(f"trt-{parent.precision.value}"), output=args.output,
        height=args.height, width=args.width, batch=args.batch, force=args.force,
        export=export, tensorrt=engine_settings(args),
    )


def _body(args: argparse.Namespace) -> int:
    from ..pipeline import run_stage
    from ..tensorrt.build import preflight, profile_from_config, settings_from_config
    from ..tensorrt.trtexec import format_command, trtexec_command

    parent = open_artifact(args.onnx_dir, check_hashes=args.verify and not args.print_trtexec)
    config = config_for(parent, args)
    if args.print_trtexec:
        profile = profile_from_config(config, parent.shape)
        fully_static = parent.shape.is_static and parent.shape.batch is not None
        argv = trtexec_command(parent.model_path, config.artifact_dir / ENGINE_FILE, profile, settings_from_config(config),
                               graph_is_static=fully_static)
        print(format_command(argv))
        print(f"# create {config.artifact_dir} first; trtexec writes the engine only (no manifest: lotus-deploy runs it with a warning)", file=sys.stderr)
        return 0
    check_artifact_output(config.artifact_dir, config.force)  # before TensorRT is even loaded
    preflight(config)
    result = run_stage(parent, config, quiet=args.quiet)
    trt_info = result.manifest.get("tensorrt", {})
    print_export_summary(result, config, tensorrt=trt_info.get("version"), compute_capability=trt_info.get("compute_capability"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_body, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
