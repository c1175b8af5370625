r"""First and second derivatives of the per-element losses with respect to the logits.

What a gradient-boosting library asks of a custom objective: for each raw score
``x``, ``dl/dx`` and ``d^2 l/dx^2`` (for a softmax loss, the gradient and the diagonal
of each row's Hessian). Written analytically against the array API, so they run on
every backend (CuPy for GPU boosting) without automatic differentiation, and tested
against ``torch.func.hessian`` / ``jax.hessian`` of the definitions.

Every formula is arranged so that no intermediate overflows or cancels where the
loss is finite: the focal factor's ``b^(gamma - 2)`` (which overflows for
``0 < gamma < 1``) only ever appears multiplied by the ``b^2`` its chain rule
brings, and is computed as ``b^gamma`` times bounded ratios.
"""

from __future__ import annotations

import numbers
from typing import Any

from ._elementwise import softmax_focal_slope
from ._inputs import BinaryInputs, SoftmaxInputs
from ._primitives import log_of_mix, log_sigmoid_pair
from ._typing import Array, Namespace
from ._validation import (
    check_alpha_array,
    check_asymmetric_options,
    check_finite_float,
    check_gamma,
    check_unit_interval,
)

Pair = tuple[Array, Array]

# ----------------------------------------------------------------- binary family


def _binary_inputs(
    logits: Array, targets: Array, label_smoothing: object, smoothing: object
) -> BinaryInputs:
    return BinaryInputs(logits, targets, label_smoothing, smoothing, True, "none")


def _binary_parts(inputs: BinaryInputs) -> tuple[Array, Array, Array, Array, Array]:
    """``(s, t, p, q, y)``: ``log p``, ``log(1 - p)``, ``p``, ``q = 1 - p`` and the
    smoothed targets, in the compute dtype. ``ds/dx = q``, ``dt/dx = -p``,
    ``dp/dx = -dq/dx = p q``."""
    xp = inputs.xp
    s, t = log_sigmoid_pair(inputs.x, xp)
    return s, t, xp.exp(s), xp.exp(t), inputs.y


def focal_derivatives(
    inputs: BinaryInputs,
    alpha: float | None,
    gamma: float | Array,
    weight: Array | None,
    pos_weight: Array | None,
    poly_epsilon: float,
) -> Pair:
    r"""``(dl/dx, d^2l/dx^2)`` of the sigmoid focal loss (and, with ``gamma = 0`` and
    ``alpha=None``, of the BCE), Poly-1 term included.

    With ``b = 1 - p_t = y' q + (1 - y') p``, ``c = BCE + eps b`` and
    ``r = b'/b = (1 - 2y') p q / b`` (``|r| <= 1``, computed as
    ``(1 - 2y') exp(log p + log q - log b)``):

    .. math::

        \ell = A b^\gamma c, \quad
        \ell' = A b^\gamma (\gamma r c + c'), \quad
        \ell'' = A b^\gamma \left(\gamma [(\gamma - 1) r^2 + r (q - p)] c
                 + 2 \gamma r c' + c''\right)

    where ``A = alpha_t weight``, ``c' = -w_+ y' q + (1 - y') p + eps b r`` and
    ``c'' = p q (w_+ y' + 1 - y') + eps b r (q - p)``.
    """
    xp = inputs.xp
    s, t, p, q, y = _binary_parts(inputs)
    w_pos = 1.0 if pos_weight is None else pos_weight
    log_b = log_of_mix(t, s, y, xp)
    b = xp.exp(log_b)
    r = (1 - 2 * y) * xp.exp(s + t - log_b)
    pq = p * q
    c = -(w_pos * (y * s) + (1 - y) * t) + poly_epsilon * b
    c1 = (1 - y) * p - w_pos * (y * q) + poly_epsilon * (b * r)
    c2 = pq * (w_pos * y + (1 - y)) + poly_epsilon * (b * r) * (q - p)
    if isinstance(gamma, float) and gamma == 0.0:
        grad, hess = c1, c2
    else:
        factor = xp.exp(gamma * log_b)
        grad = factor * (gamma * r * c + c1)
        hess = factor * (
            gamma * ((gamma - 1) * (r * r) + r * (q - p)) * c + 2 * gamma * r * c1 + c2
        )
    scale: Array | float = 1.0 if alpha is None else (1.0 - alpha) + (2.0 * alpha - 1.0) * y
    if weight is not None:
        scale = weight * scale
    if not isinstance(scale, float):
        grad, hess = scale * grad, scale * hess
    return grad, hess


def _power_jet(
    log_base: Array, ratio: Array, ratio_slope: Array, g: float, xp: Namespace
) -> tuple[Array, Array, Array]:
    """``(f, f', f'')`` of ``f = base^g`` from ``log base``, ``base'/base`` and
    ``base''/base``: ``f' = g f ratio``, ``f'' = g f ((g - 1) ratio^2 + ratio_slope)``."""
    f = xp.ones_like(log_base) if g == 0.0 else xp.exp(g * log_base)
    return f, g * f * ratio, g * f * ((g - 1) * ratio * ratio + ratio_slope)


def _product(a: tuple[Array, Array, Array], b: tuple[Array, Array, Array]) -> Pair:
    """First and second derivative of ``a b`` from both jets."""
    return a[1] * b[0] + a[0] * b[1], a[2] * b[0] + 2 * a[1] * b[1] + a[0] * b[2]


def asymmetric_derivatives(
    inputs: BinaryInputs, gamma_pos: float, gamma_neg: float, clip: float
) -> Pair:
    r"""``(dl/dx, d^2l/dx^2)`` of the asymmetric loss
    ``-[y' q^{g+} log p + (1 - y') p_m^{g-} log(1 - p_m)]``, ``p_m = max(p - clip, 0)``.

    Each term is a product of a power jet and a log jet. ``q^g`` has
    ``q'/q = -p`` and ``q''/q = -p (q - p)``; ``p_m^g`` has ``p_m'/p_m = p q / p_m``
    and ``p_m''/p_m = p q (q - p) / p_m`` (for ``p > clip``; ``p_m`` is at least the
    spacing of the floats near ``clip`` there, so these stay finite); ``log(1 - p_m)
    = log(q + clip)`` has derivatives ``-p q / u`` and ``-p q ((q - p) u + p q) / u^2``
    with ``u = q + clip``. Below the margin the negative term is 0, and so are its
    derivatives (the branch the loss takes at ``p == clip``).
    """
    xp = inputs.xp
    s, t, p, q, y = _binary_parts(inputs)
    pq = p * q
    positive = _product(_power_jet(t, -p, -p * (q - p), gamma_pos, xp), (s, q, -pq))
    if clip == 0.0:
        negative = _product(_power_jet(s, q, q * (q - p), gamma_neg, xp), (t, -p, -pq))
    else:
        shifted = q < 1.0 - clip
        p_m = xp.where(shifted, (1.0 - clip) - q, xp.ones_like(q))
        u = xp.where(shifted, q + clip, xp.ones_like(q))
        k = pq / p_m
        power = _power_jet(xp.log(p_m), k, k * (q - p), gamma_neg, xp)
        log_u = (xp.log(u), -pq / u, -pq * ((q - p) * u + pq) / (u * u))
        d1, d2 = _product(power, log_u)
        zero = xp.zeros_like(d1)
        negative = xp.where(shifted, d1, zero), xp.where(shifted, d2, zero)
    return (
        (y - 1) * negative[0] - y * positive[0],
        (y - 1) * negative[1] - y * positive[1],
    )


# ---------------------------------------------------------------- softmax family


def softmax_derivatives(
    inputs: SoftmaxInputs,
    class_weight: Array | None,
    scalar_weight: float | None,
    gamma: float | Array,
    poly_epsilon: float,
) -> Pair:
    r"""The gradient and the diagonal of the Hessian of
    ``l = -sum_c m_c (1 - p_c)^gamma (log p_c - eps (1 - p_c))`` with respect to each
    logit of a row, ``m_c = w_c q'_c`` (``w`` the class weights or alpha, ``q'`` the
    smoothed target distribution). Shape of the logits.

    With ``F_c`` the class term as a function of ``l_c = log p_c``, ``W_c = m_c F_c'``
    and ``V_c = m_c F_c''``, and ``u_j = 1 - p_j``:

    .. math::

        g_j = W_j u_j - p_j \sum_{c \ne j} W_c, \qquad
        h_j = V_j u_j^2 + p_j^2 \sum_{c \ne j} V_c - p_j u_j \sum_c W_c

    ``V_c`` holds ``u_c^(gamma - 2)``, unbounded for ``gamma < 2`` as ``p_c -> 1``:
    it is computed only as ``V_c u_c^2`` (bounded), and for the row's most probable
    class ``c*`` (the only one that can have ``u_c < 1/2``) ``p_j^2 V_c* =
    V_c* u_c*^2 (p_j / u_c*)^2`` with ``p_j <= u_c*``. ``u_c*`` is the sum of the
    other classes' probabilities, exact where ``1 - p`` would round to 0.
    """
    xp = inputs.xp
    ax = inputs.axis
    k = inputs.num_classes
    x = xp.moveaxis(inputs.x, ax, -1)
    dtype = x.dtype
    log_p = x - xp.max(x, axis=-1, keepdims=True)
    log_p = log_p - xp.log(xp.sum(xp.exp(log_p), axis=-1, keepdims=True))
    p = xp.exp(log_p)
    classes = xp.arange(k)
    if inputs.labels is None:
        mass = xp.moveaxis(inputs.dist, ax, -1)
    else:
        labels, _, _ = inputs.label_masks()
        one = xp.astype(labels[..., None] == classes, dtype)
        if inputs.b == 0.0:
            mass = one
        else:
            u_prior = 1.0 if inputs.prior is None else inputs.prior
            mass = inputs.a * one + inputs.b * u_prior
    if class_weight is not None:
        mass = mass * class_weight
    if scalar_weight is not None:
        mass = scalar_weight * mass
    g = gamma
    if not isinstance(g, float):
        g = xp.moveaxis(xp.broadcast_to(g, tuple(inputs.x.shape)), ax, -1)
    # the most probable class of each row, and 1 - p computed without cancelling
    top = xp.astype(xp.argmax(x, axis=-1, keepdims=True) == classes, xp.bool)
    others_of_top = xp.sum(xp.where(top, xp.zeros_like(p), p), axis=-1, keepdims=True)
    u = xp.where(top, others_of_top, -xp.expm1(log_p))
    log_p = xp.where(top, xp.log1p(-others_of_top), log_p)
    eps = poly_epsilon
    h = log_p - eps * u
    safe_u = xp.where(u > 0, u, xp.ones_like(u))
    f1 = -softmax_focal_slope(log_p, u, g, eps, xp)  # F' of the class term F = -T
    if isinstance(g, float) and g == 0.0:
        f2u2 = -eps * p * (u * u)  # u^2 F''
    else:
        # u^gamma, with 0^gamma = 0 (gamma > 0) or 1 (gamma = 0)
        limit = xp.zeros_like(u) if isinstance(g, float) else xp.astype(g == 0, dtype)
        factor = xp.where(u > 0, xp.exp(g * xp.log(safe_u)), limit)
        f2u2 = factor * (
            g * p * (u - (g - 1) * p) * h + 2 * g * p * u * (1 + eps * p) - eps * p * (u * u)
        )
    w1 = mass * f1  # W_c
    v_scaled = mass * f2u2  # V_c u_c^2
    not_top = ~top
    off_top = xp.where(not_top, u, xp.ones_like(u))  # u_c >= 1/2 off the top class
    v_plain = xp.where(not_top, v_scaled / (off_top * off_top), xp.zeros_like(u))  # V_c
    w_sum = xp.sum(w1, axis=-1, keepdims=True)
    w_rest = xp.sum(xp.where(not_top, w1, xp.zeros_like(w1)), axis=-1, keepdims=True)
    w_top = w_sum - w_rest
    v_rest = xp.sum(v_plain, axis=-1, keepdims=True)
    v_top = xp.sum(xp.where(top, v_scaled, xp.zeros_like(v_scaled)), axis=-1, keepdims=True)
    # sum over c != j of W_c: the rest for the top class, else rest - own + top's
    w_others = xp.where(top, w_rest, w_rest - w1 + w_top)
    grad = w1 * u - p * w_others
    safe_top = xp.where(others_of_top > 0, others_of_top, xp.ones_like(others_of_top))
    p_off = xp.where(top, xp.zeros_like(p), p)
    to_top = p_off / safe_top  # p_j / u_c* <= 1 (0 on the top class itself)
    v_others = xp.where(top, p * p * v_rest, p * p * (v_rest - v_plain) + v_top * (to_top * to_top))
    hess = v_scaled + v_others - p * u * w_sum
    return xp.moveaxis(grad, -1, ax), xp.moveaxis(hess, -1, ax)


# ------------------------------------------------------------------ entry point

_COMMON = ("label_smoothing", "smoothing")
ACCEPTED: dict[str, tuple[str, ...]] = {
    "binary_cross_entropy": ("weight", "pos_weight", "poly_epsilon", *_COMMON),
    "sigmoid_focal_loss": ("alpha", "gamma", "weight", "pos_weight", "poly_epsilon", *_COMMON),
    "asymmetric_loss": ("gamma_pos", "gamma_neg", "clip", *_COMMON),
    "cross_entropy": ("axis", "weight", "poly_epsilon", *_COMMON),
    "softmax_focal_loss": ("axis", "alpha", "gamma", "poly_epsilon", *_COMMON),
}
BINARY = ("binary_cross_entropy", "sigmoid_focal_loss", "asymmetric_loss")
# what the reduced losses take that a per-element derivative has no use for
_PER_CALL = {
    "reduction": "the derivatives are per element (the loss with reduction='none')",
    "where": "leave the elements out, or give them weight 0",
    "normalizer": "divide the derivatives by it",
    "ignore_index": "leave the elements out, or give them weight 0",
}


def loss_name(loss: object) -> str:
    """The name of a loss given as one of the package's functions or its name."""
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None)
    module = getattr(loss, "__module__", "arraylosses") or ""
    if not isinstance(name, str) or name not in ACCEPTED or not module.startswith("arraylosses"):
        raise TypeError(
            f"`loss` must be one of arraylosses' losses ({', '.join(ACCEPTED)}), as the "
            f"function or its name; got {loss!r}."
        )
    return name


def check_derivative_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options the loss does not take or a per-element derivative cannot use."""
    for option, value in options.items():
        if option == "from_logits":
            if value is not True:
                raise ValueError(
                    "`from_logits` must be True: the derivatives are with respect to the "
                    f"logits (raw scores); got {value!r}."
                )
            continue
        if option in _PER_CALL and option in _signature_options(name):
            raise TypeError(
                f"`{option}` is not taken by the derivatives of {name}: {_PER_CALL[option]}."
            )
        if option not in ACCEPTED[name]:
            raise TypeError(
                f"{name} takes no option `{option}` here; its options are "
                f"{', '.join(ACCEPTED[name])}."
            )


def _signature_options(name: str) -> tuple[str, ...]:
    return (*ACCEPTED[name], "reduction", "where", "normalizer") + (
        ("ignore_index",) if name in ("cross_entropy", "softmax_focal_loss") else ()
    )


def gradient_hessian(loss: object, logits: Array, targets: Array, /, **options: Any) -> Pair:
    """See :func:`arraylosses.boosting.gradient_hessian`."""
    name = loss_name(loss)
    check_derivative_options(name, options)
    options.pop("from_logits", None)
    eps_smooth = options.pop("label_smoothing", 0.0)
    smoothing = options.pop("smoothing", "uniform")
    poly = options.pop("poly_epsilon", 0.0)
    poly_epsilon = 0.0 if poly == 0.0 else check_finite_float(poly, "poly_epsilon")
    inputs: BinaryInputs | SoftmaxInputs
    if name in BINARY:
        inputs = _binary_inputs(logits, targets, eps_smooth, smoothing)
        if name == "asymmetric_loss":
            g_pos, g_neg, clip = check_asymmetric_options(
                options.get("gamma_pos", 0.0),
                options.get("gamma_neg", 4.0),
                options.get("clip", 0.05),
            )
            grad, hess = asymmetric_derivatives(inputs, g_pos, g_neg, clip)
        else:
            focal = name == "sigmoid_focal_loss"
            alpha = options.get("alpha", 0.25) if focal else None
            a = None if alpha is None else check_unit_interval(alpha, "alpha")
            g_binary = _gamma(options.get("gamma", 2.0) if focal else 0.0, inputs)
            w = options.get("weight")
            pw = options.get("pos_weight")
            grad, hess = focal_derivatives(
                inputs,
                a,
                g_binary,
                None if w is None else inputs.parameter(w, "weight"),
                None if pw is None else inputs.parameter(pw, "pos_weight"),
                poly_epsilon,
            )
    else:
        axis = options.get("axis", -1)
        inputs = SoftmaxInputs(logits, targets, axis, None, eps_smooth, smoothing, True, "none")
        xp = inputs.xp
        class_weight = None
        scalar = None
        if name == "cross_entropy":
            gamma: float | Array = 0.0
            if options.get("weight") is not None:
                class_weight = inputs.per_class(options["weight"], "weight")
        else:
            gamma = _gamma(options.get("gamma", 2.0), inputs)
            alpha = options.get("alpha")
            if isinstance(alpha, (numbers.Real, bool)):  # a bool is refused by the check
                scalar = check_unit_interval(alpha, "alpha")
            elif alpha is not None:
                class_weight = check_alpha_array(
                    inputs.per_class(alpha, "alpha"), xp, inputs.x, inputs.backend
                )
        grad, hess = softmax_derivatives(inputs, class_weight, scalar, gamma, poly_epsilon)
    return inputs.cast(grad), inputs.cast(hess)


def _gamma(gamma: object, inputs: BinaryInputs | SoftmaxInputs) -> float | Array:
    if callable(gamma) and not hasattr(gamma, "shape"):
        raise TypeError(
            "`gamma` must be a float >= 0 or an array here: the derivatives of a callable "
            "gamma (which depends on p) are not analytic; pass its values as an array."
        )
    return check_gamma(gamma, inputs.xp, inputs.x, inputs.backend)
