"""array-api-strict: the conformance oracle, so nothing of its own but what it must.

Its arrays live in host memory (values free to read, so bad labels raise), and its
``take_along_axis`` exists as an attribute but raises below API version 2024.12. The
definitions run on it unchanged: no fast path, no re-arrangement.
"""

from __future__ import annotations

from .._typing import Array, Namespace
from ._generic import HostBackend, masked_take


class StrictBackend(HostBackend):
    name = "array_api_strict"

    def take_class(self, values: Array, labels: Array, axis: int, xp: Namespace) -> Array:
        if str(getattr(xp, "__array_api_version__", "0")) >= "2024.12":
            return super().take_class(values, labels, axis, xp)
        return masked_take(values, labels, axis, xp)
