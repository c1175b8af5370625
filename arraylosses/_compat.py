"""The one seam between arraylosses and array-api-compat / array-api-extra.

Every other module imports these names from here, with relative imports only, so a
project that vendors ``arraylosses`` under another name (and, optionally, vendors
array-api-compat beside it as ``_array_api_compat_vendor``) needs to touch nothing
but this file.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

try:  # a vendoring project may ship its own copy next to ours
    from .._array_api_compat_vendor import (  # type: ignore[import-not-found]
        array_namespace as _compat_array_namespace,
    )
    from .._array_api_compat_vendor import (
        device as _compat_device,
    )
    from .._array_api_compat_vendor import (
        is_array_api_obj as _compat_is_array_api_obj,
    )
except ImportError:
    from array_api_compat import array_namespace as _compat_array_namespace
    from array_api_compat import device as _compat_device
    from array_api_compat import is_array_api_obj as _compat_is_array_api_obj

try:
    from .._array_api_extra_vendor import (  # type: ignore[import-not-found]
        default_dtype,
        one_hot,
    )
except ImportError:
    # array-api-extra's ``apply_where`` is not used: on eager backends it relies on
    # boolean indexing (a device sync on CUDA, a graph break under torch.compile) and
    # under jax.jit it evaluates the function on the unmasked input, which gives NaN
    # gradients for the focal term at 1 - p_t == 0. ``_primitives.modulating_factor``
    # uses a double ``where`` instead.
    from array_api_extra import default_dtype, one_hot

__all__ = [
    "array_namespace",
    "default_dtype",
    "device",
    "is_array_api_obj",
    "is_array_api_strict_namespace",
    "is_cupy_namespace",
    "is_dask_namespace",
    "is_jax_namespace",
    "is_numpy_namespace",
    "is_torch_namespace",
    "is_torch_tensor",
    "namespace_kind",
    "one_hot",
    "quiet_overflow",
]

# array_namespace() inspects the type of its argument on every call; a loss is called
# every training step, so remember the answer per array type.
_NAMESPACES: dict[type, ModuleType] = {}


def array_namespace(x: Any) -> ModuleType:
    """Return the (compat-wrapped) array-API namespace of one array, cached by type."""
    cls = type(x)
    xp = _NAMESPACES.get(cls)
    if xp is None:
        xp = _compat_array_namespace(x)
        # jax tracers and array_api_strict arrays share types across namespaces
        # only through the namespace itself, so caching by type is safe.
        _NAMESPACES[cls] = xp
    return xp


def is_torch_tensor(x: object) -> bool:
    """True for a ``torch.Tensor`` without importing torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_array_api_obj(x: object) -> bool:
    """True for an array of any array-API library (Python scalars and lists are not)."""
    # Tensors first: compat's check goes through ``functools.lru_cache`` helpers, which
    # torch.compile warns about on every traced call.
    return is_torch_tensor(x) or bool(_compat_is_array_api_obj(x))


def device(x: Any) -> Any:
    """The device of an array (``x.device`` where the library has it)."""
    if is_torch_tensor(x):
        return x.device
    return _compat_device(x)


# Which library a namespace belongs to, decided once per namespace by its module name
# ("numpy", "array_api_compat.numpy", "jax.numpy", "<vendored>.torch", ...). compat's
# own ``is_*_namespace`` helpers are ``lru_cache``-wrapped, which torch.compile warns
# about inside traced code; a plain dict lookup is invisible to it.
_KINDS: dict[str, str] = {}


def namespace_kind(xp: ModuleType) -> str:
    """One of "numpy", "cupy", "torch", "jax", "dask", "array_api_strict", "other"."""
    name = xp.__name__
    kind = _KINDS.get(name)
    if kind is None:
        last = name.rsplit(".", 1)[-1]
        if name == "jax.numpy" or name.startswith("jax."):
            kind = "jax"
        elif name == "array_api_strict":
            kind = "array_api_strict"
        elif name.endswith("dask.array"):
            kind = "dask"
        elif last in ("numpy", "cupy", "torch"):
            kind = last
        else:
            kind = "other"
        _KINDS[name] = kind
    return kind


def is_numpy_namespace(xp: ModuleType) -> bool:
    return namespace_kind(xp) == "numpy"


def is_cupy_namespace(xp: ModuleType) -> bool:
    return namespace_kind(xp) == "cupy"


def is_torch_namespace(xp: ModuleType) -> bool:
    return namespace_kind(xp) == "torch"


def is_jax_namespace(xp: ModuleType) -> bool:
    return namespace_kind(xp) == "jax"


def is_dask_namespace(xp: ModuleType) -> bool:
    return namespace_kind(xp) == "dask"


def is_array_api_strict_namespace(xp: ModuleType) -> bool:
    return namespace_kind(xp) == "array_api_strict"


F = TypeVar("F", bound=Callable[..., Any])


def quiet_overflow(func: F) -> F:
    """Run ``func`` with NumPy's overflow warning silenced when its first argument is a
    NumPy array.

    A loss whose true value exceeds the dtype's range (logits spanning more than
    ``finfo.max``) saturates to ``inf``, the right limit; the contract promises no
    RuntimeWarning for finite input. Invalid operations (NaN) are not silenced, and are
    avoided by construction.
    """

    @functools.wraps(func)
    def wrapper(first: Any, /, *args: Any, **kwargs: Any) -> Any:
        if type(first).__module__ == "numpy":
            np = sys.modules["numpy"]
            with np.errstate(over="ignore"):
                return func(first, *args, **kwargs)
        return func(first, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
