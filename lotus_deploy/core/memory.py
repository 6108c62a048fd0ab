"""Host memory: what a process has used at its peak, what the machine has free, per-stage peaks.

Why here: an export of the full-size model can need several times its weights in RAM, and on a 16 GB
Jetson Orin or a laptop the OOM killer ends it without a word. Commands check ``MemAvailable`` before
they start (:func:`check_memory`), report the peak they used when they end (:func:`process_peak_bytes`),
and ``--stage-report`` records each step's own peak (:class:`StageMonitor`).

Linux first (``/proc``): the kernel's resident-set high-water mark (``VmHWM``) is exact, and writing 5
to ``/proc/self/clear_refs`` resets it, so one process can measure each of its stages in turn. Where
``/proc`` is absent the figures are None and nothing is refused.
"""

from __future__ import annotations

import re
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LotusError

GIB = float(1 << 30)
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MEMINFO = Path("/proc/meminfo")


class InsufficientMemoryError(LotusError):
    """A command would need more RAM than the machine has available."""


def _status_kib(field_name: str) -> int | None:
    try:
        match = re.search(rf"^{field_name}:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def high_water_bytes() -> int | None:
    """This process's peak resident set since it started (or since :func:`reset_high_water`)."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def resident_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def reset_high_water() -> bool:
    """Restart the peak at the current resident set (Linux >= 4.0); False where that is impossible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def available_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo: what can be allocated without swapping (None if unknown)."""
    try:
        match = re.search(r"^MemAvailable:\s+(\d+)\s+kB", _MEMINFO.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def process_peak_bytes() -> int:
    """Peak resident set of this process and of its largest finished child (``ru_maxrss``, as GNU time reports it)."""
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return max(own, children)


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's ``malloc_trim``).

    After a large ONNX Runtime session or graph is freed, glibc keeps the pages in its arenas: the
    process's resident set stays high and the next stage starts on top of it (2.3 GiB left behind
    by the fp16 stage's reference run on the full-size model).
    """
    import ctypes
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc (macOS, musl): nothing to trim
    libc.malloc_trim(0)


def gib(value: float | None) -> str:
    return "?" if value is None else f"{value / GIB:.2f} GiB"


def check_memory(need_bytes: int, what: str, available: int | None = None) -> None:
    """Refuse in one line, before any work, when ``MemAvailable`` is below ``need_bytes``."""
    free = available_bytes() if available is None else available
    if free is None or free >= need_bytes:
        return
    raise InsufficientMemoryError(f"{what} needs about {gib(need_bytes)} of RAM and this machine has {gib(free)} available",
                                  "close other programs, add swap, export on a larger machine, or pass --skip-memory-check to try anyway")


@dataclass
class StageRecord:
    label: str
    seconds: float
    peak_bytes: int | None
    start_rss_bytes: int | None
    end_rss_bytes: int | None

    def to_json(self) -> dict[str, Any]:
        def g(v: int | None) -> float | None:
            return None if v is None else round(v / GIB, 3)

        return {"stage": self.label, "seconds": round(self.seconds, 2), "peak_gib": g(self.peak_bytes),
                "rss_at_start_gib": g(self.start_rss_bytes), "rss_at_end_gib": g(self.end_rss_bytes)}


@dataclass
class StageMonitor:
    """Each step's wall time and exact peak resident set (the kernel's high-water mark, reset per step).

    The gap between steps is recorded too (as ``between steps``) so the overall peak is exact: it is the
    maximum over everything recorded. Resetting the mark also resets ``ru_maxrss``, so a command with
    a monitor reports :attr:`overall_peak_bytes` instead of :func:`process_peak_bytes`.
    """

    records: list[StageRecord] = field(default_factory=list)
    overall_peak_bytes: int = 0
    _start: float = 0.0
    _label: str = ""
    _start_rss: int | None = None
    _since_end: float = field(default_factory=time.perf_counter)

    def _note_peak(self) -> int | None:
        peak = high_water_bytes()
        if peak is not None:
            self.overall_peak_bytes = max(self.overall_peak_bytes, peak)
        return peak

    def begin(self, label: str) -> None:
        gap_peak = self._note_peak()
        gap = time.perf_counter() - self._since_end
        if gap >= 0.5:
            self.records.append(StageRecord("(between steps)", gap, gap_peak, None, resident_bytes()))
        reset_high_water()
        self._label, self._start, self._start_rss = label, time.perf_counter(), resident_bytes()

    def end(self) -> None:
        peak = self._note_peak()
        self.records.append(StageRecord(self._label, time.perf_counter() - self._start, peak, self._start_rss, resident_bytes()))
        reset_high_water()
        self._since_end = time.perf_counter()

    def finish(self) -> int:
        """The overall peak, including whatever ran after the last step."""
        self._note_peak()
        return self.overall_peak_bytes

    def write(self, path: Path, extra: dict[str, Any]) -> None:
        from .safe_io import write_json_atomic

        write_json_atomic(path, {**extra, "overall_peak_gib": round(self.finish() / GIB, 3), "stages": [r.to_json() for r in self.records]})


_monitor: StageMonitor | None = None


def install_monitor(monitor: StageMonitor | None) -> None:
    """Make :class:`~lotus_deploy.core.progress.Steps` report every step to ``monitor`` (None: stop)."""
    global _monitor
    _monitor = monitor
    if monitor is not None:  # the process's peak so far (start-up, imports) is part of the command's peak
        monitor.records.append(StageRecord("(before the first step)", 0.0, monitor._note_peak(), None, resident_bytes()))
        reset_high_water()


def current_monitor() -> StageMonitor | None:
    return _monitor


__all__ = ["InsufficientMemoryError", "StageMonitor", "available_bytes", "check_memory", "current_monitor", "gib", "high_water_bytes",
           "install_monitor", "process_peak_bytes", "release_memory", "reset_high_water", "resident_bytes"]
