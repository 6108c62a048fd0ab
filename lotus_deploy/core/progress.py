"""Progress for long work: numbered steps with timings on stderr, and tqdm bars for loops."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class Steps:
    """Prints ``[i/n] what ...`` when a step starts and its duration when it ends."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total = total
        self.index = 0
        self.quiet = quiet

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        from .memory import current_monitor

        self.index += 1
        start = time.perf_counter()
        self.say(f"[{self.index}/{self.total}] {what} ...")
        monitor = current_monitor()  # --stage-report: each step's time and peak memory
        if monitor is not None:
            monitor.begin(what)
        yield
        if monitor is not None:
            monitor.end()
        self.say(f"[{self.index}/{self.total}] {what}: done in {time.perf_counter() - start:.1f} s")

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


def bar(items: Iterable[T], desc: str, total: int | None = None, disable: bool = False) -> Iterable[T]:
    """A tqdm bar on stderr (tqdm is a base dependency: it is small and pure Python)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, disable=disable, file=sys.stderr, leave=False, dynamic_ncols=True)


def tqdm_counter(total: int, desc: str, disable: bool = False) -> Any:
    """A manual tqdm bar on stderr (``.update(n)``), usable as a context manager."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=disable, file=sys.stderr, leave=False, dynamic_ncols=True)
