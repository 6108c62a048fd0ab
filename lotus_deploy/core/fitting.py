"""The one least-squares line fit and the one robust spread (numpy): parity metrics, temporal alignment
and metric fitting all fit ``q ≈ s·p + t`` with these."""

from __future__ import annotations

import numpy as np

MAD_TO_SIGMA = 1.4826  # the MAD of a Gaussian times this is its standard deviation


def fit_line(p: np.ndarray, q: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """(weighted) least-squares scale s and shift t minimising Σ w·(s·p + t − q)²."""
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    design = np.stack([p, np.ones_like(p)], axis=1)
    if weights is not None:
        sw = np.sqrt(np.asarray(weights, dtype=np.float64).reshape(-1))
        design, q = design * sw[:, None], q * sw
    (scale, shift), *_ = np.linalg.lstsq(design, q, rcond=None)
    return float(scale), float(shift)


def robust_sigma(residual: np.ndarray) -> float:
    """Spread of ``residual`` from its median absolute deviation (outliers barely move it)."""
    r = np.asarray(residual, dtype=np.float64)
    return float(MAD_TO_SIGMA * np.median(np.abs(r - np.median(r))))
