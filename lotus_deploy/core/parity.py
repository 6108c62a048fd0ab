"""Compare a candidate's outputs with a reference's: the numbers docs/contract.md reports.

Pure numpy, so the same comparator serves ONNX Runtime, TensorRT and PyTorch backends. Errors are
always reported; the pass rule (max absolute error, no NaN/Inf, optional task-metric targets) is
applied separately so tolerances can be printed and overridden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .config import Task
from .contract import OUTPUT_RANGE
from .fitting import fit_line

DELTA1_THRESHOLD = 1.25
NORMAL_GOOD_DEG = 11.25
ERROR_QUANTILE = 0.99
# Absolute gates for reduced-precision artifacts against their fp32 graph: mean |Δ| and the 99th
# percentile of |Δ|, as fractions of the output range (depth 1, normals 2). The product writes absolute
# values (16-bit PNG, .npy, the colormap over [0, 1]), so an output that is right only after a
# scale-and-shift fit is wrong. Chosen values and their measurements: docs/precision.md.
ABSOLUTE_GATES: dict[str, dict[str, float]] = {
    "fp16": {"mean_abs": 2e-3, "p99_abs": 1e-2},
    "bf16": {"mean_abs": 1e-2, "p99_abs": 5e-2},
    "int8": {"mean_abs": 2e-2, "p99_abs": 1e-1},
}


@dataclass
class ParityReport:
    task: str
    samples: int
    max_abs: float
    mean_abs: float
    nan_inf_candidate: int
    nan_inf_reference: int
    absrel: float | None = None
    delta1: float | None = None
    mean_angle_deg: float | None = None
    within_11_25: float | None = None
    p99_abs: float = float("nan")
    output_range: float = 1.0
    tolerances: dict[str, float] = field(default_factory=dict)
    passed: bool | None = None
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "polygraphy": polygraphy_checks(self)}

    def summary(self) -> str:
        parts = [f"max|Δ| {self.max_abs:.3g}", f"mean|Δ| {self.mean_abs:.3g}", f"p99|Δ| {self.p99_abs:.3g}", f"NaN/Inf {self.nan_inf_candidate}"]
        if self.absrel is not None:
            parts += [f"AbsRel {self.absrel:.4g}", f"δ1 {self.delta1:.4f}"]
        if self.mean_angle_deg is not None:
            parts += [f"mean angle {self.mean_angle_deg:.3g}°", f"<11.25° {self.within_11_25:.4f}"]
        verdict = "" if self.passed is None else (" PASS" if self.passed else " FAIL: " + "; ".join(self.failures))
        return ", ".join(parts) + verdict


def align_scale_shift(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares scale s and shift t minimising |s*prediction + t - target|², applied."""
    scale, shift = fit_line(prediction, target)
    return (prediction.astype(np.float64) * scale + shift).reshape(prediction.shape)


def depth_metrics(candidate: np.ndarray, reference: np.ndarray, eps: float = 1e-6) -> tuple[float, float]:
    """AbsRel and δ1 of the candidate after per-sample scale-and-shift alignment to the reference."""
    absrels, deltas = [], []
    for cand, ref in zip(candidate, reference, strict=True):
        aligned = align_scale_shift(cand, ref)
        ref64 = ref.astype(np.float64)
        valid = ref64 > eps
        if not valid.any():
            continue
        a = np.clip(aligned[valid], eps, None)
        r = ref64[valid]
        absrels.append(float(np.mean(np.abs(a - r) / r)))
        deltas.append(float(np.mean(np.maximum(a / r, r / a) < DELTA1_THRESHOLD)))
    if not absrels:
        return float("nan"), float("nan")
    return float(np.mean(absrels)), float(np.mean(deltas))


def normal_metrics(candidate: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mean angular error (degrees) and the share of pixels within 11.25°; inputs [N,3,H,W]."""
    c = candidate.astype(np.float64)
    r = reference.astype(np.float64)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    cos = np.clip(np.sum(c * r, axis=1), -1.0, 1.0)
    angles = np.degrees(np.arccos(cos))
    return float(angles.mean()), float(np.mean(angles < NORMAL_GOOD_DEG))


def compare(candidate: np.ndarray, reference: np.ndarray, task: Task) -> ParityReport:
    """Error statistics of ``candidate`` against ``reference`` (both [N,C,H,W])."""
    if candidate.shape != reference.shape:
        raise ValueError(f"shapes differ: candidate {candidate.shape}, reference {reference.shape}")
    cand = candidate.astype(np.float64)
    ref = reference.astype(np.float64)
    bad_c = int(np.count_nonzero(~np.isfinite(cand)))
    bad_r = int(np.count_nonzero(~np.isfinite(ref)))
    finite = np.isfinite(cand) & np.isfinite(ref)
    diff = np.abs(cand - ref)[finite]
    report = ParityReport(
        task=task.value,
        samples=int(candidate.shape[0]),
        max_abs=float(diff.max()) if diff.size else float("nan"),
        mean_abs=float(diff.mean()) if diff.size else float("nan"),
        nan_inf_candidate=bad_c,
        nan_inf_reference=bad_r,
        p99_abs=float(np.quantile(diff, ERROR_QUANTILE)) if diff.size else float("nan"),
        output_range=float(OUTPUT_RANGE[task][1] - OUTPUT_RANGE[task][0]),
    )
    if task is Task.DEPTH:
        report.absrel, report.delta1 = depth_metrics(np.nan_to_num(cand), np.nan_to_num(ref))
    else:
        report.mean_angle_deg, report.within_11_25 = normal_metrics(np.nan_to_num(cand), np.nan_to_num(ref))
    return report


def judge(report: ParityReport, max_abs: float | None = None, absrel: float | None = None,
          delta1: float | None = None, mean_angle_deg: float | None = None, gates: dict[str, float] | None = None) -> ParityReport:
    """Apply the given tolerances (None = not checked); NaN/Inf in the candidate always fails.

    ``gates`` are absolute gates (``ABSOLUTE_GATES[precision]``): mean and 99th-percentile |Δ| as
    fractions of the output range; they are recorded in absolute units as well.
    """
    failures = []
    tolerances: dict[str, float] = {}
    if report.nan_inf_candidate:
        failures.append(f"{report.nan_inf_candidate} NaN/Inf values")
    for stat, label in (("mean_abs", "mean|Δ|"), ("p99_abs", "p99|Δ|")):
        if gates and stat in gates:
            limit = gates[stat] * report.output_range
            tolerances[f"{stat}_max"] = limit
            value = getattr(report, stat)
            if not value <= limit:
                failures.append(f"{label} {value:.3g} > {limit:.3g} ({gates[stat]:g} of the output range)")
    if max_abs is not None:
        tolerances["max_abs"] = max_abs
        if not report.max_abs <= max_abs:
            failures.append(f"max|Δ| {report.max_abs:.3g} > {max_abs:g}")
    if absrel is not None and report.absrel is not None:
        tolerances["absrel"] = absrel
        if not report.absrel <= absrel:
            failures.append(f"AbsRel {report.absrel:.4g} > {absrel:g}")
    if delta1 is not None and report.delta1 is not None:
        tolerances["delta1_min"] = delta1
        if not report.delta1 >= delta1:
            failures.append(f"δ1 {report.delta1:.4f} < {delta1:g}")
    if mean_angle_deg is not None and report.mean_angle_deg is not None:
        tolerances["mean_angle_deg"] = mean_angle_deg
        if not report.mean_angle_deg <= mean_angle_deg:
            failures.append(f"mean angle {report.mean_angle_deg:.3g}° > {mean_angle_deg:g}°")
    report.tolerances = tolerances
    report.failures = failures
    report.passed = not failures
    return report


def polygraphy_checks(report: ParityReport) -> list[dict[str, Any]]:
    """The report's absolute gates as Polygraphy comparator settings (``polygraphy run --check-error-stat ...``),
    so Polygraphy's own statistics reproduce the verdict: ``mean`` with ``--atol`` the mean limit, ``quantile``
    at 0.99 with ``--atol`` the p99 limit, ``--rtol 0`` for both."""
    checks = []
    if "mean_abs_max" in report.tolerances:
        checks.append({"check_error_stat": "mean", "atol": report.tolerances["mean_abs_max"], "rtol": 0.0})
    if "p99_abs_max" in report.tolerances:
        checks.append({"check_error_stat": "quantile", "error_quantile": ERROR_QUANTILE, "atol": report.tolerances["p99_abs_max"], "rtol": 0.0})
    if "max_abs" in report.tolerances:
        checks.append({"check_error_stat": "max", "atol": report.tolerances["max_abs"], "rtol": 0.0})
    return checks
