"""Softmax losses: cross-entropy and softmax focal loss.

Each public function reads top to bottom: validate once (``SoftmaxInputs``), delegate
where the backend has a native path, otherwise the definition (``_elementwise``) and
the reduction.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable

from ._backends import quiet_overflow
from ._elementwise import (
    cross_entropy_of_distribution,
    cross_entropy_of_labels,
    poly_log_prob,
    softmax_focal_slope,
    softmax_focal_terms,
    without_massless,
)
from ._inputs import SoftmaxInputs
from ._primitives import modulating_factor
from ._typing import Array, Namespace
from ._validation import check_alpha_array, check_finite_float, check_gamma, check_unit_interval


def _probabilities(inputs: SoftmaxInputs, log_p: Array, scale: float) -> tuple[Array, Array]:
    """``(p_c, 1 - p_c)`` for every class: ``exp(log p_c)`` and one minus it from logits,
    the probabilities themselves for ``from_logits=False``.

    ``1 - exp(log p)`` is as accurate as ``-expm1(log p)`` here: a confident class's
    log-probability is ``-log(s)`` for the softmax's rounded sum ``s = 1 + (the other
    classes' share)``, and that rounding bounds both (measured against 40-digit
    arithmetic on random logits, float32 and float64: the same median and 99th
    percentile relative error within a factor of 2, in every range of ``1 - p``). It
    costs one subtraction where ``expm1`` is a second transcendental beside the
    ``exp`` that the gradient and a callable gamma need anyway.
    """
    if not inputs.from_logits:
        return inputs.x, 1 - inputs.x
    p = _exp_in_nats(log_p, scale, inputs.xp)
    return p, 1 - p


def _exp_in_nats(log_p: Array, scale: float, xp: Namespace) -> Array:
    """``p`` from log-probabilities in units of ``scale``."""
    return xp.exp(log_p if scale == 1.0 else scale * log_p)


def _times(scale: float, loss: Array) -> Array:
    """The loss computed from log-probabilities in units of ``scale``, in nats."""
    return loss if scale == 1.0 else scale * loss


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
    smoothing: str | Array = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    poly_epsilon: float = 0.0,
    where: Array | None = None,
    normalizer: float | Array | None = None,
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
    smoothing : {"uniform", "others"} or array, default "uniform"
        ``"uniform"``: ``q' = (1 - eps) q + eps/K``; ``"others"``: the true class keeps
        ``1 - eps`` and the others share ``eps``; an array (or sequence) ``u`` of K
        class probabilities: ``q' = (1 - eps) q + eps u`` (see :func:`smooth_labels`).
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: that sum
        divided by PyTorch's denominator -- for integer targets the summed weight
        ``sum_i w[y_i]`` of the targets that are not ignored (the number of them
        without ``weight``), for distribution targets the number of elements without
        the class axis.
    poly_epsilon : float, default 0.0
        Poly-1 (Leng et al. 2022): adds ``eps sum_c w_c q'_c (1 - p_c)`` per element
        (``w_c`` the class weight; without weights optax's
        ``poly_loss_cross_entropy``); any finite float, 0 is the loss without it.
    where : bool array, optional
        Broadcastable to ``logits.shape`` without ``axis``: the elements that count.
        Masked elements count like ignored ones: loss 0, gradient exactly 0 whatever
        ``logits`` holds there, left out of every ``"mean"`` denominator.
    normalizer : float or 0-d array, optional
        With ``reduction="mean"``: divide the (weighted) sum by this instead.

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
    inputs = SoftmaxInputs(
        logits, targets, axis, ignore_index, label_smoothing, smoothing, from_logits, reduction,
        where, normalizer,
    )  # fmt: skip
    w = None if weight is None else inputs.per_class(weight, "weight")
    eps = 0.0 if poly_epsilon == 0.0 else check_finite_float(poly_epsilon, "poly_epsilon")
    if inputs.plain and inputs.prior is None and eps == 0.0:
        out = inputs.backend.cross_entropy(inputs, w)  # delegate where possible
        if out is not None:
            return out
    return cross_entropy_by_definition(inputs, w, eps)


def cross_entropy_by_definition(
    inputs: SoftmaxInputs, w: Array | None, poly_epsilon: float = 0.0
) -> Array:
    """:func:`cross_entropy` of validated inputs by its definition, on any backend."""
    loss = inputs.backend.rowwise(
        functools.partial(_cross_entropy_elements, w=w, poly_epsilon=poly_epsilon), inputs, w
    )
    if w is None or inputs.labels is None:
        return inputs.finish(loss)
    # PyTorch's rule: the mean divides by the summed weight of the kept labels.
    xp = inputs.xp
    w_label = inputs.class_values(w, inputs.label_masks()[0])
    if inputs.keep is not None:
        w_label = xp.where(inputs.keep, w_label, xp.zeros_like(w_label))
    return inputs.finish(loss, xp.sum(w_label))


def _cross_entropy_elements(inputs: SoftmaxInputs, w: Array | None, poly_epsilon: float) -> Array:
    """The per-element cross-entropy (before ignored labels are zeroed)."""
    xp, ax = inputs.xp, inputs.axis
    if inputs.labels is not None and inputs.b == 0.0 and poly_epsilon == 0.0:
        # only the label's log-probability counts
        picked, scale = inputs.label_log_probs()
        w_label = None if w is None else inputs.class_values(w, inputs.label_masks()[0])
        return _times(scale, cross_entropy_of_labels(picked, None, 1.0, 0.0, w_label))
    log_p, scale = inputs.log_probs()
    if poly_epsilon != 0.0:
        log_p = poly_log_prob(log_p, _probabilities(inputs, log_p, scale)[1], poly_epsilon / scale)
    if inputs.labels is None:
        q = inputs.dist if w is None else inputs.broadcast_class(w) * inputs.dist
        return _times(scale, cross_entropy_of_distribution(log_p, q, ax, xp))
    labels, _, _ = inputs.label_masks()
    picked = inputs.take_class(log_p, labels)
    if w is None:
        row_sum = None if inputs.b == 0.0 else inputs.row_sum(log_p)
        return _times(scale, cross_entropy_of_labels(picked, row_sum, inputs.a, inputs.b))
    w_label = inputs.class_values(w, labels)
    row_sum = None
    if inputs.b != 0.0:
        row_sum = inputs.row_sum(log_p, inputs.broadcast_class(w))
    return _times(scale, cross_entropy_of_labels(picked, row_sum, inputs.a, inputs.b, w_label))


@quiet_overflow
def softmax_focal_loss(
    logits: Array,
    targets: Array,
    /,
    *,
    alpha: float | Array | None = None,
    gamma: float | Array | Callable[[Array], Array] = 2.0,
    axis: int = -1,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    smoothing: str | Array = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    poly_epsilon: float = 0.0,
    where: Array | None = None,
    normalizer: float | Array | None = None,
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
    1e-7 probability clip). ``1 - p_c`` is one minus ``exp(log p_c)``, as accurate as
    the log-probability itself, and gradients are finite for every ``gamma >= 0``.

    Parameters
    ----------
    logits : array
        ``[..., num_classes, ...]`` real floating logits (probabilities if
        ``from_logits=False``).
    targets : array
        Integer class indices (``logits.shape`` without ``axis``) or a distribution of
        shape ``logits.shape``.
    alpha : float, array, sequence or None, default None
        Class balancing: a float in ``[0, 1]`` or ``[num_classes]`` per-class weights
        (finite, ``>= 0``; e.g. :func:`class_balanced_weights`).
    gamma : float, array or callable, default 2.0
        Focusing parameter ``>= 0``, an array broadcastable to ``logits``, or a
        callable ``gamma(p)`` called on the class probabilities (shape of ``logits``)
        and returning one per class term (e.g. :func:`flsd53_gamma`; differentiated
        through as ordinary code).
    axis : int, default -1
        Class axis; PyTorch's ``(N, C, d1, ...)`` layout is ``axis=1``.
    ignore_index : int, optional
        Integer targets equal to it contribute 0 and are left out of the mean
        (integer targets only).
    label_smoothing : float, default 0.0
        Smoothing strength ``eps`` in ``[0, 1]``; 0 disables smoothing.
    smoothing : {"uniform", "others"} or array, default "uniform"
        ``"uniform"``: ``q' = (1 - eps) q + eps/K``; ``"others"``: the true class keeps
        ``1 - eps`` and the others share ``eps``; an array (or sequence) ``u`` of K
        class probabilities: ``q' = (1 - eps) q + eps u`` (see :func:`smooth_labels`).
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: that sum
        divided by the number of elements that are not ignored (alpha never enters
        the denominator).
    poly_epsilon : float, default 0.0
        Poly-1 (Leng et al. 2022): adds ``eps sum_c w_c q'_c (1 - p_c)^gamma + 1`` per
        element (``w_c`` the class's alpha); any finite float, 0 is the loss without it.
    where : bool array, optional
        Broadcastable to ``logits.shape`` without ``axis``: the elements that count.
        Masked elements count like ignored ones: loss 0, gradient exactly 0 whatever
        ``logits`` holds there, left out of every ``"mean"`` denominator.
    normalizer : float or 0-d array, optional
        With ``reduction="mean"``: divide the (weighted) sum by this instead.

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
    inputs = SoftmaxInputs(
        logits, targets, axis, ignore_index, label_smoothing, smoothing, from_logits, reduction,
        where, normalizer,
    )  # fmt: skip
    xp, x = inputs.xp, inputs.x
    g = check_gamma(gamma, xp, x, inputs.backend)
    eps = 0.0 if poly_epsilon == 0.0 else check_finite_float(poly_epsilon, "poly_epsilon")
    if alpha is None or isinstance(alpha, numbers.Real):  # bool: refused below
        alpha_scalar = None if alpha is None else check_unit_interval(alpha, "alpha")
        alpha_vec = None
    else:
        alpha_scalar = None
        alpha_vec = check_alpha_array(inputs.per_class(alpha, "alpha"), xp, x, inputs.backend)
    if inputs.labels is not None and inputs.b == 0.0 and isinstance(g, float):
        # delegate where possible (PyTorch autograd: an analytic gradient)
        reduced = inputs.backend.reduced_softmax_focal(inputs, alpha_vec, alpha_scalar, g, eps)
        if reduced is not None:
            return inputs.cast(reduced)
    elements = functools.partial(_focal_elements, alpha_vec=alpha_vec, gamma=g, epsilon=eps)
    if isinstance(g, float):  # row-wise (a callable or an array gamma is not cut)
        gradient = None
        if _has_analytic_gradient(inputs):
            gradient = functools.partial(
                softmax_focal_gradient, alpha_vec=alpha_vec, gamma=g, epsilon=eps
            )
        loss = inputs.backend.rowwise(elements, inputs, alpha_vec, gradient)
    else:
        loss = elements(inputs)
    if alpha_scalar is not None:
        loss = alpha_scalar * loss
    return inputs.finish(loss)


def _focal_elements(
    inputs: SoftmaxInputs,
    alpha_vec: Array | None,
    gamma: float | Array | Callable[[Array], Array],
    epsilon: float,
) -> Array:
    """The per-element softmax focal loss, without a float alpha (before ignored labels
    are zeroed)."""
    xp, x, g, eps = inputs.xp, inputs.x, gamma, epsilon
    if inputs.labels is None or inputs.b != 0.0:
        terms, scale = _every_class_terms(inputs, alpha_vec, g, eps)[5:7]
        return _times(scale, _loss_of_terms(inputs, terms))
    # Hard labels without smoothing: only the label's class term contributes.
    labels, _, _ = inputs.label_masks()
    picked, scale = inputs.label_log_probs()
    if inputs.from_logits:
        one_minus_p = 1 - _exp_in_nats(picked, scale, xp)
    else:
        one_minus_p = 1 - inputs.take_class(x, labels)
    if callable(g):  # sample-dependent focusing, on the label's probability
        g = g(1 - one_minus_p)
    elif not isinstance(g, float):  # the label's own focusing parameter
        g = inputs.take_class(xp.broadcast_to(g, tuple(x.shape)), labels)
    log_term = poly_log_prob(picked, one_minus_p, eps / scale)
    loss = -softmax_focal_terms(log_term, one_minus_p, g, xp)
    if alpha_vec is not None:
        loss = inputs.class_values(alpha_vec, labels) * loss
    return _times(scale, loss)


def _every_class_terms(
    inputs: SoftmaxInputs,
    alpha_vec: Array | None,
    gamma: float | Array | Callable[[Array], Array],
    epsilon: float,
) -> tuple[Array, Array, Array | None, Array | None, Array | None, Array, float]:
    """What the focal loss of a distribution or of smoothed labels is made of, where
    every class term counts: ``(log p, guarded log p, p, 1 - p, (1 - p)^gamma, alpha_c
    T_c, scale)``, the log-probabilities in units of ``scale``.

    The guarded log-probability is 0 for a class that gets no mass (target or
    alpha): ``0 log 0 = 0``, guarded before the factor multiplies it, even for a
    masked class (logit ``-inf``), so every term is finite there. ``p`` and ``1 - p``
    are None where nothing needs them (gamma 0 without Poly-1: the cross-entropy's
    terms), the factor where the terms do not (gamma 0).
    """
    xp, g = inputs.xp, gamma
    log_p, scale = inputs.log_probs()
    p = one_minus_p = factor = None
    no_focus = isinstance(g, float) and g == 0.0
    if callable(g) or not (no_focus and epsilon == 0.0):
        p, one_minus_p = _probabilities(inputs, log_p, scale)
    if callable(g):  # sample-dependent focusing, on each class's probability
        g = g(p)
    guarded = log_p
    if inputs.labels is None:
        guarded = without_massless(guarded, inputs.dist, xp)
    if alpha_vec is not None:
        guarded = without_massless(guarded, inputs.broadcast_class(alpha_vec), xp)
    if one_minus_p is None:
        terms = guarded
    else:
        if not no_focus:
            factor = modulating_factor(one_minus_p, g, xp)
        log_term = poly_log_prob(guarded, one_minus_p, epsilon / scale)
        terms = softmax_focal_terms(log_term, one_minus_p, g, xp, factor)
    if alpha_vec is not None:
        terms = inputs.broadcast_class(alpha_vec) * terms
    return log_p, guarded, p, one_minus_p, factor, terms, scale


def _loss_of_terms(inputs: SoftmaxInputs, terms: Array) -> Array:
    """``-sum_c q'_c terms_c``: the loss of every class's (weighted) term, guarded
    already where a class has no mass (:func:`_every_class_terms`)."""
    if inputs.labels is None:
        return -inputs.xp.sum(inputs.dist * terms, axis=inputs.axis)
    labels, _, _ = inputs.label_masks()
    picked = inputs.take_class(terms, labels)  # (smoothed: b > 0 here)
    return cross_entropy_of_labels(picked, inputs.row_sum(terms), inputs.a, inputs.b)


def _has_analytic_gradient(inputs: SoftmaxInputs) -> bool:
    """Whether :func:`softmax_focal_gradient` applies: a distribution, or smoothed
    class indices without a prior, from logits whose log-probabilities are in nats."""
    return (
        (inputs.labels is None or (inputs.b != 0.0 and inputs.prior is None))
        and inputs.from_logits
        and inputs.backend.log_prob_scale(inputs.out_dtype, inputs.x.dtype, inputs.num_classes)
        == 1.0
    )


def softmax_focal_gradient(
    inputs: SoftmaxInputs, alpha_vec: Array | None, gamma: float, epsilon: float
) -> tuple[Array, Array]:
    r"""``(loss, d sum(loss) / d x)``: the per-element softmax focal loss where every
    class term counts -- a target distribution ``q'``, or class indices smoothed to
    ``q' = a onehot + b`` (no prior) -- from logits, as :func:`_focal_elements`
    gives it, and the gradient of its sum with respect to the logits, analytically.
    With ``m_c = alpha_c q'_c`` and ``S_c`` the slope of the class term
    (:func:`~arraylosses._elementwise.softmax_focal_slope`):

    .. math::

        \frac{\partial \ell}{\partial x_j} = p_j \sum_c m_c S_c - m_j S_j

    which for smoothed class indices is ``p_j (a alpha_y S_y + b sum_c alpha_c S_c)
    - b alpha_j S_j - [j = y] a alpha_y S_y``, with no one-hot. A class without mass
    has its slope taken at the guarded log-probability 0 (finite) and contributes 0.
    At gamma 0 with ``alpha`` the class weights it is the gradient of the
    cross-entropy. Four or five full-size operations besides the slope, in place on
    this function's own temporaries, where automatic differentiation of the
    definition saves and revisits every intermediate. A row block's evaluator
    (``Backend.rowwise``) calls it on each block.
    """
    xp, ax = inputs.xp, inputs.axis
    log_p, guarded, p, one_minus_p, factor, terms, _ = _every_class_terms(
        inputs, alpha_vec, gamma, epsilon
    )
    loss = _loss_of_terms(inputs, terms)
    if p is None:  # (from logits here: p is this function's own temporary below)
        p = xp.exp(log_p)
    slope = None  # (gamma 0 without Poly-1: every slope is 1)
    if one_minus_p is not None:
        slope = softmax_focal_slope(guarded, one_minus_p, gamma, epsilon, xp, p=p, factor=factor)
    # In place on this function's own temporaries (nothing differentiates them):
    # fewer fresh full-size allocations, which cost more than the arithmetic on CPU.
    if inputs.labels is None:
        mass = inputs.dist
        if alpha_vec is not None:
            mass = inputs.broadcast_class(alpha_vec) * mass
        if slope is None:
            slope = mass  # (read below, never written)
        else:
            slope *= mass
        p *= xp.sum(slope, axis=ax, keepdims=True)
        p -= slope
        return loss, p
    if slope is None:
        slope = xp.ones_like(p)
    a, b = inputs.a, inputs.b  # (b > 0 here)
    slope *= b if alpha_vec is None else inputs.broadcast_class(b * alpha_vec)  # b alpha_c S_c
    labels, _, _ = inputs.label_masks()
    at_label = (a / b) * inputs.take_class(slope, labels)  # a alpha_y S_y
    per_row = at_label + xp.sum(slope, axis=ax)
    p *= xp.expand_dims(per_row, axis=ax)
    p -= slope
    return loss, inputs.backend.add_at_label(p, labels, -at_label, ax, xp)
