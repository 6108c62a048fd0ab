"""lotus-bench's per-backend peak memory measures the backend's own process (issue 12, item 6)."""

from __future__ import annotations

import numpy as np
import pytest
from extras import need

need("psutil")

from lotus_deploy.bench.memory import PeakRssSampler  # noqa: E402
from lotus_deploy.bench.worker import Worker, WorkerSpec  # noqa: E402


def test_the_sampler_sees_a_short_allocation() -> None:
    import time

    sampler = PeakRssSampler().start()
    try:
        before = sampler.peak_mib
        block = np.ones(200 << 20, dtype=np.uint8)
        time.sleep(0.05)
        del block
        time.sleep(0.01)
        grown = sampler.peak_mib - before
    finally:
        sampler.stop()
    assert 180 <= grown <= 220, grown


@pytest.mark.parametrize("mib", [128, 384])
def test_a_worker_reports_its_own_peak_within_ten_percent(mib: int) -> None:
    big_parent = np.ones(300 << 20, dtype=np.uint8)  # the parent's own peak must not leak into the child's figure
    worker = Worker(WorkerSpec(backend="bench_probe:AllocatingBackend", options={"mib": mib}), "probe")
    try:
        baseline = worker.info["rss_after_load_mib"]
        worker.call("input", np.zeros((1, 3, 64, 64), np.float32))
        worker.call("run")
        memory = worker.call("memory")
    finally:
        worker.close()
        del big_parent
    grown = memory["peak_rss_mib"] - baseline
    assert abs(grown - mib) <= 0.1 * mib, (grown, mib, memory, baseline)
    assert memory["peak_rss_mib"] < baseline + mib + 300  # not the parent's 300 MiB on top
