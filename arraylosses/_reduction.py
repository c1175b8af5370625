"""Reductions of per-element losses."""

from __future__ import annotations

from ._typing import Array, Namespace
from ._validation import known_size


def safe_divide(total: Array, denominator: Array | int | float, xp: Namespace) -> Array:
    """``total / denominator``, NaN where the denominator is exactly 0, without a warning.

    An empty batch, or one where every target is ignored, has no mean; NaN says so
    (as PyTorch does) while NumPy stays silent and nothing waits on the device.
    """
    if isinstance(denominator, (int, float)):
        if denominator == 0:
            return xp.full_like(total, float("nan"))
        return total / denominator
    # Only an exactly zero denominator is special: PyTorch divides by a negative
    # summed weight too (its own tests draw class weights in [-9, 9)).
    nonzero = denominator != 0
    safe = xp.where(nonzero, denominator, xp.ones_like(denominator))
    return xp.where(nonzero, total / safe, xp.full_like(total, float("nan")))


def reduce_loss(
    loss: Array,
    reduction: str,
    xp: Namespace,
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
        denominator = 1
        for n in loss.shape:  # (a loop, not any() of a generator: the common call)
            if not known_size(n):
                # Dask arrays of unknown chunk sizes: count lazily.
                denominator = xp.sum(xp.ones_like(loss))
                break
            denominator *= int(n)
    return safe_divide(total, denominator, xp)


def nan_where_invalid(loss: Array, valid: Array | None, xp: Namespace) -> Array:
    """Mark elements whose label was out of range as NaN (the lazy/device policy)."""
    if valid is None:
        return loss
    return xp.where(valid, loss, xp.full_like(loss, float("nan")))
