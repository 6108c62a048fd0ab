"""Calibration and held-out images: chosen, validated and pre-processed before any heavy work.

Held-out images come from ``--eval-dir`` when given; otherwise from a deterministic split of
``--calib-dir``: in name order, every 4th image (positions 4, 8, 12, ...) is held out and never used for
calibration. Every image is decoded up front, so a missing folder, an empty one or an unreadable file
fails with a one-line error before anything is calibrated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifacts import sha256_file
from ..core.config import ExportConfig
from ..core.contract import GraphShape
from ..core.errors import ConfigError, NoImagesError
from ..image.preprocess import batch_graph_size, list_images, load_image, preprocess

HOLD_OUT_EVERY = 4
MAX_EVAL_IMAGES = 8


@dataclass
class ImageSet:
    """Pre-processed calibration inputs ([1,3,h,w] each) and one held-out batch ([N,3,H,W])."""

    calib: list[np.ndarray]
    calib_names: list[str]
    calib_hashes: list[str]
    eval_batch: np.ndarray
    eval_names: list[str]
    eval_hashes: list[str]
    calib_source: str
    eval_source: str
    notes: list[str] = field(default_factory=list)
    calib_paths: list[Path] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "calibration": {"source": self.calib_source, "images": self.calib_names, "count": len(self.calib_names)},
            "held_out": {"source": self.eval_source, "images": self.eval_names, "count": len(self.eval_names),
                         "batch_shape": list(self.eval_batch.shape)},
        }


def _check_folder(path: Path, flag: str) -> list[Path]:
    if not Path(path).exists():
        raise NoImagesError(f"{flag} {path} does not exist", f"pass a folder of calibration photos to {flag}")
    return list_images(path)  # InputImageError for a non-folder, NoImagesError for an empty one


def choose(config: ExportConfig, require_calib: bool) -> tuple[list[Path], list[Path], str, str]:
    """(calibration paths, held-out paths, how each was chosen); cheap checks only."""
    if config.precision.calib_count < 1:
        raise ConfigError(f"--calib-count {config.precision.calib_count} is not positive", "use e.g. 32")
    if config.precision.calib_size <= 0:
        raise ConfigError(f"--calib-size {config.precision.calib_size} is not positive", "use 256 (or the size you will run at)")
    if config.precision.calib_dir is None:
        if require_calib:
            raise ConfigError("onnx-int8 needs calibration images", "pass --calib-dir FOLDER (real photos, e.g. ../shared/data/images)")
        return [], [], "", ""
    paths = _check_folder(config.precision.calib_dir, "--calib-dir")
    if config.precision.eval_dir is not None:
        held = _check_folder(config.precision.eval_dir, "--eval-dir")[:MAX_EVAL_IMAGES]
        calib = paths[: config.precision.calib_count]
        return calib, held, f"--calib-dir {config.precision.calib_dir} (first {len(calib)} in name order)", f"--eval-dir {config.precision.eval_dir}"
    if len(paths) < 2:
        raise NoImagesError(f"--calib-dir {config.precision.calib_dir} holds {len(paths)} image; 2 or more are needed to hold some out",
                            "add images, or pass --eval-dir with held-out images")
    held = [p for i, p in enumerate(paths) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1] or [paths[-1]]
    held = held[:MAX_EVAL_IMAGES]
    calib = [p for p in paths if p not in held][: config.precision.calib_count]
    how = f"deterministic split of --calib-dir {config.precision.calib_dir}: every {HOLD_OUT_EVERY}th image in name order held out"
    return calib, held, f"--calib-dir {config.precision.calib_dir} less the held-out images", how


def prepare(config: ExportConfig, shape: GraphShape, require_calib: bool) -> ImageSet:
    """Decode and pre-process everything (one-line errors for unreadable files) before heavy work."""
    from ..export.parity_inputs import synthetic_images

    calib_paths, eval_paths, calib_source, eval_source = choose(config, require_calib)
    notes = []
    if calib_paths:
        calib_images = [load_image(p) for p in calib_paths]
        eval_images = [load_image(p) for p in eval_paths]
        calib_names = [p.name for p in calib_paths]
        eval_names = [p.name for p in eval_paths]
        calib_hashes = [sha256_file(p) for p in calib_paths]
        eval_hashes = [sha256_file(p) for p in eval_paths]
    else:
        calib_images, eval_images = synthetic_images(4, seed=11), synthetic_images(2, seed=12)
        calib_names = [f"synthetic-{i}" for i in range(4)]
        eval_names = [f"synthetic-held-out-{i}" for i in range(2)]
        calib_hashes = eval_hashes = []
        calib_source, eval_source = "synthetic images (no --calib-dir)", "synthetic images (no --calib-dir)"
        notes.append("no --calib-dir: fp16 ranges and parity measured on synthetic images; pass real photos for a trustworthy keep-list")
    static = (int(shape.height), int(shape.width)) if shape.height is not None and shape.width is not None else None
    calib = [preprocess(img, processing_res=config.precision.calib_size, graph_hw=static)[0] for img in calib_images]
    if shape.batch is not None and shape.batch > 1:  # a static-batch graph takes exactly that many images
        calib = [np.repeat(arr, shape.batch, axis=0) for arr in calib]
    if static is None:
        static_eval: tuple[int, int] = batch_graph_size(eval_images, config.export.parity_size)
    else:
        static_eval = static
    eval_arrays = [preprocess(img, processing_res=config.export.parity_size, graph_hw=static_eval)[0] for img in eval_images]
    eval_batch = np.concatenate(eval_arrays, axis=0)
    return ImageSet(calib, calib_names, calib_hashes, eval_batch, eval_names, eval_hashes, calib_source, eval_source, notes, list(calib_paths))
