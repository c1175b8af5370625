"""NumPy block kernel of the reduced sigmoid focal loss.

NumPy has no autodiff, so a reduced loss only needs its value: this kernel computes
``sum(sigmoid_focal_eager(x, y))`` block by block with ufuncs writing into a handful of
buffers allocated once per call (``out=``), so that no block allocates and the working
set stays in cache. Same arithmetic as ``sigmoid_focal_eager`` (one ``exp``, one
``log1p``, one division per element), a third fewer memory passes. Imported only once
a NumPy array has been seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any


def sigmoid_focal_sum(x: Array, y: Array, alpha: float | None, gamma: int, block: int) -> Array:
    r"""``sum`` of the sigmoid focal loss of logits ``x`` and targets ``y`` (one shape,
    one float dtype) for an integer ``gamma`` in ``[0, 8]``.

    Per element, with ``t = exp(-|x|)``, ``r = 1 / (1 + t)``, ``s = [x >= 0]``:

    .. math::

        \mathrm{BCE} = (\max(x, 0) - x y) + \log(1 + t), \qquad
        1 - p_t = t r + |s - y|\, (r - t r)

    (``|s - y|`` is ``1 - y`` where ``x >= 0`` and ``y`` elsewhere), and the loss is
    ``alpha_t (1 - p_t)^gamma BCE``, summed by a dot product with ``alpha_t`` (or a
    plain sum when alpha is None).
    """
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    n = flat_x.shape[0]
    size = min(block, n)
    dtype = flat_x.dtype
    a, t, r, loss, w = (np.empty(size, dtype) for _ in range(5))
    nonnegative = np.empty(size, np.bool_)
    total = dtype.type(0)
    for start in range(0, n, block):
        xb, yb = flat_x[start : start + block], flat_y[start : start + block]
        m = xb.shape[0]
        ab, tb, rb, lb, wb, sb = a[:m], t[:m], r[:m], loss[:m], w[:m], nonnegative[:m]
        np.abs(xb, out=ab)
        np.negative(ab, out=tb)
        np.exp(tb, out=tb)  # t = exp(-|x|) in (0, 1]
        np.multiply(xb, 0.5, out=lb)
        np.multiply(ab, 0.5, out=wb)
        lb += wb  # max(x, 0), exactly; halved first, so the largest floats do not overflow
        np.multiply(xb, yb, out=wb)
        lb -= wb  # exactly 0 for y = 1, x > 0
        np.log1p(tb, out=ab)
        lb += ab  # BCE
        if gamma > 0:
            np.add(tb, 1.0, out=rb)
            np.divide(1.0, rb, out=rb)  # r = sigmoid(|x|)
            tb *= rb  # t r = sigmoid(-|x|)
            rb -= tb  # r - t r
            np.greater_equal(xb, 0, out=sb)
            np.subtract(sb, yb, out=wb, casting="unsafe")
            np.abs(wb, out=wb)
            wb *= rb
            wb += tb  # b = 1 - p_t
            np.multiply(wb, wb, out=ab) if gamma > 1 else np.copyto(ab, wb)
            for _ in range(gamma - 2):
                ab *= wb
            lb *= ab  # b^gamma BCE
        if alpha is None:
            total += lb.sum()
        else:
            np.multiply(yb, 2.0 * alpha - 1.0, out=wb)
            wb += 1.0 - alpha  # alpha_t
            total += np.dot(lb, wb)
    return np.asarray(total)
