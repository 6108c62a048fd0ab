"""[polygraphy] Parity evidence in Polygraphy's own format, and the ``polygraphy run`` lines that re-check it.

Why: Polygraphy is NVIDIA's debugging tool for exactly this question (does an engine compute what the
ONNX graph does?). Every artifact's parity step saves the batch it ran and the reference outputs it was
judged against with Polygraphy's own JSON encoder, so ``polygraphy run --load-inputs/--load-outputs``
repeats the check outside lotus-deploy, on ONNX Runtime or TensorRT, with the artifact's own tolerances
(parity.json's ``polygraphy`` list). ``lotus-inspect --polygraphy`` prints the lines.

Polygraphy is imported only when files are written (it is in the ``export`` and TensorRT extras).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .contract import INPUT_NAME
from .parity import ERROR_QUANTILE
from .safe_io import ensure_folder, write_text_atomic

# Beside model.onnx / model.engine, so the manifest lists and hashes them like every other file.
INPUTS_FILE = "polygraphy_inputs.json"
REFERENCE_FILE = "polygraphy_reference.json"


@dataclass(frozen=True)
class ParityFiles:
    """Where one parity check's inputs and reference outputs are (absolute paths)."""

    inputs: Path
    reference: Path

    @classmethod
    def under(cls, folder: Path) -> ParityFiles:
        base = Path(folder).resolve()
        return cls(inputs=base / INPUTS_FILE, reference=base / REFERENCE_FILE)

    def exist(self) -> bool:
        return self.inputs.is_file() and self.reference.is_file()


def save_parity_files(folder: Path, batch: np.ndarray, reference: np.ndarray, output_name: str, reference_label: str) -> ParityFiles:
    """Write ``polygraphy_inputs.json`` and ``polygraphy_reference.json`` into ``folder``: one iteration,
    float32, as ``polygraphy run --load-inputs / --load-outputs`` read them."""
    from polygraphy.comparator import IterationResult, RunResults
    from polygraphy.json import to_json

    files = ParityFiles.under(folder)
    ensure_folder(files.inputs.parent)
    feed = [{INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}]
    outputs = {output_name: np.ascontiguousarray(reference, dtype=np.float32)}
    results = RunResults([(reference_label, [IterationResult(outputs, runner_name=reference_label)])])
    write_text_atomic(files.inputs, to_json(feed))
    write_text_atomic(files.reference, to_json(results))
    return files


def checks_from_parity(parity: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The tolerances an artifact was judged by, as Polygraphy checks: parity.json's ``polygraphy`` list,
    or (older reports) the same derived from its ``tolerances``; [] when there is no parity record."""
    if not parity:
        return []
    if isinstance(parity.get("polygraphy"), list):
        return list(parity["polygraphy"])
    tolerances = parity.get("tolerances") or {}
    checks: list[dict[str, Any]] = []
    if "mean_abs_max" in tolerances:
        checks.append({"check_error_stat": "mean", "atol": tolerances["mean_abs_max"], "rtol": 0.0})
    if "p99_abs_max" in tolerances:
        checks.append({"check_error_stat": "quantile", "error_quantile": ERROR_QUANTILE, "atol": tolerances["p99_abs_max"], "rtol": 0.0})
    if "max_abs" in tolerances:
        checks.append({"check_error_stat": "max", "atol": tolerances["max_abs"], "rtol": 0.0})
    return checks


def tolerance_flags(check: dict[str, Any]) -> list[str]:
    """One parity.json ``polygraphy`` entry as Polygraphy comparator flags (``--rtol 0``: absolute only)."""
    flags = ["--check-error-stat", str(check["check_error_stat"])]
    if check["check_error_stat"] == "quantile":
        flags += ["--error-quantile", repr(float(check["error_quantile"]))]
    return [*flags, "--atol", repr(float(check["atol"])), "--rtol", repr(float(check.get("rtol", 0.0)))]


def _line(args: list[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in args)


def polygraphy_commands(model: Path, files: ParityFiles, checks: list[dict[str, Any]], engine: bool = False,
                        layerwise_onnx: Path | None = None, onnxrt_basic: bool = False) -> list[str]:
    """The gate lines (one per check: ONNX Runtime and TensorRT against the saved reference), then one
    layer-wise line (every tensor marked as an output in both, compared with each other).

    ``engine``: ``model`` is a TensorRT engine (run by ``--trt`` alone); its layer-wise line needs the
    parent graph, ``layerwise_onnx``. ``onnxrt_basic``: ONNX Runtime runs with basic graph optimizations
    only, the Q/DQ (fake-quantization) numerics an int8 graph is judged by; with all optimizations its
    fused int8 CPU kernels compute something else (recorded apart, as ``ort_fused_cpu_parity``).
    Paths are absolute, so the lines work from any directory.
    """
    model = Path(model).resolve()
    # --strongly-typed: TensorRT builds what the graph states (our engines are strongly typed too)
    runners = ["--model-type", "engine", "--trt"] if engine else ["--trt", "--strongly-typed", "--onnxrt"]
    if onnxrt_basic and not engine:
        runners += ["--graph-optimization-level", "ORT_ENABLE_BASIC"]
    base = ["polygraphy", "run", str(model), *runners, "--load-inputs", str(files.inputs), "--load-outputs", str(files.reference)]
    lines = [_line([*base, *tolerance_flags(check)]) for check in checks]
    onnx = Path(layerwise_onnx).resolve() if engine and layerwise_onnx is not None else None if engine else model
    if onnx is not None:
        basic = ["--graph-optimization-level", "ORT_ENABLE_BASIC"] if onnxrt_basic else []
        lines.append(_line(["polygraphy", "run", str(onnx), "--trt", "--strongly-typed", "--onnxrt", *basic, "--trt-outputs", "mark", "all",
                            "--onnx-outputs", "mark", "all", "--load-inputs", str(files.inputs)]))
    return lines
