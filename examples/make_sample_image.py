"""Render the procedural sample photo in examples/images (a floor in perspective, a wall, two boxes).

It exists so the quick start runs on a fresh machine without any downloaded data; the real photos
for tests and benchmarks live outside the repository (../shared/data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def render(width: int = 640, height: int = 480) -> Image.Image:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    horizon = height * 0.45
    img = np.zeros((height, width, 3))
    wall = yy < horizon
    img[wall] = np.array([0.75, 0.78, 0.82]) * (0.8 + 0.2 * (yy[wall] / horizon))[:, None]
    floor = ~wall
    depth = 1.0 / np.maximum(yy - horizon, 1.0)  # distance to the floor point along the row
    u = (xx - width / 2) * depth * 40.0
    v = depth * 400.0
    checker = ((np.floor(u) + np.floor(v)) % 2).astype(np.float64)
    shade = np.clip(1.2 - 30 * depth, 0.3, 1.0)
    img[floor] = (np.array([0.55, 0.42, 0.30])[None] * (0.75 + 0.25 * checker[floor])[:, None]) * shade[floor][:, None]
    for x0, x1, y0, y1, colour in ((80, 230, 250, 420, (0.7, 0.2, 0.2)), (400, 520, 230, 330, (0.2, 0.4, 0.7))):
        box = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        img[box] = np.array(colour) * (0.7 + 0.3 * (xx[box] - x0) / (x1 - x0))[:, None]
    pixels = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB").filter(ImageFilter.GaussianBlur(0.7))


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "images" / "sample_scene.png"
    render().save(target)
    print(target)
