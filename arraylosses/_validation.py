"""Argument checking shared by every public function.

Every message names the argument, what was given and what is allowed. Checks on the
*values* of arrays (labels in range, gamma >= 0, alpha in [0, 1]) raise only where
reading a value is free: eager arrays in host memory. Everywhere else (GPU, JAX,
``torch.compile``/``torch.func``, Dask) reading a value would synchronise with the
device or break tracing, so the caller marks the affected results NaN instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from ._backends import Backend, array_namespace, device, is_array
from ._typing import Array, Namespace

REDUCTIONS = ("none", "mean", "sum")
SMOOTHINGS = ("uniform", "others")


def _describe(value: object) -> str:
    if is_array(value):
        return f"an array of type {type(value).__module__}.{type(value).__qualname__}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def require_array(value: object, name: str) -> None:
    """Raise TypeError unless ``value`` is an array-API array (not a list or scalar)."""
    if not is_array(value):
        raise TypeError(
            f"`{name}` must be an array of an array-API library (NumPy, PyTorch, JAX, "
            f"CuPy, Dask, array-api-strict); got {_describe(value)}."
        )


def namespace_of(name_values: Sequence[tuple[str, object]]) -> Namespace:
    """Array namespace shared by all given arrays; TypeError naming any that differ."""
    first_name, first = name_values[0]
    require_array(first, first_name)
    xp = array_namespace(first)
    for name, value in name_values[1:]:
        if type(value) is type(first):
            continue  # one type, one namespace (the common call: checked once)
        require_array(value, name)
        other = array_namespace(value)
        if other is not xp:
            raise TypeError(
                f"`{name}` is an array of {other.__name__} but `{first_name}` is an "
                f"array of {xp.__name__}; all arrays must come from one library."
            )
    return xp


_DTYPE_KINDS: dict[tuple[str, Any, str], bool] = {}


def dtype_is(xp: Namespace, dtype: Any, kind: str) -> bool:
    """``xp.isdtype(dtype, kind)``, remembered: a loss asks the same few questions about
    the same few dtypes on every call."""
    key = (xp.__name__, dtype, kind)
    try:
        answer = _DTYPE_KINDS.get(key)
    except TypeError:  # an unhashable dtype object
        return bool(xp.isdtype(dtype, kind))
    if answer is None:
        answer = _DTYPE_KINDS[key] = bool(xp.isdtype(dtype, kind))
    return answer


def check_dtype(dtype: object, xp: Namespace, name: str = "dtype") -> None:
    """``dtype`` must be a dtype object of ``xp`` (not a string, not another
    library's dtype)."""
    try:
        known = isinstance(dtype, str) is False and bool(
            xp.isdtype(dtype, ("real floating", "integral", "bool"))
        )
    except (TypeError, ValueError, KeyError):
        known = False
    if not known:
        raise TypeError(
            f"`{name}` must be a dtype of {xp.__name__} (such as {xp.__name__}.float32); "
            f"got {_describe(dtype)}."
        )


def check_logits(logits: Array, xp: Namespace, name: str = "logits") -> None:
    try:
        floating = dtype_is(xp, logits.dtype, "real floating")
    except TypeError:  # a dtype the namespace does not know (NumPy + ml_dtypes.bfloat16)
        raise TypeError(
            f"`{name}` has dtype {logits.dtype}, which {xp.__name__} does not support "
            f"as an array-API floating dtype (NumPy has no bfloat16: ml_dtypes' is not "
            f"part of the standard); convert to float32 or use a library with bfloat16 "
            f"(PyTorch, JAX)."
        ) from None
    if not floating:
        raise TypeError(
            f"`{name}` must have a real floating dtype (float16, bfloat16, float32, "
            f"float64); got dtype {logits.dtype}."
        )


def check_choice(value: object, name: str, allowed: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {options}; got {value!r}.")


def check_unit_interval(value: object, name: str) -> float:
    """A Python real in [0, 1] (bools are refused: they are almost always a mistake)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a Python float in [0, 1]; got {_describe(value)}.")
    v = float(value)
    if not 0.0 <= v <= 1.0:  # also refuses NaN
        raise ValueError(f"`{name}` must be in [0, 1]; got {value!r}.")
    return v


def check_axis(axis: object, ndim: int, array_name: str = "logits") -> int:
    """Normalise ``axis`` for an array of ``ndim`` dimensions (named in the message)."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"`axis` must be an int; got {_describe(axis)}.")
    a = int(axis)
    if not -ndim <= a < ndim:
        raise ValueError(
            f"`axis`={a} is out of range for {array_name} with {ndim} dimension(s); "
            f"allowed: {-ndim} to {ndim - 1}."
        )
    return a % ndim


def check_ignore_index(ignore_index: object) -> int | None:
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"`ignore_index` must be an int or None; got {_describe(ignore_index)}.")
    value = int(ignore_index)
    if not -(2**63) <= value < 2**63:
        # labels are compared as int64: a larger value could never match one
        raise ValueError(
            f"`ignore_index` must fit in int64 ([-2**63, 2**63)), as labels are compared "
            f"as int64; got {value}."
        )
    return value


def as_parameter_array(
    value: object,
    name: str,
    xp: Namespace,
    like: Array,
    *,
    allow_scalar: bool = False,
) -> Array:
    """Convert a per-class / per-element parameter to an array like ``like``.

    Arrays must come from the same library as ``like``; Python sequences (and, where
    ``allow_scalar``, Python reals) are converted to its dtype and device.
    """
    if is_array(value):
        arr: Array = value
        other = array_namespace(arr)
        if other is not xp:
            raise TypeError(
                f"`{name}` is an array of {other.__name__} but `logits` is an array of "
                f"{xp.__name__}; all arrays must come from one library."
            )
        if not (dtype_is(xp, arr.dtype, "real floating") or dtype_is(xp, arr.dtype, "integral")):
            raise TypeError(f"`{name}` must have a real dtype; got dtype {arr.dtype}.")
        return xp.astype(arr, like.dtype)
    if isinstance(value, (str, bytes)) or not (
        isinstance(value, Sequence) or (allow_scalar and isinstance(value, numbers.Real))
    ):
        allowed = "an array, a Python float" if allow_scalar else "an array"
        raise TypeError(
            f"`{name}` must be {allowed} or a sequence of floats; got {_describe(value)}."
        )
    if not all(_is_real_leaf(v) for v in _leaves(value)):
        raise TypeError(f"`{name}` must hold real numbers only; got {_describe(value)}.")
    return xp.asarray(value, dtype=like.dtype, device=device(like))


def _leaves(value: object) -> list[object]:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _is_real_leaf(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_per_class(param: Array, name: str, num_classes: int) -> None:
    if param.ndim != 1 or param.shape[0] != num_classes:
        raise ValueError(
            f"`{name}` must have shape ({num_classes},), one value per class of `logits`; "
            f"got shape {tuple(param.shape)}."
        )


def known_size(n: Any) -> bool:
    """A dimension whose size is known (Dask gives None or NaN after boolean indexing)."""
    return n is not None and n == n


def same_shape(a: Any, b: Any) -> bool:
    """Whether two shapes are equal, an unknown size matching any size."""
    if a == b:
        return True
    return len(a) == len(b) and all(
        not (known_size(da) and known_size(db)) or da == db for da, db in zip(a, b, strict=True)
    )


def broadcasts_to(shape: tuple[Any, ...], target: tuple[Any, ...]) -> bool:
    """Whether ``shape`` broadcasts to ``target`` (NumPy's rules; an unknown size is
    taken as compatible, as the library will check it when it knows)."""
    if shape == target:  # (the common call, without a generator: 2-10 us in a loss)
        return True
    if len(shape) > len(target):
        return False
    return all(
        not (known_size(d) and known_size(t)) or d == 1 or d == t
        for d, t in zip(reversed(shape), reversed(target), strict=False)
    )


def check_broadcasts_to(shape: tuple[Any, ...], target: tuple[Any, ...], name: str) -> None:
    if not broadcasts_to(tuple(shape), tuple(target)):
        raise ValueError(
            f"`{name}` with shape {tuple(shape)} does not broadcast to the shape of "
            f"`logits` {tuple(target)}."
        )


def check_gamma(gamma: object, xp: Namespace, logits: Array, backend: Backend) -> float | Array:
    """gamma: a finite Python real >= 0, or an array broadcastable to ``logits``.

    Negative, infinite or NaN array entries raise where values are free to read, and
    give NaN elsewhere.
    """
    scalar = _scalar_gamma(gamma)
    if scalar is not None:
        return scalar
    g_arr = as_parameter_array(gamma, "gamma", xp, logits)
    check_broadcasts_to(tuple(g_arr.shape), tuple(logits.shape), "gamma")
    ok = (g_arr >= 0) & (g_arr < float("inf"))  # False for NaN too
    if backend.reads_values(logits):
        if not bool(xp.all(ok)):
            raise ValueError(
                f"`gamma` must be finite and >= 0 everywhere; got {_first_values(g_arr, ok, xp)}."
            )
        return g_arr
    return xp.where(ok, g_arr, xp.full_like(g_arr, float("nan")))


def check_alpha_array(alpha: Array, xp: Namespace, logits: Array, backend: Backend) -> Array:
    """Per-class alpha: class weights, finite and >= 0 (class-balanced weights sum to
    the number of classes, so entries above 1 are ordinary); raise on host arrays, NaN
    elsewhere."""
    ok = (alpha >= 0) & (alpha < float("inf"))  # False for NaN too
    if backend.reads_values(logits):
        if not bool(xp.all(ok)):
            raise ValueError(
                f"`alpha` entries are class weights and must be finite and >= 0; got "
                f"{_first_values(alpha, ok, xp)}."
            )
        return alpha
    return xp.where(ok, alpha, xp.full_like(alpha, float("nan")))


def check_probabilities(p: Array, xp: Namespace, backend: Backend) -> Array:
    """``logits`` holding probabilities (``from_logits=False``) must be in [0, 1].

    Raises on host arrays; elsewhere the out-of-range entries become NaN (a value
    outside [0, 1] has no log-probability, and PyTorch refuses it too).
    """
    ok = (p >= 0) & (p <= 1)
    if backend.reads_values(p):
        if not bool(xp.all(ok | (p != p))):  # NaN passes through to the result
            raise ValueError(
                "`logits` with from_logits=False must hold probabilities in [0, 1]; got "
                f"{_first_values(p, ok | (p != p), xp)}."
            )
        return p
    return xp.where(ok | (p != p), p, xp.full_like(p, float("nan")))


def _first_values(values: Array, ok: Array, xp: Namespace, count: int = 5) -> str:
    """The first few entries of ``values`` where ``ok`` is False (host arrays only)."""
    bad = xp.reshape(values, (-1,))[~xp.reshape(xp.broadcast_to(ok, values.shape), (-1,))]
    n = int(bad.shape[0])
    shown = ", ".join(repr(float(v)) for v in bad[: min(count, n)])
    return shown + (", ..." if n > count else "")


def check_options(
    reduction: object, smoothing: object, label_smoothing: object, from_logits: object
) -> float:
    """Validate the options every loss shares; return ``label_smoothing`` as a float.

    The common call (plainly valid options) is recognised first, in a fraction of a
    microsecond: a loss is called every training step, often on small batches.
    """
    if (
        type(label_smoothing) is float
        and 0.0 <= label_smoothing <= 1.0
        and type(from_logits) is bool
        and type(reduction) is str
        and reduction in REDUCTIONS
        and type(smoothing) is str
        and smoothing in SMOOTHINGS
    ):
        return label_smoothing
    check_choice(reduction, "reduction", REDUCTIONS)
    if isinstance(smoothing, str) or not (
        is_array(smoothing) or _is_sequence(smoothing) or _is_real_leaf(smoothing)
    ):
        check_choice(smoothing, "smoothing", SMOOTHINGS)  # else a prior, checked by family
    if not isinstance(from_logits, bool):
        raise TypeError(f"`from_logits` must be True or False; got {_describe(from_logits)}.")
    return check_unit_interval(label_smoothing, "label_smoothing")


def _is_sequence(value: object) -> bool:
    return isinstance(value, (list, tuple))


def check_where(where: Any, xp: Namespace, shape: tuple[Any, ...]) -> Array:
    """``where``: a boolean array of ``xp`` broadcastable to the per-element loss."""
    require_array(where, "where")
    if array_namespace(where) is not xp:
        raise TypeError(
            f"`where` is an array of {array_namespace(where).__name__}; the losses' "
            f"arrays are of {xp.__name__}."
        )
    if not dtype_is(xp, where.dtype, "bool"):
        raise TypeError(
            f"`where` must be a boolean mask of the elements that count; got dtype {where.dtype}."
        )
    check_broadcasts_to(tuple(where.shape), shape, "where")
    return where


def check_normalizer(normalizer: Any, reduction: str) -> float | Array:
    """``normalizer``: a positive finite Python float or a 0-d array, with ``"mean"``."""
    if reduction != "mean":
        raise ValueError(
            f'`normalizer` divides the sum of reduction="mean"; got reduction='
            f'{reduction!r} (leave `normalizer` None, or use "mean").'
        )
    if is_array(normalizer):
        if normalizer.ndim != 0:
            raise ValueError(
                f"`normalizer` must be a 0-d array or a float; got shape {tuple(normalizer.shape)}."
            )
        return normalizer
    if isinstance(normalizer, bool) or not isinstance(normalizer, numbers.Real):
        raise TypeError(
            f"`normalizer` must be a positive float or a 0-d array; got {_describe(normalizer)}."
        )
    v = float(normalizer)
    if not 0.0 < v < float("inf"):
        raise ValueError(f"`normalizer` must be positive and finite; got {normalizer!r}.")
    return v


def check_finite_float(value: object, name: str) -> float:
    """A finite Python real (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a finite Python float; got {_describe(value)}.")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    return v


def check_nonnegative_float(value: object, name: str) -> float:
    """A finite Python real >= 0 (bools refused)."""
    v = check_finite_float(value, name)
    if v < 0:
        raise ValueError(f"`{name}` must be >= 0; got {value!r}.")
    return v


def _scalar_gamma(gamma: object) -> Any:
    """A callable gamma as it is (called on p_t by the loss), a Python real as a
    checked float, None for anything else (an array, checked by the caller)."""
    if callable(gamma) and not hasattr(gamma, "shape"):  # (no array is callable)
        return gamma
    if isinstance(gamma, bool):
        raise TypeError(
            f"`gamma` must be a float >= 0, an array or a callable; got {_describe(gamma)}."
        )
    if isinstance(gamma, numbers.Real):
        g = float(gamma)
        if not g >= 0.0 or g == float("inf"):
            raise ValueError(f"`gamma` must be a finite float >= 0; got {gamma!r}.")
        return g
    return None


def check_gamma_option(gamma: object) -> None:
    """gamma given to a module: a finite Python real >= 0, a callable, or an array
    (whose entries are checked when the loss is called)."""
    _scalar_gamma(gamma)


def check_asymmetric_options(
    gamma_pos: object, gamma_neg: object, clip: object
) -> tuple[float, float, float]:
    """The asymmetric loss's focusing parameters (finite, >= 0) and margin in [0, 1)."""
    g_pos = check_nonnegative_float(gamma_pos, "gamma_pos")
    g_neg = check_nonnegative_float(gamma_neg, "gamma_neg")
    m = check_nonnegative_float(clip, "clip")
    if not m < 1.0:
        raise ValueError(f"`clip` must be in [0, 1); got {clip!r}.")
    return g_pos, g_neg, m


def check_loss_options(options: dict[str, Any], *, array_alpha: bool = False) -> None:
    """What a loss object (a PyTorch module, a Keras loss) checks at construction, by
    option name, before it has seen an array: the options every loss shares
    (:func:`check_options`; ``reduction`` is ``"none"`` where the framework reduces),
    ``alpha`` in [0, 1] (a per-class array instead where ``array_alpha``), ``gamma``,
    ``poly_epsilon`` and the asymmetric loss's ``gamma_pos``, ``gamma_neg`` and
    ``clip``. Array values are checked when the loss is called, as in the function."""
    check_options(
        options.get("reduction", "none"),
        options.get("smoothing", "uniform"),
        options.get("label_smoothing", 0.0),
        options.get("from_logits", True),
    )
    alpha = options.get("alpha")
    if alpha is not None and (isinstance(alpha, numbers.Real) or not array_alpha):
        check_unit_interval(alpha, "alpha")  # (a per-class array: checked when called)
    if "gamma" in options:
        check_gamma_option(options["gamma"])
    if "poly_epsilon" in options:
        check_finite_float(options["poly_epsilon"], "poly_epsilon")
    if "gamma_pos" in options:
        check_asymmetric_options(options["gamma_pos"], options["gamma_neg"], options["clip"])


def check_binary_targets(targets: Array, shape: tuple[Any, ...], xp: Namespace, kind: str) -> None:
    """Targets of a binary loss or metric: a real floating, integer or bool dtype
    (``kind`` says which in the message), broadcastable to ``shape``."""
    if not (
        dtype_is(xp, targets.dtype, "real floating")
        or dtype_is(xp, targets.dtype, "integral")
        or dtype_is(xp, targets.dtype, "bool")
    ):
        raise TypeError(f"`targets` must be {kind}; got dtype {targets.dtype}.")
    check_broadcasts_to(tuple(targets.shape), shape, "targets")
