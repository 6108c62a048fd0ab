"""Absolute gates beside the aligned metrics: an output shifted or scaled fails every reduced-precision gate,
although scale-and-shift-aligned metrics would pass it (issue 12, item 1)."""

from __future__ import annotations

import numpy as np
import pytest
from extras import need

from lotus_deploy.core.config import ExportConfig, Precision, PrecisionSettings, Task
from lotus_deploy.core.parity import ABSOLUTE_GATES, compare, judge, polygraphy_checks


def _depth_like(seed: int = 0) -> np.ndarray:
    """A smooth depth map in [0, 1] (mean ~0.5), batch of 2, like the graph's output."""
    yy, xx = np.mgrid[0:64, 0:96] / 64.0
    rng = np.random.default_rng(seed)
    maps = [np.clip(0.2 + 0.5 * yy + 0.1 * np.sin(3 * xx + k) + rng.normal(0, 0.01, yy.shape), 0, 1) for k in range(2)]
    return np.stack(maps)[:, None].astype(np.float32)


@pytest.mark.parametrize("precision", sorted(ABSOLUTE_GATES))
def test_shift_and_scale_fail_every_gate_and_the_unmodified_output_passes(precision: str) -> None:
    reference = _depth_like()
    gates = ABSOLUTE_GATES[precision]
    honest = reference + np.random.default_rng(1).normal(0, 1e-4, reference.shape).astype(np.float32)
    assert judge(compare(honest, reference, Task.DEPTH), gates=gates).passed
    for wrong in (reference + 0.03, reference * 0.9):
        report = compare(wrong.astype(np.float32), reference, Task.DEPTH)
        assert report.absrel is not None and report.absrel < 1e-3  # the aligned metric alone would pass it
        assert not judge(report, gates=gates).passed, (precision, report.summary())


def test_gates_scale_with_the_output_range_of_normals() -> None:
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(1, 3, 16, 16)).astype(np.float32)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    report = judge(compare(normal + 0.03, normal, Task.NORMAL), gates=ABSOLUTE_GATES["int8"])
    assert report.output_range == 2.0 and report.tolerances["mean_abs_max"] == pytest.approx(0.04)
    assert report.passed  # 0.03 of a range of 2 is within int8's 2 % mean gate
    assert not judge(compare(normal + 0.03, normal, Task.NORMAL), gates=ABSOLUTE_GATES["fp16"]).passed


def test_the_gates_are_expressed_as_polygraphy_error_statistics() -> None:
    reference = _depth_like()
    report = judge(compare(reference + 0.001, reference, Task.DEPTH), gates=ABSOLUTE_GATES["fp16"])
    checks = {c["check_error_stat"]: c for c in polygraphy_checks(report)}
    assert checks["mean"]["atol"] == pytest.approx(2e-3) and checks["quantile"]["error_quantile"] == 0.99
    assert checks["quantile"]["atol"] == pytest.approx(1e-2) and all(c["rtol"] == 0 for c in checks.values())
    assert report.to_json()["polygraphy"] == polygraphy_checks(report)
    diff = np.abs((reference + 0.001).astype(np.float64) - reference)
    assert report.p99_abs == pytest.approx(float(np.quantile(diff, 0.99)))


def test_precision_targets_and_engine_parity_apply_the_gates() -> None:
    from lotus_deploy.core.config import EngineKind
    from lotus_deploy.precision.common import target_for
    from lotus_deploy.runtime.engine_parity import REDUCED_TOLERANCES

    reference = _depth_like()
    shifted = compare(reference + 0.03, reference, Task.DEPTH)
    for precision in ("fp16", "int8"):
        config = ExportConfig(model="builtin:tiny", engine=EngineKind(f"onnx-{precision}"), precision=PrecisionSettings(accuracy_target=1.0))
        target = target_for(precision, config)
        assert not target.judge(shifted).passed and target.error_of(shifted) > 1.0
        assert target.judge(compare(reference, reference, Task.DEPTH)).passed
        tolerances = REDUCED_TOLERANCES[Precision(precision)]
        assert not judge(shifted, **tolerances, gates=ABSOLUTE_GATES[precision]).passed


def test_an_int8_graph_with_no_int8_left_is_refused() -> None:
    need("onnx")
    from lotus_deploy.core.errors import ParityError
    from lotus_deploy.precision.int8 import check_int8_left

    check_int8_left(12, 0.7)
    for nodes, share in ((0, 0.0), (3, 0.0)):
        with pytest.raises(ParityError, match="no int8 multiply-accumulates left"):
            check_int8_left(nodes, share)
