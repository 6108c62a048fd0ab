"""Image → graph input, step for step as docs/contract.md specifies (numpy, Pillow and stdlib only).

A Jetson runtime has no torch, so nothing here may import it. The C++ library in ``cpp_demo/``
implements the same steps; ``tests/test_cpp_prepost.py`` holds the two together.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..core.errors import ConfigError, InputImageError, NoImagesError, ShapeError
from ..core.sizes import SPATIAL_MULTIPLE, is_spatial_size, round_up

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DEFAULT_PROCESSING_RES = 768
DEFAULT_MULTIPLE = SPATIAL_MULTIPLE
MAX_PROCESSING_RES = 4096
# The graph input may hold at most this many pixels (4096 x 4096). Lotus-D's VAE decoder keeps 128
# float32 channels per pixel at full resolution, so one such activation alone needs 512 bytes a pixel.
MAX_GRAPH_PIXELS = 4096 * 4096
_DECODER_BYTES_PER_PIXEL = 128 * 4
RESAMPLE = Image.Resampling.BILINEAR  # area-aware when shrinking, like upstream's antialiased bilinear


def validate_processing_res(processing_res: object) -> int:
    """``processing_res`` as an int: 0 (keep the size) or 1..MAX_PROCESSING_RES; one-line error otherwise."""
    if not isinstance(processing_res, int) or isinstance(processing_res, bool):
        raise ConfigError(f"processing resolution {processing_res!r} is not an integer", "pass a long-edge size in pixels, e.g. 768, or 0 to keep the size")
    if processing_res < 0 or processing_res > MAX_PROCESSING_RES:
        raise ConfigError(f"processing resolution {processing_res} is outside 0..{MAX_PROCESSING_RES}",
                          f"pass a long-edge size from 1 to {MAX_PROCESSING_RES} (768 is the model's native size), or 0 to keep the image size")
    return processing_res


def check_graph_pixels(height: int, width: int) -> None:
    """Refuse a graph input so large that running it would exhaust memory (and take the machine down)."""
    pixels = height * width
    if pixels > MAX_GRAPH_PIXELS:
        need_gib = pixels * _DECODER_BYTES_PER_PIXEL / 2**30
        raise ShapeError(f"a {height}x{width} graph input ({pixels / 1e6:.1f} MP) would need at least {need_gib:.1f} GiB for one "
                         f"full-resolution VAE decoder activation; the limit is {MAX_GRAPH_PIXELS / 1e6:.1f} MP",
                         "pass a smaller --processing-res (768 is the model's native size)")


def set_max_image_pixels(pixels: int | None) -> None:
    """Raise (or, with 0/None, lift) Pillow's decompression-bomb limit for this process."""
    if pixels is not None and pixels < 0:
        raise ConfigError(f"--max-image-pixels {pixels} is negative", "pass a pixel count, or 0 for no limit")
    Image.MAX_IMAGE_PIXELS = pixels or None


@dataclass(frozen=True)
class PreprocessInfo:
    """Sizes (h, w) at each step, so postprocessing can undo padding and resizing."""

    original: tuple[int, int]
    resized: tuple[int, int]
    padded: tuple[int, int]


def list_images(folder: Path | str) -> list[Path]:
    """Sorted image files (by extension, case-insensitive) directly inside ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputImageError(f"{folder} is not an existing folder", "pass a folder that holds images, or an image file")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        wanted = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise NoImagesError(f"{folder} holds no images", f"put files with one of these extensions in it: {wanted}")
    return images


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Pillow image of any common mode → uint8 HxWx3 (gray replicated, alpha dropped)."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # 16/32-bit gray: keep the high byte of a 16-bit value (Pillow's own convert would clip at 255).
        wide = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        return np.repeat((wide >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode != "RGB":
        image = image.convert("RGB")  # L/1 replicate; RGBA/LA/P/PA drop alpha; CMYK/YCbCr convert
    return np.array(image, dtype=np.uint8)


def to_rgb_array(obj: np.ndarray | Image.Image) -> np.ndarray:
    """An already-decoded image (uint8 array HxW, HxWx1/3/4, or a PIL image) as uint8 HxWx3.

    A PIL image gets its EXIF orientation applied, exactly as :func:`load_image` does for a path.
    """
    if isinstance(obj, Image.Image):
        return _pil_to_rgb(ImageOps.exif_transpose(obj))
    arr = np.asarray(obj)
    if arr.dtype != np.uint8:
        raise InputImageError(f"image array has dtype {arr.dtype}, expected uint8", "pass decoded 8-bit pixels (e.g. from load_image)")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputImageError(f"image array has shape {arr.shape}, expected HxW, HxWx1, HxWx3 or HxWx4", "pass an RGB(A) or gray image")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def load_image(path: Path | str) -> np.ndarray:
    """Decode a file to uint8 HxWx3 RGB with its EXIF orientation applied."""
    return _decode(Path(path), str(path))


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode an encoded image held in memory (a file read elsewhere: Ray, a server request) exactly as
    :func:`load_image` decodes the same file; ``name`` is what an error message calls it."""
    return _decode(io.BytesIO(data), name)


def _decode(source: Path | io.BytesIO, name: str) -> np.ndarray:
    try:
        with Image.open(source) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return _pil_to_rgb(image)
    except Image.DecompressionBombError as exc:
        raise InputImageError(f"cannot read image {name}: {exc}", "if you trust the file, raise the limit with --max-image-pixels N (0: none)") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for broken or hostile files; all mean "unreadable"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(source, io.BytesIO):  # Pillow names the stream object; say the file it came from instead
            reason = reason.replace(repr(source), repr(name))
        raise InputImageError(f"cannot read image {name}: {reason}", "check the file is a complete JPEG/PNG/BMP/WebP/TIFF image") from None


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pillow BILINEAR with reducing_gap=None: separable, support scaled by the shrink factor."""
    if (height, width) == img.shape[:2]:
        return img.copy()
    return np.asarray(Image.fromarray(img).resize((width, height), RESAMPLE, reducing_gap=None))


def _check_rgb(img: np.ndarray) -> None:
    if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
        got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ShapeError(f"expected a uint8 HxWx3 image, got {got}", "decode it with load_image or to_rgb_array first")


def long_edge_size(height: int, width: int, processing_res: int) -> tuple[int, int]:
    """(h, w) after scaling the long edge to ``processing_res`` (truncated as upstream does); <= 0 keeps it."""
    if processing_res <= 0:
        return height, width
    scale = processing_res / max(height, width)
    # int() truncation as upstream; max(1, ..) only guards degenerate slivers (upstream would crash).
    return max(1, int(height * scale)), max(1, int(width * scale))


def batch_graph_size(images: Sequence[np.ndarray], processing_res: int) -> tuple[int, int]:
    """The dynamic graph size that holds every image of a batch after its long-edge resize (rounded up to 64)."""
    sizes = [long_edge_size(int(img.shape[0]), int(img.shape[1]), processing_res) for img in images]
    return round_up(max(h for h, _ in sizes)), round_up(max(w for _, w in sizes))


def resize_long_edge(img: np.ndarray, processing_res: int) -> np.ndarray:
    """Resize so the long edge is ``processing_res`` (sizes truncated as upstream does); <= 0 keeps it."""
    _check_rgb(img)
    if processing_res <= 0:
        return img
    h, w = long_edge_size(img.shape[0], img.shape[1], processing_res)
    return _resize(img, w, h)


def fit_inside(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Shrink (same filter, aspect kept) an image larger than height x width so it fits; else unchanged."""
    _check_rgb(img)
    h, w = img.shape[:2]
    if h <= height and w <= width:
        return img
    scale = min(height / h, width / w)
    new_w = min(width, max(1, int(w * scale)))
    new_h = min(height, max(1, int(h * scale)))
    return _resize(img, new_w, new_h)


def pad_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad right and bottom by edge replication to exactly height x width."""
    h, w = img.shape[:2]
    if h > height or w > width:
        raise ShapeError(f"cannot pad a {h}x{w} image to the smaller {height}x{width}", "resize it first (fit_inside)")
    if (h, w) == (height, width):
        return img
    pad = [(0, height - h), (0, width - w)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, pad, mode="edge")


def preprocess(
    img_uint8_hwc: np.ndarray,
    processing_res: int = DEFAULT_PROCESSING_RES,
    graph_hw: tuple[int, int] | None = None,
    multiple: int = DEFAULT_MULTIPLE,
) -> tuple[np.ndarray, PreprocessInfo]:
    """uint8 image → float32 [1, 3, H, W] in [-1, 1] and the sizes needed to undo it.

    ``graph_hw`` None means a dynamic graph (pad to the next multiple of ``multiple``); otherwise
    the image is fitted inside and padded to exactly that static size.
    """
    if multiple <= 0:
        raise ConfigError(f"multiple {multiple} is not positive", "use 64 (the graph's spatial multiple)")
    validate_processing_res(processing_res)
    img = to_rgb_array(img_uint8_hwc)
    original = (int(img.shape[0]), int(img.shape[1]))
    if graph_hw is None:  # before resizing: the size the graph would see
        h, w = long_edge_size(*original, processing_res)
        check_graph_pixels(round_up(h, multiple), round_up(w, multiple))
    img = resize_long_edge(img, processing_res)
    if graph_hw is None:
        target = (round_up(img.shape[0], multiple), round_up(img.shape[1], multiple))
    else:
        gh, gw = int(graph_hw[0]), int(graph_hw[1])
        if not (is_spatial_size(gh, multiple) and is_spatial_size(gw, multiple)):
            raise ShapeError(f"graph size {gh}x{gw} is not a positive multiple of {multiple}", "pass the static graph's H and W")
        img = fit_inside(img, gh, gw)
        target = (gh, gw)
    resized = (int(img.shape[0]), int(img.shape[1]))
    padded = pad_to(img, *target)
    x = padded.astype(np.float32) / 127.5 - 1.0
    tensor = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
    return tensor, PreprocessInfo(original=original, resized=resized, padded=target)


def stack_batch(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate [1, 3, H, W] tensors of the same size into one [N, 3, H, W] batch."""
    if not arrays:
        raise ShapeError("no tensors to batch", "pass at least one preprocessed image")
    first = arrays[0].shape
    for arr in arrays:
        if arr.ndim != 4 or arr.shape[1:] != first[1:]:
            raise ShapeError(
                f"cannot batch a tensor of shape {arr.shape} with one of shape {first}",
                "run images of different sizes one at a time, or use a static graph size (graph_hw)",
            )
    return np.ascontiguousarray(np.concatenate(list(arrays), axis=0), dtype=np.float32)
