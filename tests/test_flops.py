"""FLOP counting on small graphs with known multiply-accumulate counts (no timing)."""

from __future__ import annotations

import numpy as np
import pytest
from extras import need

onnx = need("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from lotus_deploy.export.flops import count_flops  # noqa: E402


def _conv_matmul_model(dynamic: bool = True):
    """x [N,3,H,W] -> Conv 3->8, 3x3, pad 1 -> Reshape [N, 8, H*W] -> Transpose -> MatMul [H*W,8]x[8,16] -> Gemm-free."""
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    m = numpy_helper.from_array(np.zeros((8, 16), np.float32), "m")
    shape = numpy_helper.from_array(np.array([0, 8, -1], np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Reshape", ["c", "shape"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1], name="transpose"),
        helper.make_node("MatMul", ["t", "m"], ["y"], name="matmul"),
    ]
    dims = ["N", 3, "H", "W"] if dynamic else [1, 3, 32, 32]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w, m, shape])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_conv_and_matmul_macs_at_a_given_size():
    model = _conv_matmul_model()
    count = count_flops(model, [2, 3, 32, 32])
    conv_macs = 2 * 8 * 32 * 32 * (3 * 3 * 3)  # every output element: Cin x kh x kw
    matmul_macs = 2 * (32 * 32) * 16 * 8  # [N, HW, 8] x [8, 16]
    assert count.by_op == {"Conv": 2 * conv_macs, "MatMul": 2 * matmul_macs}
    assert count.flops == 2 * (conv_macs + matmul_macs)
    assert count.nodes == 2 and count.unknown == []


def test_flops_scale_with_input_area_and_batch():
    model = _conv_matmul_model()
    small = count_flops(model, [1, 3, 32, 32]).flops
    assert count_flops(model, [1, 3, 64, 64]).flops == 4 * small
    assert count_flops(model, [3, 3, 32, 32]).flops == 3 * small


def test_gemm_grouped_conv_and_conv_transpose():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    inits = [
        numpy_helper.from_array(np.zeros((4, 2, 3, 3), np.float32), "wg"),  # groups=2: Cin/group = 2
        numpy_helper.from_array(np.zeros((4, 6, 2, 2), np.float32), "wt"),  # ConvTranspose: [Cin, Cout/group, kh, kw]
        numpy_helper.from_array(np.zeros((6 * 16 * 16, 10), np.float32), "wgemm"),
        numpy_helper.from_array(np.array([1, -1], np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "wg"], ["g"], group=2, pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["g", "wt"], ["u"], strides=[2, 2]),
        helper.make_node("Reshape", ["u", "flat"], ["f"]),
        helper.make_node("Gemm", ["f", "wgemm"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    count = count_flops(model, [1, 4, 8, 8])
    assert count.by_op["Conv"] == 2 * (4 * 8 * 8) * (2 * 3 * 3)
    assert count.by_op["ConvTranspose"] == 2 * (4 * 8 * 8) * (6 * 2 * 2)
    assert count.by_op["Gemm"] == 2 * 10 * (6 * 16 * 16)


def test_saved_graph_with_external_data_is_counted_without_loading_weights(tmp_path):
    model = _conv_matmul_model()
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=0)
    assert count_flops(path, [1, 3, 16, 16]).flops == count_flops(model, [1, 3, 16, 16]).flops


def test_wrong_input_rank_is_an_error():
    with pytest.raises(ValueError, match="rank"):
        count_flops(_conv_matmul_model(), [1, 3, 32])
