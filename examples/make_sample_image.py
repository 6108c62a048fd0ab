"""Render the sample photo in examples/images and its true depth in examples/ground_truth.

A scene of lotus_deploy's procedural renderer (a textured ground to the horizon under a sky, with boxes
and spheres) that no training run uses, so the quick start runs on a fresh machine without downloaded
data and its result can be checked against the truth. The depth is a 16-bit PNG in millimetres
(0 = sky). The real photos for tests and benchmarks live outside the repository (../shared/data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lotus_deploy.synthetic.render import render_scene

SEED = 424242  # an outdoor scene with objects; training uses seeds >= 20 billion, held-out ones 10 million +
HERE = Path(__file__).resolve().parent


def main() -> None:
    scene = render_scene(SEED, height=480, width=640, kind="outdoor")
    Image.fromarray(scene.rgb).save(HERE / "images" / "sample_scene.png")
    depth_mm = np.where(scene.valid, np.clip(np.round(scene.depth * 1000), 1, 65535), 0).astype(np.uint16)
    (HERE / "ground_truth").mkdir(exist_ok=True)
    Image.fromarray(depth_mm).save(HERE / "ground_truth" / "sample_scene_depth_mm.png")
    print(HERE / "images" / "sample_scene.png", HERE / "ground_truth" / "sample_scene_depth_mm.png")


if __name__ == "__main__":
    main()
