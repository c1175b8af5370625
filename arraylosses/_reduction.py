"""Reductions of per-element losses."""

from __future__ import annotations

from types import ModuleType
from typing import Any

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
        denominator = 1
        for n in loss.shape:
            denominator *= int(n)
    return safe_divide(total, denominator, xp)


def nan_where_invalid(loss: Array, valid: Array | None, xp: ModuleType) -> Array:
    """Mark elements whose label was out of range as NaN (the lazy/device policy)."""
    if valid is None:
        return loss
    return xp.where(valid, loss, xp.full_like(loss, float("nan")))
