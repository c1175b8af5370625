"""A PyTorch autograd function for reduced elementwise losses, and its native kernels.

Autograd through a loss formula saves a dozen full-size intermediates in the forward
pass and allocates as many again in the backward pass. The derivative of a loss with
respect to its logits is known in closed form, so :class:`ReducedElementwiseLoss`
evaluates the loss block by block and, when a gradient will be asked for, writes the
analytic gradient into one buffer in the same pass, sharing the intermediates; the
backward pass only scales that buffer. On CPU the blocks stay in cache and in the
heap (no page faults), which together make forward+backward several times faster
than autograd through the composition, with a fraction of the memory.

A block kernel (:class:`SigmoidFocalBlocks`) computes one block's loss sum and
gradient with PyTorch's fused operations (``binary_cross_entropy_with_logits``,
``sigmoid``, ``lerp``): about half the operations of the array-API formula, which is
what matters on small and medium batches where every operation's dispatch counts.
Its ``gradient`` method is the array-API analytic gradient, used where the gradient
must itself be differentiable (``create_graph=True``, ``torch.func``).

Imported only once a PyTorch tensor has been seen, so that importing arraylosses
never imports torch.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from ._binary import sigmoid_focal_gradient
from ._compat import array_namespace
from ._primitives import modulating_factor, modulating_factor_slope

Array = Any


class BlockKernel(Protocol):
    """One elementwise loss, as :class:`ReducedElementwiseLoss` evaluates it.

    ``scale`` (a Python float, or a 0-d tensor in the backward pass) multiplies the
    results: ``1 / N`` turns block sums into a mean, and kernels fold it into a
    weight they compute anyway instead of spending an operation on it.
    """

    def loss_sum(self, x: torch.Tensor, y: torch.Tensor, scale: Any) -> torch.Tensor:
        """``scale * sum(loss)`` over a 1-D block."""
        ...

    def loss_sum_and_gradient(
        self, x: torch.Tensor, y: torch.Tensor, scale: Any, out: torch.Tensor
    ) -> torch.Tensor:
        """``scale * sum(loss)`` over a 1-D block; writes ``scale * d loss / d x`` to
        ``out``."""
        ...

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``d loss / d x`` elementwise, as a differentiable expression of ``x``."""
        ...


class SigmoidFocalBlocks:
    r"""The sigmoid focal loss and its gradient in PyTorch's fused operations.

    The same formula as ``sigmoid_focal_elementwise`` (from logits), arranged for few
    kernels: ``BCE = binary_cross_entropy_with_logits(x, y')``, ``p = sigmoid(x)``,
    ``q = sigmoid(-x)`` (accurate where ``p`` is close to 1), ``b = 1 - p_t =
    lerp(p, q, y')`` (``lerp`` returns exactly ``q`` for ``y' = 1`` and ``p`` for 0),
    ``w = alpha_t\, b^\gamma`` and

    .. math::

        \sum \ell = \sum w\, \mathrm{BCE}, \qquad
        rac{d\ell}{dx} = w\, (p - y') + lpha_t\, \gamma b^{\gamma - 1}
                           (1 - 2y')\, p\, q\, \mathrm{BCE}

    with ``p - y' = lerp(p, -q, y')``, exact for 0/1 targets. The scale of the
    result rides on ``alpha_t = (1 - alpha) + (2 alpha - 1) y'``, whose two constants
    take it for free.
    """

    def __init__(self, alpha: float | None, gamma: float) -> None:
        self.alpha, self.gamma = alpha, gamma

    def _scaled_balance(self, y: torch.Tensor, scale: Any) -> Any:
        """``scale * alpha_t`` (just ``scale`` when alpha is None)."""
        a = self.alpha
        if a is None:
            return scale
        return y * ((2.0 * a - 1.0) * scale) + (1.0 - a) * scale

    def _terms(
        self, x: torch.Tensor, y: torch.Tensor, scale: Any
    ) -> tuple[Any, Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(weight, balance, p, q, b)``: the loss weight ``scale * alpha_t * b^gamma``,
        ``scale * alpha_t``, the probabilities and ``b = 1 - p_t``."""
        balance = self._scaled_balance(y, scale)
        p = torch.sigmoid(x)
        q = torch.sigmoid(-x)
        b = torch.lerp(p, q, y)
        if self.gamma == 0.0:
            return balance, balance, p, q, b
        factor = modulating_factor(b, self.gamma, array_namespace(b))
        weight = factor if isinstance(balance, float) and balance == 1.0 else factor * balance
        return weight, balance, p, q, b

    def loss_sum(self, x: torch.Tensor, y: torch.Tensor, scale: Any) -> torch.Tensor:
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        if self.gamma == 0.0:
            weight = self._scaled_balance(y, scale)
        else:
            weight = self._terms(x, y, scale)[0]
        total: torch.Tensor
        if isinstance(weight, torch.Tensor) and weight.ndim:
            total = torch.dot(weight, bce(x, y, reduction="none"))
        else:  # a scale alone: no alpha, gamma = 0
            total = bce(x, y, reduction="sum") * weight
        return total

    def loss_sum_and_gradient(
        self, x: torch.Tensor, y: torch.Tensor, scale: Any, out: torch.Tensor
    ) -> torch.Tensor:
        bce = torch.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none")
        weight, balance, p, q, b = self._terms(x, y, scale)
        grad = torch.lerp(p, -q, y)  # p - y'
        if self.gamma == 0.0:
            torch.mul(grad, weight, out=out)
        else:
            # d(b^gamma)/dx = slope * (1 - 2y') p q, times scale * alpha_t and BCE
            slope = modulating_factor_slope(b, self.gamma, array_namespace(b)) * balance
            torch.addcmul(weight * grad, slope * (1.0 - 2.0 * y), p * q * bce, out=out)
        total: torch.Tensor
        if isinstance(weight, torch.Tensor) and weight.ndim:
            total = torch.dot(weight, bce)
        else:
            total = bce.sum() * weight
        return total

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        grad: torch.Tensor = sigmoid_focal_gradient(
            x, y, self.alpha, self.gamma, array_namespace(x)
        )
        return grad


class ReducedElementwiseLoss(torch.autograd.Function):
    """``sum(loss(x, y)) / denominator`` for a :class:`BlockKernel`; ``y`` gets no
    gradient (callers route targets that need one to the pure path).

    The forward pass also computes the gradient of the result (for a unit output
    gradient), in the same blocks, and keeps it on ``ctx``: one full-size buffer,
    where autograd through the formula would save a dozen. The backward pass scales it
    in place and hands it over; a second backward (``retain_graph=True``) computes it
    again, and with ``create_graph=True`` it is the kernel's differentiable
    ``gradient``, so double backward works. (Only used when a gradient will be asked
    for: :func:`reduced_loss`.)

    Written in the classic ``forward(ctx, ...)`` style: the ``setup_context`` style
    that ``torch.func`` transforms need costs an ``inspect.signature`` binding on
    every call (10-20 µs, as much as the loss on a small batch), and the dispatcher
    sends every ``torch.func``, ``torch.compile`` and forward-mode-AD context to the
    pure path anyway.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        y: torch.Tensor,
        kernel: BlockKernel,
        denominator: int,
        block: int,
    ) -> torch.Tensor:
        grad = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        total = _blocks(kernel, x, y, 1.0 / denominator if denominator != 1 else 1.0, block, grad)
        ctx.save_for_backward(x, y)
        ctx.kernel, ctx.denominator, ctx.block = kernel, denominator, block
        # kept on ctx rather than saved: backward scales it in place and gives it away
        ctx.grad = grad
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        nothing = (None,) * 4
        if not ctx.needs_input_grad[0]:
            return (None, *nothing)
        x, y = ctx.saved_tensors
        scale = grad_output / ctx.denominator if ctx.denominator != 1 else grad_output
        if torch.is_grad_enabled():
            # create_graph=True: the gradient as a differentiable expression of the
            # saved input, so that autograd can differentiate it again.
            return (scale * ctx.kernel.gradient(x, y), *nothing)
        grad = ctx.grad
        if grad is not None:
            ctx.grad = None  # autograd may keep it as x.grad: never touch it again
            return (grad.mul_(grad_output), *nothing)
        # a second backward (retain_graph=True): the buffer was given away
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        _blocks(ctx.kernel, x, y, scale, ctx.block, out)
        return (out, *nothing)


def _blocks(
    kernel: BlockKernel,
    x: torch.Tensor,
    y: torch.Tensor,
    scale: Any,
    block: int,
    grad: torch.Tensor | None,
) -> torch.Tensor:
    """``scale * sum(loss)`` block by block; with ``grad`` (contiguous, the shape of
    ``x``) also writes ``scale * d loss / d x`` into it."""
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    flat_grad = None if grad is None else grad.view(-1)
    n = flat_x.shape[0]
    total: torch.Tensor | None = None
    for start in range(0, n, block):
        stop = min(start + block, n)
        xb, yb = flat_x[start:stop], flat_y[start:stop]
        if flat_grad is None:
            part = kernel.loss_sum(xb, yb, scale)
        else:
            part = kernel.loss_sum_and_gradient(xb, yb, scale, flat_grad[start:stop])
        total = part if total is None else total + part
    assert total is not None  # n > 0: the caller sends empty inputs to the pure path
    return total


def reduced_loss(
    kernel: BlockKernel,
    x: torch.Tensor,
    y: torch.Tensor,
    denominator: int,
    block: int,
) -> torch.Tensor:
    """``sum(loss) / denominator`` (``denominator`` 1 for a sum) of eager tensors (no
    ``torch.func`` transform active).

    Through :class:`ReducedElementwiseLoss`, whose forward pass also computes the
    gradient, when one will be needed (``x`` requires it and grad mode is on);
    otherwise the blocks are summed directly, with no autograd bookkeeping at all.
    """
    if x.requires_grad and torch.is_grad_enabled():
        apply: Any = ReducedElementwiseLoss.apply
        total: torch.Tensor = apply(x, y, kernel, denominator, block)
        return total
    # (y never requires a gradient here: the dispatcher sends that to the pure path)
    return _blocks(kernel, x, y, 1.0 / denominator if denominator != 1 else 1.0, block, None)
