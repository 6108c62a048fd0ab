"""Serving and dataset-scale inference above the runtime (docs/serving.md).

``ray_batch`` (Ray Data batch runs), ``triton_repo`` and ``triton_python`` (Triton model repositories and
their Python-backend pre/post models), ``pytriton_server`` (serving through PyTriton). Import the module
you need: none of Ray, tritonclient or PyTriton is imported until a function needs it.
"""
