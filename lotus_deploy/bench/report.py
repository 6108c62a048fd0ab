"""Benchmark reports: the JSON document as is, and a Markdown summary of it (tables per scenario)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.artifacts import write_json_atomic
from .plan import GPU_ONLY

COLUMNS = ("backend", "precision", "median s", "p90 s", "p99 s", "mean ± std s", "img/s", "× vs PyTorch eager", "GFLOP/img", "GFLOP/s",
           "% of matmul", "% of matmul (same rounds)", "peak RSS MiB", "GPU MiB", "load s", "artifact MB", "max abs Δ", "AbsRel / δ1")

REQUIRED_KEYS = ("schema", "command", "settings", "provenance", "candidates", "results", "skipped")


def write_json(doc: dict[str, Any], path: Path) -> None:
    write_json_atomic(path, doc)


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"
    return str(value)


def _parity_cells(row: dict[str, Any]) -> tuple[str, str]:
    parity = row.get("parity")
    if not parity:
        return ("reference" if row.get("backend") == "torch" and row.get("stage") is None else "—"), "—"
    metric = "—"
    if parity.get("absrel") is not None:
        metric = f"{parity['absrel']:.2g} / {parity['delta1']:.4f}"
    elif parity.get("mean_angle_deg") is not None:
        metric = f"{parity['mean_angle_deg']:.2g}° / {parity['within_11_25']:.4f}"
    return f"{parity['max_abs']:.2g}", metric


def _row_cells(row: dict[str, Any], candidates: dict[str, dict[str, Any]]) -> list[str]:
    cand = candidates.get(row["candidate"], {})
    if "error" in row:
        return [row["label"], row.get("precision", ""), f"error: {row['error']}"] + [""] * (len(COLUMNS) - 3)
    stats = row["stats"]
    speedup = row.get("speedup_vs_torch_eager")
    fraction = row.get("matmul_fraction")
    size = cand.get("artifact_bytes")
    max_abs, metric = _parity_cells(row)
    gpu = row.get("gpu_peak_mib")
    return [
        row["label"], str(cand.get("precision") or row.get("precision", "")), _f(stats["median"], 4), _f(stats["p90"], 4), _f(stats["p99"], 4),
        f"{_f(stats['mean'], 4)} ± {_f(stats['std'], 2)}", _f(row.get("images_per_s"), 3),
        "1.00 (baseline)" if row.get("backend") == "torch" else (f"{speedup:.2f}×" if speedup else "n/a"),
        _f(row["flops_per_image"] / 1e9, 4) if row.get("flops_per_image") else "n/a", _f(row.get("gflops_per_s"), 3),
        f"{fraction * 100:.0f} %" if fraction is not None else "n/a",
        f"{row['matmul_fraction_rounds'] * 100:.0f} %" if row.get("matmul_fraction_rounds") is not None else "n/a", _f(row.get("peak_rss_mib"), 5),
        _f(gpu, 5) if gpu is not None else "n/a", _f(cand.get("load_s"), 3), _f(size / 1e6, 4) if size else "—", max_abs, metric,
    ]


def _table(header: Iterable[str], rows: Iterable[list[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


def _scenarios(doc: dict[str, Any]) -> list[tuple[int, int, int]]:
    seen: list[tuple[int, int, int]] = []
    for row in doc["results"]:
        key = (row["height"], row["width"], row["batch"])
        if key not in seen:
            seen.append(key)
    return seen


def _provenance_lines(doc: dict[str, Any]) -> list[str]:
    prov = doc["provenance"]
    cpu = prov["cpu"]
    libs = ", ".join(f"{k} {v}" for k, v in prov["libraries"].items())
    gpus = "; ".join(f"{g['name']} (driver {g['driver']}, {g['memory']}, sm {g.get('compute_capability', '')})" for g in prov.get("gpus") or []) or "none"
    start, end = prov.get("load_at_start", {}), prov.get("load_at_end", {})
    lines = [
        f"- **Date**: {prov['date']}; git {(prov.get('git') or {}).get('commit') or 'n/a'}"
        + (" (with uncommitted changes in tracked files)" if (prov.get("git") or {}).get("tracked_changes") else ""),
        f"- **CPU**: {cpu['model']} ({cpu['machine']}), {cpu.get('physical_cores') or '?'} cores / {cpu['logical_cpus']} threads"
        f" ({cpu['usable_cpus']} usable), SIMD {', '.join(cpu.get('simd') or []) or 'n/a'}; RAM {_f((cpu.get('memory_mib') or 0) / 1024, 3)} GiB",
        f"- **GPU**: {gpus}",
        f"- **Machine load** (1/5/15-min load average): start {start.get('loadavg_1m')}/{start.get('loadavg_5m')}/{start.get('loadavg_15m')},"
        f" end {end.get('loadavg_1m', 'n/a')}/{end.get('loadavg_5m', 'n/a')}/{end.get('loadavg_15m', 'n/a')}",
        f"- **Libraries**: {libs}",
    ]
    if prov.get("jetson"):
        jet = prov["jetson"]
        lines.append(f"- **Jetson**: {jet.get('model')}, {jet.get('l4t')}, power mode: {jet.get('power_mode')}, RAM {jet.get('memory_mib')} MiB")
    mm = doc.get("matmul")
    if mm:
        parts = [f"numpy {mm.get('numpy_gflops')}"] + ([f"torch {mm['torch_gflops']}"] if "torch_gflops" in mm else [])
        if mm.get("after"):
            when = f"before and after the runs; after: {', '.join(parts)} GFLOP/s; before: {mm['before']['gflops']} GFLOP/s"
        else:
            when = f"measured before the runs only ({', '.join(parts)} GFLOP/s): partial result"
        lines.append(f"- **fp32 {mm['size']}² matrix multiply**: {mm['gflops']:.1f} GFLOP/s (best of {mm['repeats']}, {when}) — the yardstick for \"% of matmul\"")
    rounds = sorted({(r["height"], r["width"], r["batch"], r["matmul_rounds_median_gflops"]) for r in doc["results"] if r.get("matmul_rounds_median_gflops")})
    if rounds:
        lines.append("- **fp32 matmul rate between rounds** (one numpy product after every round, median): "
                     + "; ".join(f"{h}×{w} b{b}: {rate:.1f} GFLOP/s" for h, w, b, rate in rounds)
                     + " — the yardstick for \"% of matmul (same rounds)\", taken under the load the candidates saw")
    settings = doc["settings"]
    lines.append(f"- **Method**: {settings['warmup']} warm-up + {settings['iterations']} timed iterations per candidate, interleaved"
                 " round-robin (order rotated every round), each backend in its own process; same inputs for all"
                 f" ({settings['images']}); parity reference: {settings['reference']}")
    return lines


def _gpu_rows(doc: dict[str, Any], ran: set[str]) -> list[list[str]]:
    if doc["provenance"].get("gpus"):
        return []
    return [[name, {"torch-upstream": "fp32 + fp16 autocast", "torch-optimized": "fp16"}.get(name, "fp32/fp16/int8"), "GPU: not run"] + [""] * (len(COLUMNS) - 3)
            for name in GPU_ONLY if name not in ran]


def to_markdown(doc: dict[str, Any], title: str = "Lotus-D benchmark") -> str:
    candidates = {c["id"]: c for c in doc["candidates"]}
    lines = [f"# {title}", ""]
    if doc.get("command"):
        lines += ["Reproduce with:", "", "```", shlex.join(doc["command"]), "```", ""]
    lines += _provenance_lines(doc) + [""]
    ran = {c["backend"] for c in doc["candidates"] if not c.get("error")}
    for height, width, batch in _scenarios(doc):
        rows = [r for r in doc["results"] if (r["height"], r["width"], r["batch"]) == (height, width, batch)]
        whole = [r for r in rows if r.get("stage") is None]
        lines += [f"## {height}×{width}, batch {batch}", ""]
        lines += _table(COLUMNS, [_row_cells(r, candidates) for r in whole] + _gpu_rows(doc, ran))
        stages = [r for r in rows if r.get("stage") is not None and "stats" in r]
        if stages:
            total = sum(r["stats"]["median"] for r in stages)
            lines += ["", f"Stage shares (split graphs, `lotus-export --split`; sum of stage medians {total:.4g} s):", ""]
            lines += _table(("stage", "median s", "share", "GFLOP/img", "GFLOP/s", "% of matmul", "% of matmul (same rounds)"), [
                [r["stage"], _f(r["stats"]["median"], 4), f"{r['stats']['median'] / total * 100:.1f} %",
                 _f(r["flops_per_image"] / 1e9, 4) if r.get("flops_per_image") else "n/a", _f(r.get("gflops_per_s"), 3),
                 f"{r['matmul_fraction'] * 100:.0f} %" if r.get("matmul_fraction") is not None else "n/a",
                 f"{r['matmul_fraction_rounds'] * 100:.0f} %" if r.get("matmul_fraction_rounds") is not None else "n/a"] for r in stages])
        lines.append("")
    lines += ["Columns: latencies are seconds per batch; \"× vs PyTorch eager\" = PyTorch eager median / this median (> 1 is faster);"
              " GFLOP/img counts 2 × multiply-accumulates of Conv/ConvTranspose/MatMul/Gemm in the ONNX graph (the PyTorch rows use the"
              " fp32 graph of the same model); \"% of matmul\" = achieved GFLOP/s ÷ the best fp32 matrix-multiply rate above (can exceed 100 %);"
              " \"(same rounds)\" divides by the median rate measured between the rounds instead;"
              " peak RSS is each backend's own process (model loading included); max abs Δ and AbsRel / δ1 (after scale-and-shift) are"
              " against the parity reference.", ""]
    lines += ["Artifacts:", ""]
    lines += _table(("candidate", "artifact", "sha256 (model file)", "size MB", "built in this run"), [
        [c["label"], c.get("artifact") or "—", (c.get("artifact_sha256") or "—")[:16], _f((c.get("artifact_bytes") or 0) / 1e6, 4) if c.get("artifact_bytes") else "—",
         f"{c['artifact_build_s']:.0f} s" if c.get("artifact_build_s") else "no (reused)"] for c in doc["candidates"] if c.get("stage") is None])
    if doc.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(f"{s['label']} at {s['height']}×{s['width']} b{s['batch']} ({s['why']})" for s in doc["skipped"])]
    errors = [c for c in doc["candidates"] if c.get("error")]
    if errors:
        lines += ["", "Failed to load: " + "; ".join(f"{c['label']}: {c['error']}" for c in errors)]
    return "\n".join(lines) + "\n"


def validate(doc: dict[str, Any]) -> list[str]:
    """Problems with a result document's structure ([] when it matches the schema this module writes)."""
    problems = [f"missing key {key!r}" for key in REQUIRED_KEYS if key not in doc]
    if problems:
        return problems
    if doc["schema"] != "lotus-bench/1":
        problems.append(f"schema {doc['schema']!r} is not lotus-bench/1")
    ids = {c.get("id") for c in doc["candidates"]}
    for index, row in enumerate(doc["results"]):
        for key in ("candidate", "label", "height", "width", "batch"):
            if key not in row:
                problems.append(f"results[{index}] has no {key!r}")
        if row.get("candidate") not in ids:
            problems.append(f"results[{index}] names unknown candidate {row.get('candidate')!r}")
        if "error" not in row:
            for key in ("latencies_s", "stats", "images_per_s"):
                if key not in row:
                    problems.append(f"results[{index}] has no {key!r}")
            stats = row.get("stats", {})
            for key in ("n", "median", "p90", "p99", "mean", "std", "min", "max"):
                if key not in stats:
                    problems.append(f"results[{index}].stats has no {key!r}")
            if stats and stats.get("n") != len(row.get("latencies_s", [])):
                problems.append(f"results[{index}]: stats.n {stats.get('n')} != {len(row.get('latencies_s', []))} latencies")
    return problems
