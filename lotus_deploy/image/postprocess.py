"""Graph output → depth / normal maps and files (numpy, Pillow and stdlib only; docs/contract.md step 5).

Undo the padding and the resize, decode the channels, colorize, and save ``.npy`` + 16-bit PNG +
color PNG atomically. The C++ library in ``cpp_demo/`` mirrors these steps.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from ..core.config import OutputMeaning, Task
from ..core.errors import ArtifactExistsError, ConfigError, ShapeError
from ..core.safe_io import atomic_write, ensure_folder
from .colormap import apply_spectral
from .preprocess import PreprocessInfo

RESAMPLE_MODES: dict[str, Image.Resampling] = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}
_NORM_EPS = 1e-12


def _as_chw(output: np.ndarray) -> np.ndarray:
    arr = np.asarray(output)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise ShapeError(f"graph output has shape {arr.shape}, expected [C, H, W]", "pass one image's output (index the batch first)")
    return arr.astype(np.float32, copy=False)


def crop_and_resize(output: np.ndarray, info: PreprocessInfo, resample: str = "nearest") -> np.ndarray:
    """[C, H, W] graph output → [C, h0, w0]: crop to ``info.resized``, resize to ``info.original``.

    Nearest by default (upstream's resize_back), Pillow BILINEAR on mode "F" images as an option.
    """
    if resample not in RESAMPLE_MODES:
        raise ConfigError(f"resample {resample!r} is not one of {sorted(RESAMPLE_MODES)}", "use 'nearest' (upstream) or 'bilinear'")
    arr = _as_chw(output)
    (rh, rw), (h0, w0) = info.resized, info.original
    if arr.shape[1] < rh or arr.shape[2] < rw:
        raise ShapeError(
            f"output {arr.shape[1]}x{arr.shape[2]} is smaller than the resized input {rh}x{rw}", "pass the PreprocessInfo of this image"
        )
    cropped = arr[:, :rh, :rw]
    if (rh, rw) == (h0, w0):
        return np.ascontiguousarray(cropped)
    filt = RESAMPLE_MODES[resample]
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(ch), mode="F").resize((w0, h0), filt)) for ch in cropped]
    return np.stack(channels, axis=0).astype(np.float32, copy=False)


def restore_output(output: np.ndarray, info: PreprocessInfo, task: Task, resample: str = "nearest") -> np.ndarray:
    """One image's [C, H, W] graph output → its prediction at the original size: H x W (depth,
    disparity) or H x W x 3 unit normals (renormalized whatever the resampling). Every runner uses this."""
    restored = crop_and_resize(output, info, resample=resample)
    if task is Task.NORMAL:
        return decode_normal(restored, renormalize=True)
    return decode_depth(restored)


def decode_depth(out: np.ndarray) -> np.ndarray:
    """[1, H, W] (or H x W) depth/disparity output → H x W float32."""
    arr = np.asarray(out, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ShapeError(f"depth output has shape {arr.shape}, expected [1, H, W]", "pass the cropped depth output of one image")
    return arr


def decode_normal(out: np.ndarray, renormalize: bool) -> np.ndarray:
    """[3, H, W] normal output → H x W x 3 float32; ``renormalize`` restores unit length (zero stays zero)."""
    arr = np.asarray(out, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ShapeError(f"normal output has shape {arr.shape}, expected [3, H, W]", "pass the cropped normal output of one image")
    normal = np.ascontiguousarray(arr.transpose(1, 2, 0))
    if renormalize:
        norm = np.linalg.norm(normal.astype(np.float64), axis=2, keepdims=True)
        normal = np.where(norm > _NORM_EPS, normal / np.maximum(norm, _NORM_EPS), 0.0).astype(np.float32)
    return normal


def colorize_depth(depth: np.ndarray, reverse: bool = False) -> np.ndarray:
    """H x W in [0, 1] → uint8 H x W x 3 with matplotlib's Spectral (reversed for disparity)."""
    arr = np.asarray(depth)
    if arr.ndim != 2:
        raise ShapeError(f"depth map has shape {arr.shape}, expected H x W", "decode it with decode_depth first")
    return apply_spectral(arr, reverse=reverse)


def colorize(values: np.ndarray, meaning: OutputMeaning) -> np.ndarray:
    """One prediction → uint8 RGB by its meaning: Spectral for depth (clipped to [0, 1]), reversed for
    disparity, (n + 1) / 2 for normals. Used for the color PNGs and the depth videos alike."""
    if meaning is OutputMeaning.NORMAL:
        return normal_to_rgb(values)
    return colorize_depth(np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0), reverse=meaning is OutputMeaning.DISPARITY)


def normal_to_rgb(normal: np.ndarray) -> np.ndarray:
    """Normals in [-1, 1] → uint8 RGB as upstream shows them: round((n + 1) / 2 * 255)."""
    n = np.nan_to_num(np.asarray(normal, dtype=np.float32), nan=0.0)
    return np.clip(np.rint((n + 1.0) * 0.5 * 255.0), 0, 255).astype(np.uint8)


def depth_to_uint16(depth: np.ndarray) -> np.ndarray:
    """Values in [0, 1] → uint16 round(v * 65535), clipped (NaN → 0)."""
    v = np.nan_to_num(np.asarray(depth, dtype=np.float64), nan=0.0)
    return np.clip(np.rint(v * 65535.0), 0, 65535).astype(np.uint16)


def normal_to_uint16(normal: np.ndarray) -> np.ndarray:
    """Normals in [-1, 1] → uint16 round((n + 1) / 2 * 65535), clipped."""
    return depth_to_uint16((np.asarray(normal, dtype=np.float64) + 1.0) * 0.5)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png16(pixels: np.ndarray) -> bytes:
    """uint16 H x W (gray) or H x W x 3 (RGB) → 16-bit PNG bytes.

    Written by hand (zlib + CRC) because Pillow cannot save 16-bit RGB PNGs.
    """
    arr = np.asarray(pixels)
    if arr.dtype != np.uint16 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ShapeError(
            f"16-bit PNG needs uint16 HxW or HxWx3, got {arr.dtype} {arr.shape}", "convert with depth_to_uint16 / normal_to_uint16"
        )
    h, w = arr.shape[:2]
    color_type = 0 if arr.ndim == 2 else 2
    rows = arr.astype(">u2").reshape(h, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter type 0 per row
    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw, 6)) + _png_chunk(b"IEND", b"")


def _save_png(image: Image.Image) -> Callable[[IO[Any]], object]:
    return lambda handle: image.save(handle, format="PNG")


def output_names(stem: str) -> list[str]:
    """The files one image's outputs are written to: ``.npy``, 16-bit PNG, color PNG."""
    return [f"{stem}.npy", f"{stem}_16bit.png", f"{stem}_color.png"]


def save_prediction(
    out_dir: Path | str, stem: str, prediction: np.ndarray, meaning: str | OutputMeaning, force: bool = False
) -> list[Path]:
    """Write ``<stem>.npy``, ``<stem>_16bit.png`` and ``<stem>_color.png``; return their paths.

    depth/disparity: H x W in [0, 1] (16-bit gray PNG; Spectral, reversed for disparity).
    normal: H x W x 3 in [-1, 1] (16-bit RGB PNG of (n + 1) / 2; 8-bit RGB of the same).
    Nothing is written when any target exists and ``force`` is False; files are published without
    replacing anything then, so a concurrent writer of the same name makes this fail, not overwrite.
    """
    try:
        kind = OutputMeaning(meaning)
    except ValueError:
        raise ConfigError(f"output meaning {meaning!r} is not depth, disparity or normal", "pass one of those") from None
    pred = np.asarray(prediction, dtype=np.float32)
    if kind is OutputMeaning.NORMAL and not (pred.ndim == 3 and pred.shape[2] == 3):
        raise ShapeError(f"normal prediction has shape {pred.shape}, expected H x W x 3", "use decode_normal")
    if kind is not OutputMeaning.NORMAL and pred.ndim != 2:
        raise ShapeError(f"{kind.value} prediction has shape {pred.shape}, expected H x W", "use decode_depth")
    if not stem or "/" in stem or os.sep in stem:
        raise ConfigError(f"output stem {stem!r} is not a plain file name", "pass the image's stem, e.g. Path(image).stem")

    out_dir = Path(out_dir)
    targets = [out_dir / name for name in output_names(stem)]
    if not force:
        for path in targets:
            if path.exists():
                raise ArtifactExistsError(f"{path} already exists", "pass --force to overwrite it, or choose another output folder")
    ensure_folder(out_dir)

    png16 = encode_png16(normal_to_uint16(pred) if kind is OutputMeaning.NORMAL else depth_to_uint16(pred))
    color = Image.fromarray(colorize(pred, kind), mode="RGB")
    atomic_write(targets[0], lambda handle: np.save(handle, pred, allow_pickle=False), overwrite=force)
    atomic_write(targets[1], lambda handle: handle.write(png16), overwrite=force)
    atomic_write(targets[2], _save_png(color), overwrite=force)
    return targets
