"""Measure the precision stages on builtin:full at 256x256 (issue 4's "Done when").

Exports onnx-int8 and onnx-fp16 from an existing fp32 ONNX artifact (calibrated on real photos), then
times fp32 / fp16 / int8 with ONNX Runtime on the CPU (median of several runs, batch 1, 256x256) and
writes ``benchmarks/results/precision_full_256.json`` + ``.md``. The ONNX files stay where
``--work`` says (outside git). Stages can be run separately; results are merged into the JSON.

    python benchmarks/precision_full.py --fp32 /work/scratch_precision/full-fp32 \
        --calib-dir ../shared/data/images --work /work/scratch_precision --stages int8,fp16,latency
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from lotus_deploy.bench.provenance import shown_path
from lotus_deploy.core.artifacts import open_artifact, tool_versions
from lotus_deploy.core.config import EngineKind, ExportConfig, ExportSettings, PrecisionSettings
from lotus_deploy.core.safe_io import write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
NAME = "precision_full_256"


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def shown(path: Path | str) -> str:
    """A path as the repository sees it (repo-relative or ../shared/...), never absolute."""
    return shown_path(path, REPO)


def export_stage(kind: str, fp32: Path, work: Path, calib: Path, size: int) -> dict:
    from lotus_deploy.precision import export_fp16, export_int8

    parent = open_artifact(fp32, check_hashes=False)
    engine = EngineKind.ONNX_FP16 if kind == "fp16" else EngineKind.ONNX_INT8
    config = ExportConfig(model=parent.source_model or "builtin:full", engine=engine, output=work / f"full-{kind}", force=True,
                          export=ExportSettings(parity_size=size), precision=PrecisionSettings(calib_dir=calib, calib_size=size))
    start = time.perf_counter()
    result = (export_fp16 if kind == "fp16" else export_int8)(parent, config, False)
    seconds = time.perf_counter() - start
    m = result.manifest
    out = {"artifact": shown(result.folder), "export_seconds": round(seconds, 1), "parity": m["parity"],
           "bytes": sum(f["bytes"] for f in m["files"].values())}
    if kind == "int8":
        d = m["int8"]
        out.update(int8_mac_share=d["int8_mac_share"], macs_per_image=d["macs_per_image"], int8_nodes=d["int8_nodes"],
                   returned_groups=[(g["group"], g["sensitivity"]) for g in d["returned_groups"]], blocked_by=d["blocked_by"],
                   search_seconds=d["search"].get("seconds"), search_evaluations=d["search"].get("evaluations"),
                   calibration_seconds=d["calibration"].get("seconds"), kept_by_rule=len(d["kept_by_rule"]), images=d["images"],
                   calibration_reused=d["calibration"].get("reused"), sensitivity_cache_reused=(d["search"].get("sensitivity_cache") or {}).get("reused"))
    else:
        d = m["fp16"]
        out.update(kept_fp32_nodes=d["kept_fp32_nodes"], kept_fp32_op_types=d["kept_fp32_op_types"], rounds=d["rounds"], images=d["images"])
    return out


def latency(folder: Path, runs: int, threads: int, size: int) -> dict:
    from lotus_deploy.runtime.ort_backend import OnnxRuntimeBackend

    artifact = open_artifact(folder, check_hashes=False)
    start = time.perf_counter()
    backend = OnnxRuntimeBackend(artifact, threads=threads)
    load = time.perf_counter() - start
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    backend.run(x)  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        backend.run(x)
        times.append(time.perf_counter() - t)
    backend.close()
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3), "max_s": round(max(times), 3), "runs": runs,
            "session_load_s": round(load, 1)}


def write_markdown(data: dict, out: Path, name: str, work: Path) -> None:
    size = data.get("size", [256, 256])
    git = data.get("provenance", {}).get("git", {})
    cpu = data.get("provenance", {}).get("cpu", {})
    lines = [f"# Precision stages on {data.get('model', 'builtin:full')} at {size[0]}x{size[1]} (random weights)", "",
             f"Command: `{' '.join(data.get('command', []))}`", "",
             f"Measured {data.get('date', '')} at commit {str(git.get('commit'))[:12]} (tracked changes: {git.get('tracked_changes')}) on "
             f"{data.get('machine', {}).get('cpu', '')}, {data.get('machine', {}).get('cores', '?')} cores, ISA {', '.join(cpu.get('simd', [])) or '?'}; "
             "ONNX Runtime CPU, batch 1.", ""]
    lat = data.get("latency", {})
    if lat:
        base = lat.get("fp32", {}).get("median_s")
        lines += ["| graph | median latency (s) | min–max (s) | vs fp32 | parity vs fp32 graph (held-out) |", "|---|---|---|---|---|"]
        for kind in ("fp32", "fp16", "int8"):
            if kind not in lat:
                continue
            r = lat[kind]
            ratio = f"{base / r['median_s']:.2f}x speed" if base and kind != "fp32" else "1.00x"
            parity = data.get(kind, {}).get("parity", {})
            par = "reference" if kind == "fp32" else (f"AbsRel {parity.get('absrel'):.4g}, δ1 {parity.get('delta1'):.4f}, max|Δ| {parity.get('max_abs'):.3g}, "
                                                       f"NaN/Inf {parity.get('nan_inf_candidate')}, {'PASS' if parity.get('passed') else 'FAIL'}" if parity else "")
            lines.append(f"| {kind} | {r['median_s']} | {r['min_s']}–{r['max_s']} | {ratio} | {par} |")
        lines.append("")
    if "int8" in data:
        d = data["int8"]
        lines += [f"- int8: share of multiply-accumulates in int8 **{d['int8_mac_share']:.3f}** ({d['int8_nodes']} Conv/MatMul/Gemm); "
                  f"export {d['export_seconds']} s, of which calibration {d.get('calibration_seconds')} s and sensitivity search {d.get('search_seconds')} s.",
                  f"- int8 groups returned to fp32 (sensitivity = probe error drop): {', '.join(f'{g} ({s})' for g, s in d['returned_groups']) or 'none'}"]
        manifest = work / "full-int8" / "manifest.json"
        if manifest.is_file():
            info = json.loads(manifest.read_text())["int8"]
            fused = info.get("ort_fused_cpu_parity")
            if fused:
                lines.append(f"- int8 parity above is the Q/DQ semantics (ORT CPU, QDQ fusion off); ONNX Runtime's fused int8 CPU kernels give "
                             f"AbsRel {fused['absrel']:.4g}, max|Δ| {fused['max_abs']:.3g} (informational: its s8s8 kernels can saturate on AVX2 without VNNI).")
            reused = info.get("calibration", {}).get("reused")
            cache = info.get("search", {}).get("sensitivity_cache") or {}
            lines.append(f"- calibration cache reused in this run: {reused}; sensitivity cache reused: {cache.get('reused')} "
                         "(a reused cache skips the calibration pass and the per-group sensitivities, so the export time above is shorter than a cold run's).")
        if d.get("cold_run"):
            lines.append(f"- cold run (no caches): {d['cold_run']}")
        if d.get("blocked_by"):
            lines.append("- less than half of the MACs stay in int8; blocked by the groups above (random weights: real weights decide the final share).")
    if "fp16" in data:
        d = data["fp16"]
        lines.append(f"- fp16 (CPU parity is fp16 *storage*): {len(d['kept_fp32_nodes'])} node(s) kept in fp32: "
                     + ", ".join(f"{k['node']} ({k['reason']})" for k in d["kept_fp32_nodes"][:10]) + f"; export {d['export_seconds']} s.")
    lines += [f"- note: {note}" for note in data.get("notes", [])]
    lines += ["", "Held-out images: " + str(data.get("int8", data.get("fp16", {})).get("images", {}).get("held_out", {})), "",
              "Regenerate: `python benchmarks/precision_full.py --fp32 <fp32 artifact> --calib-dir ../shared/data/images --work <scratch>`", ""]
    write_text_atomic(out / f"{name}.md", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fp32", type=Path, required=True)
    p.add_argument("--calib-dir", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--stages", default="int8,fp16,latency")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="calibration, held-out and latency size (default 256)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default benchmarks/results)")
    p.add_argument("--name", default=NAME)
    args = p.parse_args(argv)
    from lotus_deploy.bench.provenance import collect

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.name}.json"
    data = _load(path)
    provenance = collect()  # at the start: the commit and tree state the measurements ran on
    command = ["python", "benchmarks/precision_full.py", "--fp32", shown(args.fp32), "--calib-dir", shown(args.calib_dir),
               "--work", shown(args.work), "--stages", args.stages, "--size", str(args.size)]
    data.update(date=provenance["date"], machine={"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                                  "python": platform.python_version()},
                tools=tool_versions("onnx", "onnxruntime", "onnxconverter-common", "numpy"), model=open_artifact(args.fp32, check_hashes=False).source_model,
                size=[args.size, args.size], command=command, provenance={"git": provenance["git"], "cpu": provenance["cpu"]})
    for stage in args.stages.split(","):
        if stage in ("fp16", "int8"):
            value = export_stage(stage, args.fp32, args.work, args.calib_dir, args.size)
        elif stage == "latency":
            folders = {"fp32": args.fp32, "fp16": args.work / "full-fp16", "int8": args.work / "full-int8"}
            value = {k: latency(f, args.runs, args.threads, args.size) for k, f in folders.items() if (f / "model.onnx").is_file()}
        else:
            raise SystemExit(f"unknown stage {stage!r}")
        data = {**_load(path), **{k: v for k, v in data.items() if k not in ("fp16", "int8", "latency")}, stage: value}  # merge: stages may run in parallel
        write_json_atomic(path, data)
        write_markdown(data, args.out, args.name, args.work)
        print(f"{stage}: done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
