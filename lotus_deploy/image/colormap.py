"""matplotlib's "Spectral" colormap without matplotlib (a Jetson runtime may not have it).

The 11 ColorBrewer control colors are interpolated into a 256-entry table with exactly the
arithmetic of ``LinearSegmentedColormap.from_list`` + ``_create_lookup_table``, and turned into bytes
as ``cmap(x, bytes=True)`` does (``(lut * 255).astype(uint8)``, i.e. truncation). The C++ library
embeds the table this module prints (``python -m lotus_deploy.colormap``).
"""

from __future__ import annotations

import functools

import numpy as np

# ColorBrewer "Spectral" (11 classes), the data behind matplotlib's Spectral.
SPECTRAL_HEX: tuple[str, ...] = (
    "9e0142",
    "d53e4f",
    "f46d43",
    "fdae61",
    "fee08b",
    "ffffbf",
    "e6f598",
    "abdda4",
    "66c2a5",
    "3288bd",
    "5e4fa2",
)
LUT_SIZE = 256


def _lookup_table(values: np.ndarray, n: int) -> np.ndarray:
    """One channel of matplotlib's _create_lookup_table for control points at linspace(0, 1, k)."""
    x = np.linspace(0, 1, len(values)) * (n - 1)
    xind = (n - 1) * np.linspace(0, 1, n) ** 1.0
    ind = np.searchsorted(x, xind)[1:-1]
    distance = (xind[1:-1] - x[ind - 1]) / (x[ind] - x[ind - 1])
    lut = np.concatenate([[values[0]], distance * (values[ind] - values[ind - 1]) + values[ind - 1], [values[-1]]])
    return np.clip(lut, 0.0, 1.0)


@functools.lru_cache(maxsize=1)
def spectral_lut_float() -> np.ndarray:
    """[256, 3] float64 in [0, 1], as matplotlib.colormaps["Spectral"]._lut[:256, :3]."""
    colors = np.array([[int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)] for h in SPECTRAL_HEX])
    return np.stack([_lookup_table(colors[:, c], LUT_SIZE) for c in range(3)], axis=1)


@functools.lru_cache(maxsize=1)
def spectral_lut() -> np.ndarray:
    """[256, 3] uint8, as matplotlib's Spectral with bytes=True (truncating)."""
    lut = (spectral_lut_float() * 255).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def lut_indices(values: np.ndarray) -> np.ndarray:
    """Table index per value as matplotlib computes it for floats: floor(v * 256), 1.0 → 255.

    Values are clipped to [0, 1] first; NaN maps to index 0.
    """
    v = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    v = np.clip(v, 0.0, 1.0)
    return np.minimum((v * LUT_SIZE).astype(np.int64), LUT_SIZE - 1)


def apply_spectral(values: np.ndarray, reverse: bool = False) -> np.ndarray:
    """Values in [0, 1] (any shape) → uint8 RGB (shape + (3,)); ``reverse`` is Spectral_r."""
    idx = lut_indices(values)
    if reverse:
        idx = LUT_SIZE - 1 - idx
    return spectral_lut()[idx]


def cpp_table() -> str:
    """The byte table as a C++ initializer (what cpp_demo/src/spectral_lut.inc holds)."""
    rows = [", ".join(f"{int(c)}" for c in rgb) for rgb in spectral_lut()]
    return "\n".join(f"    {{{row}}}," for row in rows)


if __name__ == "__main__":
    print(cpp_table())
