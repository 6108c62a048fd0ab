"""The architecture of docs/architecture.md holds: stages import only earlier stages, no cycles (counting
imports inside functions), no private names across modules, no heavy third-party import at module level."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from architecture import STAGES, imports_of, violations

PACKAGE = Path(__file__).resolve().parents[1] / "lotus_deploy"


def test_the_package_follows_the_layering_rules() -> None:
    assert violations(PACKAGE) == []


def test_every_stage_package_exists_and_is_listed() -> None:
    listed = {stage for group in STAGES for stage in group}
    present = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} | {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    from architecture import COMPAT_SHIMS

    assert present - COMPAT_SHIMS <= listed, sorted(present - COMPAT_SHIMS - listed)
    assert {"core", "image", "onnxrt", "model", "export", "precision", "tensorrt", "runtime", "stream", "bench", "serve", "pipeline", "cli"} <= present


@pytest.fixture()
def package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "lotus_deploy"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert violations(copy) == []
    return copy


def test_an_upward_import_is_reported(package_copy: Path) -> None:
    (package_copy / "core" / "probe_upward.py").write_text("from ..runtime.estimator import DepthEstimator\n")
    found = violations(package_copy)
    assert any("core.probe_upward" in v and "later stage 'runtime'" in v for v in found), found


def test_a_cycle_through_a_function_level_import_is_reported(package_copy: Path) -> None:
    (package_copy / "export" / "probe_a.py").write_text("from .probe_b import B\nA = 1\n")
    (package_copy / "export" / "probe_b.py").write_text("def late():\n    from .probe_a import A\n    return A\nB = 2\n")
    found = violations(package_copy)
    assert any(v.startswith("import cycle:") and "probe_a" in v and "probe_b" in v for v in found), found


def test_a_private_cross_module_import_is_reported(package_copy: Path) -> None:
    (package_copy / "image" / "probe_private.py").write_text("from ..core.safe_io import _temp_path\n")
    found = violations(package_copy)
    assert any("private name(s) _temp_path" in v for v in found), found


def test_a_heavy_module_level_import_in_core_is_reported(package_copy: Path) -> None:
    (package_copy / "core" / "probe_torch.py").write_text("import torch\n\n\ndef fine():\n    import onnx\n    return onnx\n")
    found = violations(package_copy)
    assert any("core.probe_torch:1 imports third-party 'torch'" in v for v in found), found
    assert not any("'onnx'" in v for v in found), found  # inside a function: allowed


def test_an_import_under_type_checking_still_counts_for_layering(package_copy: Path) -> None:
    (package_copy / "image" / "probe_typing.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..export.fused import export_onnx\n    import torch\n")
    found = violations(package_copy)
    assert any("image.probe_typing" in v and "later stage 'export'" in v for v in found), found
    assert not any("'torch'" in v for v in found), found  # stubs for type checking load nothing


def test_the_checker_sees_function_level_imports() -> None:
    found = [i for i in imports_of(PACKAGE) if i.module == "lotus_deploy.pipeline" and i.target == "lotus_deploy.precision"]
    assert found and not any(i.module_level for i in found)


@pytest.mark.parametrize(("old", "new", "name"), [
    ("lotus_deploy.depth_video", "lotus_deploy.stream.depth_video", "run_depth_video"),
    ("lotus_deploy.temporal", "lotus_deploy.stream.temporal", "TemporalAligner"),
    ("lotus_deploy.metric", "lotus_deploy.stream.metric", "fit_metric"),
    ("lotus_deploy.ros_core", "lotus_deploy.stream.ros_core", None),
])
def test_documented_old_import_paths_still_work_and_warn_once(old: str, new: str, name: str | None) -> None:
    import importlib
    import sys

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert [w for w in caught if issubclass(w.category, DeprecationWarning) and new in str(w.message)]
    if name is not None:
        assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_open_engine_old_path_warns_once() -> None:
    import lotus_deploy.runtime.trt_backend as old
    from lotus_deploy.tensorrt.engine import open_engine

    old._warned.discard("open_engine")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert old.open_engine is open_engine
        assert old.open_engine is open_engine
    assert len([w for w in caught if issubclass(w.category, DeprecationWarning)]) == 1
