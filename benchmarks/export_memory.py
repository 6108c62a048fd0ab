"""Per-stage peak memory and wall time of lotus-export: fp32 export, then onnx-fp16 and onnx-int8 from it.

Each engine runs as its own ``lotus-export`` process (one process holding weights at a time) with
``--stage-report``: the kernel's resident-set high-water mark, reset at every step, gives each step's
exact peak, and the process's overall peak is the largest of them (docs/export.md, "Memory"). Results
go to ``<out>/export_memory.json`` and ``.md`` with the weight size beside every peak, the command and
provenance. Artifacts stay in ``--scratch`` (outside git).

    python benchmarks/export_memory.py --model builtin:full --size 256 \
        --parity-images ../shared/data/images --calib-dir ../shared/data/images

A smoke run on builtin:tiny is in the test suite (tests/test_benchmark_scripts.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lotus_deploy.bench.provenance import provenance_sentence, shown_path
from lotus_deploy.core.safe_io import write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SCRATCH = REPO / "benchmarks" / "scratch" / "export_memory"
NAME = "export_memory"
ENGINES = ("onnx", "onnx-fp16", "onnx-int8", "openvino", "openvino-int8")
DEFAULT_ENGINES = ENGINES[:3]
PEAK_LIMIT = 2.0  # issue 14: every stage's peak within 2x the fp32 weight bytes
FP16_TIME_LIMIT = 1.5  # and the fp16 stage within 1.5x the fp32 export's wall time


def shown(path: Path | str) -> str:
    """A path as the repository sees it (repo-relative or ../shared/...), never absolute."""
    return shown_path(path, REPO)


def run_stage(engine: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """One lotus-export process for ``engine`` (its parent already exported under ``scratch``)."""
    report = scratch / f"{engine}.stages.json"
    argv = [sys.executable, "-m", "lotus_deploy.cli.export_cmd", "--model", args.model, "--engine", engine,
            "--height", str(args.size), "--width", str(args.size), "--force", "--quiet", "--stage-report", str(report)]
    if args.parity_images:
        argv += ["--parity-images", str(Path(args.parity_images).resolve())]
    if engine not in ("onnx", "openvino"):
        argv += ["--calib-dir", str(Path(args.calib_dir).resolve()), "--calib-size", str(args.size)]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=scratch, capture_output=True, text=True, check=False)  # default engines/ folders under scratch
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"lotus-export --engine {engine} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    stages = json.loads(report.read_text())
    summary = json.loads(done.stdout)
    for folder in (args.parity_images, args.calib_dir):  # step labels name the folders: keep them repo-relative
        if folder is not None:
            for step in stages["stages"]:
                step["stage"] = step["stage"].replace(str(Path(folder).resolve()), shown(folder))
    return {"engine": engine, "wall_seconds": round(seconds, 1), "peak_gib": stages["overall_peak_gib"],
            "fp32_weights_gib": stages["fp32_weights_gib"], "steps": stages["stages"], "parity": summary.get("parity")}


def write_markdown(data: dict[str, Any], path: Path) -> None:
    cpu = data["provenance"]["cpu"]
    lines = [f"# Export memory: {data['model']} at {data['size']}x{data['size']}", "",
             provenance_sentence(data) + ", "
             f"{round(cpu.get('memory_mib', 0) / 1024, 1)} GiB RAM.", "",
             f"fp32 weights: **{data['fp32_weights_gib']} GiB**. Peak = the process's resident-set high-water mark (VmHWM, "
             "reset per step: exact), one process per engine.", "",
             "| engine | wall s | peak GiB | peak / weights | within 2x |", "|---|---|---|---|---|"]
    for stage in data["stages"]:
        lines.append(f"| {stage['engine']} | {stage['wall_seconds']} | {stage['peak_gib']} | {stage['peak_over_weights']} | "
                     f"{'yes' if stage['peak_over_weights'] <= PEAK_LIMIT else 'NO'} |")
    checks = data["checks"]
    if checks.get("fp16_wall_over_fp32") is not None:
        lines += ["", f"fp16 stage wall time / fp32 export wall time: **{checks['fp16_wall_over_fp32']}** (goal <= {FP16_TIME_LIMIT})."]
    for stage in data["stages"]:
        lines += ["", f"## {stage['engine']}: steps", "", "| step | s | peak GiB | RSS at end GiB |", "|---|---|---|---|"]
        lines += [f"| {s['stage']} | {s['seconds']} | {s['peak_gib']} | {s['rss_at_end_gib']} |" for s in stage["steps"]]
    write_text_atomic(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin:full")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--parity-images", type=Path, help="photos for the export's parity check (default: synthetic)")
    p.add_argument("--calib-dir", type=Path, help="calibration photos for onnx-fp16 / onnx-int8 (required for them)")
    p.add_argument("--engines", default=",".join(DEFAULT_ENGINES), help=f"comma-separated, in order, among {','.join(ENGINES)} (default {','.join(DEFAULT_ENGINES)})")
    p.add_argument("--scratch", type=Path, default=SCRATCH, help="where the artifacts go (default benchmarks/scratch/export_memory)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default benchmarks/results)")
    args = p.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or (any(e not in ("onnx", "openvino") for e in engines) and args.calib_dir is None):
        raise SystemExit(f"engines must be among {ENGINES}; onnx-fp16, onnx-int8 and openvino-int8 need --calib-dir (got {engines})")
    from lotus_deploy.bench.provenance import collect

    provenance = collect()  # at the start: the commit and tree state the measurements ran on
    command = ["python", "benchmarks/export_memory.py", "--model", args.model, "--size", str(args.size), "--engines", ",".join(engines)]
    for flag, value in (("--parity-images", args.parity_images), ("--calib-dir", args.calib_dir)):
        if value is not None:
            command += [flag, shown(value)]
    if args.out != RESULTS:
        command += ["--out", shown(args.out)]
    args.scratch.mkdir(parents=True, exist_ok=True)
    stages = []
    for engine in engines:
        stage = run_stage(engine, args, args.scratch)
        stage["peak_over_weights"] = round(stage["peak_gib"] / stage["fp32_weights_gib"], 2) if stage["fp32_weights_gib"] else None
        stages.append(stage)
        print(f"{engine}: {stage['wall_seconds']} s, peak {stage['peak_gib']} GiB ({stage['peak_over_weights']}x the weights)", flush=True)
    walls = {s["engine"]: s["wall_seconds"] for s in stages}
    checks: dict[str, Any] = {"peak_limit_over_weights": PEAK_LIMIT, "fp16_time_limit_over_fp32": FP16_TIME_LIMIT,
                              "fp16_wall_over_fp32": round(walls["onnx-fp16"] / walls["onnx"], 2) if {"onnx", "onnx-fp16"} <= set(walls) else None}
    data = {"command": command, "date": provenance["date"], "model": args.model, "size": args.size,
            "fp32_weights_gib": stages[0]["fp32_weights_gib"] if stages else None, "stages": stages, "checks": checks,
            "provenance": {"git": provenance["git"], "cpu": provenance["cpu"], "libraries": provenance["libraries"],
                           "load_at_start": provenance["load_at_start"]}}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / f"{NAME}.json", data)
    write_markdown(data, args.out / f"{NAME}.md")
    print(f"wrote {shown(args.out / NAME)}.json and .md", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
