"""Procedural scenes with ground truth (numpy only, deterministic from a seed).

``render``: a ray-cast renderer of indoor and outdoor scenes (RGB, metric depth, surface normals, camera
trajectories) for training and evaluating on data whose truth is known. ``samples``: what the fitting and
stability tests derive from a known depth (affine predictions, sparse "LiDAR" points, flicker).
"""

from .render import Camera, RenderedScene, render_scene, render_trajectory
from .samples import SparseSample, affine_prediction, flicker_sequence, scene_depth, sparse_points

__all__ = ["Camera", "RenderedScene", "SparseSample", "affine_prediction", "flicker_sequence", "render_scene", "render_trajectory",
           "scene_depth", "sparse_points"]
