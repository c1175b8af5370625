"""Dask: lazy arrays, so nothing is read and nothing is computed before ``.compute()``.

Its namespace has no ``take_along_axis``; a one-hot comparison mask stays lazy. Its
chunks are computed after the loss has returned, out of reach of the NumPy
``errstate`` the public functions use, so its ``log_softmax`` avoids the overflow
itself.
"""

from __future__ import annotations

from .._typing import Array, Namespace
from ._generic import Backend, masked_take


class DaskBackend(Backend):
    name = "dask"

    def take_class(self, values: Array, labels: Array, axis: int, xp: Namespace) -> Array:
        return masked_take(values, labels, axis, xp)

    def log_softmax(self, x: Array, axis: int, xp: Namespace) -> Array:
        """The generic ``log_softmax`` without its overflow: a logit more than the
        dtype's range below the row's maximum (``x - max`` would overflow to ``-inf``,
        with a warning in a worker) gets ``-inf`` by selection instead."""
        if 0 in x.shape:
            return super().log_softmax(x, axis, xp)
        top = xp.max(x, axis=axis, keepdims=True)
        half_range = 0.5 * float(xp.finfo(x.dtype).max)
        far = 0.5 * x - 0.5 * top < -half_range  # halved: the comparison cannot overflow
        near = xp.where(far, top, x)  # (broadcasts: no shape needed, Dask may not know it)
        shifted = xp.where(far, xp.full_like(x, -float("inf")), near - top)
        return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
