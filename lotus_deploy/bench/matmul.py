"""The machine's own fp32 matrix-multiply rate, the yardstick for "achieved GFLOP/s".

A 4096² × 4096² float32 product is 2 × 4096³ ≈ 137 GFLOP; its best-of-N rate is about what the
machine's BLAS can sustain. It is measured with numpy and, when installed, torch (each runs its own
BLAS); the higher rate is the reference.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def _best_rate(multiply: Any, size: int, repeats: int) -> float:
    multiply()  # warm-up: thread pools, page faults
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        multiply()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def numpy_rate(size: int = 4096, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    return _best_rate(lambda: a @ b, size, repeats)


def torch_rate(size: int = 4096, repeats: int = 3) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen, dtype=torch.float32)
    b = torch.randn(size, size, generator=gen, dtype=torch.float32)
    with torch.inference_mode():
        return _best_rate(lambda: torch.mm(a, b), size, repeats)


def measure(size: int = 4096, repeats: int = 3, use_torch: bool = True) -> dict[str, Any]:
    """{'size', 'repeats', 'numpy_gflops', 'torch_gflops', 'gflops' (the best)} on the CPU."""
    rates = {"numpy_gflops": numpy_rate(size, repeats)}
    if use_torch:
        rate = torch_rate(size, repeats)
        if rate is not None:
            rates["torch_gflops"] = rate
    return {"size": size, "repeats": repeats, **{k: round(v, 2) for k, v in rates.items()}, "gflops": round(max(rates.values()), 2)}


class RoundRate:
    """One fp32 ``size``² numpy product timed between benchmark rounds: the rate under the same load.

    The machine's speed can drift by 2x over minutes on a shared host (other jobs, frequency); a rate
    measured only before and after does not see what the candidates saw. Arrays are made once.
    """

    def __init__(self, size: int = 4096) -> None:
        rng = np.random.default_rng(1)
        self.size = size
        self.a = rng.standard_normal((size, size), dtype=np.float32)
        self.b = rng.standard_normal((size, size), dtype=np.float32)
        self.out = np.empty((size, size), dtype=np.float32)
        np.matmul(self.a, self.b, out=self.out)  # warm-up

    def sample(self) -> float:
        start = time.perf_counter()
        np.matmul(self.a, self.b, out=self.out)
        return 2.0 * self.size**3 / (time.perf_counter() - start) / 1e9
