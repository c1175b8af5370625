"""Reductions of per-element losses."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ._compat import is_numpy_namespace

Array = Any


def safe_divide(total: Array, denominator: Array | int | float, xp: ModuleType) -> Array:
    """``total / denominator``, NaN where the denominator is 0, without a warning.

    An empty batch, or one where every target is ignored, has no mean; NaN says so
    (as PyTorch does) while NumPy stays silent and nothing waits on the device.
    """
    if isinstance(denominator, (int, float)):
        if denominator == 0:
            return xp.full_like(total, float("nan"))
        return total / denominator
    positive = denominator > 0
    safe = xp.where(positive, denominator, xp.ones_like(denominator))
    return xp.where(positive, total / safe, xp.full_like(total, float("nan")))


def reduce_loss(
    loss: Array,
    reduction: str,
    xp: ModuleType,
    denominator: Array | int | float | None = None,
) -> Array:
    """Apply ``reduction`` to the per-element ``loss``.

    ``"none"`` returns it unchanged, ``"sum"`` sums every element, ``"mean"`` divides
    that sum by ``denominator`` (default: the number of elements).
    """
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    if denominator is None:
        if any(n is None or n != n for n in loss.shape):
            # Dask arrays of unknown chunk sizes: count lazily.
            denominator = xp.sum(xp.ones_like(loss))
        else:
            denominator = 1
            for n in loss.shape:
                denominator *= int(n)
    return safe_divide(total, denominator, xp)


def nan_where_invalid(loss: Array, valid: Array | None, xp: ModuleType) -> Array:
    """Mark elements whose label was out of range as NaN (the lazy/device policy)."""
    if valid is None:
        return loss
    return xp.where(valid, loss, xp.full_like(loss, float("nan")))


def as_result(out: Array, dtype: Any, xp: ModuleType) -> Array:
    """Cast back to the dtype of ``logits``; NumPy scalars become 0-d arrays."""
    if out.dtype != dtype:
        out = xp.astype(out, dtype)
    if is_numpy_namespace(xp) and out.ndim == 0:
        # NumPy reductions and 0-d arithmetic return ``np.float64`` scalars, not arrays.
        out = xp.asarray(out)
    return out
