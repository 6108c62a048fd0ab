"""The graph's I/O contract (docs/contract.md), shared by export, runtimes, TensorRT profiles and C++.

One input ``image`` float32 [N, 3, H, W] in [-1, 1], H and W multiples of 64; one output named after
the task: ``depth`` [N, 1, H, W] in [0, 1] or ``normal`` [N, 3, H, W] in [-1, 1]. Reduced-precision
graphs keep float32 I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Task
from .errors import ShapeError
from .sizes import SPATIAL_MULTIPLE, is_spatial_size, round_up

__all__ = ["SPATIAL_MULTIPLE", "round_up"]  # re-exported: the contract's users read the size rule from here too

INPUT_NAME = "image"
INPUT_CHANNELS = 3
DTYPE = "float32"
OUTPUT_CHANNELS: dict[Task, int] = {Task.DEPTH: 1, Task.NORMAL: 3}
OUTPUT_RANGE: dict[Task, tuple[float, float]] = {Task.DEPTH: (0.0, 1.0), Task.NORMAL: (-1.0, 1.0)}
DYNAMIC_AXES_NAMES = ("batch", "height", "width")


def output_name(task: Task) -> str:
    return task.value


def check_spatial(height: int, width: int) -> None:
    """Raise a ShapeError unless both sizes are positive multiples of 64."""
    for name, value in (("height", height), ("width", width)):
        if not is_spatial_size(value):
            raise ShapeError(
                f"{name} {value} is not a positive multiple of {SPATIAL_MULTIPLE}",
                f"use e.g. {round_up(max(value, 1))} (the VAE downsamples 8x and the UNet 8x more)",
            )


def dynamic_axes(task: Task) -> dict[str, dict[int, str]]:
    """Axes names for torch.onnx.export when the graph is dynamic in batch, height and width."""
    axes = dict(zip((0, 2, 3), DYNAMIC_AXES_NAMES, strict=True))
    return {INPUT_NAME: dict(axes), output_name(task): dict(axes)}


@dataclass(frozen=True)
class GraphShape:
    """What a concrete graph accepts: None means dynamic along that axis."""

    batch: int | None = None
    height: int | None = None
    width: int | None = None

    @property
    def is_static(self) -> bool:
        return self.height is not None and self.width is not None

    def input_shape(self) -> list[int | str]:
        return [
            self.batch if self.batch is not None else "batch",
            INPUT_CHANNELS,
            self.height if self.height is not None else "height",
            self.width if self.width is not None else "width",
        ]

    def output_shape(self, task: Task) -> list[int | str]:
        shape = self.input_shape()
        shape[1] = OUTPUT_CHANNELS[task]
        return shape

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Raise a ShapeError naming the mismatch when an NCHW input does not fit this graph."""
        if len(shape) != 4 or shape[1] != INPUT_CHANNELS:
            raise ShapeError(f"input shape {tuple(shape)} is not [N, 3, H, W]", "pass an NCHW RGB batch")
        n, _, h, w = shape
        if self.batch is not None and n != self.batch:
            raise ShapeError(f"batch {n} given to a graph built for batch {self.batch}", f"run {self.batch} image(s) at a time")
        if self.is_static and (h, w) != (self.height, self.width):
            raise ShapeError(
                f"input {h}x{w} given to a static graph built for {self.height}x{self.width}",
                "let the preprocessor pad/resize to the graph size, or export a dynamic graph",
            )
        check_spatial(h, w)

    def to_json(self) -> dict[str, int | None]:
        return {"batch": self.batch, "height": self.height, "width": self.width}

    @classmethod
    def from_json(cls, data: dict[str, int | None]) -> GraphShape:
        return cls(batch=data.get("batch"), height=data.get("height"), width=data.get("width"))


def contract_json(task: Task, shape: GraphShape) -> dict[str, object]:
    """The contract as recorded in manifest.json."""
    lo, hi = OUTPUT_RANGE[task]
    return {
        "inputs": [{"name": INPUT_NAME, "dtype": DTYPE, "shape": shape.input_shape(), "range": [-1.0, 1.0]}],
        "outputs": [{"name": output_name(task), "dtype": DTYPE, "shape": shape.output_shape(task), "range": [lo, hi]}],
        "spatial_multiple": SPATIAL_MULTIPLE,
    }


def pad_batch(batch: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """``batch`` padded to ``size`` images by repeating its last one (for static-batch graphs); returns (padded, real count)."""
    real = int(batch.shape[0])
    if real >= size:
        return batch, real
    return np.concatenate([batch, np.repeat(batch[-1:], size - real, axis=0)], axis=0), real
