"""Streams: video files and cameras to depth videos, temporal alignment, metric fitting, the ROS node's core."""

from .depth_video import VideoOptions, run_depth_video
from .metric import MetricFit, fit_metric, load_sparse
from .ros_core import DepthNodeCore
from .temporal import TemporalAligner, align_sequence, flicker_metrics
from .video import FrameSource, VideoError, VideoWriter, is_video_path

__all__ = [
    "DepthNodeCore", "FrameSource", "MetricFit", "TemporalAligner", "VideoError", "VideoOptions", "VideoWriter", "align_sequence",
    "fit_metric", "flicker_metrics", "is_video_path", "load_sparse", "run_depth_video",
]
