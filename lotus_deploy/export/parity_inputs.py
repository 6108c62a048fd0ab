"""Inputs for parity checks: real photos when a folder is given or configured, else synthetic ones.

The images go through the same pre-processing as inference (docs/contract.md), at a small processing
resolution, and are padded to one common size so that they run as a single batch (which also tests
batch > 1 on dynamic graphs).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.contract import GraphShape
from ..image.preprocess import batch_graph_size, list_images, load_image, preprocess

ENV_IMAGES = "LOTUS_DEPLOY_PARITY_IMAGES"


def default_image_dir() -> Path | None:
    value = os.environ.get(ENV_IMAGES)
    return Path(value) if value else None


def synthetic_images(count: int, size: tuple[int, int] = (300, 400), seed: int = 0) -> list[np.ndarray]:
    """Smooth gradients, edges and texture, deterministic: stands in where no photo is available."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    images = []
    for _ in range(count):
        fx, fy = rng.uniform(0.005, 0.05, size=2)
        base = 0.5 + 0.25 * np.sin(xx * fx + rng.uniform(0, 6)) * np.cos(yy * fy)
        ramp = yy / h
        channels = [np.clip(base * (0.6 + 0.4 * ramp) + rng.normal(0, 0.03, (h, w)) + shift, 0, 1) for shift in rng.uniform(-0.2, 0.2, 3)]
        img = np.stack(channels, axis=-1)
        box = rng.integers(0, min(h, w) // 2, size=2)
        img[box[0] : box[0] + h // 4, box[1] : box[1] + w // 4] = rng.uniform(0, 1, 3)
        images.append((img * 255).round().astype(np.uint8))
    return images


def parity_batch(shape: GraphShape, count: int, processing_res: int, image_dir: Path | None) -> tuple[np.ndarray, list[str]]:
    """An [N,3,H,W] float32 batch and the names of the images it came from."""
    if image_dir is not None:
        paths = list_images(Path(image_dir))[:count]
        images = [load_image(p) for p in paths]
        names = [p.name for p in paths]
    else:
        images = synthetic_images(count)
        names = [f"synthetic-{i}" for i in range(count)]
    if shape.batch is not None:
        images, names = images[: shape.batch], names[: shape.batch]
        while len(images) < shape.batch:
            images.append(images[len(images) % len(names)])
    if shape.is_static:
        assert shape.height is not None and shape.width is not None
        target = (shape.height, shape.width)
    else:
        target = batch_graph_size(images, processing_res)
    arrays = [preprocess(img, processing_res=processing_res, graph_hw=target)[0] for img in images]
    return np.concatenate(arrays, axis=0), names
