"""torch-upstream and torch-optimized on the CPU: both run fp32 and compute what the torch reference computes."""

from __future__ import annotations

import numpy as np
from extras import need

need("torch")
need("diffusers")

from lotus_deploy.runtime.base import backend_names, load_backend  # noqa: E402


def test_registered():
    assert {"torch-upstream", "torch-optimized"} <= set(backend_names())


def test_cpu_variants_match_the_reference():
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 128)).astype(np.float32)
    reference = load_backend("torch", None, model="builtin:tiny")
    upstream = load_backend("torch-upstream", None, model="builtin:tiny")
    optimized = load_backend("torch-optimized", None, model="builtin:tiny")
    try:
        expected = reference.run(batch)
        assert upstream.precision == "fp32" and not upstream.autocast  # autocast only applies on CUDA
        assert optimized.precision == "fp32" and not optimized.fp16 and not optimized.cuda_graphs and optimized.channels_last
        np.testing.assert_allclose(upstream.run(batch), expected, atol=1e-5, rtol=0)
        out = optimized.run(batch)
        assert out.shape == (2, 1, 64, 128) and out.dtype == np.float32
        np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)  # SDPA + channels-last reorder float32 sums
    finally:
        for backend in (reference, upstream, optimized):
            backend.close()


def test_fp16_request_on_cpu_falls_back_to_fp32():
    backend = load_backend("torch-optimized", None, model="builtin:tiny", fp16=True, channels_last=False)
    try:
        assert backend.precision == "fp32" and not backend.channels_last
    finally:
        backend.close()
