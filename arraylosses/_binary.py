"""Binary (sigmoid) losses: binary cross-entropy and sigmoid focal loss."""

from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any

from . import _fastpaths
from ._compat import quiet_overflow
from ._primitives import (
    clamped_log,
    log_sigmoid_pair,
    modulating_factor,
    modulating_factor_slope,
)
from ._reduction import as_result, reduce_loss
from ._smoothing import smoothing_coefficients
from ._validation import (
    as_parameter_array,
    check_broadcasts_to,
    check_gamma,
    check_logits,
    check_options,
    check_probabilities,
    check_unit_interval,
    compute_dtype,
    namespace_of,
)

Array = Any


class _BinaryInputs:
    """Validated, smoothed inputs of a binary loss in the compute dtype."""

    def __init__(
        self,
        logits: Array,
        targets: Array,
        label_smoothing: object,
        smoothing: object,
        from_logits: object,
        reduction: object,
    ) -> None:
        xp = namespace_of([("logits", logits), ("targets", targets)])
        check_logits(logits, xp)
        eps = check_options(reduction, smoothing, label_smoothing, from_logits)
        if not (
            xp.isdtype(targets.dtype, "real floating")
            or xp.isdtype(targets.dtype, "integral")
            or xp.isdtype(targets.dtype, "bool")
        ):
            raise TypeError(
                f"`targets` must be a real floating, integer or bool array; got dtype "
                f"{targets.dtype}."
            )
        check_broadcasts_to(tuple(targets.shape), tuple(logits.shape), "targets")
        self.xp = xp
        self.out_dtype = logits.dtype
        dtype = compute_dtype(xp, logits.dtype, logits)
        x = logits if dtype == logits.dtype else xp.astype(logits, dtype)
        self.x = x if from_logits else check_probabilities(x, xp)
        # copy=False: a target array that already has the compute dtype is used as is.
        y = xp.astype(targets, dtype, copy=False)
        a, b = smoothing_coefficients(eps, 2, str(smoothing))
        self.y = y if b == 0.0 else a * y + b
        self.from_logits = bool(from_logits)
        self.reduction = str(reduction)

    def log_probs(self) -> tuple[Array, Array]:
        """``(log p, log(1 - p))`` with ``p`` the predicted probability of class 1."""
        if self.from_logits:
            return log_sigmoid_pair(self.x, self.xp)
        return clamped_log(self.x, self.xp), clamped_log(1 - self.x, self.xp)

    def parameter(self, value: object, name: str) -> Array:
        arr = as_parameter_array(value, name, self.xp, self.x, allow_scalar=True)
        check_broadcasts_to(tuple(arr.shape), tuple(self.x.shape), name)
        return arr

    def cast(self, out: Array) -> Array:
        """The result in the dtype of ``logits`` (a 0-d array, never a NumPy scalar)."""
        return as_result(out, self.out_dtype, self.xp)

    def finish(self, loss: Array) -> Array:
        return self.cast(reduce_loss(loss, self.reduction, self.xp))


@quiet_overflow
def binary_cross_entropy(
    logits: Array,
    targets: Array,
    /,
    *,
    weight: Array | None = None,
    pos_weight: Array | None = None,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> Array:
    r"""Binary cross-entropy on logits, with optional label smoothing.

    With ``x`` the logits, ``y'`` the (smoothed) targets, ``w`` the weight and
    ``w_+`` the positive weight:

    .. math::

        \ell = -w \left[ w_+\, y' \log \sigma(x) + (1 - y') \log \sigma(-x) \right]

    computed in log space (no overflow for any finite logit, exact gradient at 0).
    With ``label_smoothing = 0`` it equals PyTorch's
    ``binary_cross_entropy_with_logits(logits, targets, weight, pos_weight=pos_weight,
    reduction=reduction)``; with ``eps > 0`` the targets are smoothed first:
    ``y' = (1 - eps) y + eps/2`` (``"uniform"``, as Keras's ``binary_crossentropy``)
    or ``y' = (1 - eps) y + eps (1 - y)`` (``"others"``).

    Parameters
    ----------
    logits : array
        Real floating logits of any shape ``[...]``; with ``from_logits=False``,
        probabilities in ``[0, 1]`` (log-probabilities are clamped at -100 as PyTorch's
        ``binary_cross_entropy`` does).
    targets : array
        Targets in ``[0, 1]`` broadcastable to ``logits``: float (soft targets allowed),
        bool or integer 0/1.
    weight, pos_weight : array, sequence or float, optional
        Broadcastable to ``logits``: a per-element rescaling and the weight of the
        positive term (``pos_weight = #neg / #pos`` balances classes), as in PyTorch.
    label_smoothing : float, default 0.0
        ``eps`` in ``[0, 1]``.
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
        Shape of ``logits`` for ``"none"``, a 0-d array otherwise; dtype, library and
        device of ``logits``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> logits = xp.asarray([0.0, 2.0, -1.0])
    >>> targets = xp.asarray([1.0, 1.0, 0.0])
    >>> round(float(al.binary_cross_entropy(logits, targets, reduction="sum")), 6)
    1.133337

    References
    ----------
    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016, section 7 (label smoothing). The unsmoothed loss reproduces PyTorch's
    ``binary_cross_entropy_with_logits``.
    """
    inputs = _BinaryInputs(logits, targets, label_smoothing, smoothing, from_logits, reduction)
    y = inputs.y
    log_p, log_q = inputs.log_probs()
    positive = y * log_p
    if pos_weight is not None:
        positive = inputs.parameter(pos_weight, "pos_weight") * positive
    loss = -(positive + (1 - y) * log_q)
    if weight is not None:
        loss = inputs.parameter(weight, "weight") * loss
    return inputs.finish(loss)


def _class_balance(y: Array, alpha: float) -> Array:
    """``alpha_t = alpha * y + (1 - alpha) * (1 - y)``, written with one multiply."""
    return (1.0 - alpha) + (2.0 * alpha - 1.0) * y


def sigmoid_focal_elementwise(
    x: Array,
    y: Array,
    alpha: float | None,
    gamma: float | Array,
    xp: ModuleType,
    from_logits: bool = True,
) -> Array:
    """Per-element sigmoid focal loss: the formula of :func:`sigmoid_focal_loss`.

    ``x`` are logits (probabilities if not ``from_logits``), ``y`` the smoothed targets
    in the same dtype, ``alpha`` and ``gamma`` already validated. From logits one
    ``exp(-|x|)`` feeds both log-sigmoids, and ``p = exp(log p)``, ``1 - p =
    exp(log(1 - p))`` are each accurate where the other is close to 1.
    """
    y_bar = 1 - y
    if from_logits:
        log_p, log_q = log_sigmoid_pair(x, xp)
    else:
        log_p, log_q = clamped_log(x, xp), clamped_log(1 - x, xp)
    loss = -(y * log_p + y_bar * log_q)
    if not (isinstance(gamma, float) and gamma == 0.0):
        p, q = (xp.exp(log_p), xp.exp(log_q)) if from_logits else (x, 1 - x)
        # 1 - p_t = y'(1 - p) + (1 - y') p: both terms non-negative, no cancellation.
        loss = modulating_factor(y * q + y_bar * p, gamma, xp) * loss
    if alpha is not None:
        loss = _class_balance(y, alpha) * loss
    return loss


def sigmoid_focal_eager(
    x: Array, y: Array, alpha: float | None, gamma: float | Array, xp: ModuleType
) -> Array:
    """:func:`sigmoid_focal_elementwise` from logits, arranged for eager evaluation.

    The same values with one ``exp``, one ``log1p`` and one division per element and
    no ``where``: with ``t = exp(-|x|)``, ``r = 1 / (1 + t) = sigmoid(|x|)`` and
    ``t r = sigmoid(-|x|)``, the probabilities are ``r`` and ``t r`` in the order the
    sign of ``x`` gives, so ``1 - p_t = t r + u (r - t r)`` with ``u = y'`` for
    ``x < 0`` and ``1 - y'`` for ``x >= 0`` (each term non-negative: no cancellation),
    and ``BCE = (max(x, 0) - x y') + log1p(t)`` (for ``y' = 1`` and ``x > 0`` the
    bracket is exactly 0). The sign enters through a 0/1 mask, which has no useful
    derivative: this form is for values only (the host blockwise path); autodiff
    uses :func:`sigmoid_focal_elementwise`.
    """
    a = xp.abs(x)
    t = xp.exp(-a)
    r = 1.0 / (1.0 + t)
    small = t * r
    loss = ((0.5 * x + 0.5 * a) - x * y) + xp.log1p(t)
    if not (isinstance(gamma, float) and gamma == 0.0):
        nonnegative = xp.astype(x >= 0, x.dtype)
        u = y + nonnegative * (1.0 - 2.0 * y)
        loss = modulating_factor(small + u * (r - small), gamma, xp) * loss
    if alpha is not None:
        loss = _class_balance(y, alpha) * loss
    return loss


def sigmoid_focal_gradient(
    x: Array, y: Array, alpha: float | None, gamma: float, xp: ModuleType
) -> Array:
    r"""Derivative of :func:`sigmoid_focal_elementwise` (from logits) with respect to ``x``.

    With ``p = sigmoid(x)``, ``q = 1 - p``, ``b = 1 - p_t = y' q + (1 - y') p`` and
    ``BCE = -(y' log p + (1 - y') log q)``:

    .. math::

        \frac{d\ell}{dx} = \alpha_t \left[ b^\gamma (p - y')
            + \gamma b^{\gamma - 1} (1 - 2y')\, p\, q\, \mathrm{BCE} \right]

    since ``dBCE/dx = p - y'`` and ``db/dx = (1 - 2y') p q``. ``p - y'`` is written
    ``(1 - y') p - y' q`` so that it keeps its relative accuracy when ``p`` is close to
    1, and ``b^(gamma-1)`` follows :func:`modulating_factor_slope` at ``b = 0``. Built
    from the same differentiable primitives as the loss, so that differentiating it
    again (double backward) is exact as well.
    """
    y_bar = 1 - y
    log_p, log_q = log_sigmoid_pair(x, xp)
    p, q = xp.exp(log_p), xp.exp(log_q)
    grad = y_bar * p - y * q
    if gamma != 0.0:
        bce = -(y * log_p + y_bar * log_q)
        base = y * q + y_bar * p
        slope = modulating_factor_slope(base, gamma, xp)
        grad = modulating_factor(base, gamma, xp) * grad + slope * (y_bar - y) * p * q * bce
    if alpha is not None:
        grad = _class_balance(y, alpha) * grad
    return grad


def _torch_sigmoid_focal_blocks(alpha: float | None, gamma: float) -> Any:
    """The PyTorch block kernel of the sigmoid focal loss (torch code, loaded lazily)."""
    return _fastpaths._torch_autograd().SigmoidFocalBlocks(alpha, gamma)


def _numpy_sigmoid_focal_sum(alpha: float | None, gamma: float) -> Any:
    """The NumPy kernel of the reduced loss (integer gamma up to 8), or None."""
    if not (gamma.is_integer() and 0.0 <= gamma <= 8.0):
        return None

    def kernel(x: Array, y: Array, block: int) -> Array:
        from ._numpy_blocks import sigmoid_focal_sum

        return sigmoid_focal_sum(x, y, alpha, int(gamma), block)

    return kernel


@quiet_overflow
def sigmoid_focal_loss(
    logits: Array,
    targets: Array,
    /,
    *,
    alpha: float | None = 0.25,
    gamma: float | Array = 2.0,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> Array:
    r"""Sigmoid focal loss (Lin et al. 2017, RetinaNet).

    Down-weights well-classified examples so that training on a heavily imbalanced
    problem (dense detection: ~100 000 easy background anchors per image) is not
    swamped by the easy majority. With ``p = sigmoid(x)`` and ``y'`` the (smoothed)
    target:

    .. math::

        p_t = p\, y' + (1 - p)(1 - y'), \qquad
        \alpha_t = \alpha\, y' + (1 - \alpha)(1 - y')

        \ell = -\alpha_t\, (1 - p_t)^\gamma
               \left[ y' \log p + (1 - y') \log (1 - p) \right]

    with ``alpha_t = 1`` when ``alpha`` is None. For 0/1 targets this is torchvision's
    ``sigmoid_focal_loss``; elementwise it is optax's ``sigmoid_focal_loss``; it is
    Keras's ``binary_focal_crossentropy(apply_class_balancing=alpha is not None)``
    before Keras's mean over the last axis. ``gamma = 0`` gives (alpha-weighted) binary
    cross-entropy exactly. Gradients are finite for every ``gamma >= 0``, including
    ``0 < gamma < 1`` at saturated logits.

    Parameters
    ----------
    logits : array
        Real floating logits, any shape ``[...]`` (probabilities if
        ``from_logits=False``).
    targets : array
        Targets in ``[0, 1]`` broadcastable to ``logits`` (float, bool or integer 0/1).
    alpha : float or None, default 0.25
        Weight of the positive class in ``[0, 1]``; None disables balancing.
    gamma : float or array, default 2.0
        Focusing parameter ``>= 0``, or an array broadcastable to ``logits``
        (per-element focusing).
    label_smoothing : float, default 0.0
        Smoothing strength ``eps`` in ``[0, 1]``; 0 disables smoothing.
    smoothing : {"uniform", "others"}, default "uniform"
        ``y' = (1 - eps) y + eps/2`` or ``y' = (1 - eps) y + eps (1 - y)``.
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: its mean
        (see Returns for the denominator).

    Returns
    -------
    array
        Shape of ``logits`` for ``"none"``, 0-d otherwise; dtype, library and device of
        ``logits``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> logits = xp.asarray([3.0, -3.0, 0.0])
    >>> targets = xp.asarray([1.0, 0.0, 1.0])
    >>> loss = al.sigmoid_focal_loss(logits, targets, reduction="none")
    >>> [round(float(v), 6) for v in loss]
    [2.7e-05, 8.2e-05, 0.043322]

    References
    ----------
    Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object Detection",
    ICCV 2017, equation (5).
    """
    inputs = _BinaryInputs(logits, targets, label_smoothing, smoothing, from_logits, reduction)
    xp, x, y = inputs.xp, inputs.x, inputs.y
    g = check_gamma(gamma, xp, x)
    a = None if alpha is None else check_unit_interval(alpha, "alpha")
    values_only = inputs.from_logits and _fastpaths.values_only(xp)
    if inputs.from_logits and inputs.reduction != "none" and isinstance(g, float):
        reduced = _fastpaths.reduced_elementwise(
            partial(sigmoid_focal_eager, alpha=a, gamma=g, xp=xp),
            partial(_torch_sigmoid_focal_blocks, a, g),
            x,
            y,
            inputs.reduction,
            xp,
            _numpy_sigmoid_focal_sum(a, g),
        )
        if reduced is not None:
            return inputs.cast(reduced)
    if values_only:  # no autodiff on this library: the eager arrangement
        loss = sigmoid_focal_eager(x, y, a, g, xp)
    else:
        loss = sigmoid_focal_elementwise(x, y, a, g, xp, inputs.from_logits)
    return inputs.finish(loss)
