r"""The per-element definition of every loss, each written once.

A leaf module: it imports only the stable primitives. Public functions validate
their inputs and call these; backend kernels (``_backends``) call them too, on terms
they compute with their library's fused operations, so that the formula of a loss
(and of its analytic gradient) exists in exactly one place.

Binary losses are written in terms of the element's binary cross-entropy and
probabilities, ``(bce, b, p, q)`` with ``p = sigmoid(x)``, ``q = 1 - p`` and
``b = 1 - p_t = y' q + (1 - y') p``: :func:`binary_terms` computes them from logits
(or probabilities) in log space, and a kernel may compute the same four numbers its
own way.
"""

from __future__ import annotations

from ._primitives import (
    log_of_mix,
    modulating_factor,
    modulating_factor_slope,
    needs_log_base,
)
from ._typing import Array, Namespace

# ----------------------------------------------------------------- binary family


def binary_cross_entropy(
    log_p: Array, log_q: Array, y: Array, pos_weight: Array | None = None
) -> Array:
    """``-(w_+ y' log p + (1 - y') log(1 - p))``: binary cross-entropy of one element."""
    positive = y * log_p if pos_weight is None else pos_weight * (y * log_p)
    return -(positive + (1 - y) * log_q)


def binary_terms(
    x: Array,
    log_p: Array,
    log_q: Array,
    y: Array,
    from_logits: bool,
    xp: Namespace,
    *,
    with_logs: bool = False,
    pos_weight: Array | None = None,
) -> tuple[Array, Array, Array, Array, tuple[Array, Array, Array] | None]:
    """``(bce, b, p, q, logs)`` of logits (or probabilities) ``x``, their
    ``(log p, log(1 - p))`` (:func:`~._primitives.log_sigmoid_pair` of logits, the
    clamped logs of probabilities) and smoothed targets ``y`` (the BCE with
    ``pos_weight`` on its positive term, if given); ``logs`` is
    ``(log p, log q, log b)`` from logits when asked for (for a fractional gamma, see
    :func:`~._primitives.modulating_factor`), else None.

    From logits ``p = exp(log p)`` and ``q = exp(log(1 - p))`` are each accurate where
    the other is close to 1, and ``b = y' q + (1 - y') p`` is a sum of two
    non-negative terms: no cancellation anywhere.
    """
    bce = binary_cross_entropy(log_p, log_q, y, pos_weight)
    p, q = (xp.exp(log_p), xp.exp(log_q)) if from_logits else (x, 1 - x)
    logs = None
    if with_logs and from_logits:
        logs = (log_p, log_q, log_of_mix(log_q, log_p, y, xp))
    return bce, y * q + (1 - y) * p, p, q, logs


def class_balance(y: Array, alpha: float | None) -> Array | float:
    """``alpha_t = alpha y' + (1 - alpha)(1 - y')``, written with one multiply; 1 for
    ``alpha=None``."""
    if alpha is None:
        return 1.0
    return (1.0 - alpha) + (2.0 * alpha - 1.0) * y


def focal_weight(
    b: Array,
    y: Array,
    alpha: float | None,
    gamma: float | Array,
    xp: Namespace,
    log_b: Array | None = None,
) -> Array | float:
    """``alpha_t (1 - p_t)^gamma``: the weight the focal loss puts on an element's BCE
    (the Python float 1.0 for ``alpha=None`` and ``gamma = 0``); ``log_b`` is
    ``log(1 - p_t)`` where known (see :func:`~._primitives.modulating_factor`)."""
    balance = class_balance(y, alpha)
    if isinstance(gamma, float) and gamma == 0.0:
        return balance
    factor = modulating_factor(b, gamma, xp, log_b)
    return factor if alpha is None else balance * factor


def sigmoid_focal(
    bce: Array,
    b: Array,
    y: Array,
    alpha: float | None,
    gamma: float | Array,
    xp: Namespace,
    log_b: Array | None = None,
) -> Array:
    r"""The sigmoid focal loss of one element (Lin et al. 2017, equation 5).

    .. math::

        \ell = \alpha_t\, (1 - p_t)^\gamma\, \mathrm{BCE}(x, y')

    with ``b = 1 - p_t`` (and ``log_b = log b`` where known); ``gamma = 0`` and
    ``alpha=None`` is the BCE itself.
    """
    weight = focal_weight(b, y, alpha, gamma, xp, log_b)
    return bce if isinstance(weight, float) else weight * bce


def sigmoid_focal_gradient(
    bce: Array,
    b: Array,
    p: Array,
    q: Array,
    y: Array,
    alpha: float | None,
    gamma: float,
    xp: Namespace,
    *,
    weight: Array | float | None = None,
    logs: tuple[Array, Array, Array] | None = None,
) -> Array:
    r"""``d sigmoid_focal / dx`` with respect to the logit, for a Python-float gamma.

    Since ``dBCE/dx = p - y'`` and ``db/dx = (1 - 2y') p q``:

    .. math::

        \frac{d\ell}{dx} = \alpha_t \left[ b^\gamma (p - y')
            + \gamma b^{\gamma - 1} (1 - 2y')\, p\, q\, \mathrm{BCE} \right]

    ``p - y'`` is written ``(1 - y') p - y' q`` so that it keeps its relative accuracy
    when ``p`` is close to 1, and ``b^(gamma - 1)`` follows
    :func:`~._primitives.modulating_factor_slope` (the derivative automatic
    differentiation takes of :func:`~._primitives.modulating_factor`). Built from
    differentiable primitives, so differentiating it again (double backward) is exact.
    ``weight`` is :func:`focal_weight` where the caller has already computed it.
    With ``logs = (log p, log q, log b)`` (from logits) a fractional gamma's
    ``gamma b^(gamma-1) p q`` is ``gamma exp(log p + log q + (gamma - 1) log b)``,
    whose derivative is finite too (second derivatives of the loss).
    """
    log_b = None if logs is None else logs[2]
    if weight is None:
        weight = focal_weight(b, y, alpha, gamma, xp, log_b)
    p_minus_y = (1 - y) * p - y * q
    grad = p_minus_y if isinstance(weight, float) else weight * p_minus_y
    if gamma != 0.0:
        if logs is not None and needs_log_base(gamma):
            log_p, log_q, log_1mpt = logs
            slope_pq = gamma * xp.exp(log_p + log_q + (gamma - 1.0) * log_1mpt)
        else:
            slope_pq = modulating_factor_slope(b, gamma, xp) * (p * q)
        term = slope_pq * (1 - 2 * y) * bce
        grad = grad + (term if alpha is None else class_balance(y, alpha) * term)
    return grad


def asymmetric(
    log_p: Array,
    log_q: Array,
    q: Array | None,
    p_m: Array,
    log_1m_pm: Array,
    y: Array,
    gamma_pos: float,
    gamma_neg: float,
    xp: Namespace,
) -> Array:
    r"""The asymmetric loss of one element (Ridnik et al. 2021, equations 1 and 5).

    .. math::

        \ell = -\left[ y' (1 - p)^{\gamma_+} \log p
               + (1 - y')\, p_m^{\gamma_-} \log(1 - p_m) \right]

    with ``q = 1 - p`` (and ``log_q = log q``, which makes a fractional
    ``gamma_pos`` smooth; ``q`` may be None where ``gamma_pos`` is 0),
    ``p_m = max(p - clip, 0)`` the shifted probability and
    ``log_1m_pm = log(1 - p_m)``, both computed by the caller in log space.
    """
    positive = log_p if gamma_pos == 0.0 else modulating_factor(q, gamma_pos, xp, log_q) * log_p
    negative = log_1m_pm if gamma_neg == 0.0 else modulating_factor(p_m, gamma_neg, xp) * log_1m_pm
    # -[y pos + (1 - y) neg], written so that a discarded term (0 * 0) gives +0.0
    return (y - 1) * negative - y * positive


def poly_binary_cross_entropy(bce: Array, b: Array, epsilon: float) -> Array:
    """Poly-1 (Leng et al. 2022) of a binary element: ``BCE + eps (1 - p_t)``, with
    ``b = 1 - p_t``; the focal loss multiplies both by ``alpha_t b^gamma``, so that its
    Poly-1 term is ``eps alpha_t (1 - p_t)^(gamma + 1)``."""
    return bce if epsilon == 0.0 else bce + epsilon * b


# ---------------------------------------------------------------- softmax family


def poly_log_prob(log_p: Array, one_minus_p: Array, epsilon: float) -> Array:
    """Poly-1 (Leng et al. 2022) of a class term: ``log p_c - eps (1 - p_c)`` in place
    of ``log p_c``. The softmax losses are ``-sum_c w_c q'_c (1 - p_c)^gamma`` times
    their log term, so this adds ``eps sum_c w_c q'_c (1 - p_c)^(gamma + 1)``."""
    return log_p if epsilon == 0.0 else log_p - epsilon * one_minus_p


def mass_times_log(q: Array, log_p: Array, xp: Namespace) -> Array:
    """``q log p`` with ``0 log 0 = 0``: a class that gets no target mass (or weight)
    contributes exactly 0, even where its logit is ``-inf`` (a masked class) or its
    log-probability underflowed; a class with mass and ``log p = -inf`` gives
    ``-inf``. The double ``where`` keeps both the value and the gradient finite."""
    return q * without_massless(log_p, q, xp)


def without_massless(log_p: Array, mass: Array, xp: Namespace) -> Array:
    """``log_p`` with 0 wherever ``mass`` (broadcast against it) is 0, applied before
    anything multiplies it: a product's derivative would otherwise meet ``-inf``."""
    return xp.where(mass == 0, xp.zeros_like(log_p), log_p)


def cross_entropy_of_distribution(log_p: Array, q: Array, axis: int, xp: Namespace) -> Array:
    """``-sum_c q'_c log p_c`` along ``axis`` (class weights already folded into ``q``)."""
    return -xp.sum(mass_times_log(q, log_p, xp), axis=axis)


def cross_entropy_of_labels(
    picked: Array, row_sum: Array | None, a: float, b: float, w_label: Array | None = None
) -> Array:
    """``-sum_c w_c q'_c log p_c`` for a one-hot target smoothed to ``q' = a q + b``.

    By linearity that is ``-(a w_y log p_y + b sum_c w_c log p_c)``: ``picked`` is
    ``log p_y`` (the label's log-probability), ``row_sum`` the weighted sum over the
    classes (None when ``b = 0``) and ``w_label`` the label's weight. No one-hot is
    ever materialised.
    """
    if a == 0.0 and row_sum is not None:  # label_smoothing=1: no mass left on the label
        return -b * row_sum
    loss = -a * picked if w_label is None else -a * (w_label * picked)
    return loss if row_sum is None else loss - b * row_sum


def softmax_focal_terms(
    log_p: Array,
    one_minus_p: Array,
    gamma: float | Array,
    xp: Namespace,
    factor: Array | None = None,
) -> Array:
    r"""``(1 - p_c)^\gamma \log p_c`` for every class term of the softmax focal loss.

    The loss is ``-sum_c alpha_c q'_c`` times this (Lin et al. 2017, for the softmax
    form); ``one_minus_p`` is ``1 - exp(log p_c)`` from logits (as accurate as the
    log-probability itself, ``_categorical._probabilities``). ``factor``, when given,
    is ``modulating_factor(one_minus_p, gamma)`` already evaluated (a caller that also
    wants :func:`softmax_focal_slope`).
    """
    if isinstance(gamma, float) and gamma == 0.0:
        return log_p  # (the factor is 1)
    if factor is None:
        factor = modulating_factor(one_minus_p, gamma, xp)
    return factor * log_p


def softmax_focal_slope(
    log_p: Array,
    one_minus_p: Array,
    gamma: float | Array,
    epsilon: float,
    xp: Namespace,
    *,
    p: Array | None = None,
    factor: Array | None = None,
) -> Array:
    r"""``d T / d log p`` of a class term ``T = (1 - p)^\gamma (\log p - \varepsilon (1 - p))``
    (:func:`softmax_focal_terms` of :func:`poly_log_prob`): with ``u = 1 - p`` and
    ``du / d log p = -p``,

    .. math::

        \frac{dT}{d \log p} = u^{\gamma - 1} \left[ u (1 + \varepsilon p)
            - \gamma p (\log p - \varepsilon u) \right]

    A softmax loss ``-sum_c m_c T_c`` then has ``d loss / d x_j = sum_c m_c S_c
    (p_j - [c = j])`` for ``S = dT/d log p``: the analytic gradients (the PyTorch
    autograd functions, :mod:`arraylosses.boosting`) take it from here.

    For a float ``gamma >= 1`` the power ``u^(gamma - 1)`` is bounded and is taken as
    written (four operations at ``gamma = 2``, ``epsilon = 0``). For ``0 < gamma < 1``
    or an array gamma it is unbounded as ``u -> 0``, so the slope is evaluated as
    ``u^gamma [1 + eps p - gamma p (log p / u - eps)]``, where ``log p / u`` is taken
    as 0 where ``u`` is 0 (a class of probability 1, so ``log p`` is 0 too): it is
    multiplied by ``u^gamma = 0`` there, or by ``gamma = 0``, so any finite value gives
    the same slope. ``p`` (``exp(log p)``) and, for that second form, ``factor``
    (``modulating_factor(u, gamma)``) may be passed by a caller that has them.
    """
    if isinstance(gamma, float) and gamma == 0.0:  # (a cross-entropy term: no p needed)
        if epsilon == 0.0:
            return xp.ones_like(log_p)
        return 1 + epsilon * (xp.exp(log_p) if p is None else p)
    if p is None:
        p = xp.exp(log_p)
    u = one_minus_p
    if isinstance(gamma, float) and gamma >= 1.0:
        if epsilon == 0.0:
            inner = u - gamma * (p * log_p)
        else:
            inner = u * (1 + epsilon * p) - gamma * (p * (log_p - epsilon * u))
        return inner if gamma == 1.0 else modulating_factor(u, gamma - 1.0, xp) * inner
    ratio = log_p / xp.where(u > 0, u, xp.ones_like(u))
    if factor is None:
        factor = modulating_factor(u, gamma, xp)
    if epsilon == 0.0:
        return factor * (1 - gamma * p * ratio)
    return factor * ((1 + epsilon * p) - gamma * p * (ratio - epsilon))


__all__ = [
    "asymmetric",
    "binary_cross_entropy",
    "binary_terms",
    "class_balance",
    "cross_entropy_of_distribution",
    "cross_entropy_of_labels",
    "focal_weight",
    "mass_times_log",
    "poly_binary_cross_entropy",
    "poly_log_prob",
    "sigmoid_focal",
    "sigmoid_focal_gradient",
    "softmax_focal_slope",
    "softmax_focal_terms",
    "without_massless",
]
