"""A stand-in backend for lotus-bench's worker tests: it allocates a known amount of memory per run."""

from __future__ import annotations

from typing import Any

import numpy as np

from lotus_deploy.core.config import Task
from lotus_deploy.core.contract import GraphShape


class AllocatingBackend:
    """Each run touches ``mib`` MiB, holds them for ``hold_s`` seconds, frees them, returns a depth map."""

    name = "allocating-probe"
    precision = "fp32"

    def __init__(self, artifact: Any = None, mib: int = 256, hold_s: float = 0.2) -> None:
        self.task = Task.DEPTH
        self.shape = GraphShape()
        self.mib = int(mib)
        self.hold_s = float(hold_s)

    def run(self, batch: np.ndarray) -> np.ndarray:
        import time

        block = np.ones(self.mib << 20, dtype=np.uint8)  # np.ones writes every page: resident, not just reserved
        time.sleep(self.hold_s)
        del block
        return np.zeros((batch.shape[0], 1, batch.shape[2], batch.shape[3]), np.float32)

    def close(self) -> None:
        pass
