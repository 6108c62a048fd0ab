"""The one robust-fitting module of the stream stage: IRLS line fits for temporal alignment and metric depth.

``q ≈ s·p + t`` by iteratively reweighted least squares: Huber weights (convex, safe from a rough start)
or Tukey's biweight (redescending: gross outliers such as moving objects get weight 0), the residual
scale re-estimated each round from the residuals' MAD.
"""

from __future__ import annotations

import numpy as np

from ..core.fitting import fit_line, robust_sigma

HUBER_K = 1.345  # 95% efficiency under Gaussian noise
TUKEY_C = 4.685  # likewise for the biweight


def irls_weights(standardized: np.ndarray, redescending: bool) -> np.ndarray:
    """Huber weights, or Tukey's biweight when ``redescending``."""
    r = np.abs(standardized)
    if redescending:
        return np.where(r < TUKEY_C, (1.0 - (r / TUKEY_C) ** 2) ** 2, 0.0)
    return np.where(r <= HUBER_K, 1.0, HUBER_K / np.maximum(r, 1e-12))


def symmetric_line(p: np.ndarray, q: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Weighted reduced-major-axis line: slope = ratio of weighted spreads, with the covariance's sign."""
    w = weights / weights.sum()
    mp, mq = float(w @ p), float(w @ q)
    sp = float(np.sqrt(w @ (p - mp) ** 2))
    sq = float(np.sqrt(w @ (q - mq) ** 2))
    cov = float(w @ ((p - mp) * (q - mq)))
    scale = float(np.sign(cov) * sq / sp) if sp > 0 else 0.0
    return scale, mq - scale * mp


def median_start(p: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """A start from medians and MADs, not plain LS: a few far-off pixels (high leverage) can tilt an LS
    start so far that IRLS settles on the wrong line."""
    mp, mq = float(np.median(p)), float(np.median(q))
    dp, dq = float(np.median(np.abs(p - mp))), float(np.median(np.abs(q - mq)))
    if dp <= 1e-12 or dq <= 1e-12:
        return fit_line(p, q)
    sign = 1.0 if float(np.mean((p - mp) * (q - mq))) >= 0 else -1.0
    scale = sign * dq / dp
    return scale, mq - scale * mp


def irls_line(p: np.ndarray, q: np.ndarray, start: tuple[float, float], iterations: int, redescending: bool,
              symmetric: bool = False) -> tuple[float, float]:
    """IRLS from ``start``: reweight by the standardized residuals, refit, until the MAD spread vanishes."""
    scale, shift = start
    for _ in range(max(1, iterations)):
        residual = p * scale + shift - q
        sigma = robust_sigma(residual)
        if sigma <= 1e-12:
            break
        weights = irls_weights(residual / sigma, redescending)
        scale, shift = symmetric_line(p, q, weights) if symmetric else fit_line(p, q, weights)
    return scale, shift
