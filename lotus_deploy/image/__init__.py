"""Image in, graph tensor out, and back: pre/post-processing, colormap, 16-bit PNG (numpy and Pillow only).

The ``preprocess`` function lives in the ``preprocess`` module: ``from lotus_deploy.image.preprocess import preprocess``.
"""

from .input_plan import InputPlan, PlannedInput, plan_inputs
from .postprocess import (
    colorize_depth,
    crop_and_resize,
    decode_depth,
    decode_normal,
    encode_png16,
    output_names,
    restore_output,
    save_prediction,
)
from .preprocess import PreprocessInfo, decode_image, load_image, stack_batch, to_rgb_array

__all__ = [
    "InputPlan", "PlannedInput", "PreprocessInfo", "colorize_depth", "crop_and_resize", "decode_depth", "decode_image", "decode_normal",
    "encode_png16", "load_image", "output_names", "plan_inputs", "restore_output", "save_prediction", "stack_batch", "to_rgb_array",
]
