"""TensorRT review fixes that CPU tests can show with a stand-in ``tensorrt`` module (tests only; never a
result for a user): builder return values and exceptions, and I/O dtypes TensorRT's nptype() cannot map."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lotus_deploy.core.config import Task
from lotus_deploy.core.contract import GraphShape
from lotus_deploy.core.errors import ArtifactError
from lotus_deploy.core.profile import derive_profile
from lotus_deploy.tensorrt.build import BuildSettings, build_engine
from lotus_deploy.tensorrt.engine import TensorInfo, dtype_name, engine_io, task_from_io


class _Dims(list):
    pass


class _Tensor:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape = name, _Dims(shape)


class _Network:
    num_inputs, num_outputs = 1, 1

    def get_input(self, index: int) -> _Tensor:
        return _Tensor("image", (-1, 3, -1, -1))

    def get_output(self, index: int) -> _Tensor:
        return _Tensor("depth", (-1, 1, -1, -1))


class _Config:
    def __init__(self, add_result: int) -> None:
        self.add_result = add_result
        self.builder_optimization_level = 0

    def set_memory_pool_limit(self, pool: Any, size: int) -> None: ...
    def clear_flag(self, flag: Any) -> None: ...
    def create_timing_cache(self, data: bytes) -> object: return object()
    def set_timing_cache(self, cache: object, ignore: bool) -> bool: return True
    def add_optimization_profile(self, profile: Any) -> int: return self.add_result


class _Profile:
    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse

    def set_shape(self, name: str, low: Any, opt: Any, high: Any) -> None:
        if self.refuse:  # what the binding does: RuntimeError, never a False return
            raise RuntimeError("Shape provided for min is inconsistent with other shapes.")


def _fake_trt(refuse_shape: bool = False, add_result: int = 0) -> Any:
    class Builder:
        def __init__(self, logger: Any) -> None: ...
        def create_network(self, flags: int) -> _Network: return _Network()
        def create_builder_config(self) -> _Config: return _Config(add_result)
        def create_optimization_profile(self) -> _Profile: return _Profile(refuse_shape)
        def build_serialized_network(self, network: Any, config: Any) -> None:
            raise AssertionError("the builder must stop before building")

    class OnnxParser:
        def __init__(self, network: Any, logger: Any) -> None: ...
        def parse_from_file(self, path: str) -> bool: return True

    class Logger:
        WARNING, ERROR = 2, 1

        def __init__(self, severity: int) -> None: ...

    return SimpleNamespace(__version__="10.3.0", Builder=Builder, OnnxParser=OnnxParser, Logger=Logger, Dims=_Dims,
                           MemoryPoolType=SimpleNamespace(WORKSPACE=0), NetworkDefinitionCreationFlag=SimpleNamespace(STRONGLY_TYPED=0),
                           BuilderFlag=SimpleNamespace(TF32=7))


@pytest.mark.parametrize(("refuse_shape", "add_result", "message"), [
    (True, 0, "TensorRT refused the profile"),
    (False, -1, "TensorRT rejected the optimization profile"),
])
def test_a_refused_profile_is_a_one_line_error_naming_it(refuse_shape: bool, add_result: int, message: str, tmp_path: Path) -> None:
    profile = derive_profile(GraphShape(), height=256, width=256)
    with pytest.raises(ArtifactError, match=message) as info:
        build_engine(_fake_trt(refuse_shape, add_result), tmp_path / "m.onnx", tmp_path / "m.engine", profile,
                     BuildSettings(timing_cache=None), "depth", say=lambda line: None)
    text = str(info.value)
    assert "static 1x3x256x256" in text and "(-1, 3, -1, -1)" in text and "\n" not in text


def test_io_dtypes_nptype_cannot_map_become_a_contract_error() -> None:
    names = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "FP8": "float8", "INT4": "int4", "INT8": "int8"}
    for raw, expected in names.items():
        assert dtype_name(SimpleNamespace(name=raw)) == expected
    assert dtype_name("DataType.BF16") == "bfloat16"

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, index: int) -> str: return ("image", "depth")[index]
        def get_tensor_mode(self, name: str) -> str: return "in" if name == "image" else "out"
        def get_tensor_dtype(self, name: str) -> Any: return SimpleNamespace(name="BF16")
        def get_tensor_shape(self, name: str) -> _Dims: return _Dims((1, 3, 64, 64))

    def nptype(dtype: Any) -> Any:
        raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")

    trt = SimpleNamespace(TensorIOMode=SimpleNamespace(INPUT="in"), nptype=nptype)
    tensors = engine_io(trt, Engine())  # type: ignore[arg-type]
    assert [t.dtype for t in tensors] == ["bfloat16", "bfloat16"]
    with pytest.raises(ArtifactError, match="is bfloat16, the contract says float32"):
        task_from_io(tensors, "bare.engine")
    assert task_from_io([TensorInfo("image", True, "float32", (1, 3, 64, 64)), TensorInfo("depth", False, "float32", (1, 1, 64, 64))], "x") is Task.DEPTH


def test_every_extra_naming_cuda_python_bounds_its_major() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    import re

    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = {name: [r for r in reqs if r.replace("_", "-").startswith("cuda-python")] for name, reqs in extras.items()}
    named = {name: reqs for name, reqs in named.items() if reqs}
    assert {"trt", "trt-cu12", "trt-cu13"} <= set(named)
    for name, reqs in named.items():
        assert all(re.search(r"<\s*\d|==\s*\d+\.\*", r) for r in reqs), (name, reqs)
    assert named["trt-cu12"] == ["cuda-python>=12,<13"] and named["trt-cu13"] == ["cuda-python>=13,<14"]
