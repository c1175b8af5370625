"""One-hot encoding and label smoothing: the two conventions and an arbitrary prior."""

from __future__ import annotations

import numbers

from ._backends import Backend, backend_of, device
from ._compat import default_dtype
from ._typing import Array, DType, Namespace
from ._validation import (
    SMOOTHINGS,
    _describe,
    _first_values,
    as_parameter_array,
    check_axis,
    check_broadcasts_to,
    check_choice,
    check_dtype,
    check_per_class,
    check_unit_interval,
    dtype_is,
    namespace_of,
)


def smoothing_coefficients(
    epsilon: float, num_classes: int, smoothing: str, name: str = "label_smoothing"
) -> tuple[float, float]:
    """``(a, b)`` such that the smoothed target is ``q' = a * q + b``.

    ``"uniform"`` (Szegedy et al. 2016): ``q' = (1 - eps) q + eps / K``.
    ``"others"``: the true class keeps ``1 - eps`` and each of the ``K - 1`` others gets
    ``eps / (K - 1)``, i.e. ``q' = (1 - eps) q + eps (1 - q) / (K - 1)``.
    Both keep ``sum(q') == sum(q)`` for a distribution: ``a + b K == 1``.
    """
    if epsilon == 0.0:
        return 1.0, 0.0
    if smoothing == "uniform":
        return 1.0 - epsilon, epsilon / num_classes
    if num_classes < 2:
        raise ValueError(
            f'`smoothing`="others" spreads `{name}` over the other classes and '
            f"needs at least 2 classes; got {num_classes} class(es) with "
            f"{name}={epsilon!r}."
        )
    share = epsilon / (num_classes - 1)
    return 1.0 - epsilon - share, share


def is_prior(smoothing: object) -> bool:
    """Whether ``smoothing`` names a convention (a string) or is a prior."""
    return not isinstance(smoothing, str)


def class_prior(
    value: object, num_classes: int, xp: Namespace, like: Array, backend: Backend
) -> Array:
    """``smoothing`` given as a prior over the K classes: non-negative, summing to 1
    (checked where values are free to read; NaN elsewhere)."""
    u = as_parameter_array(value, "smoothing", xp, like)
    check_per_class(u, "smoothing", num_classes)
    ok = u >= 0
    total = xp.sum(u)
    # the prior's own rounding: K entries of its dtype (a float32 prior summed in
    # float64 is off by float32's rounding, not float64's)
    given = getattr(value, "dtype", None)
    eps = float(xp.finfo(u.dtype).eps)
    if given is not None and dtype_is(xp, given, "real floating"):
        eps = max(eps, float(xp.finfo(given).eps))
    tolerance = 4.0 * num_classes * eps
    if backend.reads_values(u):
        if not bool(xp.all(ok)):
            raise ValueError(
                f"`smoothing` as a prior must be non-negative; got {_first_values(u, ok, xp)}."
            )
        if not abs(float(total) - 1.0) <= tolerance:
            raise ValueError(
                f"`smoothing` as a prior must sum to 1 over the {num_classes} classes; got "
                f"sum {float(total):.9g}."
            )
        return u
    good = xp.all(ok) & (xp.abs(total - 1.0) <= tolerance)
    return xp.where(good, u, xp.full_like(u, float("nan")))


def binary_prior(value: object, xp: Namespace, like: Array, backend: Backend) -> Array:
    """``smoothing`` given as the prior of the positive class, per element: in [0, 1],
    broadcastable to ``logits``."""
    u = as_parameter_array(value, "smoothing", xp, like, allow_scalar=True)
    check_broadcasts_to(tuple(u.shape), tuple(like.shape), "smoothing")
    ok = (u >= 0) & (u <= 1)
    if backend.reads_values(u):
        if not bool(xp.all(ok)):
            raise ValueError(
                f"`smoothing` as the positive class's prior must be in [0, 1]; got "
                f"{_first_values(u, ok, xp)}."
            )
        return u
    return xp.where(ok, u, xp.full_like(u, float("nan")))


def check_floating_dtype(dtype: object, xp: Namespace) -> None:
    check_dtype(dtype, xp)
    if not xp.isdtype(dtype, "real floating"):
        raise TypeError(f"`dtype` must be a real floating dtype; got {dtype}.")


def check_num_classes(num_classes: object) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"`num_classes` must be a positive int; got {_describe(num_classes)}.")
    k = int(num_classes)
    if k < 1:
        raise ValueError(f"`num_classes` must be >= 1; got {k}.")
    return k


def label_validity(
    labels: Array,
    num_classes: int,
    ignore_index: int | None,
    xp: Namespace,
    name: str,
    backend: Backend,
) -> Array:
    """Boolean mask of labels in ``[0, num_classes)``; raises on eager host arrays.

    Labels equal to ``ignore_index`` are neither valid nor an error. On eager host
    arrays an out-of-range label raises ValueError; elsewhere the mask is returned so
    the caller can turn those elements into NaN.
    """
    valid = (labels >= 0) & (labels < num_classes)
    if backend.reads_values(labels) and not bool(xp.all(valid)):
        _refuse_out_of_range(labels, num_classes, ignore_index, xp, name)
    return valid


def check_label_range(
    labels: Array,
    num_classes: int,
    ignore_index: int | None,
    xp: Namespace,
    name: str,
    backend: Backend,
) -> None:
    """Raise ValueError for labels outside ``[0, num_classes)`` that are not
    ``ignore_index`` (only called where the backend reads values for free): the
    backend's fast range check, and the details only when it fails."""
    if not backend.labels_in_range(labels, num_classes, xp):
        _refuse_out_of_range(labels, num_classes, ignore_index, xp, name)


def _refuse_out_of_range(
    labels: Array, num_classes: int, ignore_index: int | None, xp: Namespace, name: str
) -> None:
    """Raise for the out-of-range labels that are not ``ignore_index``, naming them
    (some label is known to be out of range)."""
    labels = as_index_array(labels, xp)  # uint8 == -100 would wrap around
    valid = (labels >= 0) & (labels < num_classes)
    ok = valid if ignore_index is None else valid | (labels == ignore_index)
    if not bool(xp.all(ok)):
        bad = xp.reshape(labels, (-1,))[~xp.reshape(ok, (-1,))]
        n = int(bad.shape[0])
        shown = ", ".join(str(int(v)) for v in bad[: min(5, n)])
        more = ", ..." if n > 5 else ""
        suffix = "" if ignore_index is None else f" that are not ignore_index={ignore_index}"
        raise ValueError(
            f"`{name}` holds class indices outside [0, {num_classes}){suffix}: {shown}{more}."
        )


def as_index_array(labels: Array, xp: Namespace) -> Array:
    """Labels widened to the default integer dtype (int64; int32 on JAX without x64).

    Comparing uint8 segmentation masks with ``arange(K)`` in their own dtype wraps
    around for K > 255, and ``ignore_index=-100`` does not fit an unsigned dtype.
    """
    if labels.dtype == xp.int64:
        # the default everywhere int64 exists (JAX without x64 has none: its labels
        # are int32 and take the lookup below), so the common call skips it
        return labels
    index_dtype = default_dtype(xp, "indexing", device=device(labels))
    return labels if labels.dtype == index_dtype else xp.astype(labels, index_dtype)


def encode_one_hot(
    labels: Array, num_classes: int, axis: int, dtype: DType, xp: Namespace, name: str
) -> Array:
    backend = backend_of(xp)
    labels = as_index_array(labels, xp)
    valid = label_validity(labels, num_classes, None, xp, name, backend)
    safe = xp.where(valid, labels, xp.zeros_like(labels))
    encoded = backend.one_hot(safe, num_classes, dtype, xp)
    # Out-of-range labels (only reachable where values cannot be checked): a NaN row,
    # or an all-zero row for a non-floating dtype.
    invalid_fill = float("nan") if xp.isdtype(dtype, "real floating") else 0
    encoded = xp.where(valid[..., None], encoded, xp.full_like(encoded, invalid_fill))
    return backend.move_axis(encoded, -1, axis, xp)


def one_hot(
    labels: Array, num_classes: int, /, *, axis: int = -1, dtype: DType | None = None
) -> Array:
    r"""One-hot encode integer class labels.

    .. math::

        \mathrm{out}[\dots, c, \dots] = [\,\mathrm{labels}[\dots] = c\,],
        \qquad c = 0, \dots, K - 1

    with the new class axis of length ``K = num_classes`` inserted at ``axis``.

    Parameters
    ----------
    labels : array
        Integer class indices of any shape ``[...]``, each in ``[0, num_classes)``.
    num_classes : int
        Number of classes ``K``.
    axis : int, default -1
        Where the class axis goes in the result (an axis of the result, which has one
        more dimension than ``labels``).
    dtype : dtype, optional
        Result dtype; ``None`` means the namespace's default real floating dtype.

    Returns
    -------
    array
        ``labels.shape`` with ``K`` inserted at ``axis``; same library and device as
        ``labels``.

    Raises
    ------
    TypeError
        If ``labels`` is not an integer array.
    ValueError
        If a label is outside ``[0, num_classes)`` and the array lives in host memory
        (NumPy, array-api-strict, eager CPU PyTorch). Where checking would need a
        device sync or break tracing (GPU, JAX, ``torch.compile``, Dask), the row of an
        out-of-range label is NaN instead (all zeros for a non-floating ``dtype``).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> al.one_hot(xp.asarray([2, 0]), 3)
    Array([[0., 0., 1.],
           [1., 0., 0.]], dtype=array_api_strict.float64)
    """
    xp = namespace_of([("labels", labels)])
    if not xp.isdtype(labels.dtype, "integral"):
        raise TypeError(f"`labels` must have an integer dtype; got dtype {labels.dtype}.")
    k = check_num_classes(num_classes)
    ax = check_axis(axis, labels.ndim + 1, "the one-hot result")
    if dtype is None:
        dtype = default_dtype(xp, device=device(labels))
    check_dtype(dtype, xp)
    return encode_one_hot(labels, k, ax, dtype, xp, "labels")


def smooth_labels(
    targets: Array,
    epsilon: float,
    /,
    *,
    num_classes: int | None = None,
    axis: int = -1,
    smoothing: str | Array = "uniform",
    dtype: DType | None = None,
) -> Array:
    r"""Smooth hard or soft class targets (Szegedy et al. 2016).

    With ``K`` classes and target distribution ``q`` along ``axis``:

    .. math::

        \text{uniform:}\quad q' = (1 - \varepsilon)\, q + \varepsilon / K

        \text{others:}\quad q' = (1 - \varepsilon)\, q + \varepsilon\,(1 - q) / (K - 1)

    ``"uniform"`` is PyTorch's, optax's and Keras's convention (the true class ends at
    ``1 - eps + eps/K``); ``"others"`` is fairseq's (the true class keeps exactly
    ``1 - eps``, every other class gets ``eps / (K - 1)``).

    Parameters
    ----------
    targets : array
        Integer class labels of shape ``[...]`` (then ``num_classes`` is required and
        the class axis is inserted at ``axis``), or a floating distribution with the
        class axis at ``axis``.
    epsilon : float
        Smoothing strength in ``[0, 1]``.
    num_classes : int, optional
        ``K``; required for integer labels, checked against ``targets.shape[axis]``
        for distributions.
    axis : int, default -1
        The class axis (of the result).
    smoothing : {"uniform", "others"} or array, default "uniform"
        The convention, or a prior ``u`` over the K classes (an array or sequence,
        non-negative, summing to 1): ``q' = (1 - eps) q + eps u``. ``"uniform"`` is the
        prior ``1/K``.
    dtype : dtype, optional
        ``None``: the namespace's default real floating dtype for integer (or bool)
        input, the input's dtype otherwise.

    Returns
    -------
    array
        Smoothed distribution, summing to the input's sum along ``axis``.

    Raises
    ------
    ValueError
        Missing ``num_classes`` for integer labels, ``epsilon`` outside ``[0, 1]``,
        unknown ``smoothing``, ``"others"`` with one class, out-of-range labels on host
        arrays (NaN rows elsewhere, as in :func:`one_hot`).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> al.smooth_labels(xp.asarray([1]), 0.3, num_classes=3, smoothing="others")
    Array([[0.15, 0.7 , 0.15]], dtype=array_api_strict.float64)

    References
    ----------
    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016, section 7.
    """
    xp = namespace_of([("targets", targets)])
    eps = check_unit_interval(epsilon, "epsilon")
    if not is_prior(smoothing):
        check_choice(smoothing, "smoothing", SMOOTHINGS)
    if xp.isdtype(targets.dtype, "integral"):
        if num_classes is None:
            raise ValueError(
                "`num_classes` is required when `targets` holds integer class labels "
                f"(dtype {targets.dtype}); got None."
            )
        k = check_num_classes(num_classes)
        ax = check_axis(axis, targets.ndim + 1, "the smoothed result")
        if dtype is None:
            dtype = default_dtype(xp, device=device(targets))
        check_floating_dtype(dtype, xp)
        q = encode_one_hot(targets, k, ax, dtype, xp, "targets")
    else:
        if targets.ndim == 0:
            raise ValueError("`targets` as a distribution needs a class axis; got a 0-d array.")
        ax = check_axis(axis, targets.ndim, "`targets`")
        k = int(targets.shape[ax])
        if num_classes is not None and check_num_classes(num_classes) != k:
            raise ValueError(
                f"`num_classes`={num_classes} does not match `targets`, which has {k} "
                f"classes along axis {axis} (shape {tuple(targets.shape)})."
            )
        if dtype is None:
            is_float = xp.isdtype(targets.dtype, "real floating")
            dtype = targets.dtype if is_float else default_dtype(xp, device=device(targets))
        check_floating_dtype(dtype, xp)
        q = xp.astype(targets, dtype)
    if is_prior(smoothing):
        u = class_prior(smoothing, k, xp, q, backend_of(xp))
        if eps == 0.0:
            return q
        shape = [1] * q.ndim
        shape[ax] = k
        return (1.0 - eps) * q + eps * xp.reshape(u, tuple(shape))
    a, b = smoothing_coefficients(eps, k, str(smoothing), "epsilon")
    if b == 0.0:
        return q
    return a * q + b
