"""Metric depth from sparse points on synthetic scenes with known metric depth (numpy only, fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lotus_deploy.core.errors import ConfigError, LotusError, ShapeError
from lotus_deploy.stream.metric import SparseDepthError, SparsePoints, fit_metric, load_sparse
from lotus_deploy.synthetic import affine_prediction, scene_depth, sparse_points


@pytest.mark.parametrize("meaning", ["depth", "disparity"])
def test_metric_fit_recovers_true_depth_with_noise_and_outliers(meaning: str) -> None:
    truth = scene_depth(96, 128)
    pred = affine_prediction(truth, disparity=meaning == "disparity")
    sample = sparse_points(truth, count=200, outlier_fraction=0.2)
    fit = fit_metric(pred, sample.points, meaning)
    absrel = float(np.mean(np.abs(fit.depth_m - truth) / truth))
    assert absrel < 0.04
    assert fit.space == meaning
    assert fit.points == 200
    # The consensus set is (nearly) the uncorrupted points.
    assert np.mean(fit.inlier_mask == ~sample.outlier) > 0.9
    assert fit.median_rel < 0.03
    assert fit.rmse_m >= fit.median_abs_m >= 0


def test_fitting_in_the_wrong_space_is_much_worse() -> None:
    truth = scene_depth(96, 128)
    pred = affine_prediction(truth, disparity=True)
    sample = sparse_points(truth, outlier_fraction=0.0)
    right = fit_metric(pred, sample.points, "disparity")
    wrong = fit_metric(pred, sample.points, "depth")
    err = [float(np.nanmean(np.abs(f.depth_m - truth) / truth)) for f in (right, wrong)]
    assert err[0] * 5 < err[1]


def test_exact_recovery_without_noise() -> None:
    truth = scene_depth(48, 64)
    pred = affine_prediction(truth, disparity=False, noise=0.0)
    fit = fit_metric(pred, sparse_points(truth, count=20, rel_noise=0.0, outlier_fraction=0.0).points, "depth")
    np.testing.assert_allclose(fit.depth_m, truth, rtol=1e-4)
    assert fit.inliers == 20


def test_sparse_files_csv_and_npy(tmp_path: Path) -> None:
    truth = scene_depth(48, 64)
    pts = sparse_points(truth, count=30, outlier_fraction=0.0).points
    csv = tmp_path / "points.csv"
    csv.write_text("x,y,depth_m\n# a comment\n" + "\n".join(f"{x:g},{y:g},{z:.6f}" for x, y, z in pts) + "\n")
    loaded, size = load_sparse(csv)
    assert len(loaded) == 30 and size is None
    np.testing.assert_allclose(loaded.depth_m, pts[:, 2], rtol=1e-6)
    np.save(tmp_path / "points.npy", pts)
    assert len(load_sparse(tmp_path / "points.npy")[0]) == 30
    sparse_map = np.zeros_like(truth)
    sparse_map[pts[:, 1].astype(int), pts[:, 0].astype(int)] = pts[:, 2]
    np.save(tmp_path / "map.npy", sparse_map)
    from_map, size = load_sparse(tmp_path / "map.npy")
    assert len(from_map) == 30 and size == truth.shape
    pred = affine_prediction(truth, disparity=False)
    fit = fit_metric(pred, from_map, "depth", map_shape=size)
    assert np.mean(np.abs(fit.depth_m - truth) / truth) < 0.03


def test_bad_sparse_input_gives_one_line_errors(tmp_path: Path) -> None:
    pred = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    cases = [
        lambda: fit_metric(pred, np.zeros((0, 3)), "depth"),  # empty set
        lambda: fit_metric(pred, np.zeros((8, 9)), "depth"),  # map of another size
        lambda: fit_metric(pred, SparsePoints.from_array(np.array([[1, 1, 2.0]])), "depth", map_shape=(8, 8)),
        lambda: fit_metric(pred, np.array([[100.0, 1, 2.0], [1, 1, 3.0]]), "depth"),  # outside the image
        lambda: fit_metric(pred, np.array([[1.0, 1, 2.0]]), "depth"),  # one point
        lambda: load_sparse(tmp_path / "missing.csv"),
    ]
    (tmp_path / "bad.csv").write_text("x,y,depth_m\n1,2\n")
    cases.append(lambda: load_sparse(tmp_path / "bad.csv"))
    (tmp_path / "empty.csv").write_text("x,y,depth_m\n")
    cases.append(lambda: load_sparse(tmp_path / "empty.csv"))
    for case in cases:
        with pytest.raises(SparseDepthError) as info:
            case()
        assert "\n" not in str(info.value) and isinstance(info.value, LotusError)
    with pytest.raises(ConfigError):
        fit_metric(pred, np.array([[1.0, 1, 2.0], [3, 3, 4.0]]), "normal")
    with pytest.raises(ShapeError):
        fit_metric(pred[None], np.array([[1.0, 1, 2.0], [3, 3, 4.0]]), "depth")
