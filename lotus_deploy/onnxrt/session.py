"""ONNX Runtime sessions: one helper for export parity, precision stages, engine parity, benchmarks and
the runtime backend, so optimization level, threads, logging and load errors are handled alike.

``onnxruntime`` is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.contract import INPUT_NAME, GraphShape, pad_batch
from ..core.deps import require
from ..core.errors import ArtifactError
from ..core.memory import release_memory

CPU = "CPUExecutionProvider"
OPTIMIZATION_LEVELS = ("all", "basic", "none")


def make_session(path: Path | str, providers: list[Any] | None = None, threads: int = 0, optimization: str = "all",
                 profile_prefix: Path | None = None, lean: bool = False, in_node_order: bool = False, spinning: bool = True) -> Any:
    """An ``onnxruntime.InferenceSession`` over ``path`` (CPU unless ``providers``); one-line ArtifactError if it cannot load.

    ``lean``: for one-off checks of large graphs (export parity, references), no pre-packed copies of the
    weights and no CPU memory arena, so the session holds the weights about once; a little slower.
    ``in_node_order``: execute in the graph's node order (ONNX Runtime's priority-based order), for graphs
    whose nodes were placed on purpose, like the range pass's reductions right after each producer.
    ``spinning=False``: idle intra-op threads sleep instead of spinning, so a server's other threads
    (decoding, postprocessing, network) get the cores between graph calls.
    """
    ort = require("onnxruntime")
    if optimization not in OPTIMIZATION_LEVELS:
        raise ValueError(f"optimization {optimization!r} is not one of {OPTIMIZATION_LEVELS}")
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[optimization]
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if in_node_order:
        options.execution_order = ort.ExecutionOrder.PRIORITY_BASED
    if lean:
        options.add_session_config_entry("session.disable_prepacking", "1")
        options.enable_cpu_mem_arena = False
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers or [CPU])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types for bad files
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"ONNX Runtime cannot load {path}: {first}", "re-export the artifact (is its .onnx.data beside it?)") from None


class GraphRunner:
    """A CPU session over one graph file with input ``image``; batches larger than a static batch run in chunks."""

    def __init__(self, path: Path | str, shape: GraphShape, optimization: str = "all", threads: int = 0, lean: bool = False) -> None:
        self.session = make_session(path, threads=threads, optimization=optimization, lean=lean)
        self.shape = shape

    def run(self, batch: np.ndarray) -> np.ndarray:
        fixed = self.shape.batch
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if fixed is None:
            return np.asarray(self.session.run(None, {INPUT_NAME: batch})[0])
        outputs = []
        for start in range(0, batch.shape[0], fixed):
            padded, real = pad_batch(batch[start : start + fixed], fixed)
            outputs.append(np.asarray(self.session.run(None, {INPUT_NAME: padded})[0])[:real])
        return np.concatenate(outputs, axis=0)

    def close(self) -> None:
        self.session = None


def run_graph(path: Path | str, shape: GraphShape, batch: np.ndarray, optimization: str = "all", lean: bool = False) -> np.ndarray:
    """Run ``batch`` through the graph at ``path`` once (CPU) and free the session (``lean``: see make_session)."""
    runner = GraphRunner(path, shape, optimization, lean=lean)
    try:
        return runner.run(batch)
    finally:
        runner.close()
        release_memory()
