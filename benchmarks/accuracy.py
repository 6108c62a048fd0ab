"""Accuracy against ground truth: a trained model and its artifacts on held-out rendered scenes.

Exports (or reuses) the model's fp32 ONNX graph, its onnx-fp16 and onnx-int8 graphs (int8 calibrated on
rendered calibration scenes, never the held-out ones) and, where OpenVINO is installed, its OpenVINO
IRs. Each runs through ``DepthEstimator`` with default settings (the model's declared working
resolution) on the same held-out scenes (``lotus_deploy.synthetic.accuracy``), beside PyTorch fp32
straight from the checkpoint. Depth rows: AbsRel, δ1 and mean absolute error in metres after a
scale-and-shift fit. Normal rows: mean angle and the share under 11.25°. The fp16 and int8 rows show
what each precision costs against the truth; the int8 row gives its int8 MAC share.

Temporal flicker on a rendered camera move (true depth known): the mean frame-to-frame change of the
prediction, after aligning each frame to the truth, against the true change (flicker = excess change).

    python benchmarks/accuracy.py --model builtin:demo --task depth
    python benchmarks/accuracy.py --model builtin:demo --task normal

Writes ``<out>/accuracy_<model>_<task>.json`` + ``.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lotus_deploy.bench.provenance import collect, provenance_sentence, shown_path
from lotus_deploy.core.safe_io import write_json_atomic, write_text_atomic
from lotus_deploy.synthetic.accuracy import GOALS

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def shown(path: Path | str) -> str:
    return shown_path(path, REPO)


def export(model: str, task: str, engine: str, work: Path, calib: Path | None) -> tuple[Path | None, str]:
    """One lotus-export (the parent is reused when present): the artifact folder, or None and why it was refused."""
    name = model.replace("builtin:", "builtin-")
    folder = work / "engines" / f"{name}-{task}-{engine}"
    if not (folder / "manifest.json").is_file():
        argv = [sys.executable, "-m", "lotus_deploy.cli.export_cmd", "--model", model, "--task", task, "--engine", engine, "--quiet"]
        if calib is not None and engine.endswith("int8"):
            argv += ["--calib-dir", str(calib), "--calib-size", "256"]
        done = subprocess.run(argv, cwd=work, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.startswith("lotus-export: error:")]
            if engine == "onnx" or not errors:  # the fp32 graph is needed by every other row
                raise SystemExit(f"lotus-export --engine {engine} failed ({done.returncode}):\n{done.stderr[-3000:]}")
            return None, errors[-1].removeprefix("lotus-export: error: ")
    return folder, ""


def calibration_images(folder: Path, count: int) -> Path:
    """Rendered calibration scenes as PNGs (seeds apart from training and held-out ones)."""
    from PIL import Image

    from lotus_deploy.synthetic.render import render_scene

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(render_scene(20_000_000 + i, 192, 256).rgb).save(folder / f"calib_{i:03d}.png")
    return folder


def predictor(estimator: Any) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: estimator.predict(rgb).values


def rows_for(args: argparse.Namespace, artifacts: list[Path], refused: dict[str, str], scenes: list[Any]) -> list[dict[str, Any]]:
    from lotus_deploy.core.artifacts import open_artifact
    from lotus_deploy.runtime.estimator import DepthEstimator
    from lotus_deploy.synthetic.accuracy import mean_accuracy

    rows = []
    with DepthEstimator(None, backend="torch", model=args.model, task=args.task) as torch_est:
        rows.append({"row": "PyTorch fp32 (checkpoint)", "processing_res": torch_est.processing_res,
                     **mean_accuracy(predictor(torch_est), args.task, scenes)})
    for folder in artifacts:
        artifact = open_artifact(folder)
        precisions = ["f32", "bf16"] if artifact.kind == "openvino" and args.bf16 else ["f32"] if artifact.kind == "openvino" else [None]
        for precision in precisions:
            backend = "openvino" if artifact.kind == "openvino" else "onnxruntime"
            options = {"precision": precision} if precision else {}
            with DepthEstimator(artifact, backend=backend, **options) as est:
                label = f"{artifact.manifest.get('engine')} ({backend}{', ' + precision if precision else ''})"
                row = {"row": label, "artifact": shown(folder), "processing_res": est.processing_res,
                       **mean_accuracy(predictor(est), args.task, scenes)}
            int8 = artifact.manifest.get("int8") or {}
            if "int8_mac_share" in int8:
                row["int8_mac_share"] = int8["int8_mac_share"]
            rows.append(row)
    rows += [{"row": engine, "refused": reason} for engine, reason in refused.items()]  # an export that would not publish, and why
    return rows


def flicker(args: argparse.Namespace, artifact: Path) -> dict[str, Any]:
    """Excess frame-to-frame change of depth on a rendered camera move, raw prediction vs truth-aligned."""
    from lotus_deploy.core.fitting import fit_line
    from lotus_deploy.runtime.estimator import DepthEstimator
    from lotus_deploy.synthetic.accuracy import MAX_DEPTH_M
    from lotus_deploy.synthetic.render import render_trajectory

    frames = list(render_trajectory(30_000_000, frames=args.frames, height=240, width=320, kind="outdoor", step_m=0.1))
    aligned, truths, masks = [], [], []
    with DepthEstimator(artifact) as est:
        for frame in frames:
            pred = est.predict(frame.rgb).values.astype(np.float64)
            valid = frame.valid & (frame.depth <= MAX_DEPTH_M)
            scale, shift = fit_line(pred[valid], frame.depth[valid].astype(np.float64))
            aligned.append(pred * scale + shift)
            truths.append(frame.depth.astype(np.float64))
            masks.append(valid)
    changes, true_changes = [], []
    for k in range(1, len(frames)):
        both = masks[k] & masks[k - 1]
        changes.append(float(np.mean(np.abs(aligned[k] - aligned[k - 1])[both] / truths[k][both])))
        true_changes.append(float(np.mean(np.abs(truths[k] - truths[k - 1])[both] / truths[k][both])))
    return {"frames": len(frames), "mean_relative_change": round(float(np.mean(changes)), 4),
            "true_mean_relative_change": round(float(np.mean(true_changes)), 4),
            "excess_change": round(float(np.mean(changes) - np.mean(true_changes)), 4)}


def check_goals(task: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = rows[0]
    if task == "depth":
        absrel, delta1 = GOALS["depth"]["absrel_max"], GOALS["depth"]["delta1_min"]
        return [{"goal": f"AbsRel <= {absrel:g} (PyTorch fp32)", "measured": first["absrel"], "met": first["absrel"] <= absrel},
                {"goal": f"delta1 >= {delta1:g} (PyTorch fp32)", "measured": first["delta1"], "met": first["delta1"] >= delta1}]
    angle = GOALS["normal"]["mean_angle_deg_max"]
    return [{"goal": f"mean angle <= {angle:g} deg (PyTorch fp32)", "measured": first["mean_angle_deg"], "met": first["mean_angle_deg"] <= angle}]


def write_markdown(data: dict[str, Any], path: Path) -> None:
    metrics = ["absrel", "delta1", "abs_m"] if data["task"] == "depth" else ["mean_angle_deg", "within_11_25"]
    lines = [f"# Accuracy against ground truth: {data['model']} ({data['task']})", "",
             provenance_sentence(data) + ".", "",
             f"{data['scenes']} held-out rendered scenes at 320x240 (`lotus_deploy.synthetic.accuracy.held_out_scenes`), each row through "
             "`DepthEstimator` with default settings. " + ("Depth: after a least-squares scale-and-shift fit to the true metric depth, "
                                                          "on pixels with true depth (no sky, <= 80 m)." if data["task"] == "depth" else
                                                          "Normals: on non-sky pixels."), "",
             "| row | processing res | " + " | ".join(metrics) + " | int8 MAC share |", "|---|---|" + "---|" * len(metrics) + "---|"]
    for row in data["rows"]:
        if "refused" in row:
            lines.append(f"| {row['row']} | — | refused by lotus-export: {row['refused']} |" + " |" * len(metrics))
            continue
        lines.append(f"| {row['row']} | {row['processing_res']} | " + " | ".join(str(row[m]) for m in metrics) + f" | {row.get('int8_mac_share', '—')} |")
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else 'NO'} |" for g in data["goals"]]
    if data.get("flicker"):
        f = data["flicker"]
        lines += ["", f"Temporal stability on a rendered camera move ({f['frames']} frames, fp32 ONNX, aligned to the truth per frame): "
                      f"mean relative frame-to-frame change {f['mean_relative_change']} against the true {f['true_mean_relative_change']} "
                      f"(excess, i.e. flicker: {f['excess_change']})."]
    write_text_atomic(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin:demo")
    p.add_argument("--task", choices=("depth", "normal"), default="depth")
    p.add_argument("--scenes", type=int, default=24)
    p.add_argument("--frames", type=int, default=12, help="frames of the rendered camera move (depth only)")
    p.add_argument("--engines", default="onnx,onnx-fp16,onnx-int8,openvino,openvino-int8",
                   help="artifacts to export and evaluate (openvino ones only where OpenVINO is installed)")
    p.add_argument("--work", type=Path, default=REPO, help="where engines/ go (default: the repository's)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    from lotus_deploy.core.deps import available
    from lotus_deploy.synthetic.accuracy import held_out_scenes

    provenance = collect()
    engines = [e for e in args.engines.split(",") if e and (available("openvino") or not e.startswith("openvino"))]
    args.bf16 = False
    if available("openvino"):
        from lotus_deploy.openvino.device import has_native, make_core

        args.bf16 = has_native(make_core(), "CPU", "bf16")
    with tempfile.TemporaryDirectory() as scratch:
        calib = calibration_images(Path(scratch) / "calib", 32) if any(e.endswith("int8") for e in engines) else None
        made = {engine: export(args.model, args.task, engine, args.work, calib) for engine in engines}
    artifacts = [folder for folder, _ in made.values() if folder is not None]
    refused = {engine: reason for engine, (folder, reason) in made.items() if folder is None}
    scenes = held_out_scenes(args.scenes, width=320)
    rows = rows_for(args, artifacts, refused, scenes)
    name = f"accuracy_{args.model.replace('builtin:', 'builtin-')}_{args.task}"
    command = ["python", "benchmarks/accuracy.py", "--model", args.model, "--task", args.task, "--scenes", str(args.scenes),
               "--engines", args.engines] + (["--out", shown(args.out)] if args.out != RESULTS else [])
    data = {"command": command, "date": provenance["date"], "provenance": {"git": provenance["git"], "cpu": provenance["cpu"]},
            "model": args.model, "task": args.task, "scenes": args.scenes, "rows": rows, "goals": check_goals(args.task, rows),
            "flicker": flicker(args, artifacts[0]) if args.task == "depth" and artifacts else None}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / f"{name}.json", data)
    write_markdown(data, args.out / f"{name}.md")
    print(json.dumps({"rows": rows, "goals": data["goals"], "flicker": data["flicker"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
