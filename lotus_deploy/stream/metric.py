"""Metric depth from an affine-invariant prediction and a few metric points (numpy only).

Lotus-D predicts depth (or disparity) up to an unknown scale and shift. Given sparse metric depth —
LiDAR points projected into the image, stereo matches, a few tape-measured distances — we fit that
scale and shift and return depth in metres. The fit lives in the space where the relation is affine:

* ``depth`` output: ``z ≈ s·p + t`` (depth space);
* ``disparity`` output: ``1/z ≈ s·p + t`` (inverse-depth space), then ``z = 1 / (s·p + t)``.

It is robust twice over: RANSAC on 2-point samples picks the consensus set (points whose predicted
metric depth is within ``max_rel_error`` of the measured one), then Huber-weighted IRLS refines the fit
on that set. Residuals are always reported in metres.

Sparse point files (:func:`load_sparse`):

* ``.csv`` / ``.txt``: one point per line ``x,y,depth_m`` (pixel column, pixel row, metres); a header
  line and lines starting with ``#`` are skipped.
* ``.npy`` of shape (N, 3): the same columns.
* ``.npy`` of shape (H, W): a sparse depth map, metres where > 0 and finite, 0 / NaN elsewhere; it must
  have the prediction's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import OutputMeaning
from ..core.errors import ConfigError, LotusError, ShapeError
from ..core.fitting import fit_line
from .fitting import irls_line


class SparseDepthError(LotusError):
    """Sparse metric points are missing, unreadable, or do not fit the prediction."""


@dataclass(frozen=True)
class SparsePoints:
    """Pixel coordinates (x = column, y = row; floats, rounded to the nearest pixel) and depths in metres."""

    x: np.ndarray
    y: np.ndarray
    depth_m: np.ndarray

    def __post_init__(self) -> None:
        if not (self.x.shape == self.y.shape == self.depth_m.shape and self.x.ndim == 1):
            raise SparseDepthError(f"x, y and depth have shapes {self.x.shape}, {self.y.shape}, {self.depth_m.shape}", "pass three 1-D arrays of one length")

    def __len__(self) -> int:
        return int(self.x.size)

    @classmethod
    def from_array(cls, points: np.ndarray) -> SparsePoints:
        arr = np.asarray(points, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise SparseDepthError(f"sparse points have shape {arr.shape}, expected (N, 3) columns x, y, depth_m", "pass one row per point")
        return cls(arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy())

    @classmethod
    def from_map(cls, sparse_map: np.ndarray) -> SparsePoints:
        """Points from an HxW map that holds metres where valid (> 0, finite) and 0/NaN elsewhere."""
        arr = np.asarray(sparse_map, dtype=np.float64)
        if arr.ndim != 2:
            raise SparseDepthError(f"sparse depth map has shape {arr.shape}, expected HxW", "pass a 2-D map")
        rows, cols = np.nonzero(np.isfinite(arr) & (arr > 0))
        return cls(cols.astype(np.float64), rows.astype(np.float64), arr[rows, cols])


def load_sparse(path: Path | str) -> tuple[SparsePoints, tuple[int, int] | None]:
    """Read a sparse point file (see the module doc); also returns the map size for an HxW .npy."""
    path = Path(path)
    if not path.is_file():
        raise SparseDepthError(f"sparse depth file {path} does not exist", "pass a .csv (x,y,depth_m) or .npy file")
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.ndim == 2 and arr.shape[1] == 3 and arr.shape[0] != arr.shape[1]:
                return SparsePoints.from_array(arr), None
            if arr.ndim == 2:
                return SparsePoints.from_map(arr), (int(arr.shape[0]), int(arr.shape[1]))
            return SparsePoints.from_array(arr), None
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = [f.strip() for f in text.replace(";", ",").split(",")]
            try:
                rows.append([float(f) for f in fields])
            except ValueError:
                if not rows and number == 1:
                    continue  # header
                raise SparseDepthError(f"{path}:{number}: {text!r} is not three numbers", "write lines as x,y,depth_m") from None
            if len(fields) != 3:
                raise SparseDepthError(f"{path}:{number}: {len(fields)} fields, expected 3", "write lines as x,y,depth_m")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SparseDepthError(f"cannot read sparse depth file {path}: {exc}", "pass a .csv (x,y,depth_m) or .npy file") from None
    if not rows:
        raise SparseDepthError(f"{path} holds no points", "write at least two lines x,y,depth_m")
    return SparsePoints.from_array(np.array(rows)), None


@dataclass
class MetricFit:
    """Metric depth and how well the fit explains the points."""

    depth_m: np.ndarray  # HxW float32 metres; NaN where a disparity fit gives no positive disparity
    scale: float
    shift: float
    space: str  # "depth" or "disparity": where z ≈ s·p + t (or 1/z ≈ s·p + t) holds
    points: int  # usable points given
    inliers: int
    rmse_m: float  # over inliers, metres
    median_abs_m: float  # over inliers, metres
    median_rel: float  # over inliers, |pred - z| / z
    inlier_mask: np.ndarray  # over the usable points, in the order given

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("depth_m", "inlier_mask")}


def sample(prediction: np.ndarray, points: SparsePoints) -> tuple[np.ndarray, np.ndarray]:
    """Prediction at the points (nearest pixel) and the mask of points that are usable."""
    h, w = prediction.shape
    cols = np.rint(points.x).astype(np.int64)
    rows = np.rint(points.y).astype(np.int64)
    outside = (cols < 0) | (cols >= w) | (rows < 0) | (rows >= h)
    if outside.any():
        k = int(outside.sum())
        raise SparseDepthError(f"{k} of {len(points)} sparse points lie outside the {h}x{w} prediction", "give pixel coordinates of the predicted image (x = column, y = row)")
    values = prediction[rows, cols].astype(np.float64)
    usable = np.isfinite(values) & np.isfinite(points.depth_m) & (points.depth_m > 0)
    return values, usable


def to_metres(pred: np.ndarray, scale: float, shift: float, disparity: bool) -> np.ndarray:
    """A fitted prediction in metres: ``s·p + t`` for depth, ``1 / (s·p + t)`` for disparity (NaN where not positive)."""
    fitted = pred * scale + shift
    if not disparity:
        return fitted
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(fitted > 0, 1.0 / np.where(fitted > 0, fitted, 1.0), np.nan)


def _irls(p: np.ndarray, q: np.ndarray, iterations: int = 20) -> tuple[float, float]:
    """Huber IRLS from the plain least-squares line (the points were already RANSAC-screened)."""
    return irls_line(p, q, fit_line(p, q), iterations, redescending=False)


def _relative_error(p: np.ndarray, z: np.ndarray, scale: float, shift: float, disparity: bool) -> np.ndarray:
    pred = to_metres(p, scale, shift, disparity)
    return np.where(np.isfinite(pred), np.abs(pred - z) / z, np.inf)


def fit_metric(prediction: np.ndarray, points: SparsePoints | np.ndarray, meaning: str | OutputMeaning = OutputMeaning.DEPTH,
               max_rel_error: float = 0.1, ransac_iterations: int = 256, seed: int = 0,
               map_shape: tuple[int, int] | None = None) -> MetricFit:
    """Fit scale and shift so that ``prediction`` becomes metric depth at the points; see the module doc.

    ``points`` may be :class:`SparsePoints`, an (N, 3) array of x, y, depth_m, or an HxW sparse map.
    ``map_shape`` (from :func:`load_sparse`) is checked against the prediction's size.
    """
    pred = np.asarray(prediction, dtype=np.float64)
    if pred.ndim != 2:
        raise ShapeError(f"prediction has shape {pred.shape}, expected HxW", "pass one depth or disparity map")
    try:
        kind = OutputMeaning(meaning)
    except ValueError:
        raise ConfigError(f"output meaning {meaning!r} is not depth or disparity", "pass the artifact's output meaning") from None
    if kind is OutputMeaning.NORMAL:
        raise ConfigError("normals have no metric scale", "fit metric depth on a depth or disparity model's output")
    if not 0 < max_rel_error < 1:
        raise ConfigError(f"max_rel_error {max_rel_error} is not in (0, 1)", "use e.g. 0.1 (10%)")
    if isinstance(points, np.ndarray):
        if points.ndim == 2 and points.shape[1] != 3:
            if points.shape != pred.shape:
                raise SparseDepthError(f"sparse depth map is {points.shape[0]}x{points.shape[1]}, the prediction {pred.shape[0]}x{pred.shape[1]}", "project the points at the prediction's resolution")
            points = SparsePoints.from_map(points)
        else:
            points = SparsePoints.from_array(points)
    if map_shape is not None and tuple(map_shape) != pred.shape:
        raise SparseDepthError(f"sparse depth map is {map_shape[0]}x{map_shape[1]}, the prediction {pred.shape[0]}x{pred.shape[1]}", "project the points at the prediction's resolution")
    if len(points) == 0:
        raise SparseDepthError("the sparse point set is empty", "give at least two metric points (x, y, depth_m)")
    values, usable = sample(pred, points)
    p, z = values[usable], points.depth_m[usable]
    if p.size < 2 or np.ptp(p) <= 1e-12:
        raise SparseDepthError(f"{p.size} usable point(s) with distinct predictions out of {len(points)}", "give at least two points with positive depth at different predicted depths")
    disparity = kind is OutputMeaning.DISPARITY
    q = 1.0 / z if disparity else z

    rng = np.random.default_rng(seed)
    best = np.ones(p.size, dtype=bool)
    best_count = -1
    if p.size > 2:
        for _ in range(ransac_iterations):
            i, j = rng.choice(p.size, size=2, replace=False)
            if abs(p[i] - p[j]) <= 1e-12:
                continue
            scale = (q[i] - q[j]) / (p[i] - p[j])
            shift = q[i] - scale * p[i]
            inliers = _relative_error(p, z, scale, shift, disparity) <= max_rel_error
            count = int(inliers.sum())
            if count > best_count:
                best, best_count = inliers, count
        if best_count < 2:
            best = np.ones(p.size, dtype=bool)
    scale, shift = _irls(p[best], q[best])
    inliers = _relative_error(p, z, scale, shift, disparity) <= max_rel_error
    if inliers.sum() >= 2 and not np.array_equal(inliers, best):
        scale, shift = _irls(p[inliers], q[inliers])
        inliers = _relative_error(p, z, scale, shift, disparity) <= max_rel_error
    fitted = to_metres(p, scale, shift, disparity)
    err = (fitted - z)[inliers]
    rel = (np.abs(fitted - z) / z)[inliers]
    mask = np.zeros(len(points), dtype=bool)
    mask[np.flatnonzero(usable)[inliers]] = True
    return MetricFit(
        depth_m=to_metres(pred, scale, shift, disparity).astype(np.float32),
        scale=scale,
        shift=shift,
        space="disparity" if disparity else "depth",
        points=int(p.size),
        inliers=int(inliers.sum()),
        rmse_m=float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
        median_abs_m=float(np.median(np.abs(err))) if err.size else float("nan"),
        median_rel=float(np.median(rel)) if rel.size else float("nan"),
        inlier_mask=mask,
    )
