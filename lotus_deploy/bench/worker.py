"""One child process per benchmarked candidate: isolates its memory (peak RSS is its own) and its crashes.

The parent sends small commands over a pipe; only the child imports torch/onnxruntime for its
backend. Timing happens in the child around ``backend.run`` alone (numpy batch in, numpy batch out:
host<->device copies on a GPU count, as they do for a user).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from ..core.deps import require
from ..core.errors import LotusError
from ..runtime.base import describe_backend
from .memory import PeakRssSampler


class WorkerError(LotusError):
    """A candidate failed in its child process (load error, run error, or the process died)."""


@dataclass(frozen=True)
class WorkerSpec:
    """What the child loads: a registered backend over an artifact, or one bare ONNX graph (a split stage)."""

    backend: str
    artifact: str | None = None
    graph: str | None = None  # set for split stage graphs: run with ONNX Runtime directly
    options: dict[str, Any] = field(default_factory=dict)


class _StageGraph:
    """A bare ONNX graph with one input and one output, in ONNX Runtime (for split stage graphs)."""

    def __init__(self, path: str, threads: int = 0) -> None:
        from ..onnxrt import make_session

        self.session = make_session(path, threads=threads)
        self.input = self.session.get_inputs()[0].name
        self.precision = "fp32"

    def run(self, batch: np.ndarray) -> np.ndarray:
        result: np.ndarray = self.session.run(None, {self.input: np.ascontiguousarray(batch, dtype=np.float32)})[0]
        return result

    def close(self) -> None:
        self.session = None


def _rss_mib() -> float:
    return round(require("psutil").Process().memory_info().rss / (1 << 20), 1)


def _gpu_memory_mib(backend: Any) -> float | None:
    """Peak GPU memory of this process: torch's allocator for torch backends, else NVML via nvidia-smi."""
    module = sys.modules.get("torch")
    device = getattr(backend, "device", None)
    if module is not None and getattr(device, "type", None) == "cuda":
        return round(module.cuda.max_memory_allocated(device) / 2**20, 1)
    from .provenance import run_quietly

    out = run_quietly(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
    for line in (out or "").splitlines():
        pid, _, used = line.partition(",")
        if pid.strip() == str(os.getpid()):
            try:
                return float(used.strip())
            except ValueError:
                return None
    return None


def _load(spec: WorkerSpec) -> Any:
    if spec.graph is not None:
        return _StageGraph(spec.graph, threads=int(spec.options.get("threads", 0)))
    from ..core.artifacts import open_artifact
    from ..runtime.base import load_backend

    artifact = open_artifact(spec.artifact, check_hashes=False) if spec.artifact else None
    if ":" in spec.backend:  # "package.module:Factory": a backend outside the registry (tests, plug-ins)
        import importlib

        module_name, _, attr = spec.backend.partition(":")
        return getattr(importlib.import_module(module_name), attr)(artifact, **spec.options)
    return load_backend(spec.backend, artifact, **spec.options)


def serve(conn: Connection, spec: WorkerSpec) -> None:
    """Child main loop: load, report, then answer ``input``/``run``/``output``/``memory``/``close``."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    import warnings

    warnings.filterwarnings("ignore")
    sampler = PeakRssSampler().start()  # this fresh process's own peak, from before the backend loads
    try:
        start = time.perf_counter()
        backend = _load(spec)
        info = {"load_s": round(time.perf_counter() - start, 3), "pid": os.getpid(), "precision": getattr(backend, "precision", None),
                "providers": getattr(backend, "providers", None), "rss_after_load_mib": _rss_mib(), "details": describe_backend(backend)}
        conn.send(("ok", info))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as one line
        conn.send(("error", _one_line(exc)))
        return
    batch: np.ndarray | None = None
    output: np.ndarray | None = None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        command = message[0]
        try:
            if command == "input":
                batch, output = message[1], None
                conn.send(("ok", None))
            elif command == "run":
                assert batch is not None, "no input set"
                start = time.perf_counter()
                output = backend.run(batch)
                conn.send(("ok", time.perf_counter() - start))
            elif command == "output":
                conn.send(("ok", output))
            elif command == "memory":
                conn.send(("ok", {"peak_rss_mib": sampler.peak_mib, "rss_mib": _rss_mib(), "gpu_peak_mib": _gpu_memory_mib(backend)}))
            elif command == "close":
                backend.close()
                conn.send(("ok", None))
                break
            else:
                conn.send(("error", f"unknown command {command!r}"))
        except BaseException as exc:  # noqa: BLE001
            conn.send(("error", _one_line(exc)))


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, LotusError):
        return str(exc)
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {text}{where}"


class Worker:
    """Parent-side handle of one child process."""

    def __init__(self, spec: WorkerSpec, label: str) -> None:
        self.spec = spec
        self.label = label
        context = multiprocessing.get_context("spawn")  # no fork after torch/ORT thread pools exist
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, spec), daemon=True, name=f"lotus-bench:{label}")
        self.process.start()
        child.close()
        self.info: dict[str, Any] = self._receive()

    def _receive(self) -> Any:
        try:
            status, payload = self.conn.recv()
        except (EOFError, ConnectionResetError):
            self.process.join(timeout=5)
            code = self.process.exitcode
            why = " (killed: out of memory?)" if code in (-9, 137) else ""
            raise WorkerError(f"{self.label}: its process exited with code {code}{why}", "check free memory, or benchmark fewer candidates at once") from None
        if status != "ok":
            raise WorkerError(f"{self.label}: {payload}", "see the backend's message; other candidates continue")
        return payload

    def call(self, *message: Any) -> Any:
        self.conn.send(message)
        return self._receive()

    def close(self) -> None:
        try:
            if self.process.is_alive():
                self.call("close")
        except (WorkerError, OSError, BrokenPipeError):
            pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
