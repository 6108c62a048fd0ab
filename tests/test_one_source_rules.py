"""Each rule that used to be written in several places now lives once (docs/architecture.md); one test each."""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from extras import need

from lotus_deploy.core.config import EngineSettings, ExportConfig, ExportSettings, OutputMeaning, PrecisionSettings
from lotus_deploy.core.contract import pad_batch
from lotus_deploy.core.errors import ConfigError
from lotus_deploy.core.fitting import fit_line, robust_sigma
from lotus_deploy.core.sizes import check_size_flag, is_spatial_size, round_up


def test_sizes_are_positive_multiples_of_64_everywhere() -> None:
    assert [round_up(v) for v in (1, 64, 65, 700)] == [64, 64, 128, 704]
    assert is_spatial_size(128) and not is_spatial_size(0) and not is_spatial_size(100)
    with pytest.raises(ConfigError, match="--height 100 is not a positive multiple of 64 — use 128"):
        check_size_flag("--height", 100)
    with pytest.raises(ConfigError, match="--height 100"):  # the config, the profile and the flags share it
        ExportConfig(height=100, width=128)
    from lotus_deploy.core.contract import GraphShape
    from lotus_deploy.core.profile import derive_profile

    with pytest.raises(ConfigError, match="--max-height 100"):
        derive_profile(GraphShape(), dynamic=True, max_height=100, max_width=128)


def test_long_edge_size_and_the_batch_size_that_holds_every_image() -> None:
    from lotus_deploy.image.preprocess import batch_graph_size, long_edge_size, preprocess

    assert long_edge_size(600, 800, 256) == (192, 256) and long_edge_size(1, 5000, 256) == (1, 256)  # slivers keep 1 px
    images = [np.zeros((600, 800, 3), np.uint8), np.zeros((900, 300, 3), np.uint8)]
    assert batch_graph_size(images, 256) == (256, 256)
    for img in images:  # the size preprocess pads each image to fits inside the batch size
        h, w = preprocess(img, processing_res=256)[0].shape[2:]
        assert h <= 256 and w <= 256


def test_static_batches_are_padded_with_the_last_image() -> None:
    batch = np.arange(2 * 3 * 1 * 1, dtype=np.float32).reshape(2, 3, 1, 1)
    padded, real = pad_batch(batch, 4)
    assert real == 2 and padded.shape == (4, 3, 1, 1) and np.array_equal(padded[3], batch[1])
    same, real = pad_batch(batch, 2)
    assert same is batch and real == 2


def test_one_least_squares_line_and_one_mad() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(500)
    q = 2.5 * p - 0.3
    assert fit_line(p, q) == pytest.approx((2.5, -0.3))
    weights = np.ones_like(p)
    weights[:10] = 0.0
    q_bad = q.copy()
    q_bad[:10] += 100.0  # zero-weight outliers do not move a weighted fit
    assert fit_line(p, q_bad, weights) == pytest.approx((2.5, -0.3))
    residual = rng.normal(0, 2.0, 20000)
    residual[:100] = 1e6
    assert robust_sigma(residual) == pytest.approx(2.0, rel=0.05)


def test_one_robust_line_fit_serves_temporal_alignment_and_metric_depth() -> None:
    from lotus_deploy.stream.fitting import irls_line, median_start
    from lotus_deploy.stream.temporal import robust_scale_shift

    rng = np.random.default_rng(1)
    p = rng.random(4000)
    q = 0.5 * p + 0.1 + rng.normal(0, 1e-3, p.size)
    q[:400] = rng.random(400) * 5  # 10 % gross outliers (a moving object)
    for redescending in (True, False):
        s, t = irls_line(p, q, median_start(p, q), 20, redescending=redescending)
        assert s == pytest.approx(0.5, abs=0.02 if redescending else 0.1)
    assert robust_scale_shift(p.reshape(40, 100), q.reshape(40, 100)) == pytest.approx((0.5, 0.1), abs=0.01)


def test_disparity_to_metres_is_one_function() -> None:
    from lotus_deploy.stream.metric import to_metres

    pred = np.array([0.5, 0.0, 1.0])
    np.testing.assert_allclose(to_metres(pred, 2.0, 1.0, disparity=False), [2.0, 1.0, 3.0])
    metres = to_metres(pred, 2.0, -1.0, disparity=True)  # 1 / (2p - 1): p = 0.5 gives no positive disparity
    assert np.isnan(metres[0]) and np.isnan(metres[1]) and metres[2] == pytest.approx(1.0)


def test_colorize_by_meaning_serves_pngs_and_videos() -> None:
    from lotus_deploy.image.postprocess import colorize, colorize_depth, normal_to_rgb
    from lotus_deploy.stream import depth_video

    depth = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(colorize(depth, OutputMeaning.DEPTH), colorize_depth(depth))
    assert np.array_equal(colorize(depth, OutputMeaning.DISPARITY), colorize_depth(depth, reverse=True))
    assert np.array_equal(colorize(depth + 5, OutputMeaning.DEPTH), colorize_depth(np.ones_like(depth)))  # clipped to [0, 1]
    normal = np.zeros((3, 4, 3), np.float32)
    assert np.array_equal(colorize(normal, OutputMeaning.NORMAL), normal_to_rgb(normal))
    assert depth_video.colorize is colorize


def test_onnx_runtime_sessions_come_from_one_helper(tmp_path: Path) -> None:
    need("onnxruntime")
    from lotus_deploy.core.errors import ArtifactError
    from lotus_deploy.onnxrt import make_session

    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load") as info:
        make_session(tmp_path / "broken.onnx")
    assert "\n" not in str(info.value)


def test_save_with_external_data_is_shared(tmp_path: Path) -> None:
    onnx = need("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from lotus_deploy.export.common import save_with_external_data

    weight = numpy_helper.from_array(np.ones((64, 64), np.float32), name="w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [weight])
    save_with_external_data(helper.make_model(graph), tmp_path / "m.onnx", "m.onnx.data")
    assert (tmp_path / "m.onnx.data").stat().st_size == 64 * 64 * 4
    assert onnx.load(str(tmp_path / "m.onnx")).graph.initializer[0].dims == [64, 64]


def test_sha256_and_tool_versions_have_one_home(tmp_path: Path) -> None:
    import hashlib

    from lotus_deploy.bench.provenance import library_versions
    from lotus_deploy.core.artifacts import sha256_file, tool_versions

    (tmp_path / "f").write_bytes(b"abc" * 1000)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert tool_versions("numpy")["numpy"] == np.__version__ and "lotus-deploy" in tool_versions()
    assert library_versions()["numpy"] == np.__version__


def test_torch_model_instead_of_an_artifact_is_one_rule() -> None:
    from lotus_deploy.cli.common import checkpoint_options

    assert checkpoint_options(argparse.Namespace(backend="torch", model="builtin:tiny", task=None, artifact=None)) == {"model": "builtin:tiny", "task": None}
    assert checkpoint_options(argparse.Namespace(backend="onnxruntime", model=None, task=None, artifact=Path("a"))) == {}
    with pytest.raises(ConfigError, match="no --artifact given"):
        checkpoint_options(argparse.Namespace(backend="onnxruntime", model="builtin:tiny", task=None, artifact=None))


def test_cli_defaults_come_from_the_settings_dataclasses() -> None:
    from lotus_deploy.cli import build_cmd, export_cmd

    export_defaults = vars(export_cmd.build_parser().parse_args([]))
    build_defaults = vars(build_cmd.build_parser().parse_args(["some-dir"]))
    for settings in (ExportSettings, PrecisionSettings, EngineSettings):
        for field in fields(settings):
            if field.name in export_defaults:
                assert export_defaults[field.name] == field.default, field.name
            if field.name in build_defaults:
                assert build_defaults[field.name] == field.default, field.name
    assert export_defaults["workspace_gib"] == build_defaults["workspace_gib"] == EngineSettings().workspace_gib


def test_latency_statistics_are_numpy_percentiles() -> None:
    from lotus_deploy.bench.stats import percentile, summarize

    samples = [0.3, 0.1, 0.2, 0.5, 0.4]
    assert percentile(samples, 90) == pytest.approx(float(np.percentile(samples, 90)))
    stats = summarize(samples)
    assert stats.median == pytest.approx(0.3) and stats.std == pytest.approx(float(np.std(samples, ddof=1)))


def test_the_cpu_is_read_in_one_place() -> None:
    """Benchmarks' provenance and the demo model's training card name the CPU the same way (core.cpu)."""
    from lotus_deploy.core.cpu import SIMD_FLAGS, cpu_identity, widest_vector_unit

    identity = cpu_identity()
    assert set(identity["simd"]) <= SIMD_FLAGS and identity["simd"] == sorted(identity["simd"]) and identity["model"]
    if importlib.util.find_spec("psutil") is not None:
        from lotus_deploy.bench.provenance import cpu_info

        assert {k: cpu_info()[k] for k in identity} == identity
    assert widest_vector_unit({"simd": ["avx", "avx2", "avx512f", "fma"]}) == "avx512"
    assert widest_vector_unit({"simd": ["avx2", "amx_tile", "avx512f"]}) == "amx"
    assert widest_vector_unit({"simd": ["avx", "avx2"]}) == "avx2"
    assert widest_vector_unit({"simd": ["asimd"]}) == "neon"
    assert widest_vector_unit({"simd": [], "machine": "riscv64"}) == "riscv64"
