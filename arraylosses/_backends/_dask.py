"""Dask: lazy arrays, so nothing is read and nothing is computed before ``.compute()``.

Its namespace has no ``take_along_axis``; a one-hot comparison mask stays lazy. Its
chunks are computed after the loss has returned, out of reach of the NumPy
``errstate`` the public functions use, so its ``log_softmax`` avoids the overflow
itself. A reduced sigmoid focal loss of NumPy-backed chunks runs the NumPy backend's
kernel on each chunk (one task per chunk, one partial sum each): a cluster then
scores a chunk as fast as one NumPy process does.
"""

from __future__ import annotations

import math

import numpy as np

from .._typing import Array, Namespace
from ._generic import Backend, masked_take
from ._numpy import BLOCK_BYTES, sigmoid_focal_sum


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

    def reduced_sigmoid_focal(
        self, x: Array, y: Array, alpha: float | None, gamma: float, reduction: str, xp: Namespace
    ) -> Array | None:
        """Per chunk, :func:`~._numpy.sigmoid_focal_sum` (the NumPy kernel, tested
        against the definition) under its own ``errstate``; the partial sums are
        summed lazily. Only for NumPy chunks of known sizes; None otherwise."""
        if not (isinstance(x._meta, np.ndarray) and isinstance(y._meta, np.ndarray)):
            return None
        if x.shape != y.shape or any(math.isnan(n) for n in x.shape) or x.size == 0:
            return None
        y = y.rechunk(x.chunks)
        block = max(1, BLOCK_BYTES // x.dtype.itemsize)
        sums = x.map_blocks(
            _focal_chunk_sum, y, chunks=tuple((1,) * len(c) for c in x.chunks),
            dtype=x.dtype, alpha=alpha, gamma=gamma, block=block,
        )  # fmt: skip
        total = xp.sum(sums)
        return total / x.size if reduction == "mean" else total


def _focal_chunk_sum(
    a: np.ndarray, b: np.ndarray, *, alpha: float | None, gamma: float, block: int
) -> np.ndarray:
    """One chunk's focal-loss sum, shaped as a one-element chunk (a module-level
    function: a task graph refers to it by name, so it pickles to any worker)."""
    with np.errstate(over="ignore"):  # as the public functions on NumPy
        total = sigmoid_focal_sum(a, b, alpha, gamma, block)
    return np.reshape(np.asarray(total, dtype=a.dtype), (1,) * a.ndim)
