"""The one delegation layer: everything arraylosses knows about particular libraries.

Outside this package and ``_compat`` no module names a library. The public functions
ask :func:`backend_of` for the :class:`Backend` of their namespace and call its
methods: where a library has a native path (a fused kernel, a host array whose values
can be read for free, an autograd function) its module overrides the method, and
everywhere else the generic implementation (``_generic``) runs the pure array-API
code.

One module per library that has something of its own: ``_numpy``, ``_torch``,
``_jax``, ``_dask`` and ``_strict`` (array-api-strict). A library's module is
imported the first time one of its arrays is seen, so importing arraylosses imports
no array library.
"""

from __future__ import annotations

from .._typing import Namespace
from ._generic import Backend, array_namespace, device, is_array, masked_take, quiet_overflow

__all__ = [
    "Backend",
    "array_namespace",
    "backend_of",
    "device",
    "is_array",
    "masked_take",
    "namespace_kind",
    "quiet_overflow",
]


def namespace_kind(xp: Namespace) -> str:
    """One of "numpy", "cupy", "torch", "jax", "dask", "array_api_strict", "generic",
    decided by the namespace's module name ("numpy", "array_api_compat.numpy",
    "jax.numpy", "<vendored>.torch", ...)."""
    name = xp.__name__
    last = name.rsplit(".", 1)[-1]
    if name.startswith("jax."):
        return "jax"
    if name == "array_api_strict":
        return "array_api_strict"
    if name.endswith("dask.array"):
        return "dask"
    if last in ("numpy", "cupy", "torch"):
        return last
    return "generic"


def _load(kind: str) -> Backend:
    # Static relative imports (not importlib): torch.compile traces them.
    if kind == "numpy":
        from ._numpy import NumPyBackend

        return NumPyBackend()
    if kind == "torch":
        from ._torch import TorchBackend

        return TorchBackend()
    if kind == "jax":
        from ._jax import JaxBackend

        return JaxBackend()
    if kind == "dask":
        from ._dask import DaskBackend

        return DaskBackend()
    if kind == "array_api_strict":
        from ._strict import StrictBackend

        return StrictBackend()
    backend = Backend()
    backend.name = kind  # CuPy and unknown libraries: the generic array-API path
    return backend


_BACKENDS: dict[str, Backend] = {}


def backend_of(xp: Namespace) -> Backend:
    """The :class:`Backend` of a namespace (one object per library)."""
    backend = _BACKENDS.get(xp.__name__)
    if backend is None:
        backend = _load(namespace_kind(xp))
        _BACKENDS[xp.__name__] = backend
    return backend
