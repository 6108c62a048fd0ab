"""A backend's own peak memory: RSS sampled in its worker process, from the worker's start.

Why sampling: ``getrusage(...).ru_maxrss`` is kept across fork and exec, so a freshly spawned worker
reports the parent's peak (both backends of a tiny run showed 436 MiB while the ONNX Runtime worker
held 89 MiB). The resident set is sampled with psutil every millisecond in a daemon thread instead;
an allocation held for a few milliseconds is seen.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..core.deps import require

SAMPLE_SECONDS = 0.001


class PeakRssSampler:
    """Tracks the peak resident set size (MiB) of this process while running."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self._process: Any = require("psutil").Process()
        self.interval = interval
        self.peak_bytes = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lotus-rss-sampler", daemon=True)

    def start(self) -> PeakRssSampler:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def sample(self) -> int:
        """Take one sample now (also called before reporting, so the current RSS always counts)."""
        rss = int(self._process.memory_info().rss)
        if rss > self.peak_bytes:
            self.peak_bytes = rss
        return rss

    @property
    def peak_mib(self) -> float:
        self.sample()
        return round(self.peak_bytes / (1 << 20), 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
