"""Measure the absolute gates on honest exports: where do fp16 and int8 land against their fp32 graph?

For builtin:tiny and tiny Lotus-D checkpoints made from several seeds (never seen by the project), exports
fp32, onnx-fp16 and onnx-int8 (calibrated on ``--calib-dir``) with the default targets, and records each
published graph's mean and 99th-percentile |Δ| as fractions of the output range, its aligned metric, and
what the stage kept in fp32 to get there. Writes ``benchmarks/results/precision_gates.json`` + ``.md``
(docs/precision.md cites them). Scratch artifacts go to ``--work`` (outside git).

    python benchmarks/precision_gates.py --calib-dir ../shared/data/images --seeds 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "tests"))  # the unseen-checkpoint maker the tests use

from lotus_checkpoints import make_unseen_checkpoint  # noqa: E402

from lotus_deploy.bench.provenance import collect  # noqa: E402
from lotus_deploy.core.config import EngineKind, ExportConfig, ExportSettings, PrecisionSettings  # noqa: E402
from lotus_deploy.core.errors import LotusError  # noqa: E402
from lotus_deploy.core.parity import ABSOLUTE_GATES  # noqa: E402
from lotus_deploy.core.safe_io import write_json_atomic, write_text_atomic  # noqa: E402


def _row(model: str, precision: str, folder: Path, config: ExportConfig) -> dict:
    from lotus_deploy.core.artifacts import open_artifact
    from lotus_deploy.precision import export_fp16, export_int8

    start = time.perf_counter()
    try:
        result = (export_fp16 if precision == "fp16" else export_int8)(open_artifact(folder), config, True)
    except LotusError as exc:
        return {"model": model, "precision": precision, "published": False, "error": str(exc), "seconds": round(time.perf_counter() - start, 1)}
    m = result.manifest
    p = m["parity"]
    row = {"model": model, "precision": precision, "published": True, "seconds": round(time.perf_counter() - start, 1),
           "mean_abs_fraction": p["mean_abs"] / p["output_range"], "p99_abs_fraction": p["p99_abs"] / p["output_range"],
           "max_abs": p["max_abs"], "absrel": p.get("absrel"), "delta1": p.get("delta1")}
    if precision == "int8":
        row.update(int8_mac_share=m["int8"]["int8_mac_share"], returned_groups=len(m["int8"]["returned_groups"]),
                   all_int8=m["int8"]["search"]["evaluations"][0])
    else:
        row.update(kept_fp32_nodes=len(m["fp16"]["kept_fp32_nodes"]))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib-dir", type=Path, required=True, help="calibration photos (e.g. ../shared/data/images)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4, 5], help="seeds of the unseen tiny checkpoints")
    parser.add_argument("--size", type=int, default=128, help="calibration and held-out processing size (default 128)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("--name", default="precision_gates", help="result file stem")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    from lotus_deploy.export import export_onnx

    provenance = collect()  # at the start: the commit and tree state the measurements ran on
    work = args.work or Path(tempfile.mkdtemp(prefix="lotus-gates-"))
    rows = []
    try:
        models = ["builtin:tiny"] + [str(make_unseen_checkpoint(work / f"unseen-{seed}", seed=seed)) for seed in args.seeds]
        for index, model in enumerate(models):
            label = model if model.startswith("builtin:") else f"unseen tiny, seed {args.seeds[index - 1]}"
            fp32 = work / f"fp32-{index}"
            export_onnx(ExportConfig(model=model, output=fp32, force=True, export=ExportSettings(parity_size=args.size)), quiet=True)
            for precision in ("fp16", "int8"):
                config = ExportConfig(model=model, engine=EngineKind(f"onnx-{precision}"), output=work / f"{precision}-{index}", force=True,
                                      export=ExportSettings(parity_size=args.size),
                                      precision=PrecisionSettings(calib_dir=args.calib_dir, calib_count=8, calib_size=args.size))
                row = _row(label, precision, fp32, config)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    calib = args.calib_dir.resolve()
    shown_calib = str(Path("..") / calib.relative_to(REPO.parent)) if calib.is_relative_to(REPO.parent) else calib.name
    command = ["python", "benchmarks/precision_gates.py", "--calib-dir", shown_calib, "--seeds", *map(str, args.seeds), "--size", str(args.size)]
    doc = {"command": command, "gates": ABSOLUTE_GATES, "size": args.size, "rows": rows,
           "provenance": {"git": provenance.get("git"), "cpu": provenance.get("cpu"), "libraries": provenance.get("libraries"),
                          "date": provenance.get("date")}}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / f"{args.name}.json", doc)
    lines = [f"# Absolute gates on honest exports ({args.size}px held-out images)", "", f"Command: `{' '.join(command)}`", "",
             "| model | precision | published | mean\\|Δ\\| / range | p99\\|Δ\\| / range | AbsRel | kept / returned to fp32 |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r["published"]:
            lines.append(f"| {r['model']} | {r['precision']} | no: {r['error'][:80]} | | | | |")
            continue
        kept = r.get("kept_fp32_nodes", r.get("returned_groups"))
        lines.append(f"| {r['model']} | {r['precision']} | yes | {r['mean_abs_fraction']:.2e} | {r['p99_abs_fraction']:.2e} | "
                     f"{(r['absrel'] or 0):.2e} | {kept} |")
    write_text_atomic(args.out / f"{args.name}.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
