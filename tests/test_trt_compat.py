"""Engine/manifest compatibility, TensorRT and cuda-python loading errors, and the 10.x/11 compat helpers.

Where a TensorRT object is needed, these tests use small stand-ins that only carry the attributes the
code reads (a version string, an enum value, parser-error accessors): they exercise our formatting and
branching, never a TensorRT result.
"""

from __future__ import annotations

import importlib
import types

import pytest

from lotus_deploy.core.errors import CompatibilityError, DependencyError
from lotus_deploy.tensorrt import compat as trt_compat
from lotus_deploy.tensorrt.engine import check_engine_compatibility

MANIFEST = {
    "kind": "tensorrt",
    "parent": {"folder": "engines/builtin-tiny-depth-onnx-fp16"},
    "tensorrt": {"version": "10.3.0.30", "compute_capability": "8.7", "gpu_name": "Orin", "strongly_typed": True},
}


def test_same_version_and_gpu_is_accepted():
    assert check_engine_compatibility(MANIFEST, "10.3.0.30", "8.7", "e/model.engine") is None
    # the build number does not matter; major.minor.patch does
    assert check_engine_compatibility(MANIFEST, "10.3.0.26", "8.7", "e/model.engine") is None


def test_other_tensorrt_version_is_refused():
    with pytest.raises(CompatibilityError) as info:
        check_engine_compatibility(MANIFEST, "10.13.0.35", "8.7", "e/model.engine")
    message = str(info.value)
    assert "built with TensorRT 10.3.0.30" in message and "runs TensorRT 10.13.0.35" in message
    assert "lotus-build engines/builtin-tiny-depth-onnx-fp16" in message
    assert "\n" not in message


def test_other_major_version_is_refused():
    with pytest.raises(CompatibilityError, match="this machine runs TensorRT 11.4.0.106"):
        check_engine_compatibility(MANIFEST, "11.4.0.106", "8.7", "e/model.engine")


def test_other_compute_capability_is_refused():
    with pytest.raises(CompatibilityError) as info:
        check_engine_compatibility(MANIFEST, "10.3.0.30", "8.9", "e/model.engine")
    message = str(info.value)
    assert "compute capability 8.7 (Orin)" in message and "this GPU is 8.9" in message
    assert "\n" not in message


def test_missing_manifest_warns():
    note = check_engine_compatibility(None, "10.3.0.30", "8.7", "plan.engine")
    assert note is not None and "has no manifest" in note and "running it anyway" in note
    assert check_engine_compatibility({"bare": True, "kind": "tensorrt"}, "10.3.0.30", "8.7", "x") is not None


def test_manifest_without_tensorrt_section_warns():
    note = check_engine_compatibility({"kind": "tensorrt"}, "10.3.0.30", "8.7", "x")
    assert note is not None and "does not record" in note


def test_version_tuple():
    assert trt_compat.version_tuple("10.3.0.30") == (10, 3, 0, 30)
    assert trt_compat.version_tuple("11.0.0.114") == (11, 0, 0, 114)
    assert trt_compat.version_tuple("10.13.0.35.post1") == (10, 13, 0, 35, 1)


def _patch_import(monkeypatch, outcome):
    real = importlib.import_module

    def fake(name, package=None):
        if name == "tensorrt":
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return real(name, package)

    monkeypatch.setattr(trt_compat.importlib, "import_module", fake)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (ImportError("No module named 'tensorrt'"), "ImportError: No module named 'tensorrt'"),
        (OSError("libnvinfer.so.10: cannot open shared object file"), "OSError: libnvinfer.so.10: cannot open shared object file"),
        (types.ModuleType("tensorrt"), "only type stubs are installed"),
    ],
    ids=["not-installed", "libnvinfer-unloadable", "stubs-only-namespace-package"],
)
def test_unusable_tensorrt_is_one_line_with_install_hint(monkeypatch, outcome, expected):
    _patch_import(monkeypatch, outcome)
    with pytest.raises(DependencyError) as info:
        trt_compat.load_tensorrt()
    message = str(info.value)
    assert message.startswith("TensorRT is not usable here") and expected in message
    assert 'pip install "lotus-deploy[trt]"' in message and "JetPack" in message
    assert "\n" not in message
    usable, reason = trt_compat.tensorrt_usable()
    assert not usable and reason == message


def test_too_old_tensorrt_is_refused(monkeypatch):
    old = types.SimpleNamespace(__version__="8.6.1", Builder=object)
    _patch_import(monkeypatch, old)
    with pytest.raises(DependencyError, match=r"TensorRT 8\.6\.1 is too old \(need 10\.3 or newer\)"):
        trt_compat.load_tensorrt()


def _stand_in(version, strongly_typed=True):
    flags = types.SimpleNamespace(STRONGLY_TYPED=5) if strongly_typed else types.SimpleNamespace()
    return types.SimpleNamespace(__version__=version, NetworkDefinitionCreationFlag=flags)


def test_network_flags_per_version():
    # 10.x: strongly typed is opt-in through the flag (bit index 5 in this stand-in)
    assert trt_compat.network_flags(_stand_in("10.3.0.30")) == 1 << 5
    with pytest.raises(DependencyError, match="no STRONGLY_TYPED"):
        trt_compat.network_flags(_stand_in("10.3.0.30", strongly_typed=False))
    # 11: always strongly typed; the flag may be gone
    assert trt_compat.network_flags(_stand_in("11.4.0.106", strongly_typed=False)) == 0
    assert trt_compat.network_flags(_stand_in("11.4.0.106")) == 1 << 5


class _Error:
    def __init__(self, node, name, op, desc, stack=None):
        self._v = {"node": node, "node_name": name, "node_operator": op, "desc": desc, "local_function_stack": stack or []}

    def __getattr__(self, key):
        if key in self._v:
            return lambda: self._v[key]
        raise AttributeError(key)


class _OldError:
    """A parser error without node_name()/node_operator() (older parsers): index only."""

    def node(self):
        return 3

    def desc(self):
        return "Unsupported operator"


class _Parser:
    def __init__(self, errors):
        self._errors = errors

    @property
    def num_errors(self):
        return len(self._errors)

    def get_error(self, index):
        return self._errors[index]


def test_parser_errors_name_every_node():
    parser = _Parser([
        _Error(12, "/vae/decoder/Resize_1", "Resize", "Assertion failed: scales must be constant"),
        _Error(40, "/unet/attn/MyOp", "MyOp", "No importer registered for op: MyOp", ["attention_block"]),
        _Error(-1, "", "", "graph has no outputs"),
        _OldError(),
    ])
    lines = trt_compat.parser_errors(parser)  # type: ignore[arg-type]
    assert lines == [
        "node 12 '/vae/decoder/Resize_1' (Resize): Assertion failed: scales must be constant",
        "node 40 '/unet/attn/MyOp' (MyOp) in function attention_block: No importer registered for op: MyOp",
        "graph: graph has no outputs",
        "node 3: Unsupported operator",
    ]


def test_progress_monitor_absent_api_returns_none():
    assert trt_compat.progress_monitor(types.SimpleNamespace(__version__="10.3.0"), print) is None


def test_cuda_binding_missing_is_one_line(monkeypatch):
    from lotus_deploy.tensorrt import cuda_mem

    real_import = __import__

    def fake(name, *args, **kwargs):
        if name.startswith("cuda"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", fake)
    with pytest.raises(DependencyError) as info:
        cuda_mem.load_cudart()
    message = str(info.value)
    assert message.startswith("cuda-python is not usable here") and "cuda-python==12.*" in message and "\n" not in message
