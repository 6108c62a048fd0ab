"""Message-free core of the ROS 2 depth node (``examples/ros2/lotus_depth_node.py``); numpy only.

rclpy is not needed here, so CI tests everything the node does except the ROS plumbing: decoding a
``sensor_msgs/Image`` (encoding, row ``step`` padding, endianness) into an RGB array, running the
estimator (optionally with temporal alignment and a fixed metric scale/shift), and encoding the result
as a ``32FC1`` image (float32 per pixel, ``step = 4 * width``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import InputImageError
from .metric import to_metres

# encoding -> (channels, dtype, channel order to take for RGB)
_ENCODINGS: dict[str, tuple[int, str, tuple[int, ...]]] = {
    "rgb8": (3, "u1", (0, 1, 2)),
    "bgr8": (3, "u1", (2, 1, 0)),
    "rgba8": (4, "u1", (0, 1, 2)),
    "bgra8": (4, "u1", (2, 1, 0)),
    "mono8": (1, "u1", (0, 0, 0)),
    "8UC1": (1, "u1", (0, 0, 0)),
    "8UC3": (3, "u1", (2, 1, 0)),  # OpenCV's default order
    "mono16": (1, "u2", (0, 0, 0)),
    "16UC1": (1, "u2", (0, 0, 0)),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


@dataclass(frozen=True)
class ImageFields:
    """The fields of a ``sensor_msgs/Image`` that carry pixels (header left to the node)."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes


def image_to_rgb(msg: ImageFields | Any) -> np.ndarray:
    """``sensor_msgs/Image`` (or anything with its fields) → uint8 HxWx3 RGB.

    16-bit mono keeps its high byte, as the image preprocessor does for 16-bit files.
    """
    encoding = str(msg.encoding)
    if encoding not in _ENCODINGS:
        raise InputImageError(f"image encoding {encoding!r} is not supported", f"publish one of: {', '.join(SUPPORTED_ENCODINGS)}")
    channels, kind, order = _ENCODINGS[encoding]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    itemsize = 1 if kind == "u1" else 2
    row_bytes = w * channels * itemsize
    data = bytes(msg.data)
    if h <= 0 or w <= 0 or step < row_bytes or len(data) < step * (h - 1) + row_bytes:
        raise InputImageError(f"{encoding} image {w}x{h} with step {step} carries {len(data)} bytes", f"need step >= {row_bytes} and {step * h} bytes")
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<")
    buf = np.frombuffer(data, dtype=np.uint8, count=step * (h - 1) + row_bytes)
    if len(buf) < step * h:
        buf = np.concatenate([buf, np.zeros(step * h - len(buf), np.uint8)])
    rows = buf.reshape(h, step)[:, :row_bytes]
    pixels = np.ascontiguousarray(rows).view(dtype).reshape(h, w, channels)
    if itemsize == 2:
        pixels = (pixels.astype(np.uint16) >> 8).astype(np.uint8)
    return np.ascontiguousarray(pixels[:, :, list(order)].astype(np.uint8, copy=False))


def depth_to_32fc1(depth: np.ndarray) -> ImageFields:
    """HxW depth → ``32FC1`` fields (float32 in the host's byte order, as cv_bridge writes them)."""
    arr = np.ascontiguousarray(np.asarray(depth, dtype=np.float32))
    if arr.ndim != 2:
        raise InputImageError(f"depth has shape {arr.shape}, expected HxW", "publish one depth map per message")
    h, w = arr.shape
    return ImageFields(height=h, width=w, encoding="32FC1", is_bigendian=int(sys.byteorder == "big"), step=4 * w, data=arr.tobytes())


def rgb_to_image(rgb: np.ndarray, encoding: str = "rgb8") -> ImageFields:
    """uint8 HxWx3 RGB → rgb8/bgr8/mono8 fields (for tests and for publishing a colorized view)."""
    arr = np.asarray(rgb, dtype=np.uint8)
    if encoding == "rgb8":
        out = arr
    elif encoding == "bgr8":
        out = arr[:, :, ::-1]
    elif encoding == "mono8":
        out = arr[:, :, :1]
    else:
        raise InputImageError(f"cannot encode {encoding!r}", "use rgb8, bgr8 or mono8")
    out = np.ascontiguousarray(out)
    h, w = out.shape[:2]
    return ImageFields(height=h, width=w, encoding=encoding, is_bigendian=0, step=w * out.shape[2], data=out.tobytes())


class DepthNodeCore:
    """What the node does per message: image fields in, 32FC1 depth fields out.

    ``estimator`` is a :class:`lotus_deploy.runtime.estimator.DepthEstimator` (any backend) or
    anything with ``predict(rgb) -> Prediction``. ``align`` keeps the stream's scale steady
    (:class:`lotus_deploy.stream.temporal.TemporalAligner`); ``metric_scale``/``metric_shift`` map the
    result to metres when a fit (``lotus_deploy.stream.metric.fit_metric``) was made once for the camera.
    """

    def __init__(self, estimator: Any, align: bool = False, window: int = 1,
                 metric_scale: float | None = None, metric_shift: float = 0.0) -> None:
        from .temporal import TemporalAligner

        self.estimator = estimator
        self.aligner = TemporalAligner(window=window) if align else None
        self.metric = (float(metric_scale), float(metric_shift)) if metric_scale is not None else None
        self.meaning = str(getattr(getattr(estimator, "meaning", None), "value", "depth"))
        self.frames = 0

    def depth(self, rgb: np.ndarray) -> np.ndarray:
        values = np.asarray(self.estimator.predict(rgb).values, dtype=np.float32)
        if values.ndim != 2:
            raise InputImageError(f"the model gives {values.shape} outputs, not a depth map", "use a depth or disparity artifact")
        if self.aligner is not None:
            values = self.aligner.align(values, rgb)
        if self.metric is not None:
            values = to_metres(values.astype(np.float64), *self.metric, disparity=self.meaning == "disparity").astype(np.float32)
        self.frames += 1
        return values

    def process(self, msg: ImageFields | Any) -> ImageFields:
        return depth_to_32fc1(self.depth(image_to_rgb(msg)))
