"""Measure temporal flicker before/after alignment and the metric-fit error; write JSON + Markdown.

    python benchmarks/stability.py [--artifact DIR] [--video PATH] [--processing-res 256] [--max-frames N]

Without ``--artifact`` it exports ``builtin:tiny`` (random weights) into ``benchmarks/scratch/``. Results
go to ``benchmarks/results/stability.{json,md}``. Three flicker measurements:

1. ``street.mp4`` through the model as it is (raw) vs aligned (window 1 and 3);
2. the same predictions with a seeded random affine jump per frame (what Lotus-D's per-frame
   scale/shift ambiguity looks like; random-weight tiny has little of it), raw vs aligned;
3. a synthetic static scene with per-frame affine jitter (true depth known).

Metric fit: a synthetic plane + boxes scene, affine-invariant depth and disparity predictions made from
it, 200 sparse points with 1% noise and 20% gross outliers; error of the recovered metric depth.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STREET = ROOT.parent / "shared" / "data" / "videos" / "street.mp4"


def _flicker_block(raw: list[np.ndarray], images: list[np.ndarray]) -> dict[str, object]:
    from lotus_deploy.stream.temporal import align_sequence, flicker_metrics

    out: dict[str, object] = {"raw": flicker_metrics(raw, images).to_json()}
    for window in (1, 3):
        aligned, steps = align_sequence(raw, images, window=window)
        report = flicker_metrics(aligned, images).to_json()
        report["fitted_scale_std"] = float(np.std([s.scale for s in steps]))
        report["fitted_shift_std"] = float(np.std([s.shift for s in steps]))
        report["fallback_frames"] = int(sum(s.fallback for s in steps))
        out[f"aligned_window{window}"] = report
    return out


def video_flicker(artifact: Path, video: Path, processing_res: int, max_frames: int | None, scratch: Path) -> dict[str, object]:
    from lotus_deploy.runtime.estimator import DepthEstimator
    from lotus_deploy.stream.depth_video import VideoOptions, run_depth_video
    from lotus_deploy.stream.video import read_video_frames

    with DepthEstimator(artifact, processing_res=processing_res, batch_size=4) as est:
        summary = run_depth_video(est, video, scratch / "street", VideoOptions(max_frames=max_frames, batch_size=4, force=True, quiet=True))
    raw = [np.load(scratch / "street" / "frames" / f"{i:06d}.npy") for i in summary["frame_indices"]]
    frames = read_video_frames(video, max_frames=max_frames)
    images = [frames[i] for i in summary["frame_indices"]]
    rng = np.random.default_rng(0)
    jittered = [(d * rng.uniform(0.7, 1.3) + rng.uniform(-0.15, 0.15)).astype(np.float32) for d in raw]
    return {
        "video": _shown(str(video.resolve())),
        "frames": len(raw),
        "failed_frames": summary["failed_frames"],
        "fps_processed": summary["fps_processed"],
        "model_output": _flicker_block(raw, images),
        "model_output_with_affine_jumps": _flicker_block(jittered, images),
    }


def synthetic_flicker() -> dict[str, object]:
    from lotus_deploy.synthetic import flicker_sequence

    truths, preds, images = flicker_sequence(frames=24, height=96, width=128)
    return _flicker_block(preds, images)


def metric_fit() -> dict[str, object]:
    from lotus_deploy.stream.metric import SparsePoints, fit_metric, sample
    from lotus_deploy.synthetic import affine_prediction, scene_depth, sparse_points

    truth = scene_depth(240, 320)
    results: dict[str, object] = {"scene": "240x320 ground plane + back wall (30 m) + 3 boxes, true depth 3.3-30 m",
                                  "points": "200 sparse, 1% relative noise, 20% gross outliers", "prediction_noise": 0.005}
    for meaning in ("depth", "disparity"):
        disparity = meaning == "disparity"
        pred = affine_prediction(truth, disparity=disparity)
        sample_ = sparse_points(truth, count=200, outlier_fraction=0.2)
        start = time.perf_counter()
        fit = fit_metric(pred, sample_.points, meaning)
        seconds = time.perf_counter() - start
        err = fit.depth_m.astype(np.float64) - truth
        # Baseline: plain least squares on all points in the same space.
        pts = SparsePoints.from_array(sample_.points)
        values, _ = sample(pred.astype(np.float64), pts)
        target = 1.0 / pts.depth_m if disparity else pts.depth_m
        (s, t), *_ = np.linalg.lstsq(np.stack([values, np.ones_like(values)], 1), target, rcond=None)
        plain = pred * s + t
        plain = np.where(plain > 0, 1.0 / np.maximum(plain, 1e-12), np.nan) if disparity else plain
        results[meaning] = {
            "fit": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in fit.summary().items()},
            "true_outliers": int(sample_.outlier.sum()),
            "inliers_that_are_true_inliers": int((fit.inlier_mask & ~sample_.outlier).sum()),
            "dense_absrel_vs_truth": float(np.nanmean(np.abs(err) / truth)),
            "dense_rmse_m_vs_truth": float(np.sqrt(np.nanmean(err**2))),
            "plain_ls_dense_absrel_vs_truth": float(np.nanmean(np.abs(plain - truth) / truth)),
            "seconds": round(seconds, 4),
        }
    return results


def _fmt(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def markdown(data: dict[str, object]) -> str:
    lines = ["# Temporal stability and metric fit", "", f"Command: `{' '.join(data['command'])}`", "",
             f"Machine: {data['machine']}; date {data['date']}.", "",
             "Flicker = mean |d_k − d_{k−1}| over static pixels (grey-level change < 8), in units of the sequence's",
             "5–95 % depth spread. Pair scale/shift std = spread of the robust LS fit between consecutive frames.",
             "Fitted scale/shift std = spread of the aligner's per-frame (s, t).", ""]
    blocks = []
    video = data.get("video")
    if isinstance(video, dict):
        lines.append(f"Video: `{video['video']}`, {video['frames']} frames, failed {video['failed_frames']['count']}, {video['fps_processed']} frames/s (CPU).")
        blocks += [("street.mp4, builtin:tiny output", video["model_output"]),
                   ("street.mp4, builtin:tiny output + random per-frame affine jumps", video["model_output_with_affine_jumps"])]
    blocks.append(("synthetic static scene, per-frame affine jitter ±20 %", data["synthetic_flicker"]))
    lines += ["", "| sequence | variant | flicker | pair scale std | pair shift std | fitted scale std | fitted shift std |", "|---|---|---|---|---|---|---|"]
    for name, block in blocks:
        assert isinstance(block, dict)
        for variant, rep in block.items():
            lines.append(f"| {name} | {variant} | {_fmt(rep['static_change'])} | {_fmt(rep['pair_scale_std'])} | {_fmt(rep['pair_shift_std'])} | "
                         f"{_fmt(rep.get('fitted_scale_std', '–'))} | {_fmt(rep.get('fitted_shift_std', '–'))} |")
    metric = data["metric_fit"]
    assert isinstance(metric, dict)
    lines += ["", f"Metric fit: {metric['scene']}; {metric['points']}; prediction noise {metric['prediction_noise']}.", "",
              "| output meaning | inliers / points (true inliers among them) | RMSE at inliers (m) | median rel. at inliers | dense AbsRel vs truth | dense RMSE vs truth (m) | plain-LS dense AbsRel |",
              "|---|---|---|---|---|---|---|"]
    for meaning in ("depth", "disparity"):
        m = metric[meaning]
        fit = m["fit"]
        lines.append(f"| {meaning} | {fit['inliers']} / {fit['points']} ({m['inliers_that_are_true_inliers']}) | {_fmt(fit['rmse_m'])} | {_fmt(fit['median_rel'])} | "
                     f"{_fmt(m['dense_absrel_vs_truth'])} | {_fmt(m['dense_rmse_m_vs_truth'])} | {_fmt(m['plain_ls_dense_absrel_vs_truth'])} |")
    return "\n".join(lines) + "\n"


def _shown(text: str) -> str:
    """A path argument as the repository sees it (repo-relative or ../shared/...), never absolute."""
    path = Path(text)
    if not path.is_absolute():
        return text
    for base, prefix in ((ROOT, Path(".")), (ROOT.parent, Path(".."))):
        if path.resolve().is_relative_to(base):
            return str(prefix / path.resolve().relative_to(base))
    return path.name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", type=Path, help="depth artifact (default: export builtin:tiny into benchmarks/scratch)")
    p.add_argument("--video", type=Path, default=STREET)
    p.add_argument("--processing-res", type=int, default=256)
    p.add_argument("--max-frames", type=int)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    from lotus_deploy.bench.provenance import collect
    from lotus_deploy.core.safe_io import write_json_atomic, write_text_atomic

    provenance = collect()  # at the start: the commit and tree state the measurements ran on
    scratch = ROOT / "benchmarks" / "scratch" / "stability"
    scratch.mkdir(parents=True, exist_ok=True)
    data: dict[str, object] = {
        "command": ["python", "benchmarks/stability.py", *(_shown(a) for a in (argv if argv is not None else sys.argv[1:]))],
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "date": provenance["date"],
        "provenance": {"git": provenance["git"], "cpu": provenance["cpu"], "libraries": provenance["libraries"]},
    }
    if args.video.is_file():
        artifact = args.artifact
        if artifact is None:
            from lotus_deploy.core.config import ExportConfig, ExportSettings
            from lotus_deploy.export.fused import export_onnx

            artifact = scratch / "tiny"  # exported afresh every run: never an artifact of an older export
            export_onnx(ExportConfig(model="builtin:tiny", output=artifact, force=True, export=ExportSettings(parity=False)), quiet=True)
        data["artifact"] = "builtin:tiny (exported fp32 ONNX)" if args.artifact is None else _shown(str(args.artifact))
        data["processing_res"] = args.processing_res
        data["video"] = video_flicker(artifact, args.video, args.processing_res, args.max_frames, scratch)
    else:
        print(f"video {args.video} not found: skipping the video measurement", file=sys.stderr)
        data["video"] = None
    data["synthetic_flicker"] = synthetic_flicker()
    data["metric_fit"] = metric_fit()
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "stability.json", data)
    write_text_atomic(args.out / "stability.md", markdown(data))
    print(markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
