"""Latency statistics from timed samples (numpy; no timing happens here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100): ``numpy.percentile`` with linear interpolation between order statistics."""
    if not len(samples):
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q, method="linear"))


@dataclass(frozen=True)
class LatencyStats:
    """Seconds per batch. ``std`` is the sample standard deviation (n - 1); 0 for one sample."""

    n: int
    median: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(samples: Sequence[float]) -> LatencyStats:
    """Median, p90, p99, mean, std (n - 1) , min and max of ``samples`` (seconds)."""
    values = np.asarray(samples, dtype=np.float64)
    if not values.size:
        raise ValueError("no samples")
    p50, p90, p99 = (float(v) for v in np.percentile(values, [50, 90, 99], method="linear"))
    return LatencyStats(n=int(values.size), median=p50, p90=p90, p99=p99, mean=float(values.mean()),
                        std=float(values.std(ddof=1)) if values.size > 1 else 0.0, min=float(values.min()), max=float(values.max()))


def images_per_second(batch: int, median_s: float) -> float:
    return batch / median_s if median_s > 0 else float("nan")


def achieved_gflops(flops_per_batch: float | None, median_s: float) -> float | None:
    """GFLOP/s of a graph whose batch costs ``flops_per_batch`` and takes ``median_s`` seconds."""
    if flops_per_batch is None or median_s <= 0:
        return None
    return flops_per_batch / median_s / 1e9
