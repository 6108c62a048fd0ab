"""The ROS 2 node's message-free core: encodings in, 32FC1 out (no rclpy needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from lotus_deploy.core.config import OutputMeaning
from lotus_deploy.core.errors import InputImageError
from lotus_deploy.stream.ros_core import DepthNodeCore, ImageFields, depth_to_32fc1, image_to_rgb, rgb_to_image


def _rgb(h: int = 5, w: int = 7) -> np.ndarray:
    return (np.arange(h * w * 3, dtype=np.uint32).reshape(h, w, 3) % 251).astype(np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_color_encodings_round_trip(encoding: str) -> None:
    rgb = _rgb()
    np.testing.assert_array_equal(image_to_rgb(rgb_to_image(rgb, encoding)), rgb)


def test_mono_alpha_padding_and_16_bit() -> None:
    rgb = _rgb()
    mono = image_to_rgb(rgb_to_image(rgb, "mono8"))
    assert mono.shape == rgb.shape and (mono[..., 0] == rgb[..., 0]).all() and (mono[..., 2] == rgb[..., 0]).all()
    h, w = 3, 4
    bgra = np.zeros((h, w, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 10, 30, 255
    step = w * 4 + 8  # row padding, as some drivers send
    data = b"".join(row.tobytes() + b"\xee" * 8 for row in bgra)
    out = image_to_rgb(ImageFields(h, w, "bgra8", 0, step, data))
    assert (out[..., 0] == 30).all() and (out[..., 2] == 10).all()
    wide = np.array([[0x1234, 0xFF00]], dtype=">u2")
    out = image_to_rgb(ImageFields(1, 2, "mono16", 1, 4, wide.tobytes()))
    assert out[0, :, 0].tolist() == [0x12, 0xFF]


def test_32fc1_encoding() -> None:
    depth = np.array([[1.5, 2.0, 3.25]], np.float32)
    msg = depth_to_32fc1(depth)
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("32FC1", 1, 3, 12)
    back = np.frombuffer(msg.data, dtype=">f4" if msg.is_bigendian else "<f4").reshape(1, 3)
    np.testing.assert_array_equal(back, depth)


def test_bad_messages_get_one_line_errors() -> None:
    for fields in (ImageFields(2, 2, "yuv422", 0, 4, b"\0" * 8), ImageFields(2, 2, "rgb8", 0, 6, b"\0" * 5), ImageFields(2, 2, "rgb8", 0, 4, b"\0" * 12)):
        with pytest.raises(InputImageError) as info:
            image_to_rgb(fields)
        assert "\n" not in str(info.value)


@dataclass
class _Pred:
    values: np.ndarray


class _FakeEstimator:
    """Depth = mean intensity ramp, with a per-call affine jump like Lotus-D's flicker."""

    def __init__(self, meaning: OutputMeaning = OutputMeaning.DEPTH) -> None:
        self.meaning = meaning
        self.calls = 0

    def predict(self, rgb: np.ndarray) -> _Pred:
        self.calls += 1
        base = rgb.astype(np.float32).mean(axis=2) / 255.0
        return _Pred(base * (1.0 + 0.3 * (self.calls % 2)) + 0.1 * self.calls)


def test_node_core_pipeline_with_alignment_and_metric() -> None:
    rgb = np.repeat(np.linspace(10, 240, 64, dtype=np.uint8)[None, :, None], 48, axis=0).repeat(3, axis=2)
    core = DepthNodeCore(_FakeEstimator(), align=True)
    first = np.frombuffer(core.process(rgb_to_image(rgb, "bgr8")).data, np.float32)
    second = np.frombuffer(core.process(rgb_to_image(rgb, "bgr8")).data, np.float32)
    np.testing.assert_allclose(second, first, atol=1e-4)  # the affine jump was aligned away
    metric = DepthNodeCore(_FakeEstimator(OutputMeaning.DISPARITY), metric_scale=2.0, metric_shift=0.0)
    z = metric.depth(rgb)
    expected = 1.0 / (2.0 * (rgb.mean(axis=2) / 255.0 * 1.3 + 0.1))
    np.testing.assert_allclose(z, expected, rtol=1e-5)
    assert metric.frames == 1
