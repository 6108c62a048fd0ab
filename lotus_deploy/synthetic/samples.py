"""Synthetic scenes with known metric depth, for the metric-fit and stability tests and measurements.

No trained weights can be downloaded here, so accuracy of the *fitting* code is checked on scenes whose
true depth is known: a ground plane seen by a pinhole camera, a back wall, and boxes standing on the
plane. From the truth we make what Lotus-D would give (an affine-invariant depth or disparity in
[0, 1], with noise) and sparse "LiDAR" samples (with noise and gross outliers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SparseSample:
    points: np.ndarray  # (N, 3): x, y, depth_m (noisy, some gross outliers)
    outlier: np.ndarray  # (N,) bool: which points were corrupted


def scene_depth(height: int = 96, width: int = 128, camera_height_m: float = 1.5, focal: float | None = None,
                wall_m: float = 30.0, boxes: int = 3, seed: int = 0) -> np.ndarray:
    """Metric depth (metres, float64 HxW) of a ground plane, a back wall and ``boxes`` boxes."""
    rng = np.random.default_rng(seed)
    f = focal if focal is not None else 0.9 * width
    cy = height * 0.45
    rows = np.arange(height, dtype=np.float64)[:, None] + 0.5
    below = rows - cy
    with np.errstate(divide="ignore"):
        ground = np.where(below > 0, camera_height_m * f / np.maximum(below, 1e-9), np.inf)
    depth = np.broadcast_to(np.minimum(ground, wall_m), (height, width)).copy()
    for _ in range(boxes):
        z = rng.uniform(4.0, 0.6 * wall_m)
        w_px = int(rng.uniform(0.12, 0.25) * width)
        x0 = int(rng.uniform(0, width - w_px))
        foot = int(min(height - 1, cy + camera_height_m * f / z))  # where the box meets the ground
        top = int(max(0, foot - rng.uniform(1.0, 2.5) * f / z))
        region = depth[top:foot, x0:x0 + w_px]
        np.minimum(region, z, out=region)
    return depth


def affine_prediction(depth_m: np.ndarray, disparity: bool, scale: float = 0.8, shift: float = 0.1,
                      noise: float = 0.005, seed: int = 1) -> np.ndarray:
    """What an affine-invariant model would output: depth (or 1/depth) normalised to [0, 1], then
    ``scale * x + shift`` plus Gaussian noise (float32)."""
    rng = np.random.default_rng(seed)
    x = 1.0 / depth_m if disparity else depth_m
    x = (x - x.min()) / (x.max() - x.min())
    return (scale * x + shift + rng.normal(0.0, noise, x.shape)).astype(np.float32)


def sparse_points(depth_m: np.ndarray, count: int = 200, rel_noise: float = 0.01, outlier_fraction: float = 0.2,
                  seed: int = 2) -> SparseSample:
    """``count`` random pixels with metric depth (1% relative noise) of which a fraction are gross outliers."""
    rng = np.random.default_rng(seed)
    h, w = depth_m.shape
    flat = rng.choice(h * w, size=count, replace=False)
    ys, xs = np.divmod(flat, w)
    z = depth_m[ys, xs] * (1.0 + rng.normal(0.0, rel_noise, count))
    outlier = rng.random(count) < outlier_fraction
    z[outlier] = rng.uniform(0.3, 3.0, outlier.sum()) * z[outlier] + rng.uniform(0.5, 5.0, outlier.sum())
    return SparseSample(points=np.stack([xs, ys, z], axis=1).astype(np.float64), outlier=outlier)


def flicker_sequence(frames: int = 12, height: int = 64, width: int = 80, jitter: float = 0.2, noise: float = 0.003,
                     seed: int = 3) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """A static scene seen ``frames`` times: (true depth, jittered predictions, RGB frames).

    Each prediction is the true normalised depth under its own random affine map (scale in
    ``1 ± jitter``, shift in ``± jitter / 2``) plus noise: the per-frame flicker Lotus-D shows.
    """
    rng = np.random.default_rng(seed)
    truth = scene_depth(height, width, seed=seed)
    base = (truth - truth.min()) / (truth.max() - truth.min())
    texture = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    truths, preds, images = [], [], []
    for _ in range(frames):
        s = 1.0 + rng.uniform(-jitter, jitter)
        t = rng.uniform(-jitter / 2, jitter / 2)
        truths.append(base.astype(np.float32))
        preds.append((s * base + t + rng.normal(0, noise, base.shape)).astype(np.float32))
        images.append(texture)
    return truths, preds, images
