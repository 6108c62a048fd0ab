"""``lotus-bench``: latency, throughput, memory and parity of backends × artifacts × sizes × batches.

Modules, one job each: ``plan`` (which candidates), ``worker`` (one child process per candidate),
``runner`` (interleaved timing loop), ``stats`` (percentiles), ``matmul`` (the machine's fp32 matmul
rate), ``provenance`` (machine, libraries, git, load), ``report`` (JSON + Markdown), ``chart`` (PNG).
FLOPs come from :mod:`lotus_deploy.export.flops`. Importing this package needs numpy only.
"""

from __future__ import annotations

from .runner import BenchSettings, run_benchmark
from .stats import LatencyStats, percentile, summarize

__all__ = ["BenchSettings", "LatencyStats", "percentile", "run_benchmark", "summarize"]
