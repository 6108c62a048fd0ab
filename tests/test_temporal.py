"""Temporal alignment and flicker metrics on constructed sequences (numpy only, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from lotus_deploy.core.errors import ConfigError, ShapeError
from lotus_deploy.stream.temporal import TemporalAligner, align_sequence, flicker_metrics, robust_scale_shift, static_mask
from lotus_deploy.synthetic import flicker_sequence, scene_depth


@pytest.mark.parametrize("symmetric", [False, True])
def test_robust_fit_recovers_known_scale_shift_despite_outliers(symmetric: bool) -> None:
    rng = np.random.default_rng(0)
    target = rng.random((60, 80))
    source = (target - 0.3) / 2.5 + rng.normal(0, 1e-4, target.shape)  # target = 2.5 * source + 0.3
    corrupt = rng.random(target.shape) < 0.15  # a "moving object": 15% of pixels way off
    source[corrupt] += rng.uniform(0.5, 1.0, corrupt.sum())
    s, t = robust_scale_shift(source, target, symmetric=symmetric)
    assert s == pytest.approx(2.5, rel=0.02)
    assert t == pytest.approx(0.3, abs=0.02)


def test_robust_fit_honours_mask_and_rejects_degenerate_input() -> None:
    target = np.linspace(0, 1, 400).reshape(20, 20)
    source = target * 0.5 + 0.1
    mask = np.zeros_like(target, dtype=bool)
    mask[:10] = True
    source[~mask] = 7.0  # garbage outside the mask must not matter
    s, t = robust_scale_shift(source, target, mask)
    assert (s, t) == pytest.approx((2.0, -0.2), abs=1e-6)
    with pytest.raises(ShapeError):
        robust_scale_shift(np.ones((4, 4)), np.ones((4, 4)))
    with pytest.raises(ShapeError):
        robust_scale_shift(np.ones((4, 4)), np.ones((4, 5)))


def test_aligner_undoes_per_frame_affine_jitter() -> None:
    truths, preds, images = flicker_sequence(frames=10)
    aligned, steps = align_sequence(preds, images)
    # Every aligned frame lands on the first frame's affine frame: residual to frame 0 ~ noise level.
    for frame in aligned[1:]:
        assert np.mean(np.abs(frame - aligned[0])) < 0.01
    assert steps[0].scale == 1.0 and steps[0].shift == 0.0
    assert not any(step.fallback for step in steps)


def test_flicker_metric_on_constructed_sequence() -> None:
    truths, preds, images = flicker_sequence(frames=10, noise=0.0)
    steady = flicker_metrics(truths, images)
    assert steady.static_change == pytest.approx(0.0, abs=1e-9)
    assert steady.static_fraction == 1.0
    assert steady.pair_scale_std == pytest.approx(0.0, abs=1e-6)

    before = flicker_metrics(preds, images)
    after = flicker_metrics(align_sequence(preds, images)[0], images)
    assert before.static_change > 0.05
    assert after.static_change < before.static_change / 20
    assert after.pair_scale_std < before.pair_scale_std / 20

    # Known value: a frame that differs by a constant 0.1 everywhere (spread normalised away).
    depth = scene_depth(32, 40)
    base = ((depth - depth.min()) / (depth.max() - depth.min())).astype(np.float32)
    report = flicker_metrics([base, base + 0.1])
    assert report.static_change * report.spread == pytest.approx(0.1, abs=1e-6)


def test_static_mask_and_window_smoothing() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[:4] = 200
    mask = static_mask(a, b)
    assert mask[4:].all() and not mask[:4].any()
    truths, preds, images = flicker_sequence(frames=8, noise=0.01)
    one = flicker_metrics(align_sequence(preds, images, window=1)[0], images)
    four = flicker_metrics(align_sequence(preds, images, window=4)[0], images)
    assert four.static_change < 0.05 and one.static_change < 0.05


def test_aligner_falls_back_on_a_featureless_frame_and_checks_inputs() -> None:
    aligner = TemporalAligner()
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    aligner.align(ramp)
    aligner.align(ramp * 2 + 1)
    out = aligner.align(np.full((8, 8), 0.5, np.float32))  # nothing to fit: reuse the last (s, t)
    assert aligner.steps[-1].fallback
    assert aligner.steps[-1].scale == pytest.approx(aligner.steps[-2].scale)
    assert np.isfinite(out).all()
    with pytest.raises(ShapeError):
        aligner.align(np.zeros((4, 4), np.float32))
    with pytest.raises(ConfigError):
        TemporalAligner(window=0)
    with pytest.raises(ShapeError):
        flicker_metrics([ramp])
