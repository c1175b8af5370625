"""A PyTorch autograd function for reduced elementwise losses.

Autograd through a loss formula saves a dozen full-size intermediates in the forward
pass and allocates as many again in the backward pass. The loss's derivative with
respect to the logits is known in closed form, so this function saves only its two
inputs, evaluates the forward sum block by block (``blockwise_sum``) and writes the
analytic gradient block by block into one output tensor: about three times faster
than autograd through the composition on CPU, and a fraction of the memory.

Imported only once a PyTorch tensor has been seen, so that importing arraylosses
never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._compat import array_namespace
from ._reduction import blockwise_sum

Array = Any
Elementwise = Callable[[Array, Array], Array]


class ReducedElementwiseLoss(torch.autograd.Function):
    """``sum(loss(x, y)) / denominator`` with ``gradient(x, y)`` as ``d loss / d x``.

    ``y`` gets no gradient (the caller routes targets that need one to the pure
    path). Written in the ``setup_context`` style with ``generate_vmap_rule`` so that
    it also works under ``torch.func`` transforms.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        x: torch.Tensor,
        y: torch.Tensor,
        loss: Elementwise,
        gradient: Elementwise,
        denominator: int,
        block: int,
    ) -> torch.Tensor:
        total: torch.Tensor = blockwise_sum(loss, (x, y), array_namespace(x), block)
        return total / denominator if denominator != 1 else total

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        x, y, _, gradient, denominator, block = inputs
        ctx.save_for_backward(x, y)
        ctx.gradient, ctx.denominator, ctx.block = gradient, denominator, block

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if not ctx.needs_input_grad[0]:
            return (None,) * 6
        x, y = ctx.saved_tensors
        scale = grad_output / ctx.denominator if ctx.denominator != 1 else grad_output
        is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
        if torch.is_grad_enabled() or is_wrapped(x) or is_wrapped(scale):
            # create_graph=True (double backward) or a torch.func transform: the
            # gradient as a differentiable expression of x, built on the saved input
            # so that autograd can differentiate it again.
            return (scale * ctx.gradient(x, y), None, None, None, None, None)
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        flat_out, flat_x, flat_y = out.view(-1), x.reshape(-1), y.reshape(-1)
        block = ctx.block
        n = flat_x.shape[0]
        for start in range(0, n, block):
            stop = min(start + block, n)
            part = ctx.gradient(flat_x[start:stop], flat_y[start:stop])
            torch.mul(part, scale, out=flat_out[start:stop])
        return (out, None, None, None, None, None)


def reduced_loss(
    loss: Elementwise,
    gradient: Elementwise,
    x: torch.Tensor,
    y: torch.Tensor,
    denominator: int,
    block: int,
) -> torch.Tensor:
    """Apply :class:`ReducedElementwiseLoss` (``denominator`` 1 for a sum)."""
    apply: Callable[..., torch.Tensor] = ReducedElementwiseLoss.apply
    return apply(x, y, loss, gradient, denominator, block)
