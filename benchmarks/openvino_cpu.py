"""OpenVINO against ONNX Runtime and PyTorch eager on the CPU, in one run (issue 15's goals).

Exports (or reuses) the dynamic fp32 ONNX graph, its OpenVINO IR and its OpenVINO int8 IR (calibrated on
``--calib-dir``), then runs ``lotus-bench`` once per size with PyTorch eager, ONNX Runtime fp32 and
OpenVINO in f32 and, where the CPU has native bf16, bf16 (the int8 IR runs in each as well: its int8
layers plus that precision elsewhere). Writes ``<out>/openvino_cpu.json`` + ``.md``: which ISA case
this machine is (AMX-BF16, or without AMX), the ratios measured in this run against the goals of
that case, the int8 MAC share, each export's peak memory against its fp32 weights, and the case
left unmeasured. The lotus-bench results themselves stay in ``--work``.

    python benchmarks/openvino_cpu.py --model builtin:full --calib-dir ../shared/data/images --images ../shared/data/images

A smoke run on builtin:tiny is in the test suite (tests/test_benchmark_scripts.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from lotus_deploy.bench.provenance import provenance_sentence, shown_path
from lotus_deploy.core.safe_io import write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
NAME = "openvino_cpu"
GOALS = {  # issue 15, "Done when"
    "amx": {"bf16_over_ort_fp32": 3.0, "int8_over_bf16_when_share_at_least_0.8": 1.0},
    "no-amx": {"f32_over_ort_fp32": 0.95, "int8_over_ort_fp32": 0.95},
}


def shown(path: Path | str) -> str:
    return shown_path(path, REPO)


def run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def export(engine: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One lotus-export process in ``work`` (its default engines/ folders; the fp32 parent is reused when there)."""
    name = args.model.replace("builtin:", "builtin-")
    folder = work / "engines" / f"{name}-depth-{engine}"
    argv = [sys.executable, "-m", "lotus_deploy.cli.export_cmd", "--model", args.model, "--engine", engine, "--quiet"]
    if args.images:
        argv += ["--parity-images", str(Path(args.images).resolve())]
    if engine == "openvino-int8":
        argv += ["--calib-dir", str(Path(args.calib_dir).resolve()), "--calib-size", str(args.calib_size)]
    summary: dict[str, Any] = {}
    if not (folder / "manifest.json").is_file():
        summary = json.loads(run(argv, work))
    manifest = json.loads((folder / "manifest.json").read_text())
    parity = manifest["parity"]
    out = {"engine": engine, "artifact": folder, "memory": summary.get("memory"),
           "parity": {k: parity.get(k) for k in ("max_abs", "mean_abs", "p99_abs", "absrel", "passed")},
           "bf16": {k: parity.get("bf16", {}).get(k) for k in ("mean_abs", "p99_abs", "passed", "skipped") if k in parity.get("bf16", {})}}
    if engine == "openvino-int8":
        out["int8_mac_share"] = manifest["int8"]["int8_mac_share"]
        out["returned_groups"] = len(manifest["int8"]["returned_groups"])
    return out


def bench(args: argparse.Namespace, work: Path, artifacts: list[Path], size: int, iterations: int, bf16: bool) -> dict[str, Any]:
    name = f"bench-{size}"
    backends = ["torch", "onnxruntime", "openvino:f32", *(["openvino:bf16"] if bf16 else [])]
    argv = [sys.executable, "-m", "lotus_deploy.cli.bench_cmd", *[a for f in artifacts for a in ("--artifact", str(f))],
            *[a for b in backends for a in ("--backend", b)], "--size", str(size), "--iterations", str(iterations), "--warmup", "1",
            "--batch", "1", "-o", str(work / "bench"), "--name", name, "--force", "--no-chart", "--quiet"]
    if args.images:
        argv += ["--images", str(Path(args.images).resolve())]
    run(argv, work)
    return dict(json.loads((work / "bench" / f"{name}.json").read_text()))


def medians(doc: dict[str, Any]) -> dict[str, float]:
    return {row["label"]: row["stats"]["median"] for row in doc["results"] if "stats" in row}


def ratios(times: dict[str, float]) -> dict[str, float | None]:
    """Speed of each OpenVINO row over ONNX Runtime fp32 (> 1: faster), from one run's medians."""
    ort = next((v for k, v in times.items() if k.startswith("onnxruntime")), None)
    pick = {"f32": "openvino:f32 fp32 IR", "bf16": "openvino:bf16 fp32 IR", "int8+f32": "openvino:f32 int8 IR", "int8+bf16": "openvino:bf16 int8 IR",
            "torch_eager": "PyTorch eager"}
    return {key: (round(ort / times[label], 3) if ort and label in times else None) for key, label in pick.items()}


def check_goals(case: str, by_size: dict[str, dict[str, float | None]], share: float | None) -> list[dict[str, Any]]:
    checks = []
    for size, r in by_size.items():
        if case == "amx":
            checks.append({"size": size, "goal": "OpenVINO bf16 >= 3x ONNX Runtime fp32", "measured": r["bf16"],
                           "met": r["bf16"] is not None and r["bf16"] >= 3.0})
            if share is not None and share >= 0.8:
                int8_over_bf16 = round(r["int8+bf16"] / r["bf16"], 3) if r["int8+bf16"] and r["bf16"] else None
                checks.append({"size": size, "goal": "int8 at least as fast as bf16 (int8 MAC share >= 0.8)", "measured": int8_over_bf16,
                               "met": int8_over_bf16 is not None and int8_over_bf16 >= 1.0})
        else:
            for key, label in (("f32", "OpenVINO f32"), ("int8+f32", "OpenVINO int8 (f32 elsewhere)")):
                checks.append({"size": size, "goal": f"{label} >= 0.95x ONNX Runtime fp32", "measured": r[key],
                               "met": r[key] is not None and r[key] >= 0.95})
    return checks


def write_markdown(data: dict[str, Any], path: Path) -> None:
    lines = [f"# OpenVINO on the CPU: {data['model']}", "",
             provenance_sentence(data) + ".", "",
             f"**ISA case: {data['case_label']}.** Left unmeasured by this run: {data['unmeasured']}.", "",
             "Speed over ONNX Runtime fp32 (its median / the row's median, one run, batch 1):", "",
             "| size | iterations | OpenVINO f32 | OpenVINO bf16 | int8 IR, f32 elsewhere | int8 IR, bf16 elsewhere | PyTorch eager |",
             "|---|---|---|---|---|---|---|"]
    for size, r in data["ratios"].items():
        cells = [str(r[k]) + "×" if r[k] is not None else "—" for k in ("f32", "bf16", "int8+f32", "int8+bf16", "torch_eager")]
        lines.append(f"| {size} | {data['iterations'][size]} | " + " | ".join(cells) + " |")
    lines += ["", "Medians (s):", "", "| size | row | median s |", "|---|---|---|"]
    lines += [f"| {size} | {label} | {median:.4g} |" for size, rows in data["medians"].items() for label, median in rows.items()]
    lines += ["", "Goals of this case:", "", "| size | goal | measured | met |", "|---|---|---|---|"]
    lines += [f"| {c['size']} | {c['goal']} | {c['measured']} | {'yes' if c['met'] else 'NO'} |" for c in data["goals"]]
    lines += ["", "Artifacts:", "", "| engine | peak GiB / fp32 weights GiB | f32 or held-out parity | bf16 check | int8 MAC share |", "|---|---|---|---|---|"]
    for a in data["artifacts"]:
        mem = a["memory"] or {}
        ratio = f"{mem['peak_resident_gib']} / {mem['fp32_weights_gib']}" if mem else "reused (not measured in this run)"
        bf16 = a["bf16"].get("skipped") or (f"mean {a['bf16'].get('mean_abs', 0):.3g}, p99 {a['bf16'].get('p99_abs', 0):.3g}, "
                                            f"{'PASS' if a['bf16'].get('passed') else 'FAIL'}" if a["bf16"] else "—")
        lines.append(f"| {a['engine']} | {ratio} | max {a['parity']['max_abs']:.3g}, mean {a['parity']['mean_abs']:.3g}, "
                     f"{'PASS' if a['parity']['passed'] else 'FAIL'} | {bf16} | {a.get('int8_mac_share', '—')} |")
    write_text_atomic(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin:full")
    p.add_argument("--calib-dir", type=Path, required=True, help="calibration photos for openvino-int8")
    p.add_argument("--calib-size", type=int, default=256)
    p.add_argument("--images", type=Path, help="photos for parity and the benchmark inputs (default: synthetic)")
    p.add_argument("--sizes", default="256:5,512:3", help="SIZE:ITERATIONS,... (default %(default)s)")
    p.add_argument("--work", type=Path, default=REPO, help="where engines/ and bench/ go (default: the repository, reusing its engines/)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    from lotus_deploy.bench.provenance import collect
    from lotus_deploy.openvino.device import has_native, make_core

    provenance = collect()
    command = ["python", "benchmarks/openvino_cpu.py", "--model", args.model, "--calib-dir", shown(args.calib_dir),
               "--calib-size", str(args.calib_size), "--sizes", args.sizes]
    if args.images:
        command += ["--images", shown(args.images)]
    if args.out != RESULTS:
        command += ["--out", shown(args.out)]
    simd = provenance["cpu"].get("simd", [])
    case = "amx" if "amx_bf16" in simd else "no-amx"
    bf16 = has_native(make_core(), "CPU", "bf16")
    args.work.mkdir(parents=True, exist_ok=True)
    fp32 = export("onnx", args, args.work)
    ir = export("openvino", args, args.work)
    int8 = export("openvino-int8", args, args.work)
    sizes = [(int(s.split(":")[0]), int(s.split(":")[1])) for s in args.sizes.split(",")]
    docs = {str(size): bench(args, args.work, [fp32["artifact"], ir["artifact"], int8["artifact"]], size, n, bf16) for size, n in sizes}
    times = {size: medians(doc) for size, doc in docs.items()}
    by_size = {size: ratios(t) for size, t in times.items()}
    data = {
        "command": command, "date": provenance["date"], "provenance": {"git": provenance["git"], "cpu": provenance["cpu"]},
        "model": args.model, "case": case,
        "case_label": "AMX-BF16 (Sapphire Rapids or newer)" if case == "amx" else
                      f"without AMX ({'native bf16' if bf16 else 'no native bf16'}; ISA {', '.join(simd)})",
        "unmeasured": "a CPU without AMX (goals: f32 and int8 >= 0.95x ONNX Runtime fp32)" if case == "amx"
                      else "a CPU with AMX-BF16 (goals: bf16 >= 3x ONNX Runtime fp32; int8 >= bf16 at >= 80 % int8 MACs)",
        "native_bf16": bf16, "iterations": {str(s): n for s, n in sizes}, "medians": times, "ratios": by_size,
        "goals": check_goals(case, by_size, int8.get("int8_mac_share")),
        "artifacts": [{**a, "artifact": shown(a["artifact"])} for a in (fp32, ir, int8)],
        "bench_commands": {size: ["lotus-bench", *[shown(x) if str(x).startswith("/") else x for x in doc["command"][1:]]] for size, doc in docs.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / f"{NAME}.json", data)
    write_markdown(data, args.out / f"{NAME}.md")
    print(f"ISA case: {data['case_label']}")
    for check in data["goals"]:
        print(f"{check['size']}: {check['goal']}: {check['measured']} ({'met' if check['met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
