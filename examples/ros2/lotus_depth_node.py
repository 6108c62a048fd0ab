#!/usr/bin/env python3
"""ROS 2 node: subscribe to an image topic, publish Lotus-D depth as sensor_msgs/Image (32FC1).

All the work that does not touch ROS messages lives in ``lotus_deploy.stream.ros_core`` (tested in CI);
this file only converts messages and wires topics. Needs rclpy + sensor_msgs (a ROS 2 install) and
lotus-deploy with a backend (``[ort]``, ``[ort-gpu]`` or TensorRT). See README.md beside it.
"""

from __future__ import annotations

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from lotus_deploy.core.errors import LotusError
from lotus_deploy.runtime.estimator import DepthEstimator
from lotus_deploy.stream.ros_core import DepthNodeCore


class LotusDepthNode(Node):
    def __init__(self) -> None:
        super().__init__("lotus_depth")
        artifact = self.declare_parameter("artifact", "").value
        backend = self.declare_parameter("backend", "onnxruntime").value
        processing_res = int(self.declare_parameter("processing_res", 512).value)
        align = bool(self.declare_parameter("align", True).value)
        window = int(self.declare_parameter("window", 3).value)
        metric_scale = float(self.declare_parameter("metric_scale", 0.0).value)
        metric_shift = float(self.declare_parameter("metric_shift", 0.0).value)
        if not artifact:
            raise SystemExit("set the 'artifact' parameter to an artifact folder from lotus-export")
        estimator = DepthEstimator(artifact, backend=backend, processing_res=processing_res)
        self.core = DepthNodeCore(estimator, align=align, window=window,
                                  metric_scale=metric_scale or None, metric_shift=metric_shift)
        self.publisher = self.create_publisher(Image, "depth", 10)
        # Sensor QoS (best effort, depth 1): drop stale frames instead of queueing them behind a slow model.
        self.subscription = self.create_subscription(Image, "image", self.on_image, qos_profile_sensor_data)
        self.get_logger().info(f"lotus depth: {artifact} via {backend}, output meaning {estimator.meaning.value}")

    def on_image(self, msg: Image) -> None:
        try:
            fields = self.core.process(msg)
        except LotusError as exc:
            self.get_logger().error(str(exc), throttle_duration_sec=5.0)
            return
        out = Image()
        out.header = msg.header  # same stamp and frame_id: depth pixels line up with the image
        out.height, out.width = fields.height, fields.width
        out.encoding, out.is_bigendian, out.step = fields.encoding, fields.is_bigendian, fields.step
        out.data = fields.data
        self.publisher.publish(out)


def main() -> None:
    rclpy.init()
    node = LotusDepthNode()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.core.estimator.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
