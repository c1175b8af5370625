"""Dask: lazy arrays, so nothing is read and nothing is computed before ``.compute()``.

Its namespace has no ``take_along_axis``; a one-hot comparison mask stays lazy.
"""

from __future__ import annotations

from .._typing import Array, Namespace
from ._generic import Backend, masked_take


class DaskBackend(Backend):
    name = "dask"

    def take_class(self, values: Array, labels: Array, axis: int, xp: Namespace) -> Array:
        return masked_take(values, labels, axis, xp)
