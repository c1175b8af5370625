r"""NumPy: host arrays whose values are free to read, and a block kernel.

NumPy has no autodiff, so a reduced loss only needs its value. For arrays over about
32 MB every temporary of a whole-array formula is a fresh allocation above glibc's
mmap threshold, and its page faults cost more than the arithmetic; evaluating block
by block keeps the temporaries in cache and in the heap. :func:`sigmoid_focal_sum`
goes further: ufuncs writing into a handful of buffers allocated once per call,
which is what makes the reduced sigmoid focal loss several times faster than a
direct NumPy transcription (``benchmarks/``, case (a); the definition evaluated
block by block is slower than the transcription, about 1.2x).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._typing import Array, DType, Namespace
from ._generic import HostBackend, RowwiseCall

# 128 KiB per temporary (32768 float32 values), measured on a 2-core x86 CPU with
# RetinaNet-sized inputs: every temporary of the formula is still served from glibc's
# heap; at 256 KiB the time of a reduction jumps 3x (fresh mmaps, page faults again).
BLOCK_BYTES = 1 << 17


# Logits per block of a row-wise softmax loss (:meth:`NumPyBackend.rowwise`), measured
# with benchmark case (g): the definition's dozen temporaries of a block stay in the
# heap and in cache, and a block still amortises NumPy's per-call cost.
ROW_BLOCK = 1 << 18


# A class axis this short and last is reduced column by column (see log_softmax).
SHORT_AXIS = 32


_FULL_PRECISION = (np.dtype(np.float32), np.dtype(np.float64))


class NumPyBackend(HostBackend):
    name = "numpy"

    def compute_dtype(self, dtype: DType, x: Array, xp: Namespace) -> DType:
        # (float32 and float64 first: the generic test formats the dtype's name)
        return dtype if dtype in _FULL_PRECISION else super().compute_dtype(dtype, x, xp)

    def labels_in_range(self, labels: Array, num_classes: int, xp: Namespace) -> bool:
        if labels.size == 0:
            return True
        return bool(np.minimum.reduce(labels, axis=None) >= 0) and bool(
            np.maximum.reduce(labels, axis=None) < num_classes
        )

    def log_softmax(self, x: Array, axis: int, xp: Namespace) -> Array:
        """The definition's ``x - max - log(sum(exp(x - max)))``; along a short last
        axis (channel-last segmentation logits) NumPy reduces every row in a
        separate inner loop, three to seven times slower than the arithmetic, so the
        maximum is taken column by column and the sum as a product with ones."""
        rows = _short_rows(x, axis)
        if rows is None:
            return super().log_softmax(x, axis, xp)
        shifted = rows - _column_max(rows)[:, None]
        total = np.exp(shifted) @ np.ones(rows.shape[1], dtype=x.dtype)
        shifted -= np.log(total)[:, None]
        return shifted.reshape(x.shape)

    def label_log_prob(self, x: Array, labels: Array, axis: int, xp: Namespace) -> Array:
        # log_softmax's arithmetic at the label only: one full-size temporary, whose
        # exponential is taken in place
        if x.size == 0:
            return super().label_log_prob(x, labels, axis, xp)
        rows = _short_rows(x, axis)
        if rows is not None:
            shifted = rows - _column_max(rows)[:, None]
            flat = labels.reshape(-1, 1)
            picked = np.take_along_axis(shifted, flat, axis=1)[:, 0]
            np.exp(shifted, out=shifted)
            total = shifted @ np.ones(rows.shape[1], dtype=x.dtype)
            return (picked - np.log(total)).reshape(labels.shape)
        shifted = x - np.maximum.reduce(x, axis=axis, keepdims=True)
        if x.ndim == 2 and axis == 1:  # (rows: indexing costs a quarter of take_along_axis)
            picked = shifted[np.arange(x.shape[0]), labels]
        else:
            index = np.expand_dims(labels, axis)
            picked = np.squeeze(np.take_along_axis(shifted, index, axis=axis), axis=axis)
        np.exp(shifted, out=shifted)
        return picked - np.log(np.add.reduce(shifted, axis=axis))

    def rowwise(
        self,
        elements: Callable[[Any], Array],
        inputs: RowwiseCall,
        parameter: Array | None,
        gradient: Callable[[Any], tuple[Array, Array]] | None = None,
    ) -> Array:
        if inputs.x.size < 2 * ROW_BLOCK:
            return elements(inputs)
        cuts = inputs.block_cuts(ROW_BLOCK)
        if len(cuts) == 1:
            return elements(inputs)
        return np.concatenate([elements(inputs.block(cut)) for cut in cuts], axis=0)

    def as_result(self, out: Array, dtype: DType, xp: Namespace) -> Array:
        # NumPy reductions and 0-d arithmetic return ``np.float64`` scalars, not arrays.
        out = out if out.dtype == dtype else xp.astype(out, dtype)
        return np.asarray(out) if out.ndim == 0 else out

    def reduced_sigmoid_focal(
        self, x: Array, y: Array, alpha: float | None, gamma: float, reduction: str, xp: Namespace
    ) -> Array | None:
        n = x.size
        if n == 0 or x.shape != y.shape:
            return None
        block = max(1, BLOCK_BYTES // x.dtype.itemsize)
        total = sigmoid_focal_sum(x, y, alpha, gamma, block)
        return total / n if reduction == "mean" else total


def _short_rows(x: Array, axis: int) -> Array | None:
    """``x`` as ``(rows, K)`` where the class axis is last, short (at most
    ``SHORT_AXIS``) and contiguous; None otherwise."""
    k = int(x.shape[axis]) if x.ndim else 0
    if axis % max(x.ndim, 1) != x.ndim - 1 or not 1 < k <= SHORT_AXIS:
        return None
    if x.size == 0 or not x.flags.c_contiguous:
        return None
    return x.reshape(-1, k)


def _column_max(rows: Array) -> Array:
    """The maximum of each row of a ``(rows, K)`` array, K column passes."""
    top = rows[:, 0].copy()
    for c in range(1, rows.shape[1]):
        np.maximum(top, rows[:, c], out=top)
    return top


def sigmoid_focal_sum(x: Array, y: Array, alpha: float | None, gamma: float, block: int) -> Array:
    r"""``sum`` of :func:`~arraylosses._elementwise.sigmoid_focal` over logits ``x`` and
    smoothed targets ``y`` (one shape, one float dtype), for a float ``gamma >= 0``:
    the definition re-arranged for eager NumPy.

    Per element, with ``t = exp(-|x|)``, ``r = 1 / (1 + t) = sigmoid(|x|)``,
    ``t r = sigmoid(-|x|)`` and ``u = |[x >= 0] - y|`` (``1 - y`` where ``x >= 0``,
    ``y`` elsewhere):

    .. math::

        \mathrm{BCE} = \log(1 + t) + |x|\, u, \qquad 1 - p_t = t r + u\, (r - t r)

    (``BCE = y' softplus(-x) + (1 - y') softplus(x)`` and ``softplus(x) = max(x, 0) +
    log(1 + t)``.) Every term is non-negative, so nothing cancels: the relative
    accuracy of the definition holds for soft targets at saturated logits too. One
    ``exp``, one ``log1p`` and one division per element; the loss is
    ``alpha_t (1 - p_t)^gamma BCE``, summed by a dot product with ``alpha_t``. The
    power is repeated multiplication for integer gamma up to 8, as in
    :func:`~arraylosses._primitives.modulating_factor`, otherwise ``power`` with the
    limit 0 below the smallest normal number (no derivative is taken here, so the
    definition's log-space form is not needed; each element then differs from it by
    less than the smallest normal number).
    """
    whole = gamma.is_integer() and gamma <= 8.0
    tiny = np.finfo(x.dtype).smallest_normal
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    n = flat_x.shape[0]
    size = min(block, n)
    dtype = flat_x.dtype
    a, t, r, loss, u = (np.empty(size, dtype) for _ in range(5))
    nonnegative = np.empty(size, np.bool_)
    total = dtype.type(0)
    for start in range(0, n, block):
        xb, yb = flat_x[start : start + block], flat_y[start : start + block]
        m = xb.shape[0]
        ab, tb, rb, lb, ub, sb = a[:m], t[:m], r[:m], loss[:m], u[:m], nonnegative[:m]
        np.greater_equal(xb, 0, out=sb)
        np.subtract(sb, yb, out=ub, casting="unsafe")
        np.abs(ub, out=ub)  # u
        np.abs(xb, out=ab)
        np.multiply(ab, ub, out=lb)  # |x| u
        np.negative(ab, out=tb)
        np.exp(tb, out=tb)  # t = exp(-|x|) in (0, 1]
        np.log1p(tb, out=ab)
        lb += ab  # BCE
        if gamma > 0:
            np.add(tb, 1.0, out=rb)
            np.divide(1.0, rb, out=rb)  # r
            tb *= rb  # t r
            rb -= tb  # r - t r
            ub *= rb
            ub += tb  # b = 1 - p_t
            if whole:
                np.multiply(ub, ub, out=ab) if gamma > 1 else np.copyto(ab, ub)
                for _ in range(int(gamma) - 2):
                    ab *= ub
            else:
                np.power(ub, gamma, out=ab)
                np.less(ub, tiny, out=sb)
                ab[sb] = 0.0  # the limit of b^gamma
            lb *= ab  # b^gamma BCE
        if alpha is None:
            total += lb.sum()
        else:
            np.multiply(yb, 2.0 * alpha - 1.0, out=ub)
            ub += 1.0 - alpha  # alpha_t
            total += np.dot(lb, ub)
    if not np.isfinite(total) and np.isinf(flat_x).any():
        # an infinite logit is NaN, as in the definition (checked only when the sum
        # is not finite: nothing on the finite path)
        total = dtype.type(np.nan)
    return np.asarray(total)
