"""``lotus-export``: checkpoint -> ONNX graph (fp32/fp16/int8) or TensorRT engine, with parity."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.config import (
    DEFAULT_MODEL,
    GROUPNORM_MODES,
    MAX_OPSET,
    MIN_OPSET,
    EngineKind,
    ExportConfig,
    ExportSettings,
    OpenVINOSettings,
    OutputMeaning,
    Precision,
    PrecisionSettings,
    Task,
    infer_task,
)
from .common import (
    ENGINE_FLAGS,
    add_engine_arguments,
    engine_settings,
    enum_choice,
    field_default,
    print_export_summary,
    run_main,
    warn_unused,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lotus-export",
        description="Export Lotus-D as one fused ONNX graph (VAE encoder + UNet + VAE decoder), a reduced-precision graph, or a TensorRT engine.",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="hub id, local diffusers folder, or builtin:tiny / builtin:full (default: %(default)s)")
    p.add_argument("--task", type=enum_choice(Task), help="depth or normal (inferred for the released Lotus-D ids)")
    p.add_argument("--output-meaning", type=enum_choice(OutputMeaning), help="depth or disparity for depth models (inferred for released ids)")
    p.add_argument("--engine", type=enum_choice(EngineKind), default=EngineKind.ONNX, help="onnx, onnx-fp16, onnx-int8, trt-fp32, trt-fp16, trt-int8, openvino, openvino-int8 (default: onnx)")
    p.add_argument("--output", type=Path, help="artifact folder (default: engines/<model>-<task>-<engine>[-HxW])")
    p.add_argument("--height", type=int, help="static graph height (multiple of 64); default: dynamic")
    p.add_argument("--width", type=int, help="static graph width (multiple of 64); default: dynamic")
    p.add_argument("--batch", type=int, help="static batch size; default: dynamic")
    p.add_argument("--opset", type=int, default=field_default(ExportSettings, "opset"), help=f"ONNX opset {MIN_OPSET}-{MAX_OPSET} (default %(default)s; TensorRT 10.3 parses up to 20)")
    p.add_argument("--force", action="store_true", help="replace an existing artifact in the output folder")
    p.add_argument("--no-parity", dest="parity", action="store_false", help="skip the parity check (not recommended)")
    p.add_argument("--parity-images", type=Path, help="folder of photos for the parity check (default: $LOTUS_DEPLOY_PARITY_IMAGES, else synthetic images)")
    p.add_argument("--parity-size", type=int, default=field_default(ExportSettings, "parity_size"), help="processing resolution for parity inputs (default %(default)s)")
    p.add_argument("--atol", type=float, default=field_default(ExportSettings, "atol"), help="fp32 parity tolerance: max abs error vs the float64 oracle (default %(default)g)")
    p.add_argument("--groupnorm", choices=GROUPNORM_MODES, default=field_default(ExportSettings, "groupnorm"),
                   help="GroupNorm export: two-level reductions, accurate in float32 runtimes (default), or torch's native InstanceNormalization form")
    p.add_argument("--split", action="store_true", help="also write the VAE encoder, UNet and VAE decoder as separate graphs (for benchmarks)")
    mem = p.add_argument_group("memory")
    mem.add_argument("--skip-memory-check", dest="memory_check", action="store_false",
                     help="start even when MemAvailable is below the estimated need (k x the fp32 weights; see docs/export.md)")
    mem.add_argument("--stage-report", type=Path, metavar="FILE",
                     help="write each step's wall time and peak resident memory (Linux) to FILE as JSON")
    prec = p.add_argument_group("precision (onnx-fp16, onnx-int8, openvino-int8)")
    prec.add_argument("--calib-dir", type=Path, help="calibration images (int8; fp16 range analysis)")
    prec.add_argument("--eval-dir", type=Path, help="held-out images for the accuracy report (default: a deterministic split of --calib-dir)")
    prec.add_argument("--calib-count", type=int, default=field_default(PrecisionSettings, "calib_count"), help="maximum calibration images (default %(default)s)")
    prec.add_argument("--calib-size", type=int, default=field_default(PrecisionSettings, "calib_size"), help="processing resolution for calibration (default %(default)s)")
    prec.add_argument("--accuracy-target", type=float, help="target vs the fp32 graph: AbsRel after scale+shift for depth, mean angle in degrees for normals (defaults: fp16 0.005 / 0.5°, int8 0.02 / 3°)")
    add_engine_arguments(p.add_argument_group("TensorRT (trt-*)"))
    ov = p.add_argument_group("OpenVINO (openvino)")
    ov.add_argument("--compress-to-fp16", action="store_true",
                    help="store the IR's weights in fp16 (half the size; usually misses the fp32 rule: see docs/openvino.md)")
    p.add_argument("--quiet", action="store_true", help="print only the result")
    return p


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    task, meaning = infer_task(args.model, args.task, args.output_meaning)
    return ExportConfig(
        model=args.model, task=task, meaning=meaning, engine=args.engine, output=args.output,
        height=args.height, width=args.width, batch=args.batch, force=args.force,
        export=ExportSettings(opset=args.opset, parity=args.parity, parity_images=args.parity_images, parity_size=args.parity_size,
                              atol=args.atol, split=args.split, groupnorm=args.groupnorm, memory_check=args.memory_check),
        precision=PrecisionSettings(calib_dir=args.calib_dir, eval_dir=args.eval_dir, calib_count=args.calib_count,
                                    calib_size=args.calib_size, accuracy_target=args.accuracy_target),
        tensorrt=engine_settings(args),
        openvino=OpenVINOSettings(compress_to_fp16=args.compress_to_fp16),
    )


PRECISION_FLAGS = ("calib_dir", "eval_dir", "calib_count", "calib_size", "accuracy_target")
TENSORRT_FLAGS = ENGINE_FLAGS


def warn_ignored_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One warning line per group of flags that do nothing for the chosen --engine (never an error)."""
    engine: EngineKind = args.engine
    if engine.precision is Precision.FP32:
        warn_unused(parser, args, PRECISION_FLAGS, f"with --engine {engine.value} (they apply to onnx-fp16/onnx-int8, trt-fp16/trt-int8 and openvino-int8)")
    if not engine.is_tensorrt:
        warn_unused(parser, args, TENSORRT_FLAGS, f"with --engine {engine.value} (they apply to trt-* engines)")
    if engine is not EngineKind.OPENVINO:
        warn_unused(parser, args, ("compress_to_fp16",), f"with --engine {engine.value} (it applies to openvino)")
    if not args.parity:
        warn_unused(parser, args, ("parity_images", "parity_size", "atol"), "with --no-parity")


def _body(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..core.memory import GIB, StageMonitor, install_monitor, process_peak_bytes
    from ..pipeline import fp32_weight_bytes, run_export

    warn_ignored_flags(parser, args)
    config = config_from_args(args)
    monitor = StageMonitor() if args.stage_report is not None else None
    install_monitor(monitor)
    try:
        result = run_export(config, quiet=args.quiet)
    finally:
        install_monitor(None)
    # the kernel's high-water mark is reset per step under --stage-report, so the monitor holds the peak then
    peak = monitor.finish() if monitor is not None else process_peak_bytes()
    weights = fp32_weight_bytes(config)
    memory = {"peak_resident_gib": round(peak / GIB, 3), "fp32_weights_gib": None if not weights else round(weights / GIB, 3)}
    if monitor is not None:
        monitor.write(args.stage_report, {"command": ["lotus-export", *(args.argv or [])], **memory})
    print_export_summary(result, config, output_meaning=config.meaning.value, memory=memory)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()

    def body(args: argparse.Namespace) -> int:
        args.argv = list(sys.argv[1:] if argv is None else argv)
        return _body(args, parser)

    return run_main(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
