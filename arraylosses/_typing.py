"""Type aliases shared by every module (defined once)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

#: An array of any array-API library (the standard has no static array type).
Array = Any
#: An array-API namespace (``array_namespace(x)``).
Namespace = ModuleType
#: A dtype object of some namespace.
DType = Any

__all__ = ["Array", "DType", "Namespace"]
