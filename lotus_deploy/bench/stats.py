"""Latency statistics from timed samples (pure Python + numpy; no timing happens here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics.

    Same definition as ``numpy.percentile(..., method="linear")``: rank ``(n - 1) * q / 100``.
    """
    if not samples:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(float(s) for s in samples)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


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
    """Median, p90, p99, mean, std, min and max of ``samples`` (seconds)."""
    values = [float(s) for s in samples]
    if not values:
        raise ValueError("no samples")
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return LatencyStats(
        n=n, median=percentile(values, 50), p90=percentile(values, 90), p99=percentile(values, 99),
        mean=mean, std=std, min=min(values), max=max(values),
    )


def images_per_second(batch: int, median_s: float) -> float:
    return batch / median_s if median_s > 0 else float("nan")


def achieved_gflops(flops_per_batch: float | None, median_s: float) -> float | None:
    """GFLOP/s of a graph whose batch costs ``flops_per_batch`` and takes ``median_s`` seconds."""
    if flops_per_batch is None or median_s <= 0:
        return None
    return flops_per_batch / median_s / 1e9
