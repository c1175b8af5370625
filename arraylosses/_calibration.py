"""Calibration error: how far a classifier's confidence is from its accuracy."""

from __future__ import annotations

from ._backends import backend_of, device, quiet_overflow
from ._primitives import log_sigmoid_pair
from ._reduction import safe_divide
from ._smoothing import check_label_range
from ._typing import Array, Namespace
from ._validation import (
    check_axis,
    check_binary_targets,
    check_choice,
    check_logits,
    dtype_is,
    namespace_of,
    same_shape,
)

NORMS = ("l1", "l2", "max")
TASKS = ("multiclass", "binary")


@quiet_overflow
def calibration_error(
    logits: Array,
    targets: Array,
    /,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    task: str = "multiclass",
    axis: int = -1,
    from_logits: bool = True,
) -> Array:
    r"""Expected, root-mean-square or maximum calibration error, with equal-width bins.

    A classifier is calibrated when, among the predictions made with confidence
    ``c``, a fraction ``c`` is right. The confidences are split into ``n_bins``
    equal-width bins ``[b/n, (b+1)/n)`` over ``[0, 1]`` (the last one closed); with
    ``n_b`` predictions in bin ``b`` out of ``N``, ``acc_b`` their accuracy and
    ``conf_b`` their mean confidence:

    .. math::

        \mathrm{ECE} = \sum_b \frac{n_b}{N} |acc_b - conf_b|, \quad
        \mathrm{RMSCE} = \Big(\sum_b \frac{n_b}{N} (acc_b - conf_b)^2\Big)^{1/2}, \quad
        \mathrm{MCE} = \max_{b:\, n_b > 0} |acc_b - conf_b|

    ``task="multiclass"``: the confidence is the top-label probability
    ``max_c softmax(x)_c`` along ``axis``, right when the arg-max is the integer
    label. ``task="binary"``: the confidence is ``p = sigmoid(x)``, the positive
    class's probability, and the outcome is the 0/1 target. These are torchmetrics'
    ``multiclass_calibration_error`` / ``binary_calibration_error`` (which give a
    confidence of exactly 1 a bin of its own). Nothing is read on the device: the
    result stays lazy on Dask and works under ``jax.jit``.

    Parameters
    ----------
    logits : array
        ``[..., num_classes, ...]`` logits (multiclass, classes along ``axis``) or
        ``[...]`` logits (binary); probabilities with ``from_logits=False``.
    targets : array
        Integer labels of shape ``logits.shape`` without ``axis`` (multiclass), or 0/1
        targets (float, bool or integer) broadcastable to ``logits`` (binary).
    n_bins : int, default 15
        Number of equal-width confidence bins, >= 1.
    norm : {"l1", "l2", "max"}, default "l1"
        ECE, RMSCE or MCE.
    task : {"multiclass", "binary"}, default "multiclass"
    axis : int, default -1
        Class axis (multiclass).
    from_logits : bool, default True
        False: ``logits`` holds probabilities.

    Returns
    -------
    array
        0-d, in ``[0, 1]``; dtype, library and device of ``logits``. Empty input gives
        NaN; so do labels out of range where they cannot be read (they raise on eager
        host arrays).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> probs = xp.asarray([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    >>> labels = xp.asarray([0, 1, 1])
    >>> round(float(al.calibration_error(probs, labels, n_bins=2, from_logits=False)), 6)
    0.066667

    References
    ----------
    Naeini, Cooper, Hauskrecht, "Obtaining Well Calibrated Probabilities Using
    Bayesian Binning", AAAI 2015; Guo, Pleiss, Sun, Weinberger, "On Calibration of
    Modern Neural Networks", ICML 2017, section 2.
    """
    xp = namespace_of([("logits", logits), ("targets", targets)])
    backend = backend_of(xp)
    check_logits(logits, xp)
    check_choice(task, "task", TASKS)
    check_choice(norm, "norm", NORMS)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"`n_bins` must be a positive int; got {n_bins!r}.")
    if not isinstance(from_logits, bool):
        raise TypeError(f"`from_logits` must be True or False; got {from_logits!r}.")
    dtype = backend.compute_dtype(logits.dtype, logits, xp)
    x = logits if dtype == logits.dtype else xp.astype(logits, dtype)
    valid = None
    if task == "multiclass":
        if logits.ndim == 0:
            raise ValueError("`logits` needs a class axis for task='multiclass'; got a 0-d array.")
        ax = check_axis(axis, logits.ndim) % logits.ndim
        expected = tuple(logits.shape[:ax] + logits.shape[ax + 1 :])
        if not dtype_is(xp, targets.dtype, "integral"):
            raise TypeError(
                f"`targets` must be integer class labels for task='multiclass'; got dtype "
                f"{targets.dtype} (for 0/1 outcomes use task='binary')."
            )
        if not same_shape(targets.shape, expected):
            raise ValueError(
                f"`targets` must have the shape of `logits` without axis {ax}, {expected}; "
                f"got {tuple(targets.shape)}."
            )
        k = int(logits.shape[ax])
        if backend.reads_values(targets):
            check_label_range(targets, k, None, xp, "targets", backend)
        else:
            valid = xp.all((targets >= 0) & (targets < k))
        top = xp.max(x, axis=ax)
        if from_logits:  # max softmax = 1 / sum(exp(x - max))
            conf = 1.0 / xp.sum(xp.exp(x - xp.expand_dims(top, axis=ax)), axis=ax)
        else:
            conf = top
        predicted = xp.argmax(x, axis=ax)
        outcome = xp.astype(predicted == xp.astype(targets, predicted.dtype), dtype)
    else:
        check_binary_targets(
            targets, tuple(logits.shape), xp, "0/1 outcomes (float, integer or bool)"
        )
        conf = xp.exp(log_sigmoid_pair(x, xp)[0]) if from_logits else x
        outcome = xp.astype(targets, dtype) + xp.zeros_like(conf)
    if 0 in tuple(conf.shape):  # nothing to bin (and Dask cannot reduce an empty block)
        return xp.full((), float("nan"), dtype=logits.dtype, device=device(logits))
    gap = _binned_gap(conf, outcome, n_bins, norm, xp)
    if valid is not None:
        gap = xp.where(valid, gap, xp.full_like(gap, float("nan")))
    return gap if gap.dtype == logits.dtype else xp.astype(gap, logits.dtype)


def _binned_gap(conf: Array, outcome: Array, n_bins: int, norm: str, xp: Namespace) -> Array:
    """The ``norm`` of the per-bin gaps between accuracy and confidence, from
    per-bin sums under a one-hot bin mask (no gather, no value read)."""
    index = xp.clip(xp.floor(conf * n_bins), 0, n_bins - 1)  # the last bin is closed
    bins = xp.arange(n_bins, dtype=conf.dtype, device=device(conf))
    mask = index[..., None] == bins
    axes = tuple(range(conf.ndim))
    zeros = xp.zeros_like(conf[..., None] + bins)

    def per_bin_sum(values: Array) -> Array:
        return xp.sum(xp.where(mask, values[..., None] + zeros, zeros), axis=axes)

    count = xp.sum(xp.where(mask, zeros + 1.0, zeros), axis=axes)
    total = xp.sum(count)
    diff = xp.abs(per_bin_sum(outcome) - per_bin_sum(conf))  # n_b |acc_b - conf_b|
    if norm == "l1":
        return safe_divide(xp.sum(diff), total, xp)
    per_bin = diff / xp.where(count > 0, count, xp.ones_like(count))  # |acc_b - conf_b|
    if norm == "max":
        return safe_divide(xp.max(per_bin) * total, total, xp)  # (NaN when empty)
    return xp.sqrt(safe_divide(xp.sum(per_bin * diff), total, xp))  # sum_b n_b gap_b^2
