"""The procedural renderer's ground truth is geometry, checked against closed forms; scenes follow the seed."""

from __future__ import annotations

import numpy as np
import pytest

from lotus_deploy.synthetic import render as renderer
from lotus_deploy.synthetic.render import Box, Camera, Material, Plane, Scene, Sphere, render, render_scene, render_trajectory

GREY = Material((0.5, 0.5, 0.5))


def _scene(*primitives: object, indoor: bool = False) -> Scene:
    return Scene(tuple(primitives), sun=(0.0, 1.0, 0.0), sky_horizon=(0.8, 0.8, 0.9), sky_zenith=(0.2, 0.4, 0.8), haze_m=1e6,
                 indoor=indoor)  # type: ignore[arg-type]


def test_a_ground_plane_has_the_pinhole_depth_and_an_upward_normal() -> None:
    height, width, camera_height = 48, 64, 1.5
    camera = Camera((0.0, camera_height, 0.0), fov_deg=60.0)
    view = render(_scene(Plane((0, 0, 0), (0, 1, 0), GREY)), camera, height, width)
    f = camera.focal(width)
    rows = np.arange(height) + 0.5 - height / 2
    below = rows > 0
    expected = camera_height * f / rows[below]
    assert np.allclose(view.depth[below], expected[:, None], rtol=1e-6)
    assert not view.valid[~below].any() and (view.depth[~below] == 0).all()  # sky above the horizon
    assert np.allclose(view.normal[below], [0, 1, 0], atol=1e-6)  # camera frame: y up


def test_a_sphere_in_front_has_its_nearest_point_at_distance_minus_radius() -> None:
    camera = Camera((0.0, 0.0, 0.0), fov_deg=40.0)
    view = render(_scene(Sphere((0.0, 0.0, 5.0), 1.0, GREY)), camera, 33, 33)
    centre = view.depth[16, 16]
    assert centre == pytest.approx(4.0, abs=1e-3)
    assert np.allclose(view.normal[16, 16], [0, 0, 1], atol=0.05)  # facing the camera: z towards it
    assert view.normal[16, 9][0] < -0.3 and view.normal[16, 23][0] > 0.3  # left side faces left, right side right
    norms = np.linalg.norm(view.normal[view.valid], axis=1)
    assert np.allclose(norms, 1, atol=1e-5)


def test_a_room_seen_from_inside_is_closed_and_its_walls_face_the_camera() -> None:
    room = Box((0.0, 1.5, 3.0), (2.0, 1.5, 4.0), GREY, inside=True)
    camera = Camera((0.0, 1.5, 0.0), fov_deg=70.0)
    view = render(_scene(room, indoor=True), camera, 40, 60)
    assert view.valid.all()
    assert view.depth[20, 30] == pytest.approx(7.0, abs=0.05)  # the back wall at z = 3 + 4
    rays = camera.rays(40, 60)
    right, down, forward = camera.basis()
    to_camera = -np.stack([rays @ right, -(rays @ down), -(rays @ forward)], axis=-1)  # view vectors in the Lotus frame
    assert (np.sum(view.normal * to_camera, axis=-1) > 0).all()


def test_scenes_follow_their_seed_and_differ_between_seeds() -> None:
    a, b, c = render_scene(7, 48, 64), render_scene(7, 48, 64), render_scene(8, 48, 64)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth) and np.array_equal(a.normal, b.normal)
    assert not np.array_equal(a.rgb, c.rgb)
    assert a.rgb.dtype == np.uint8 and a.rgb.shape == (48, 64, 3) and a.depth.dtype == np.float32
    for kind in ("indoor", "outdoor"):
        view = render_scene(3, 32, 40, kind=kind)
        assert view.kind == kind and (view.depth[view.valid] > 0).all()
    with pytest.raises(ValueError, match="indoor or outdoor"):
        render_scene(1, 8, 8, kind="space")


def test_a_trajectory_moves_the_camera_forward_through_one_scene() -> None:
    frames = list(render_trajectory(5, frames=3, height=32, width=40, kind="indoor", step_m=0.3, turn_rad=0.0))
    assert len(frames) == 3
    z = [f.camera.position[2] for f in frames]
    assert z[0] < z[1] < z[2]
    centre = [f.depth[16, 20] for f in frames]
    assert centre[0] > centre[1] > centre[2]  # what is ahead comes nearer


@pytest.mark.parametrize("seed", [20261130, 20261133, 11])
def test_skipping_rays_that_miss_a_bounding_sphere_changes_no_pixel(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The renderer intersects boxes and spheres only with the rays (and shadow rays) near them; every ray
    tested against every primitive renders the same scene, bit for bit."""
    culled = render_scene(seed, 96, 128)
    monkeypatch.setattr(renderer, "_near", lambda origin, dirs, squared, bounds: np.ones(np.broadcast_shapes(np.shape(origin)[:-1], dirs.shape[:-1]), dtype=bool))
    every = render_scene(seed, 96, 128)
    assert np.array_equal(culled.rgb, every.rgb) and np.array_equal(culled.depth, every.depth) and np.array_equal(culled.normal, every.normal)


def test_the_bounding_sphere_test_keeps_every_ray_that_hits_and_drops_most_that_miss() -> None:
    camera = Camera((0.3, 1.2, -0.5), yaw=0.2, pitch=-0.1, fov_deg=70.0)
    rays = camera.rays(60, 80)
    origin = np.asarray(camera.position)
    squared = np.einsum("...i,...i->...", rays, rays)

    def near(primitive: Box | Sphere) -> tuple[np.ndarray, np.ndarray]:
        bounds = renderer._bounds(primitive)
        assert bounds is not None
        return renderer._near(origin, rays, squared, bounds), np.isfinite(renderer._intersect(primitive, origin, rays)[0])

    for primitive in (Box((1.0, 0.6, 4.0), (0.5, 0.6, 0.3), GREY, yaw=0.7), Sphere((-0.8, 0.5, 3.0), 0.5, GREY)):
        kept, hits = near(primitive)
        assert hits.any() and kept[hits].all() and kept.mean() < 0.3
    kept, _ = near(Box((0.3, 1.2, 0.0), (1, 1, 1), GREY))  # around the camera: every ray is kept
    assert kept.all()
