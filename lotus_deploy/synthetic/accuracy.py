"""Accuracy against the ground truth of rendered scenes: what a trained model (builtin:demo) is judged by.

Depth: AbsRel and δ1 (< 1.25) after a least-squares scale-and-shift fit of the prediction to the true
metric depth, plus the mean absolute error in metres after that fit, on pixels with true depth (not sky,
not beyond ``MAX_DEPTH_M``). Normals: mean angle to the true normal and the share under 11.25°, on
non-sky pixels. Held-out scenes use seeds no training run uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..core.fitting import fit_line
from .render import RenderedScene, render_scene

MAX_DEPTH_M = 80.0  # beyond this (and the sky) counts as "far", as driving data sets cap depth
GOALS = {"depth": {"absrel_max": 0.15, "delta1_min": 0.8}, "normal": {"mean_angle_deg_max": 25.0}}  # issue 17, for builtin:demo
HELD_OUT_SEED = 10_000_000  # held-out scenes: HELD_OUT_SEED + i; training seeds are seed * 1000 + i, far above


def held_out_scenes(count: int, width: int = 256) -> list[RenderedScene]:
    """``count`` 4:3 scenes no training run uses (seeds ``HELD_OUT_SEED + i``), indoor and outdoor by the seed."""
    return [render_scene(HELD_OUT_SEED + i, height=width * 3 // 4, width=width) for i in range(count)]


def depth_accuracy(prediction: np.ndarray, scene: RenderedScene) -> dict[str, float]:
    """AbsRel, δ1 and mean absolute error (metres) after a least-squares scale-and-shift fit, on pixels with
    true depth (not sky, ≤ MAX_DEPTH_M)."""
    valid = scene.valid & (scene.depth <= MAX_DEPTH_M)
    truth = scene.depth[valid].astype(np.float64)
    scale, shift = fit_line(prediction[valid].astype(np.float64), truth)
    aligned = np.clip(prediction[valid] * scale + shift, 1e-3, None)
    ratio = np.maximum(aligned / truth, truth / aligned)
    return {"absrel": float(np.mean(np.abs(aligned - truth) / truth)), "delta1": float(np.mean(ratio < 1.25)),
            "abs_m": float(np.mean(np.abs(aligned - truth)))}


def normal_accuracy(prediction: np.ndarray, scene: RenderedScene) -> dict[str, float]:
    """Mean angle (degrees) and the share under 11.25°, on non-sky pixels; prediction HxWx3."""
    p = prediction[scene.valid].astype(np.float64)
    t = scene.normal[scene.valid].astype(np.float64)
    p /= np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    angles = np.degrees(np.arccos(np.clip(np.sum(p * t, axis=1), -1, 1)))
    return {"mean_angle_deg": float(angles.mean()), "within_11_25": float(np.mean(angles < 11.25))}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties broken by order: continuous data)."""
    ra = np.argsort(np.argsort(a.ravel())).astype(np.float64)
    rb = np.argsort(np.argsort(b.ravel())).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def mean_accuracy(predict: Callable[[np.ndarray], np.ndarray], task: str, scenes: Sequence[RenderedScene]) -> dict[str, float]:
    """Mean of the per-scene metrics of ``predict`` (uint8 RGB -> HxW depth or HxWx3 normals at the image size)."""
    measure = depth_accuracy if task == "depth" else normal_accuracy
    rows = [measure(predict(scene.rgb), scene) for scene in scenes]
    return {key: round(float(np.mean([row[key] for row in rows])), 4) for key in rows[0]}
