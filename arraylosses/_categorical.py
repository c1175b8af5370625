"""Softmax losses: cross-entropy and softmax focal loss."""

from __future__ import annotations

import numbers
from types import ModuleType
from typing import Any

from . import _fastpaths
from ._compat import (
    is_array_api_strict_namespace,
    is_dask_namespace,
    is_torch_namespace,
    is_torch_tensor,
    quiet_overflow,
)
from ._primitives import clamped_log, log_softmax, modulating_factor
from ._reduction import as_result, nan_where_invalid, reduce_loss
from ._smoothing import as_index_array, label_validity, one_hot_mask, smoothing_coefficients
from ._validation import (
    as_parameter_array,
    check_alpha_array,
    check_axis,
    check_gamma,
    check_ignore_index,
    check_logits,
    check_options,
    check_per_class,
    check_probabilities,
    check_unit_interval,
    compute_dtype,
    is_eager_host,
    namespace_of,
)

Array = Any


def _has_take_along_axis(xp: ModuleType) -> bool:
    if is_dask_namespace(xp):
        return False
    if is_array_api_strict_namespace(xp):
        # the attribute exists but raises below API version 2024.12
        return str(getattr(xp, "__array_api_version__", "0")) >= "2024.12"
    return hasattr(xp, "take_along_axis")


def take_class(values: Array, labels: Array, axis: int, xp: ModuleType) -> Array:
    """``values`` at index ``labels`` along ``axis`` (which is removed).

    ``labels`` must already be in range. Uses the namespace's gather where it has one;
    Dask has none, and a comparison mask keeps it lazy.
    """
    index = xp.expand_dims(labels, axis=axis)
    if is_torch_namespace(xp):
        import torch

        return torch.gather(values, axis, index.long()).squeeze(axis)
    if _has_take_along_axis(xp):
        return xp.squeeze(xp.take_along_axis(values, index, axis=axis), axis=axis)
    mask = one_hot_mask(labels, values.shape[axis], axis, xp)
    return xp.sum(xp.where(mask, values, xp.zeros_like(values)), axis=axis)


def class_values(vector: Array, labels: Array, xp: ModuleType) -> Array:
    """``vector[labels]`` for a per-class vector and in-range labels of any shape."""
    flat = xp.take(vector, xp.reshape(labels, (-1,)), axis=0)
    return xp.reshape(flat, tuple(labels.shape))


def along_axis(vector: Array, axis: int, ndim: int, xp: ModuleType) -> Array:
    """Reshape a per-class vector to broadcast along ``axis`` of an ``ndim`` array."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return xp.reshape(vector, tuple(shape))


class _SoftmaxInputs:
    """Validated inputs of a softmax loss: logits in compute dtype, targets split by kind.

    Integer targets are class indices (``labels``); anything else is a distribution
    along ``axis`` (``dist``).
    """

    def __init__(
        self,
        logits: Array,
        targets: Array,
        axis: object,
        ignore_index: object,
        label_smoothing: object,
        smoothing: object,
        from_logits: object,
        reduction: object,
    ) -> None:
        xp = namespace_of([("logits", logits), ("targets", targets)])
        check_logits(logits, xp)
        eps = check_options(reduction, smoothing, label_smoothing, from_logits)
        ax = check_axis(axis, logits.ndim)
        ignore = check_ignore_index(ignore_index)
        self.xp, self.axis = xp, ax
        self.num_classes = k = int(logits.shape[ax])
        self.out_dtype = logits.dtype
        if k == 0:
            raise ValueError(
                f"`logits` has no classes: axis {ax} of shape {tuple(logits.shape)} is empty."
            )
        dtype = compute_dtype(xp, logits.dtype, logits)
        x = logits if dtype == logits.dtype else xp.astype(logits, dtype)
        self.x = x if from_logits else check_probabilities(x, xp)
        # bfloat16 computed in float32 (no float64 on this backend): a logit gap of
        # max - (-max) overflows to -inf, and 0 * -inf would be NaN; clip instead.
        self.clip_log_probs = "bfloat16" in str(logits.dtype) and dtype == xp.float32
        self.a, self.b = smoothing_coefficients(eps, k, str(smoothing))
        self.from_logits = bool(from_logits)
        self.reduction = str(reduction)
        self.labels: Array | None = None
        self.dist: Array | None = None
        self.keep: Array | None = None  # labels neither ignored nor out of range
        self.ignored: Array | None = None
        self.valid: Array | None = None  # None, or False where a label was out of range
        expected = tuple(logits.shape[:ax]) + tuple(logits.shape[ax + 1 :])
        if xp.isdtype(targets.dtype, "integral"):
            if tuple(targets.shape) != expected:
                raise ValueError(
                    f"integer `targets` (class indices) must have the shape of `logits` "
                    f"without axis {ax}, {expected}; got {tuple(targets.shape)} "
                    f"(`logits` has shape {tuple(logits.shape)})."
                )
            targets = as_index_array(targets, xp)
            in_range = label_validity(targets, k, ignore, xp, "targets")
            keep, acceptable = in_range, in_range
            if ignore is not None:
                self.ignored = targets == ignore
                keep = in_range & ~self.ignored
                acceptable = in_range | self.ignored
            self.keep = keep
            # On host arrays label_validity has already raised for bad labels; elsewhere
            # their elements become NaN.
            self.valid = None if is_eager_host(targets, xp) else acceptable
            self.labels = xp.where(keep, targets, xp.zeros_like(targets))
        else:
            if ignore is not None:
                raise ValueError(
                    f"`ignore_index`={ignore} applies to integer class-index targets only; "
                    f"`targets` has dtype {targets.dtype}."
                )
            if not (
                xp.isdtype(targets.dtype, "real floating") or xp.isdtype(targets.dtype, "bool")
            ):
                raise TypeError(
                    f"`targets` must be integer class indices or a real floating "
                    f"distribution; got dtype {targets.dtype}."
                )
            if tuple(targets.shape) != tuple(logits.shape):
                raise ValueError(
                    f"`targets` as a distribution must have the shape of `logits` "
                    f"{tuple(logits.shape)}; got {tuple(targets.shape)}."
                )
            q = xp.astype(targets, dtype)
            self.dist = q if self.b == 0.0 else self.a * q + self.b

    def log_probs(self) -> Array:
        if not self.from_logits:
            return clamped_log(self.x, self.xp)
        log_p = log_softmax(self.x, self.axis, self.xp)
        if self.clip_log_probs:
            log_p = self.xp.clip(log_p, min=-float(self.xp.finfo(log_p.dtype).max))
        return log_p

    def per_class(self, value: object, name: str) -> Array:
        arr = as_parameter_array(value, name, self.xp, self.x)
        check_per_class(arr, name, self.num_classes)
        return arr

    def broadcast_class(self, vector: Array) -> Array:
        return along_axis(vector, self.axis, self.x.ndim, self.xp)

    def finish(self, loss: Array, denominator: Array | int | None = None) -> Array:
        xp = self.xp
        if self.ignored is not None:
            loss = xp.where(self.ignored, xp.zeros_like(loss), loss)
        loss = nan_where_invalid(loss, self.valid, xp)
        if denominator is None and self.keep is not None and self.ignored is not None:
            denominator = xp.sum(xp.astype(self.keep, loss.dtype))
        return as_result(reduce_loss(loss, self.reduction, xp, denominator), self.out_dtype, xp)


@quiet_overflow
def cross_entropy(
    logits: Array,
    targets: Array,
    /,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> Array:
    r"""Softmax cross-entropy with class weights, ignored labels and label smoothing.

    With ``log p = log_softmax(x)`` along ``axis``, ``q'`` the (smoothed) target
    distribution and ``w`` the class weights:

    .. math::

        \ell = -\sum_c w_c\, q'_c \log p_c

    For integer targets ``q`` is the one-hot of the label and ``"mean"`` divides by the
    summed weight ``sum_i w[y_i]`` of the non-ignored targets (smoothing term included);
    for distribution targets ``"mean"`` divides by the number of elements. These are
    PyTorch's rules: for ``smoothing="uniform"`` the result is
    ``torch.nn.functional.cross_entropy(input, target, weight, ignore_index=...,
    reduction=..., label_smoothing=...)`` with the class axis moved to 1. Integer
    targets never materialise a one-hot: the label's log-probability is gathered.

    Parameters
    ----------
    logits : array
        ``[..., num_classes, ...]`` real floating logits with the classes along
        ``axis`` (a distribution if ``from_logits=False``; log clamped at -100).
    targets : array
        Integer class indices of shape ``logits.shape`` without ``axis``, or a
        floating (or bool) distribution of shape ``logits.shape``.
    axis : int, default -1
        Class axis; PyTorch's ``(N, C, d1, ...)`` layout is ``axis=1``.
    weight : array or sequence, optional
        ``[num_classes]`` class weights.
    ignore_index : int, optional
        Integer targets equal to it contribute 0 and are left out of the mean.
    label_smoothing : float, default 0.0
        Smoothing strength ``eps`` in ``[0, 1]``; 0 disables smoothing.
    smoothing : {"uniform", "others"}, default "uniform"
        ``"uniform"``: ``q' = (1 - eps) q + eps/K``; ``"others"``: the true class keeps
        ``1 - eps`` and the others share ``eps`` (see :func:`smooth_labels`).
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: its mean
        (see Returns for the denominator).

    Returns
    -------
    array
        ``logits.shape`` without ``axis`` for ``"none"`` (ignored elements are 0),
        0-d otherwise; dtype, library and device of ``logits``. All targets ignored
        gives NaN under ``"mean"``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> logits = xp.asarray([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> labels = xp.asarray([0, 2])
    >>> [round(float(v), 6) for v in al.cross_entropy(logits, labels, reduction="none")]
    [0.239545, 1.098612]

    References
    ----------
    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016 (label smoothing).
    """
    if is_torch_tensor(logits):
        out = _fastpaths.torch_cross_entropy(
            logits,
            targets,
            axis,
            weight,
            ignore_index,
            label_smoothing,
            smoothing,
            from_logits,
            reduction,
        )
        if out is not None:
            return out
    inputs = _SoftmaxInputs(
        logits, targets, axis, ignore_index, label_smoothing, smoothing, from_logits, reduction
    )
    xp, ax = inputs.xp, inputs.axis
    log_p = inputs.log_probs()
    w = None if weight is None else inputs.per_class(weight, "weight")
    if inputs.labels is None:
        q = inputs.dist
        if w is not None:
            q = inputs.broadcast_class(w) * q
        return inputs.finish(-xp.sum(q * log_p, axis=ax))
    labels = inputs.labels
    picked = take_class(log_p, labels, ax, xp)
    denominator: Array | int | None = None
    if w is None:
        loss = -inputs.a * picked
        if inputs.b != 0.0:
            loss = loss - inputs.b * xp.sum(log_p, axis=ax)
    else:
        w_label = class_values(w, labels, xp)
        loss = -inputs.a * w_label * picked
        if inputs.b != 0.0:
            loss = loss - inputs.b * xp.sum(inputs.broadcast_class(w) * log_p, axis=ax)
        assert inputs.keep is not None
        denominator = xp.sum(xp.where(inputs.keep, w_label, xp.zeros_like(w_label)))
    return inputs.finish(loss, denominator)


@quiet_overflow
def softmax_focal_loss(
    logits: Array,
    targets: Array,
    /,
    *,
    alpha: float | Array | None = None,
    gamma: float | Array = 2.0,
    axis: int = -1,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> Array:
    r"""Multi-class (softmax) focal loss (Lin et al. 2017).

    With ``p = softmax(x)`` along ``axis`` and ``q'`` the (smoothed) target
    distribution:

    .. math::

        \ell = -\sum_c \alpha_c\, q'_c\, (1 - p_c)^\gamma \log p_c

    ``alpha_c`` is 1 (``alpha=None``), a constant (float) or ``alpha[c]`` (per-class).
    Unlike ``cross_entropy``'s ``weight``, alpha never changes the ``"mean"``
    denominator (as in torchvision, Keras and kornia): the mean is over non-ignored
    elements. With ``gamma = 0`` and ``alpha=None`` it equals :func:`cross_entropy`;
    with a float alpha it is Keras's ``categorical_focal_crossentropy`` (without Keras's
    1e-7 probability clip). ``1 - p_c`` is computed as ``-expm1(log p_c)``, accurate
    for confident predictions, and gradients are finite for every ``gamma >= 0``.

    Parameters
    ----------
    logits : array
        ``[..., num_classes, ...]`` real floating logits (probabilities if
        ``from_logits=False``).
    targets : array
        Integer class indices (``logits.shape`` without ``axis``) or a distribution of
        shape ``logits.shape``.
    alpha : float, array, sequence or None, default None
        Class balancing: a float in ``[0, 1]`` or ``[num_classes]`` per-class weights.
    gamma : float or array, default 2.0
        Focusing parameter ``>= 0`` or an array broadcastable to ``logits``.
    axis : int, default -1
    ignore_index : int, optional
    label_smoothing : float, default 0.0
        Smoothing strength ``eps`` in ``[0, 1]``; 0 disables smoothing.
    smoothing : {"uniform", "others"}, default "uniform"
        ``"uniform"``: ``q' = (1 - eps) q + eps/K``; ``"others"``: the true class keeps
        ``1 - eps`` and the others share ``eps`` (see :func:`smooth_labels`).
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: its mean
        (see Returns for the denominator).

    Returns
    -------
    array
        ``logits.shape`` without ``axis`` for ``"none"``, 0-d otherwise; dtype, library
        and device of ``logits``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> logits = xp.asarray([[2.0, 0.0, 0.0]])
    >>> round(float(al.softmax_focal_loss(logits, xp.asarray([0]))), 6)
    0.010869

    References
    ----------
    Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object Detection",
    ICCV 2017.
    """
    inputs = _SoftmaxInputs(
        logits, targets, axis, ignore_index, label_smoothing, smoothing, from_logits, reduction
    )
    xp, ax, x = inputs.xp, inputs.axis, inputs.x
    g = check_gamma(gamma, xp, x)
    if alpha is None or isinstance(alpha, numbers.Real):  # bool: refused below
        alpha_scalar = None if alpha is None else check_unit_interval(alpha, "alpha")
        alpha_vec = None
    else:
        alpha_scalar = None
        alpha_vec = check_alpha_array(inputs.per_class(alpha, "alpha"), xp, x)
    log_p = inputs.log_probs()
    labels = inputs.labels
    if labels is None or inputs.b != 0.0 or not isinstance(g, float):
        base = -xp.expm1(log_p) if inputs.from_logits else 1 - x
        full = modulating_factor(base, g, xp) * log_p
        if alpha_vec is not None:
            full = inputs.broadcast_class(alpha_vec) * full
        if labels is None:
            loss = -xp.sum(inputs.dist * full, axis=ax)
        else:
            loss = -(inputs.a * take_class(full, labels, ax, xp) + inputs.b * xp.sum(full, axis=ax))
    else:
        # Hard labels without smoothing: only the label's class contributes.
        picked = take_class(log_p, labels, ax, xp)
        base = -xp.expm1(picked) if inputs.from_logits else 1 - take_class(x, labels, ax, xp)
        loss = -(modulating_factor(base, g, xp) * picked)
        if alpha_vec is not None:
            loss = class_values(alpha_vec, labels, xp) * loss
    if alpha_scalar is not None:
        loss = alpha_scalar * loss
    return inputs.finish(loss)
