"""Numerically stable building blocks shared by every loss.

Everything here works in log space from logits so that no intermediate overflows,
underflows to ``-inf`` or produces NaN for finite inputs, and every function has an
exact two-sided derivative everywhere (no ``clamp``/``relu`` shortcuts whose gradient
is one-sided at 0).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ._compat import is_jax_namespace, is_torch_namespace

Array = Any

# PyTorch's binary_cross_entropy clamps log-probabilities at -100 so that a probability
# of exactly 0 or 1 gives a large finite loss; the contract follows it.
LOG_PROB_FLOOR = -100.0


def relu_halves(x: Array, xp: ModuleType) -> tuple[Array, Array]:
    """Return ``(max(x, 0), min(x, 0))`` with a symmetric derivative at 0.

    ``0.5*x ± 0.5*|x|`` has derivative 0.5 at exactly 0 on both sides, where
    ``maximum``/``relu`` would give 0 or 1 and bias the gradient of zero-initialised
    heads. Halving before adding keeps bfloat16/float16 at their largest finite value
    from overflowing.
    """
    half = 0.5 * x
    half_abs = xp.abs(half)
    return half + half_abs, half - half_abs


def log_sigmoid_pair(x: Array, xp: ModuleType) -> tuple[Array, Array]:
    """Return ``(log sigmoid(x), log sigmoid(-x))`` from one ``exp`` and one ``log1p``.

    ``log sigmoid(x) = min(x, 0) - log1p(exp(-|x|))`` and
    ``log sigmoid(-x) = -max(x, 0) - log1p(exp(-|x|))``: the shared term is computed
    once, and ``exp(-|x|)`` never overflows.
    """
    pos, neg = relu_halves(x, xp)
    softplus_tail = xp.log1p(xp.exp(-xp.abs(x)))
    return neg - softplus_tail, -pos - softplus_tail


def log_sigmoid(x: Array, xp: ModuleType) -> Array:
    """``log(sigmoid(x))`` without overflow, exact derivative at 0."""
    _, neg = relu_halves(x, xp)
    return neg - xp.log1p(xp.exp(-xp.abs(x)))


def clamped_log(p: Array, xp: ModuleType) -> Array:
    """``max(log(p), -100)`` for probabilities, without a ``log(0)`` warning or NaN.

    The double ``where`` keeps ``log`` away from 0 so NumPy emits no divide warning and
    the gradient at ``p == 0`` is 0 rather than NaN.
    """
    positive = p > 0
    safe = xp.where(positive, p, xp.ones_like(p))
    floor = xp.full_like(p, LOG_PROB_FLOOR)
    return xp.where(positive, xp.clip(xp.log(safe), min=LOG_PROB_FLOOR), floor)


def log_softmax(x: Array, axis: int, xp: ModuleType) -> Array:
    """``x - logsumexp(x, axis)``, shifted by the maximum for stability.

    Torch and JAX have fused kernels with the same semantics; they are used when the
    namespace is theirs. The shift makes the result invariant to adding a constant to
    every logit, as long as the logits stay exactly representable.
    """
    if is_torch_namespace(xp):
        import torch

        return torch.log_softmax(x, dim=axis)
    if is_jax_namespace(xp):
        import jax

        return jax.nn.log_softmax(x, axis=axis)
    if 0 in x.shape:
        # Nothing to shift, and a max over an empty block raises on Dask.
        return x - xp.log(xp.sum(xp.exp(x), axis=axis, keepdims=True))
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _integer_power(base: Array, n: int) -> Array:
    """``base ** n`` for ``n >= 1`` by repeated multiplication (exact, smooth at 0)."""
    out = base
    for _ in range(n - 1):
        out = out * base
    return out


def _small_integer(g: float) -> bool:
    return g.is_integer() and 1.0 <= g <= 8.0


def modulating_factor(base: Array, gamma: float | Array, xp: ModuleType) -> Array:
    """The focal term ``base ** gamma`` with ``base = 1 - p_t`` in ``[0, 1]``.

    Integer gamma is evaluated by repeated multiplication (exact, fast, smooth at
    ``base == 0``). Otherwise ``base ** gamma`` has an infinite derivative at
    ``base == 0`` when ``gamma < 1``; a double ``where`` evaluates the power only where
    ``base > 0`` and uses the limit ``0 ** gamma`` (1 for gamma = 0, else 0) elsewhere,
    so gradients stay finite. At ``base == 0`` the loss itself is flat (it behaves like
    ``base ** (1 + gamma)``), so a zero gradient there is the exact limit.
    """
    if isinstance(gamma, (int, float)):
        g = float(gamma)
        if g == 0.0:
            return xp.ones_like(base)
        if _small_integer(g):
            return _integer_power(base, int(g))
        positive = base > 0
        safe = xp.where(positive, base, xp.ones_like(base))
        return xp.where(positive, safe**g, xp.zeros_like(base))
    positive = base > 0
    safe = xp.where(positive, base, xp.ones_like(base))
    limit = xp.astype(gamma == 0, base.dtype)
    return xp.where(positive, safe**gamma, limit)


def modulating_factor_slope(base: Array, gamma: float, xp: ModuleType) -> Array:
    """``d(base ** gamma) / d base`` for a Python-float gamma, as :func:`modulating_factor`
    differentiates.

    ``gamma * base ** (gamma - 1)``, with the same conventions at ``base == 0``: the
    derivative of repeated multiplication for integer gamma (1 at 0 for gamma = 1), and
    0 where the double ``where`` of a fractional gamma holds the power at its limit.
    Analytic gradients (the PyTorch autograd function) use it, so they agree with
    automatic differentiation of :func:`modulating_factor` everywhere.
    """
    g = float(gamma)
    if g == 0.0:
        return xp.zeros_like(base)
    if g == 1.0:
        return xp.ones_like(base)
    if _small_integer(g):
        return g * _integer_power(base, int(g) - 1)
    positive = base > 0
    safe = xp.where(positive, base, xp.ones_like(base))
    return xp.where(positive, g * safe ** (g - 1.0), xp.zeros_like(base))
