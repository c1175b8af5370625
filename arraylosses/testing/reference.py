"""Float64 NumPy reference implementations of the public functions.

Written from the formulas in ``docs/contract.md``, not from the package: every loss
is spelled out the obvious way, in float64, with one-hot matrices and explicit sums,
so that a test can compare the package against a value computed independently. This
module never imports the rest of arraylosses.

Conventions shared by every function here:

- inputs are NumPy arrays (or anything ``np.asarray`` accepts); options are keyword
  arguments with the same names and defaults as the public API;
- the result is a float64 NumPy array (a 0-d array for ``"mean"`` / ``"sum"``);
- integer class labels outside ``[0, K)`` that are not ``ignore_index`` give a NaN
  loss (a NaN one-hot row), the behaviour ``docs/contract.md`` gives lazy / traced backends;
- ``"mean"`` of nothing is NaN and ``"sum"`` of nothing is 0, with no warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "asymmetric_loss",
    "binary_cross_entropy",
    "calibration_error",
    "class_balanced_weights",
    "cross_entropy",
    "flsd53_gamma",
    "log_sigmoid",
    "log_softmax",
    "one_hot",
    "sigmoid",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax",
    "softmax_focal_loss",
]

LOG_CLAMP = -100.0  # PyTorch's binary_cross_entropy clamps log-probabilities here


# --------------------------------------------------------------------------- basics


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def log_sigmoid(x: Any) -> np.ndarray:
    """log(1 / (1 + exp(-x))), stable for any finite x."""
    return -np.logaddexp(0.0, -_f64(x))


def sigmoid(x: Any) -> np.ndarray:
    return np.exp(log_sigmoid(x))


def log_softmax(x: Any, axis: int = -1) -> np.ndarray:
    """x - log(sum(exp(x))) along ``axis``, shifted by the max for stability."""
    x = _f64(x)
    m = np.max(x, axis=axis, keepdims=True) if x.size else np.zeros_like(x)
    shifted = x - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(x: Any, axis: int = -1) -> np.ndarray:
    return np.exp(log_softmax(x, axis=axis))


def _clamped_log(p: np.ndarray) -> np.ndarray:
    """log(p) clamped at -100 (log(0) = -inf becomes -100), without a warning."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), LOG_CLAMP)


def _masked_reduce(
    loss: np.ndarray, reduction: str, where: Any, normalizer: Any, denominator: Any = None
) -> np.ndarray:
    """``where``: masked elements are 0 and leave the default denominator (the count of
    kept elements); ``normalizer`` replaces the mean's denominator."""
    if where is not None:
        mask = np.broadcast_to(np.asarray(where, dtype=bool), loss.shape)
        loss = np.where(mask, loss, 0.0)
        if denominator is None:
            denominator = int(np.sum(mask))
    if normalizer is not None and reduction == "mean":
        return np.asarray(np.sum(loss) / float(np.asarray(normalizer, dtype=np.float64)))
    return _reduce(loss, reduction, denominator)


def _reduce(loss: np.ndarray, reduction: str, denominator: Any = None) -> np.ndarray:
    """Apply ``reduction``; ``denominator`` defaults to the number of elements."""
    if reduction == "none":
        return loss
    total = np.sum(loss, dtype=np.float64)
    if reduction == "sum":
        return np.asarray(total, dtype=np.float64)
    if reduction == "mean":
        if denominator is None:
            denominator = loss.size
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.float64(total) / np.float64(denominator))
    raise ValueError(f"unknown reduction {reduction!r}")


# ----------------------------------------------------------------------- smoothing


def _smoothing_ab(eps: float, k: int, smoothing: str) -> tuple[float, float, float]:
    """Return (keep, add, add_to_others) so that q' = keep * q + add + others * (1 - q).

    uniform: q' = (1 - eps) q + eps / K
    others:  q' = (1 - eps) q + eps (1 - q) / (K - 1)
    """
    if smoothing == "uniform":
        return 1.0 - eps, eps / k, 0.0
    if smoothing == "others":
        if eps == 0.0:
            return 1.0, 0.0, 0.0
        if k < 2:
            raise ValueError("'others' smoothing needs at least 2 classes")
        return 1.0 - eps, 0.0, eps / (k - 1)
    raise ValueError(f"unknown smoothing {smoothing!r}")


def _smooth(q: np.ndarray, eps: float, k: int, smoothing: Any) -> np.ndarray:
    if not isinstance(smoothing, str):  # a prior u (class axis last): (1 - eps) q + eps u
        return (1.0 - eps) * q + eps * _f64(smoothing)
    keep, add, others = _smoothing_ab(eps, k, smoothing)
    return keep * q + add + others * (1.0 - q)


def _smooth_binary(y: np.ndarray, eps: float, smoothing: Any) -> np.ndarray:
    """Binary targets: uniform y(1-eps) + eps/2, others y(1-eps) + (1-y) eps."""
    return _smooth(y, eps, 2, smoothing)


def _one_hot_last(labels: np.ndarray, k: int) -> np.ndarray:
    """One-hot with the class axis last; a label outside [0, k) gives a NaN row."""
    labels = np.asarray(labels)
    out = np.zeros((*labels.shape, k), dtype=np.float64)
    for c in range(k):
        out[..., c] = labels == c
    bad = (labels < 0) | (labels >= k)
    out[bad] = np.nan
    return out


def one_hot(labels: Any, num_classes: int, *, axis: int = -1, dtype: Any = None) -> np.ndarray:
    """out[..., c, ...] = (labels == c), class axis of length K inserted at ``axis``.

    ``dtype`` is accepted for signature parity and ignored: the result is float64.
    """
    del dtype
    labels = np.asarray(labels)
    out = _one_hot_last(labels, num_classes)
    return np.moveaxis(out, -1, axis)


def smooth_labels(
    targets: Any,
    epsilon: float,
    *,
    num_classes: int | None = None,
    axis: int = -1,
    smoothing: str = "uniform",
    dtype: Any = None,
) -> np.ndarray:
    """Integer labels: one-hot (class axis inserted at ``axis``) then smooth.
    Float distribution: smooth along ``axis`` with K = targets.shape[axis]."""
    del dtype
    targets = np.asarray(targets)
    if np.issubdtype(targets.dtype, np.integer):
        if num_classes is None:
            raise ValueError("num_classes is required for integer labels")
        q = one_hot(targets, num_classes, axis=axis)
        k = num_classes
    else:
        q = _f64(targets)
        k = q.shape[axis]
    last = np.moveaxis(q, axis, -1)
    return np.moveaxis(_smooth(last, epsilon, k, smoothing), -1, axis)


# -------------------------------------------------------------------- binary losses


def _binary_log_probs(logits: Any, from_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """(log p, log(1 - p)) with p = sigmoid(logits), or p = logits clamped logs."""
    x = _f64(logits)
    if from_logits:
        return log_sigmoid(x), log_sigmoid(-x)
    return _clamped_log(x), _clamped_log(1.0 - x)


def binary_cross_entropy(
    logits: Any,
    targets: Any,
    *,
    weight: Any = None,
    pos_weight: Any = None,
    label_smoothing: float = 0.0,
    smoothing: Any = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    poly_epsilon: float = 0.0,
    where: Any = None,
    normalizer: Any = None,
) -> np.ndarray:
    """loss = weight * (-(pos_weight * y' * log p + (1 - y') * log(1 - p)) + eps (1 - p_t)).

    PyTorch's binary_cross_entropy_with_logits, with y' the smoothed targets (and
    Poly-1's term, 1 - p_t = p (1 - y') + (1 - p) y').
    """
    return sigmoid_focal_loss(
        logits, targets, alpha=None, gamma=0.0, weight=weight, pos_weight=pos_weight,
        label_smoothing=label_smoothing, smoothing=smoothing, from_logits=from_logits,
        reduction=reduction, poly_epsilon=poly_epsilon, where=where, normalizer=normalizer,
    )  # fmt: skip


def sigmoid_focal_loss(
    logits: Any,
    targets: Any,
    *,
    alpha: float | None = 0.25,
    gamma: Any = 2.0,
    label_smoothing: float = 0.0,
    smoothing: Any = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    weight: Any = None,
    pos_weight: Any = None,
    poly_epsilon: float = 0.0,
    where: Any = None,
    normalizer: Any = None,
) -> np.ndarray:
    """loss = weight * alpha_t * (1 - p_t)**gamma * (BCE(x, y') + eps (1 - p_t))
    (Lin et al. 2017; Poly-1, Leng et al. 2022).

    p_t = p y' + (1 - p)(1 - y'), alpha_t = alpha y' + (1 - alpha)(1 - y'); the BCE
    carries pos_weight on its positive term; gamma may be a callable of p_t.
    """
    x = _f64(logits)
    y = _smooth_binary(_f64(targets), label_smoothing, smoothing)
    log_p, log_1mp = _binary_log_probs(x, from_logits)
    p = sigmoid(x) if from_logits else x
    q = sigmoid(-x) if from_logits else 1.0 - x  # 1 - p without cancellation
    pw = 1.0 if pos_weight is None else _f64(pos_weight)
    bce = -(pw * y * log_p + (1.0 - y) * log_1mp)
    one_minus_pt = p * (1.0 - y) + q * y  # = 1 - (p y + (1 - p)(1 - y))
    if callable(gamma):
        gamma = gamma(p * y + q * (1.0 - y))
    with np.errstate(invalid="ignore"):  # 0 ** 0 = 1
        loss = one_minus_pt ** _f64(gamma) * (bce + poly_epsilon * one_minus_pt)
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    if weight is not None:
        loss = _f64(weight) * loss
    loss = np.broadcast_to(loss, np.broadcast_shapes(loss.shape, x.shape))
    return _masked_reduce(np.array(loss), reduction, where, normalizer)


def asymmetric_loss(
    logits: Any,
    targets: Any,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    label_smoothing: float = 0.0,
    smoothing: Any = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    where: Any = None,
    normalizer: Any = None,
) -> np.ndarray:
    """loss = -[y' (1 - p)**gamma_pos log p + (1 - y') p_m**gamma_neg log(1 - p_m)],
    p_m = max(p - clip, 0) (Ridnik et al. 2021)."""
    x = _f64(logits)
    y = _smooth_binary(_f64(targets), label_smoothing, smoothing)
    log_p, log_1mp = _binary_log_probs(x, from_logits)
    p = sigmoid(x) if from_logits else x
    q = sigmoid(-x) if from_logits else 1.0 - x
    p_m = np.maximum(p - clip, 0.0)
    log_1m_pm = np.log(np.minimum(q + clip, 1.0)) if clip > 0 else log_1mp
    loss = -(y * q**gamma_pos * log_p + (1.0 - y) * p_m**gamma_neg * log_1m_pm)
    loss = np.broadcast_to(loss, np.broadcast_shapes(loss.shape, x.shape))
    return _masked_reduce(np.array(loss), reduction, where, normalizer)


def class_balanced_weights(counts: Any, *, beta: float = 0.999, dtype: Any = None) -> np.ndarray:
    """w_c = (1 - beta) / (1 - beta**n_c), 0 for n_c = 0, scaled to sum to the number
    of classes with samples (Cui et al. 2019); beta = 1 is the limit 1 / n_c."""
    n = _f64(counts)
    present = n > 0
    safe = np.where(present, n, 1.0)
    w = 1.0 / safe if beta == 1.0 else (1.0 - beta) / (1.0 - beta**safe)
    w = np.where(present, w, 0.0)
    return w * (np.sum(present) / np.sum(w)) if np.sum(w) > 0 else w


def flsd53_gamma(p: Any) -> np.ndarray:
    """5 where p < 0.2, else 3 (Mukhoti et al. 2020)."""
    return np.where(_f64(p) < 0.2, 5.0, 3.0)


def calibration_error(
    logits: Any,
    targets: Any,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    task: str = "multiclass",
    axis: int = -1,
    from_logits: bool = True,
) -> np.ndarray:
    """ECE / RMSCE / MCE over equal-width bins [b/n, (b+1)/n), the last one closed."""
    x = _f64(logits)
    if task == "multiclass":
        p = softmax(x, axis=axis) if from_logits else x
        conf = np.max(p, axis=axis).ravel()
        outcome = (np.argmax(p, axis=axis) == np.asarray(targets)).ravel().astype(float)
    else:
        conf = (sigmoid(x) if from_logits else x).ravel()
        outcome = np.broadcast_to(_f64(targets), x.shape).ravel()
    if conf.size == 0:
        return np.asarray(np.nan)
    index = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    gaps, shares = [], []
    for b in range(n_bins):
        in_bin = index == b
        if in_bin.any():
            gaps.append(abs(outcome[in_bin].mean() - conf[in_bin].mean()))
            shares.append(in_bin.mean())
    g, w = np.asarray(gaps), np.asarray(shares)
    if norm == "l1":
        return np.asarray(np.sum(w * g))
    if norm == "l2":
        return np.asarray(np.sqrt(np.sum(w * g**2)))
    return np.asarray(np.max(g))


# ------------------------------------------------------------------- softmax losses


def _class_targets(
    targets: Any, k: int, axis: int, ndim: int, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return (q, kept, labels): the target distribution with the class axis last,
    a bool mask of the elements that count (not ignore_index), and the integer labels
    (None for float targets)."""
    targets = np.asarray(targets)
    if np.issubdtype(targets.dtype, np.integer):
        labels = targets
        kept = np.ones(labels.shape, dtype=bool)
        if ignore_index is not None:
            kept = labels != ignore_index
        q = _one_hot_last(np.where(kept, labels, 0), k)
        return q, kept, labels
    if ignore_index is not None:
        raise ValueError("ignore_index applies to integer targets only")
    q = np.moveaxis(_f64(targets), axis, -1)
    return q, np.ones(q.shape[:-1], dtype=bool), None


def _log_probs_last(logits: Any, axis: int, from_logits: bool) -> np.ndarray:
    x = np.moveaxis(_f64(logits), axis, -1)
    return log_softmax(x, axis=-1) if from_logits else _clamped_log(x)


def cross_entropy(
    logits: Any,
    targets: Any,
    *,
    axis: int = -1,
    weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    smoothing: Any = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    poly_epsilon: float = 0.0,
    where: Any = None,
    normalizer: Any = None,
) -> np.ndarray:
    """loss_i = -sum_c w_c q'_c (log p_c - eps (1 - p_c)) (PyTorch's cross_entropy,
    class axis ``axis``, plus Poly-1's term); ``where`` masks like ``ignore_index``.

    "mean": integer targets divide by the summed w[y_i] of the kept elements;
    probability targets divide by the number of elements without the class axis.
    """
    logits = _f64(logits)
    k = logits.shape[axis]
    log_p = _log_probs_last(logits, axis, from_logits)
    q, kept, labels = _class_targets(targets, k, axis, logits.ndim, ignore_index)
    if where is not None:
        kept = kept & np.broadcast_to(np.asarray(where, dtype=bool), kept.shape)
    q = _smooth(q, label_smoothing, k, smoothing)
    w = np.ones(k) if weight is None else _f64(weight)
    one_minus_p = -np.expm1(log_p) if from_logits else 1.0 - np.moveaxis(logits, axis, -1)
    with np.errstate(invalid="ignore"):
        loss = -np.sum(w * q * (log_p - poly_epsilon * one_minus_p), axis=-1)
    loss = np.where(kept, loss, 0.0)
    if labels is None:
        denominator = int(np.sum(kept))
    else:
        safe = np.where(kept, labels, 0)
        in_range = (safe >= 0) & (safe < k)
        w_of_label = np.where(in_range, w[np.clip(safe, 0, k - 1)], np.nan)
        denominator = np.sum(np.where(kept, w_of_label, 0.0))
    return _masked_reduce(loss, reduction, None, normalizer, denominator)


def softmax_focal_loss(
    logits: Any,
    targets: Any,
    *,
    alpha: Any = None,
    gamma: Any = 2.0,
    axis: int = -1,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    smoothing: Any = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    poly_epsilon: float = 0.0,
    where: Any = None,
    normalizer: Any = None,
) -> np.ndarray:
    """loss_i = -sum_c alpha_c q'_c (1 - p_c)**gamma (log p_c - eps (1 - p_c)); gamma
    may be a callable of the class probabilities.

    alpha_c = 1 (None), alpha (float) or alpha[c]; "mean" divides by the number of
    kept elements whatever alpha is.
    """
    logits = _f64(logits)
    k = logits.shape[axis]
    log_p = _log_probs_last(logits, axis, from_logits)
    one_minus_p = -np.expm1(log_p) if from_logits else 1.0 - np.moveaxis(logits, axis, -1)
    if callable(gamma):
        g = gamma(1.0 - one_minus_p)
    else:
        g = np.moveaxis(np.broadcast_to(_f64(gamma), logits.shape), axis, -1)
    q, kept, _ = _class_targets(targets, k, axis, logits.ndim, ignore_index)
    if where is not None:
        kept = kept & np.broadcast_to(np.asarray(where, dtype=bool), kept.shape)
    q = _smooth(q, label_smoothing, k, smoothing)
    a = np.ones(k) if alpha is None else _f64(alpha)
    with np.errstate(invalid="ignore"):
        loss = -np.sum(a * q * one_minus_p**g * (log_p - poly_epsilon * one_minus_p), axis=-1)
    loss = np.where(kept, loss, 0.0)
    return _masked_reduce(loss, reduction, None, normalizer, int(np.sum(kept)))
