"""JAX: traced or asynchronously dispatched arrays (never read), and its fused
``log_softmax``.

Its default configuration (x64 off) has no float64, so bfloat16 is computed in the
default floating dtype: float64 with x64 on, float32 otherwise.
"""

from __future__ import annotations

import jax

from .._compat import default_dtype
from .._typing import Array, DType, Namespace
from ._generic import Backend


class JaxBackend(Backend):
    name = "jax"
    stop_gradient = staticmethod(jax.lax.stop_gradient)

    def compute_dtype(self, dtype: DType, x: Array, xp: Namespace) -> DType:
        if "bfloat16" in str(dtype):
            return default_dtype(xp)
        return super().compute_dtype(dtype, x, xp)

    def log_softmax(self, x: Array, axis: int, xp: Namespace) -> Array:
        return jax.nn.log_softmax(x, axis=axis)
