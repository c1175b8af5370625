"""Numerically stable building blocks shared by every loss.

Everything here works in log space from logits so that no intermediate overflows,
underflows to ``-inf`` or produces NaN for finite inputs, and every function has an
exact two-sided derivative everywhere (no ``clamp``/``relu`` shortcuts whose gradient
is one-sided at 0).
"""

from __future__ import annotations

from collections.abc import Callable

from ._typing import Array, DType, Namespace

# PyTorch's binary_cross_entropy clamps log-probabilities at -100 so that a probability
# of exactly 0 or 1 gives a large finite loss; docs/contract.md follows it.
LOG_PROB_FLOOR = -100.0


def relu_halves(x: Array, xp: Namespace) -> tuple[Array, Array]:
    """Return ``(max(x, 0), min(x, 0))`` with exact, symmetric derivatives.

    Each branch is selected, not computed as ``0.5*x ± 0.5*|x|``: with the sum form
    the gradient reaching ``x`` is a difference of two large terms wherever the focal
    factor sends a large gradient (about ``gamma * |x|``) into one of the halves, and
    the true O(1) gradient cancels away at large ``|x|`` (bfloat16 logits reach
    3e38). At exactly ``x == 0`` both halves are ``0.5 * x`` (value 0, derivative
    0.5) so the gradient of zero-initialised heads matches the true derivative, where
    ``maximum``/``relu`` would give a one-sided 0 or 1. NaN propagates to both.
    """
    at_zero = 0.5 * x * xp.astype(x == 0, x.dtype)
    return xp.where(x > 0, x, at_zero), xp.where(x < 0, x, at_zero)


def log_sigmoid_pair(x: Array, xp: Namespace) -> tuple[Array, Array]:
    """Return ``(log sigmoid(x), log sigmoid(-x))`` from one ``exp`` and one ``log1p``.

    ``log sigmoid(x) = min(x, 0) - log1p(exp(-|x|))`` and
    ``log sigmoid(-x) = -max(x, 0) - log1p(exp(-|x|))``: the shared term is computed
    once, and ``exp(-|x|)`` never overflows.
    """
    pos, neg = relu_halves(x, xp)
    # -|x| written as min(x, 0) - max(x, 0): its derivative at exactly 0 is 0 on every
    # backend (the derivative of ``abs`` at 0 is 0 in PyTorch but 1 in JAX).
    softplus_tail = xp.log1p(xp.exp(neg - pos))
    return neg - softplus_tail, -pos - softplus_tail


def log_of_mix(log_a: Array, log_b: Array, w: Array, xp: Namespace) -> Array:
    """``log(w a + (1 - w) b)`` for ``w`` in ``[0, 1]`` from ``log a`` and ``log b``,
    in log space: ``logaddexp(log w + log a, log1p(-w) + log b)``. The exact weights
    0 and 1 (hard targets) select ``log b`` / ``log a`` instead, so that no ``log 0 =
    -inf`` enters: forward- and reverse-mode derivatives stay finite."""
    is_a, is_b = w == 1, w == 0
    w_safe = xp.where(is_a | is_b, xp.full_like(w, 0.5), w)
    mixed = log_add_exp(xp.log(w_safe) + log_a, xp.log1p(-w_safe) + log_b, xp)
    return xp.where(is_a, log_a, xp.where(is_b, log_b, mixed))


def log_add_exp(a: Array, b: Array, xp: Namespace) -> Array:
    """``log(exp(a) + exp(b))`` as ``hi + log1p(exp(lo - hi))`` with the larger and
    smaller argument selected: every derivative is bounded. (Native ``logaddexp``
    kernels may write their derivative as ``1 / (1 + exp(b - a))``, whose own
    derivative is ``inf / inf`` for arguments far apart: a NaN Hessian.)"""
    a_larger = a > b
    hi = xp.where(a_larger, a, b)
    lo = xp.where(a_larger, b, a)
    return hi + xp.log1p(xp.exp(lo - hi))


def clamped_log(
    p: Array,
    xp: Namespace,
    stop_gradient: Callable[[Array], Array] | None = None,
    dtype: DType | None = None,
) -> Array:
    """``max(log(p), -100)`` for probabilities, without a ``log(0)`` warning or NaN.

    The double ``where`` keeps ``log`` away from 0 so NumPy emits no divide warning and
    the gradient at ``p == 0`` is 0 rather than NaN; where the floor is active the
    gradient is the floor's, 0.

    With ``stop_gradient`` (a library with automatic differentiation) the value is
    the same but the derivative is ``1 / max(p, tiny)``, ``tiny`` the smallest normal
    number of ``dtype`` (the caller's dtype, which may be narrower than ``p``'s): the
    exact ``1 / p`` overflows to inf for subnormal ``p`` (and, for float16 computed in
    float32, once cast back), and autodiff turns that inf into NaN downstream.
    """
    # ``~(p <= 0)`` rather than ``p > 0`` so that NaN takes the ``log`` branch and
    # stays NaN instead of being hidden behind the floor.
    positive = ~(p <= 0)
    safe = xp.where(positive, p, xp.ones_like(p))
    if stop_gradient is None:
        log = xp.log(safe)
    else:
        tiny = xp.finfo(p.dtype if dtype is None else dtype).smallest_normal
        lift = stop_gradient(xp.where(safe < tiny, tiny - safe, xp.zeros_like(safe)))
        floored = xp.log(safe + lift)  # derivative 1 / max(p, tiny)
        # the value of log(p), exactly (``floored - stop(floored)`` is 0)
        log = xp.log(stop_gradient(safe)) + (floored - stop_gradient(floored))
    floor = xp.full_like(p, LOG_PROB_FLOOR)
    return xp.where(positive, xp.clip(log, min=LOG_PROB_FLOOR), floor)


def log_softmax(x: Array, axis: int, xp: Namespace) -> Array:
    """``x - logsumexp(x, axis)``, shifted by the maximum for stability.

    The shift makes the result invariant to adding a constant to every logit, as long
    as the logits stay exactly representable. (Backends with a fused kernel of the
    same semantics use it instead: ``Backend.log_softmax``.)
    """
    if 0 in x.shape:
        # Nothing to shift, and a max over an empty block raises on Dask.
        return x - xp.log(xp.sum(xp.exp(x), axis=axis, keepdims=True))
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def scaled_log_softmax(x: Array, axis: int, scale: float, xp: Namespace) -> Array:
    """``log_softmax(x) / scale``, for logits whose gaps overflow the compute dtype.

    bfloat16 logits computed in float32 (a backend without float64) can differ by
    ``max - (-max)``, which overflows float32, while the loss they give (a weighted
    sum of gaps) is representable. Dividing first keeps every gap finite: with
    ``h = x / scale`` and ``s = h - max(h)``, ``log_softmax(x) / scale =
    s - lse(scale s) / scale``. A power-of-two ``scale`` divides exactly.
    """
    h = x / scale
    shifted = h - xp.max(h, axis=axis, keepdims=True)
    lse = xp.log(xp.sum(xp.exp(scale * shifted), axis=axis, keepdims=True))
    return shifted - lse / scale


def integer_power(base: Array, n: int) -> Array:
    """``base ** n`` for ``n >= 1`` by repeated multiplication (exact, smooth at 0)."""
    out = base
    for _ in range(n - 1):
        out = out * base
    return out


def _small_integer(g: float) -> bool:
    return g.is_integer() and 1.0 <= g <= 8.0


def needs_log_base(gamma: float | Array) -> bool:
    """Whether :func:`modulating_factor` computes ``base ** gamma`` by a power (an
    array or a fractional gamma), where ``log_base`` makes it smooth."""
    return not (isinstance(gamma, (int, float)) and (gamma == 0 or _small_integer(float(gamma))))


def modulating_factor(
    base: Array, gamma: float | Array, xp: Namespace, log_base: Array | None = None
) -> Array:
    """The focal term ``base ** gamma`` with ``base = 1 - p_t`` in ``[0, 1]``.

    Integer gamma is evaluated by repeated multiplication (exact, fast, smooth at
    ``base == 0``). Otherwise, given ``log_base`` (``log(1 - p_t)`` computed in log
    space from the logits, finite for finite logits), it is ``exp(gamma log_base)``:
    every derivative is then bounded (that of ``base ** gamma`` holds
    ``base ** (gamma - 2)``, which overflows for ``0 < gamma < 1`` while ``base`` is
    still a normal number, and autodiff multiplies it by a tiny chain factor: NaN).
    Without ``log_base`` (probabilities, ``from_logits=False``) the derivative
    ``gamma * base ** (gamma - 1)`` is infinite at ``base == 0``; a double ``where``
    evaluates the power only where ``base`` is a normal number and uses the limit
    ``0 ** gamma`` (1 for gamma = 0, else 0) below it, so gradients stay finite. The
    loss there behaves like ``base ** (1 + gamma)``: the value dropped is below the
    dtype's smallest normal number and the zero gradient is the exact limit. NaN
    propagates.
    """
    if isinstance(gamma, (int, float)):
        g = float(gamma)
        if g == 0.0:
            return xp.ones_like(base)
        if _small_integer(g):
            return integer_power(base, int(g))
    if log_base is not None:
        return xp.exp(gamma * log_base)
    normal = _normal(base, xp)
    safe = xp.where(normal, base, xp.ones_like(base))
    if isinstance(gamma, (int, float)):
        return xp.where(normal, safe ** float(gamma), xp.zeros_like(base))
    limit = xp.astype(gamma == 0, base.dtype)
    return xp.where(normal, safe**gamma, limit)


def _normal(base: Array, xp: Namespace) -> Array:
    """``base`` is a normal number or NaN (not below the smallest normal)."""
    return ~(base < xp.finfo(base.dtype).smallest_normal)


def modulating_factor_slope(base: Array, gamma: float, xp: Namespace) -> Array:
    """``d(base ** gamma) / d base`` for a Python-float gamma, as :func:`modulating_factor`
    differentiates.

    ``gamma * base ** (gamma - 1)``, with the same conventions: the derivative of
    repeated multiplication for integer gamma (1 at 0 for gamma = 1), and 0 below the
    smallest normal number, where the double ``where`` of a fractional gamma holds the
    power at its limit. Analytic gradients (the PyTorch autograd function) use it, so
    they agree with automatic differentiation of :func:`modulating_factor`.
    """
    g = float(gamma)
    if g == 0.0:
        return xp.zeros_like(base)
    if g == 1.0:
        return xp.ones_like(base)
    if _small_integer(g):
        return g * integer_power(base, int(g) - 1)
    normal = _normal(base, xp)
    safe = xp.where(normal, base, xp.ones_like(base))
    return xp.where(normal, g * safe ** (g - 1.0), xp.zeros_like(base))
