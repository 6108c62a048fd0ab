"""A small ray-cast renderer: indoor and outdoor scenes with their true metric depth and surface normals.

Everything is numpy and follows from one seed, so a scene, a training set or a held-out set is the same
on every machine. Scenes are built from analytic primitives — a textured ground plane to the horizon
under a sky, rooms (the inside of a box), buildings and boxes (axis-aligned, turned about the vertical),
spheres — seen by a pinhole camera with varied pose, field of view, sun and textures, with cast
shadows and haze. Outputs, per pixel centre:

* ``rgb``: uint8 HxWx3 (2x2 supersampled);
* ``depth``: float32 metres along the optical axis (z-depth); 0 where the ray escapes to the sky;
* ``normal``: float32 HxWx3 unit normals in the camera frame used by Lotus (x right, y up, z towards
  the camera), facing the camera; 0 for sky;
* ``valid``: bool, False for sky.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

SKY_T = np.inf
EPS = 1e-4


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: position (world, y up, metres), yaw about y, pitch (negative looks down), horizontal field of view."""

    position: tuple[float, float, float]
    yaw: float = 0.0
    pitch: float = 0.0
    fov_deg: float = 60.0

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(right, down, forward) unit vectors in world coordinates (OpenCV camera axes)."""
        cp, sp, cy, sy = np.cos(self.pitch), np.sin(self.pitch), np.cos(self.yaw), np.sin(self.yaw)
        forward = np.array([sy * cp, sp, cy * cp])
        right = np.array([cy, 0.0, -sy])
        down = np.cross(right, forward)
        return right, down, forward

    def focal(self, width: int) -> float:
        return 0.5 * width / np.tan(np.radians(self.fov_deg) / 2)

    def rays(self, height: int, width: int, offset: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
        """World ray directions HxWx3 with unit forward component: a hit at ray parameter t has z-depth t."""
        f = self.focal(width)
        v, u = np.mgrid[0:height, 0:width].astype(np.float64)
        x = (u + offset[0] - width / 2) / f
        y = (v + offset[1] - height / 2) / f
        right, down, forward = self.basis()
        return x[..., None] * right + y[..., None] * down + forward


@dataclass(frozen=True)
class Material:
    """Albedo: a base colour modulated by a procedural texture in world coordinates."""

    color: tuple[float, float, float]
    kind: str = "noise"  # noise | checker | stripes | bricks
    scale: float = 1.0  # texture cells per metre
    contrast: float = 0.3


@dataclass(frozen=True)
class Plane:
    point: tuple[float, float, float]
    normal: tuple[float, float, float]
    material: Material


@dataclass(frozen=True)
class Box:
    """A box of half-sizes ``half`` centred at ``center``, turned by ``yaw`` about the vertical; ``inside``: a room."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    material: Material
    yaw: float = 0.0
    inside: bool = False


@dataclass(frozen=True)
class Sphere:
    center: tuple[float, float, float]
    radius: float
    material: Material


Primitive = Plane | Box | Sphere


@dataclass(frozen=True)
class Scene:
    primitives: tuple[Primitive, ...]
    sun: tuple[float, float, float]  # unit vector towards the sun
    sky_horizon: tuple[float, float, float]
    sky_zenith: tuple[float, float, float]
    haze_m: float  # distance at which haze reaches 63 %
    ambient: float = 0.35
    indoor: bool = False


@dataclass
class RenderedScene:
    rgb: np.ndarray
    depth: np.ndarray
    normal: np.ndarray
    valid: np.ndarray
    camera: Camera
    kind: str
    meta: dict[str, object] = field(default_factory=dict)


# -- intersections: each returns (t, world normal) with t = inf where missed ---------------------------------
def _plane(origin: np.ndarray, dirs: np.ndarray, plane: Plane) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(plane.normal, dtype=np.float64)
    denom = dirs @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((np.asarray(plane.point) - origin) @ n) / denom
    t = np.where((np.abs(denom) > 1e-12) & (t > EPS), t, np.inf)
    normal = np.broadcast_to(n, dirs.shape).copy()
    return t, normal


def _box(origin: np.ndarray, dirs: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(box.yaw), np.sin(box.yaw)
    to_box = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])  # world -> box frame (rotation about y by -yaw)
    o = to_box @ (origin - np.asarray(box.center))
    d = dirs @ to_box.T
    half = np.asarray(box.half)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (-half - o) * inv
        t2 = (half - o) * inv
    t_near_axes = np.minimum(t1, t2)
    t_far_axes = np.maximum(t1, t2)
    t_near = t_near_axes.max(axis=-1)
    t_far = t_far_axes.min(axis=-1)
    hit = t_far >= np.maximum(t_near, EPS)
    if box.inside:
        t = np.where(hit, t_far, np.inf)
        axis = np.argmin(t_far_axes, axis=-1)
    else:
        t = np.where(hit & (t_near > EPS), t_near, np.inf)
        axis = np.argmax(t_near_axes, axis=-1)
    local = np.zeros(dirs.shape)
    sign = -np.sign(np.take_along_axis(d, axis[..., None], axis=-1))[..., 0]  # faces the incoming ray
    np.put_along_axis(local, axis[..., None], sign[..., None], axis=-1)
    return t, local @ to_box  # back to world (inverse rotation)


def _sphere(origin: np.ndarray, dirs: np.ndarray, sphere: Sphere) -> tuple[np.ndarray, np.ndarray]:
    oc = origin - np.asarray(sphere.center)
    a = np.einsum("...i,...i->...", dirs, dirs)
    b = 2 * dirs @ oc
    cterm = oc @ oc - sphere.radius**2
    disc = b * b - 4 * a * cterm
    root = np.sqrt(np.maximum(disc, 0))
    t = (-b - root) / (2 * a)
    t = np.where((disc >= 0) & (t > EPS), t, np.inf)
    point = origin + dirs * np.where(np.isfinite(t), t, 0)[..., None]
    return t, (point - np.asarray(sphere.center)) / sphere.radius


def _intersect(primitive: Primitive, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(primitive, Plane):
        return _plane(origin, dirs, primitive)
    if isinstance(primitive, Box):
        return _box(origin, dirs, primitive)
    return _sphere(origin, dirs, primitive)


def _bounds(primitive: Primitive) -> tuple[np.ndarray, float] | None:
    """A sphere (centre, radius) that holds all of ``primitive``; None where it is unbounded or surrounds the camera (a plane, a room)."""
    if isinstance(primitive, Sphere):
        return np.asarray(primitive.center, dtype=np.float64), primitive.radius
    if isinstance(primitive, Box) and not primitive.inside:
        return _box_bounds(primitive)
    return None


def _box_bounds(box: Box) -> tuple[np.ndarray, float]:
    return np.asarray(box.center, dtype=np.float64), float(np.linalg.norm(box.half))


def _near(origin: np.ndarray, dirs: np.ndarray, squared: np.ndarray, bounds: tuple[np.ndarray, float]) -> np.ndarray:
    """Which rays (``squared``: their squared lengths) pass within a bounding sphere, ahead of their origin: a
    conservative test (the radius is padded against rounding), so no ray that could hit what it bounds is left out."""
    centre, radius = bounds
    to_centre = centre - origin
    reach = (radius * 1.01 + 1e-3) ** 2
    distance2 = np.einsum("...i,...i->...", to_centre, to_centre)
    if to_centre.ndim == 1 and distance2 <= reach:
        return np.ones(dirs.shape[:-1], dtype=bool)  # the origin is inside: every ray may hit
    along = np.einsum("...i,...i->...", dirs, to_centre)
    return ((distance2 <= reach) | (along > 0)) & (distance2 - along * along / squared <= reach)


def _window(near: np.ndarray) -> tuple[slice, slice] | None:
    """The smallest block of an image's rays that holds every True of ``near`` (None: none)."""
    rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    if rows.size == 0:
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def cast(scene: Scene, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit of every ray: (t, world normal facing the ray, primitive index or -1).

    For an image of rays (HxWx3), a bounded primitive is intersected only over the block of rays that pass
    its bounding sphere: boxes and spheres cover a small part of most views, and the result is the same."""
    best_t = np.full(dirs.shape[:-1], np.inf)
    best_n = np.zeros(dirs.shape)
    best_i = np.full(dirs.shape[:-1], -1)
    squared = np.einsum("...i,...i->...", dirs, dirs)
    for index, primitive in enumerate(scene.primitives):
        bounds = _bounds(primitive)
        block: tuple[slice, ...] = (slice(None),)  # every ray
        if bounds is not None and dirs.ndim == 3:
            window = _window(_near(origin, dirs, squared, bounds))
            if window is None:
                continue
            block = window
        t, n = _intersect(primitive, origin, dirs[block])
        closer = t < best_t[block]
        best_t[block] = np.where(closer, t, best_t[block])
        best_n[block] = np.where(closer[..., None], n, best_n[block])
        best_i[block] = np.where(closer, index, best_i[block])
    facing = np.einsum("...i,...i->...", best_n, dirs) > 0
    best_n = np.where(facing[..., None], -best_n, best_n)
    return best_t, best_n, best_i


# -- shading -------------------------------------------------------------------------------------------------
_PRIMES = (73856093, 19349663, 83492791)  # the lattice hash's per-axis multipliers


def _mix(h: np.ndarray) -> np.ndarray:
    """A lattice hash's final avalanche, to [0, 1] (wrapping uint64 arithmetic: the same on every machine)."""
    u = np.uint64
    with np.errstate(over="ignore"):
        h = (h ^ (h >> u(13))) * u(1274126177)
        h = h ^ (h >> u(16))
    return (h & u(0xFFFF)).astype(np.float64) / 0xFFFF


def value_noise(p: np.ndarray, seed: int) -> np.ndarray:
    """Smooth 3D value noise in [0, 1] (trilinear over a hashed lattice, smoothstep weights).

    Each axis's two lattice terms and two weights are computed once and shared by the eight corners (the
    hash of a corner is the XOR of its axes' terms, so this is the same arithmetic as hashing each corner)."""
    u = np.uint64
    base = np.floor(p)
    frac = p - base
    w = frac * frac * (3 - 2 * frac)
    lattice = base.astype(np.int64).astype(u)
    salt = u((seed * 2654435761) % 2**64)
    with np.errstate(over="ignore"):
        terms = [(lattice[..., axis] * u(prime), (lattice[..., axis] + u(1)) * u(prime)) for axis, prime in enumerate(_PRIMES)]
    weights = [(1 - w[..., axis], w[..., axis]) for axis in range(3)]
    out = np.zeros(p.shape[:-1])
    for dx in (0, 1):
        for dy in (0, 1):
            xy = weights[0][dx] * weights[1][dy]
            hxy = terms[0][dx] ^ terms[1][dy]
            for dz in (0, 1):
                out += xy * weights[2][dz] * _mix(hxy ^ terms[2][dz] ^ salt)
    return out


def _texture(material: Material, point: np.ndarray, seed: int) -> np.ndarray:
    p = point * material.scale
    detail = 0.5 * value_noise(p * 4.0, seed + 1) + 0.5 * value_noise(p, seed)
    if material.kind == "checker":
        pattern = (np.floor(p).astype(np.int64).sum(axis=-1) % 2).astype(np.float64)
    elif material.kind == "stripes":
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * (p[..., 0] + p[..., 2]))
    elif material.kind == "bricks":
        row = np.floor(p[..., 1] * 3)
        offset = (row % 2) * 0.5
        mortar = (np.abs((p[..., 1] * 3) % 1) < 0.08) | (np.abs((p[..., 0] + p[..., 2] + offset) % 1) < 0.05)
        pattern = np.where(mortar, 0.0, 1.0)
    else:
        pattern = detail
    shade = 1 - material.contrast + material.contrast * (0.7 * pattern + 0.3 * detail)
    return np.asarray(material.color) * shade[..., None]


def shade(scene: Scene, origin: np.ndarray, dirs: np.ndarray, seed: int) -> np.ndarray:
    """Linear RGB in [0, 1] of every ray: textured Lambert with sun shadows, ambient light, haze and sky."""
    t, normal, index = cast(scene, origin, dirs)
    hit = np.isfinite(t)
    unit = dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)
    elevation = np.clip(unit[..., 1], 0, 1)[..., None]
    sky = np.asarray(scene.sky_horizon) * (1 - elevation) + np.asarray(scene.sky_zenith) * elevation
    point = origin + dirs * np.where(hit, t, 0)[..., None]
    albedo = np.zeros(dirs.shape)
    for i, primitive in enumerate(scene.primitives):
        mine = index == i
        if mine.any():
            albedo[mine] = _texture(primitive.material, point[mine], seed + 17 * i)
    sun = np.asarray(scene.sun)
    lambert = np.clip(normal @ sun, 0, 1)
    lit = hit & (lambert > 0)
    if lit.any() and not scene.indoor:
        shadow_t = _shadow(scene, point[lit] + normal[lit] * 1e-3, sun)
        lambert[lit] *= np.where(np.isfinite(shadow_t), 0.15, 1.0)
    light = scene.ambient + (1 - scene.ambient) * lambert
    if scene.indoor:
        light = light * (0.75 + 0.25 * np.clip(normal[..., 1] * -1 + 1, 0, 1))  # a softer, ceiling-lit room
    colour = albedo * light[..., None]
    distance = np.where(hit, t * np.linalg.norm(dirs, axis=-1), 0)
    haze = 1 - np.exp(-distance / scene.haze_m)
    colour = colour * (1 - haze[..., None]) + np.asarray(scene.sky_horizon) * haze[..., None]
    return np.where(hit[..., None], colour, sky)


def _shadow(scene: Scene, points: np.ndarray, sun: np.ndarray) -> np.ndarray:
    """Distance to the first occluder towards the sun from each point (inf: lit)."""
    best = np.full(points.shape[0], np.inf)
    for primitive in scene.primitives:
        if isinstance(primitive, Plane):
            continue  # the ground never shades what stands on it
        if isinstance(primitive, Sphere):
            oc = points - np.asarray(primitive.center)
            b = 2 * oc @ sun
            c = np.einsum("ij,ij->i", oc, oc) - primitive.radius**2
            disc = b * b - 4 * c
            t = (-b - np.sqrt(np.maximum(disc, 0))) / 2
            t = np.where((disc >= 0) & (t > EPS), t, np.inf)
        elif primitive.inside:
            continue  # a room's walls: the indoor light has no sun shadows
        else:
            near = _near(points, sun, np.ones(1), _box_bounds(primitive))
            t = np.full(points.shape[0], np.inf)  # only points whose way to the sun passes the box can be shaded by it
            t[near] = _box_points(points[near], sun, primitive)
        best = np.minimum(best, t)
    return best


def _box_points(points: np.ndarray, direction: np.ndarray, box: Box) -> np.ndarray:
    """Ray-box distance for many origins and one direction (a solid box: ``_shadow`` skips rooms)."""
    c, s = np.cos(box.yaw), np.sin(box.yaw)
    to_box = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
    o = (points - np.asarray(box.center)) @ to_box.T
    d = to_box @ direction
    half = np.asarray(box.half)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - o) / d
        t2 = (half - o) / d
    t_near = np.minimum(t1, t2).max(axis=-1)
    t_far = np.maximum(t1, t2).min(axis=-1)
    return np.where((t_far >= np.maximum(t_near, EPS)) & (t_near > EPS), t_near, np.inf)


# -- scenes ----------------------------------------------------------------------------------------------------
def _colour(rng: np.random.Generator, lo: float = 0.25, hi: float = 0.9) -> tuple[float, float, float]:
    base = rng.uniform(lo, hi)
    tint = rng.uniform(-0.15, 0.15, 3)
    r, g, b = (float(v) for v in np.clip(base + tint, 0.05, 1.0))
    return (r, g, b)


def _material(rng: np.random.Generator, kinds: tuple[str, ...] = ("noise", "checker", "stripes", "bricks")) -> Material:
    return Material(_colour(rng), kind=str(rng.choice(kinds)), scale=float(rng.uniform(0.5, 3.0)), contrast=float(rng.uniform(0.2, 0.6)))


def _objects(rng: np.random.Generator, count: int, x_range: tuple[float, float], z_range: tuple[float, float],
             floor: float = 0.0) -> list[Primitive]:
    """Boxes and spheres standing on the floor."""
    out: list[Primitive] = []
    for _ in range(count):
        x, z = rng.uniform(*x_range), rng.uniform(*z_range)
        if rng.random() < 0.6:
            half = (float(rng.uniform(0.2, 1.0)), float(rng.uniform(0.2, 1.2)), float(rng.uniform(0.2, 1.0)))
            out.append(Box((float(x), floor + half[1], float(z)), half, _material(rng), yaw=float(rng.uniform(0, np.pi))))
        else:
            r = float(rng.uniform(0.2, 0.9))
            out.append(Sphere((float(x), floor + r, float(z)), r, _material(rng, ("noise", "stripes"))))
    return out


def outdoor_scene(rng: np.random.Generator) -> tuple[Scene, Camera]:
    """A textured ground plane to the horizon under a sky, buildings far off, boxes and spheres nearby."""
    ground = Plane((0, 0, 0), (0, 1, 0), Material(_colour(rng, 0.3, 0.7), kind=str(rng.choice(["noise", "checker", "stripes"])),
                                                  scale=float(rng.uniform(0.3, 1.5)), contrast=float(rng.uniform(0.3, 0.6))))
    primitives: list[Primitive] = [ground]
    for _ in range(int(rng.integers(0, 5))):
        half = (float(rng.uniform(3, 10)), float(rng.uniform(3, 15)), float(rng.uniform(3, 10)))
        primitives.append(Box((float(rng.uniform(-40, 40)), half[1], float(rng.uniform(25, 80))), half,
                              _material(rng, ("bricks", "noise", "stripes")), yaw=float(rng.uniform(0, np.pi))))
    primitives += _objects(rng, int(rng.integers(1, 7)), (-6, 6), (3, 20))
    elevation, azimuth = rng.uniform(0.3, 1.2), rng.uniform(0, 2 * np.pi)
    sun = (float(np.cos(elevation) * np.sin(azimuth)), float(np.sin(elevation)), float(np.cos(elevation) * np.cos(azimuth)))
    horizon = _colour(rng, 0.7, 0.95)
    scene = Scene(tuple(primitives), sun, horizon, (0.25, 0.45, 0.85), haze_m=float(rng.uniform(60, 250)), ambient=float(rng.uniform(0.25, 0.45)))
    camera = Camera((float(rng.uniform(-1, 1)), float(rng.uniform(1.0, 2.2)), 0.0), yaw=float(rng.uniform(-0.3, 0.3)),
                    pitch=float(rng.uniform(-0.25, 0.02)), fov_deg=float(rng.uniform(45, 80)))
    return scene, camera


def indoor_scene(rng: np.random.Generator) -> tuple[Scene, Camera]:
    """The inside of a room (floor, walls, ceiling) with boxes and spheres on the floor."""
    w, h, d = rng.uniform(3, 8), rng.uniform(2.4, 3.5), rng.uniform(4, 10)
    room = Box((0.0, float(h / 2), float(d / 2 - 0.5)), (float(w / 2), float(h / 2), float(d / 2)), _material(rng, ("noise", "bricks", "stripes")),
               inside=True)
    floor = Plane((0, 0.001, 0), (0, 1, 0), _material(rng, ("checker", "noise", "stripes")))  # its own texture, just above the room's
    primitives: list[Primitive] = [room, floor, *_objects(rng, int(rng.integers(1, 6)), (-w / 2 + 0.5, w / 2 - 0.5), (1.0, d - 1.0))]
    elevation, azimuth = rng.uniform(0.6, 1.4), rng.uniform(0, 2 * np.pi)
    sun = (float(np.cos(elevation) * np.sin(azimuth)), float(np.sin(elevation)), float(np.cos(elevation) * np.cos(azimuth)))
    scene = Scene(tuple(primitives), sun, (0.8, 0.8, 0.8), (0.8, 0.8, 0.8), haze_m=1e6, ambient=float(rng.uniform(0.3, 0.5)), indoor=True)
    camera = Camera((float(rng.uniform(-w / 4, w / 4)), float(rng.uniform(1.0, min(2.0, h - 0.3))), 0.0), yaw=float(rng.uniform(-0.35, 0.35)),
                    pitch=float(rng.uniform(-0.3, 0.05)), fov_deg=float(rng.uniform(50, 85)))
    return scene, camera


def _camera_normals(normal: np.ndarray, camera: Camera) -> np.ndarray:
    """World normals -> Lotus's camera frame (x right, y up, z towards the camera)."""
    right, down, forward = camera.basis()
    return np.stack([normal @ right, -(normal @ down), -(normal @ forward)], axis=-1)


def render(scene: Scene, camera: Camera, height: int, width: int, seed: int = 0, kind: str = "") -> RenderedScene:
    """Render one view: supersampled RGB, and depth/normals/validity at the pixel centres."""
    origin = np.asarray(camera.position, dtype=np.float64)
    linear = np.zeros((height, width, 3))
    for offset in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)):
        linear += shade(scene, origin, camera.rays(height, width, offset), seed) / 4
    rgb = (np.clip(linear, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)
    t, normal, _ = cast(scene, origin, camera.rays(height, width))
    valid = np.isfinite(t)
    depth = np.where(valid, t, 0).astype(np.float32)
    normals = np.where(valid[..., None], _camera_normals(normal, camera), 0).astype(np.float32)
    return RenderedScene(rgb=rgb, depth=depth, normal=normals, valid=valid, camera=camera, kind=kind)


def render_scene(seed: int, height: int = 240, width: int = 320, kind: str | None = None) -> RenderedScene:
    """One random scene from ``seed``: ``indoor`` or ``outdoor`` (None: either, by the seed)."""
    rng = np.random.default_rng(seed)
    chosen = kind or ("indoor" if rng.random() < 0.5 else "outdoor")
    if chosen not in ("indoor", "outdoor"):
        raise ValueError(f"kind {kind!r} is not indoor or outdoor")
    scene, camera = indoor_scene(rng) if chosen == "indoor" else outdoor_scene(rng)
    return render(scene, camera, height, width, seed=seed, kind=chosen)


def render_trajectory(seed: int, frames: int, height: int = 240, width: int = 320, kind: str | None = None,
                      step_m: float = 0.15, turn_rad: float = 0.01) -> Iterator[RenderedScene]:
    """A short camera move through one scene: forward ``step_m`` and a turn of ``turn_rad`` per frame."""
    rng = np.random.default_rng(seed)
    chosen = kind or ("indoor" if rng.random() < 0.5 else "outdoor")
    scene, camera = indoor_scene(rng) if chosen == "indoor" else outdoor_scene(rng)
    x, y, z = camera.position
    for i in range(frames):
        yaw = camera.yaw + i * turn_rad
        moved = Camera((x + i * step_m * np.sin(yaw), y, z + i * step_m * np.cos(yaw)), yaw=yaw, pitch=camera.pitch, fov_deg=camera.fov_deg)
        yield render(scene, moved, height, width, seed=seed, kind=chosen)
