"""The training data of builtin:demo: whole views with their mirror images, and shrunk views for crops."""

from __future__ import annotations

import numpy as np

from lotus_deploy.core.config import Task
from lotus_deploy.model.demo.train import multiscale, shrunk, views
from lotus_deploy.synthetic.render import render_scene


def test_a_shrunk_view_is_the_scene_at_a_smaller_size() -> None:
    scene = render_scene(11, height=96, width=128)
    small = shrunk(scene, 48)
    assert small.rgb.shape == (48, 64, 3) and small.depth.shape == (48, 64) and small.normal.shape == (48, 64, 3)
    assert small.valid.dtype == bool and small.valid.shape == (48, 64)
    assert abs(float(small.rgb.mean()) - float(scene.rgb.mean())) < 2.0  # a box filter keeps the mean colour
    lengths = np.linalg.norm(small.normal[small.valid], axis=-1)
    assert np.allclose(lengths, 1.0, atol=1e-4)  # averaged normals are renormalized
    # depth is picked, never averaged: every shrunk depth is one of the original's (no invented surfaces)
    assert np.isin(small.depth, scene.depth).all()
    assert shrunk(scene, 96) is scene


def test_multiscale_cycles_through_the_sizes() -> None:
    scenes = [render_scene(seed, height=64, width=96) for seed in (1, 2, 3)]
    assert [s.depth.shape for s in multiscale(scenes, (32, 48, 64))] == [(32, 48), (48, 72), (64, 96)]


def test_views_add_each_mirror_image() -> None:
    scene = render_scene(5, height=48, width=64)
    depth = views([scene], Task.DEPTH)
    assert set(depth) == {"image", "depth"} and depth["image"].shape == (2, 3, 48, 64) and depth["depth"].shape == (2, 3, 48, 64)
    np.testing.assert_array_equal(depth["image"][1], depth["image"][0][:, :, ::-1])
    np.testing.assert_array_equal(depth["depth"][1], depth["depth"][0][:, :, ::-1])
    assert depth["depth"].min() == -1.0 and depth["depth"].max() == 1.0  # normalized per view, near = -1
    normal = views([scene], Task.NORMAL)["normal"]
    np.testing.assert_allclose(normal[1][0], -normal[0][0][:, ::-1])  # a mirrored normal's x flips
    np.testing.assert_allclose(normal[1][1:], normal[0][1:, :, ::-1])
