"""What the fp16 and int8 stages share: targets, the calibration cache, running graphs, the manifest.

Calibration cache: ``<artifact folder's parent>/.calib-cache/<key>/`` (``engines/.calib-cache/`` by
default). The key hashes the parent graph (its manifest's file hashes), the calibration images and
their sha256, the calibration size and method, and the graph shape. It holds ``ranges.json`` (ONNX
Runtime's ``TensorsData`` format: the MinMax calibrator's numbers, readable by ``quantize_static``)
and, per held-out set, the fp32 graph's outputs (``reference-<key>.npy``), so a second export with
the same inputs neither recalibrates nor re-runs the fp32 reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifacts import Artifact, record_parity, sha256_file, tool_versions, write_json_atomic, write_manifest
from ..core.config import ExportConfig, Task
from ..core.contract import GraphShape
from ..core.parity import ABSOLUTE_GATES, ParityReport, compare, judge
from ..core.polygraphy_files import save_parity_files
from ..core.progress import Steps
from ..core.safe_io import FILE_MODE, atomic_write, ensure_folder
from ..onnxrt import run_graph
from .inputs import ImageSet

CALIB_METHOD = "minmax"
# How ranges are collected; part of the cache key, so a cache from another method is never reused.
# 3: reductions placed after their producers, run in node order and read back by name (graph.collect_ranges).
RANGE_PASS = 3
CACHE_DIR = ".calib-cache"
PRECISION_TOOLS = ("onnx", "onnxruntime", "onnxconverter-common", "numpy")

# Default accuracy targets against the fp32 graph (overridable with --accuracy-target, which sets the
# AbsRel for depth and the mean angle in degrees for normals). NaN/Inf always fail.
DEFAULT_TARGETS: dict[str, dict[Task, float]] = {
    "fp16": {Task.DEPTH: 0.005, Task.NORMAL: 0.5},
    "int8": {Task.DEPTH: 0.02, Task.NORMAL: 3.0},
}


@dataclass(frozen=True)
class Target:
    """Every gate a reduced-precision graph must meet against the fp32 graph: the task metric after a
    scale-and-shift fit (``value``) *and* the absolute gates (mean and p99 |Δ|, fractions of the range)."""

    task: Task
    value: float
    source: str  # "default" or "--accuracy-target"
    gates: dict[str, float] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return "AbsRel (scale-and-shift aligned)" if self.task is Task.DEPTH else "mean angle (degrees)"

    def judge(self, report: ParityReport) -> ParityReport:
        if self.task is Task.DEPTH:
            return judge(report, absrel=self.value, gates=self.gates)
        return judge(report, mean_angle_deg=self.value, gates=self.gates)

    def error_of(self, report: ParityReport) -> float:
        """One number for the searches: the worst ratio of a measured error to its limit (≤ 1 meets every gate)."""
        value = report.absrel if self.task is Task.DEPTH else report.mean_angle_deg
        if report.nan_inf_candidate or value is None or not np.isfinite(value):
            return float("inf")
        ratios = [float(value) / self.value]
        for stat, fraction in self.gates.items():
            measured = float(getattr(report, stat))
            ratios.append(measured / (fraction * report.output_range) if np.isfinite(measured) else float("inf"))
        return max(ratios)

    def describe(self) -> str:
        gates = ", ".join(f"{stat.replace('_abs', '')}|Δ| ≤ {fraction:g} of the range" for stat, fraction in self.gates.items())
        return f"{self.metric} ≤ {self.value:g}{', ' + gates if gates else ''} vs the fp32 graph, no NaN/Inf ({self.source})"

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "max": self.value, "source": self.source, "absolute_gates": dict(self.gates),
                "error": "worst ratio of a measured error to its limit (≤ 1 passes)"}


def target_for(precision: str, config: ExportConfig) -> Target:
    if config.precision.accuracy_target is not None:
        from ..core.errors import ConfigError

        if not config.precision.accuracy_target > 0:
            raise ConfigError(f"--accuracy-target {config.precision.accuracy_target} is not positive",
                              "give an AbsRel (depth, e.g. 0.02) or a mean angle in degrees (normals, e.g. 3)")
        return Target(config.task, float(config.precision.accuracy_target), "--accuracy-target", dict(ABSOLUTE_GATES[precision]))
    return Target(config.task, DEFAULT_TARGETS[precision][config.task], "default", dict(ABSOLUTE_GATES[precision]))


def parent_key(parent: Artifact) -> str:
    files = parent.manifest.get("files") or {}
    if files:
        return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return sha256_file(parent.model_path)


def cache_folder(config: ExportConfig) -> Path:
    return config.artifact_dir.resolve().parent / CACHE_DIR


def calibration_key(parent: Artifact, images: ImageSet, config: ExportConfig, shape: GraphShape, tensors: str) -> dict[str, Any]:
    return {
        "tensors": tensors,
        "parent": parent_key(parent),
        "images": list(zip(images.calib_names, images.calib_hashes or images.calib_names, strict=True)),
        "calib_size": config.precision.calib_size,
        "method": CALIB_METHOD,
        "range_pass": RANGE_PASS,
        "shape": shape.to_json(),
        "input_shapes": [list(a.shape) for a in images.calib],
    }


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]


def cached_ranges(parent: Artifact, images: ImageSet, config: ExportConfig, shape: GraphShape, work: Path, steps: Steps,
                  quiet: bool, tensors: str = "all") -> tuple[dict[str, tuple[float, float]], Path, dict[str, Any]]:
    """Tensor ranges from the cache, or calibrate and store them. Returns (ranges, cache file, info).

    ``tensors`` is "all" (fp16) or "compute-inputs" (int8). Each reads only its own cache: handed the
    ranges of every tensor, ONNX Runtime's quantizer placed Q/DQ differently and the int8 search returned
    other groups (builtin:tiny: 56 % of the MACs in int8 after an fp16 export, 42 % without), so an
    int8 artifact depended on what had been exported before it.
    """
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData, load_tensors_data, save_tensors_data

    from . import graph

    key = calibration_key(parent, images, config, shape, tensors)
    folder = cache_folder(config) / digest(key)
    path = folder / "ranges.json"
    for found in [path]:
        if found.is_file():
            data = load_tensors_data(found)
            ranges = {name: (float(np.min(t.range_value[0])), float(np.max(t.range_value[1]))) for name, t in data.data.items()}
            steps.say(f"    calibration cache hit: {found} ({len(ranges)} tensors; not recalibrating)")
            info: dict[str, Any] = {"method": CALIB_METHOD, "cache": str(found), "key": json.loads((found.parent / "key.json").read_text())
                                    if (found.parent / "key.json").is_file() else key, "reused": True, "tensors": len(ranges), "seconds": 0.0}
            return ranges, found, info
    info = {"method": CALIB_METHOD, "cache": str(path), "key": key}
    start = time.perf_counter()
    ranges = graph.collect_ranges(parent.folder, images.calib, len(images.calib), work, quiet, tensors=tensors)
    seconds = time.perf_counter() - start
    ensure_folder(folder)
    tensors = TensorsData(CalibrationMethod.MinMax, {n: (np.array(lo, dtype=np.float32), np.array(hi, dtype=np.float32)) for n, (lo, hi) in ranges.items()})
    tmp = folder / f".ranges.{time.time_ns()}.json"
    save_tensors_data(tensors, tmp)  # ONNX Runtime writes the file itself: give it the umask's mode, then publish
    os.chmod(tmp, FILE_MODE)
    tmp.replace(path)
    write_json_atomic(folder / "key.json", key)
    steps.say(f"    calibrated {len(ranges)} tensors on {len(images.calib)} images in {seconds:.1f} s; cached in {path}")
    info.update(reused=False, tensors=len(ranges), seconds=round(seconds, 2))
    return ranges, path, info


def reference_outputs(parent: Artifact, images: ImageSet, config: ExportConfig, steps: Steps) -> np.ndarray:
    """The fp32 graph's outputs on the held-out batch (cached beside the calibration ranges)."""
    key = digest({"parent": parent_key(parent), "images": list(zip(images.eval_names, images.eval_hashes or images.eval_names, strict=True)),
                   "shape": list(images.eval_batch.shape), "size": config.export.parity_size})
    path = cache_folder(config) / f"reference-{key}.npy"
    if path.is_file():
        steps.say(f"    fp32 reference outputs from cache: {path}")
        return np.load(path)
    out = run_graph(parent.model_path, parent.shape, images.eval_batch, lean=True)  # one run: pre-packing would only add a weight copy
    ensure_folder(path.parent)
    atomic_write(path, lambda handle: np.save(handle, out, allow_pickle=False))
    return out


def evaluate(candidate: np.ndarray, reference: np.ndarray, target: Target) -> ParityReport:
    return target.judge(compare(candidate, reference, target.task))


def base_manifest(parent: Artifact, config: ExportConfig, precision: str) -> dict[str, Any]:
    m = parent.manifest
    return {
        "kind": "onnx",
        "engine": config.engine.value,
        "task": m.get("task", config.task.value),
        "output_meaning": m.get("output_meaning", config.meaning.value),
        "precision": precision,
        "shape": m.get("shape"),
        "contract": m.get("contract"),
        "opset": m.get("opset"),
        "source": m.get("source"),
        "parent": {"folder": str(parent.folder), "manifest_sha256": sha256_file(parent.folder / "manifest.json"),
                   "engine": m.get("engine"), "precision": m.get("precision", "fp32")},
        "tools": tool_versions(*PRECISION_TOOLS),
    }


def finish(staging: Path, manifest: dict[str, Any], report: ParityReport, target: Target, label: str, batch: np.ndarray,
           reference: np.ndarray) -> dict[str, Any]:
    """Write parity.json, the Polygraphy parity files (the held-out batch and the fp32 graph's outputs on
    it) and the manifest; raise ParityError when the target is missed."""
    save_parity_files(staging, batch, reference, target.task.value, "fp32-onnx-graph-onnxruntime-cpu")
    parity = {**report.to_json(), "reference": "fp32 ONNX graph, ONNX Runtime CPU", "label": label, "target": target.to_json()}
    record_parity(staging, manifest, parity, bool(report.passed), f"{manifest['precision']} graph misses its accuracy target: {report.summary()}",
                  f"nothing was published; target was {target.describe()}; relax it knowingly with --accuracy-target")
    return write_manifest(staging, manifest)
