"""The one seam between arraylosses and array-api-compat / array-api-extra.

Every other module imports these names from here, with relative imports only, so a
project that vendors ``arraylosses`` under another name (and, optionally, vendors
array-api-compat and array-api-extra beside it as ``_array_api_compat_vendor`` and
``_array_api_extra_vendor``) needs to touch nothing but this file. No logic lives
here: which library an array belongs to is decided in ``_backends``.
"""

from __future__ import annotations

try:  # a vendoring project may ship its own copy next to ours
    from .._array_api_compat_vendor import (  # type: ignore[import-not-found]
        array_namespace,
        device,
        is_array_api_obj,
    )
except ImportError:
    from array_api_compat import array_namespace, device, is_array_api_obj

try:
    from .._array_api_extra_vendor import (  # type: ignore[import-not-found]
        default_dtype,
        one_hot,
    )
except ImportError:
    # array-api-extra's ``apply_where`` is deliberately not used: on eager backends it
    # relies on boolean indexing (a device sync on CUDA, a graph break under
    # torch.compile) and under jax.jit it evaluates the function on the unmasked
    # input, which gives NaN gradients for the focal term at 1 - p_t == 0.
    # ``_primitives.modulating_factor`` uses a double ``where`` instead.
    from array_api_extra import default_dtype, one_hot

__all__ = [
    "array_namespace",
    "default_dtype",
    "device",
    "is_array_api_obj",
    "one_hot",
]
