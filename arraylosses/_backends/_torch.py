r"""PyTorch: fused kernels, an autograd function with an analytic gradient, and the
one place that reads torch internals.

- ``log_softmax``, ``gather`` and ``movedim`` are torch's own (compat's
  ``take_along_axis`` adds a negative-index ``where``; ``moveaxis`` has no
  ``torch.func`` batching rule).
- ``cross_entropy`` of eager CPU tensors with class indices is
  ``torch.nn.functional.cross_entropy`` itself, called with the inputs the validator
  has already checked (the contract *is* PyTorch's cross-entropy, and its fused
  kernel is what the array-API path cannot match, about 1.5x slower) -- except with
  a gradient wanted and no smoothing, where the label kernel below is faster still.
  So is that of a target distribution (about 2x faster than the definition by
  blocks), unless its result holds a NaN: a masked class, logit ``-inf``, needs the
  definition's ``0 log 0 = 0``.
- The softmax focal loss and cross-entropy of class indices without smoothing, with
  a gradient wanted, go through :class:`ReducedSoftmaxFocal` (:meth:`TorchBackend.label_kernel`):
  one exponential per logit and one saved buffer, which the backward pass turns into
  the analytic gradient.
- Other softmax losses, the asymmetric loss, and the binary cross-entropy and the
  sigmoid focal loss where they take their definition, are evaluated by row blocks
  on large eager CPU tensors (:meth:`TorchBackend.rowwise`, :class:`RowwiseLoss`).
  Each block's gradient is autograd through the definition on that block, or the
  loss's analytic gradient where it passes one (the softmax focal loss of a
  distribution or of smoothed class indices:
  :func:`~arraylosses._categorical.softmax_focal_gradient`).
- The reduced sigmoid focal loss of eager tensors goes through
  :class:`ReducedElementwiseLoss`: autograd through the formula saves a dozen
  full-size intermediates; this function evaluates the loss block by block and, when
  a gradient will be asked for, writes the analytic gradient
  (:func:`~arraylosses._elementwise.sigmoid_focal_gradient`) into one buffer in the
  same pass. On CPU the blocks stay in cache and in the heap.

Everything that is not eager (``torch.compile`` tracing, ``torch.func`` transforms,
forward-mode AD) takes the definitions, which compile and transform as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from .._elementwise import (
    binary_terms,
    focal_weight,
    poly_log_prob,
    sigmoid_focal_gradient,
    softmax_focal_slope,
    softmax_focal_terms,
)
from .._primitives import log_sigmoid_pair, modulating_factor
from .._typing import Array, DType, Namespace
from ._generic import Backend, RowwiseCall, SoftmaxCall, array_namespace

# Elements per block of the reduced losses on CPU (measured on a 2-core x86 CPU, case
# (a) and the scaling table): torch's few fused operations amortise their dispatch and
# still split over two threads; 2^18 is as fast as 2^16 on RetinaNet-sized inputs and
# up to 2x faster from 10^3 x 80 to 10^5 x 80 logits, where 2^16 meant several blocks'
# fixed costs. Elsewhere one block is the whole array (one launch per operation).
BLOCK = 1 << 18
# Logits per block of a row-wise softmax loss on CPU (:class:`RowwiseLoss`, measured
# with benchmark case (g)): a block's temporaries and autograd graph stay in cache and
# in the heap, where the whole array's are fresh page-faulting allocations.
ROW_BLOCK = 1 << 20
# Logits from which the label kernel (:meth:`TorchBackend.label_kernel`) pays on CPU,
# measured on a 2-core x86 CPU: below about 2^20 logits its fixed cost (a dozen small
# operations, the autograd function) exceeds what one exponential and one buffer
# fewer save, and F.cross_entropy or the definition is faster.
LABEL_KERNEL_MIN = 1 << 20
_BFLOAT16, _FLOAT16 = torch.bfloat16, torch.float16


def transform_state(
    tensors: tuple[torch.Tensor, ...], *, wrapped_only: bool = False
) -> tuple[bool, bool]:
    """``(wrapped, transformed)``: whether any tensor is wrapped by a ``torch.func``
    transform or by autograd's own batching (``is_grads_batched``, vectorised
    jacobians), or traced by ``torch.compile`` (its values cannot be read), and whether
    any transform, trace or forward-mode AD level is active (a custom autograd
    function would need rules the definitions get for free). ``wrapped_only`` skips
    the second question (its answer is then the first's).

    The only use of torch's private APIs in arraylosses. Where they are missing (a
    future torch) the answer is ``(True, True)``: the NaN policy and the definitions
    are right everywhere, only slower (``tests/test_backends.py`` pins them).
    """
    if torch.compiler.is_compiling():
        return True, True
    try:
        is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
        is_legacy = torch._C._functorch.is_legacy_batchedtensor  # is_grads_batched
        for t in tensors:
            if is_wrapped(t) or is_legacy(t):
                return True, True
        if wrapped_only:
            return False, False
        active = torch._C._are_functorch_transforms_active()
        return False, bool(active) or torch.autograd.forward_ad._current_level >= 0
    except AttributeError:  # pragma: no cover - depends on the torch version
        return True, True


class TorchBackend(Backend):
    name = "torch"
    stop_gradient = staticmethod(torch.Tensor.detach)

    def reads_values(self, x: Array) -> bool:
        return bool(x.is_cpu) and not transform_state((x,), wrapped_only=True)[0]

    def eager(self, x: Array, y: Array) -> bool:
        return bool(x.is_cpu and y.is_cpu) and not transform_state((x, y))[1]

    def compute_dtype(self, dtype: DType, x: Array, xp: Namespace) -> DType:
        if dtype is _BFLOAT16:
            # float64 everywhere but on MPS, which has none
            return torch.float32 if x.device.type == "mps" else torch.float64
        return torch.float32 if dtype is _FLOAT16 else dtype

    def log_sigmoid_pair(self, x: Array, xp: Namespace) -> tuple[Array, Array]:
        # F.logsigmoid is min(x, 0) - log1p(exp(-|x|)) in one pass (the primitive
        # takes seven); its derivatives (sigmoid(-x), and its double backward) are
        # bounded. It gives ±inf logits their limits, the contract NaN: x + (x - x)
        # is x for finite x (derivative 1) and NaN for infinite x.
        x = x + (x - x)
        return F.logsigmoid(x), F.logsigmoid(-x)

    def log_softmax(self, x: Array, axis: int, xp: Namespace) -> Array:
        return torch.log_softmax(x, dim=axis)

    def take_class(self, values: Array, labels: Array, axis: int, xp: Namespace) -> Array:
        return torch.gather(values, axis, labels.long().unsqueeze(axis)).squeeze(axis)

    def move_axis(self, x: Array, source: int, destination: int, xp: Namespace) -> Array:
        if source % x.ndim == destination % x.ndim:
            return x
        return x.movedim(source, destination)

    def one_hot(self, labels: Array, num_classes: int, dtype: DType, xp: Namespace) -> Array:
        # F.one_hot reads min/max on CPU, which breaks torch.func transforms and
        # torch.compile; the comparison is the same thing, traceable.
        classes = torch.arange(num_classes, dtype=labels.dtype, device=labels.device)
        return (labels.unsqueeze(-1) == classes).to(dtype)

    def labels_in_range(self, labels: Array, num_classes: int, xp: Namespace) -> bool:
        # A handful of labels is cheaper to read as a list than to reduce (the common
        # small-batch call); larger ones take one ``aminmax`` (which has integer
        # kernels for int64, not for every unsigned dtype).
        n = labels.numel()
        if n == 0:
            return True
        if n <= 32 and labels.ndim == 1:
            values: list[int] = labels.tolist()
            return min(values) >= 0 and max(values) < num_classes
        low, high = torch.aminmax(labels if labels.dtype is torch.int64 else labels.long())
        return int(low.item()) >= 0 and int(high.item()) < num_classes

    def reduced_sigmoid_focal(
        self, x: Array, y: Array, alpha: float | None, gamma: float, reduction: str, xp: Namespace
    ) -> Array | None:
        n = x.numel()
        if n == 0 or x.shape != y.shape or y.requires_grad or transform_state((x, y))[1]:
            return None  # (n == 0: the definition's NaN mean and zero sum)
        kernel = SigmoidFocalBlocks(alpha, gamma)
        return reduced_loss(kernel, x, y, n if reduction == "mean" else 1, BLOCK if x.is_cpu else n)

    def reduced_softmax_focal(
        self,
        inputs: SoftmaxCall,
        alpha_vec: Array | None,
        alpha_scalar: float | None,
        gamma: float,
        epsilon: float,
    ) -> Array | None:
        # alpha never enters the mean's denominator
        factor = 1.0 if alpha_scalar is None else alpha_scalar
        return self.label_kernel(inputs, alpha_vec, gamma, epsilon, False, factor)

    def label_kernel(
        self,
        inputs: SoftmaxCall,
        class_weight: torch.Tensor | None,
        gamma: float,
        epsilon: float,
        weighted_mean: bool,
        factor: float = 1.0,
    ) -> torch.Tensor | None:
        """``sum`` or ``mean`` of the softmax focal loss (cross-entropy at gamma 0) of
        class indices without smoothing, each label's term times
        ``class_weight[label]``, by :class:`ReducedSoftmaxFocal`; ignored labels count
        nowhere. ``"mean"`` divides by the kept labels' summed weight
        (``weighted_mean``, PyTorch's cross-entropy) or their number (the focal loss);
        ``factor`` multiplies the result. None where it does not apply: no gradient
        wanted (the definition is the same composition then), fewer than
        ``LABEL_KERNEL_MIN`` logits, a trace or transform, a weight that wants a
        gradient, a mask or normalizer, a scaled compute dtype, or
        a denominator of 0 (the definition's NaN mean and zero gradient)."""
        x, labels = inputs.x, inputs.labels
        if not (
            inputs.eager
            and inputs.from_logits
            and labels is not None
            and inputs.where is None
            and inputs.normalizer is None
            and inputs.reduction != "none"
            and x.requires_grad
            and torch.is_grad_enabled()
            and x.numel() >= max(1, LABEL_KERNEL_MIN)
            and self.log_prob_scale(inputs.out_dtype, x.dtype, inputs.num_classes) == 1.0
        ):
            return None
        if (class_weight is not None and class_weight.requires_grad) or transform_state((x,))[1]:
            return None
        labels = labels.long()
        kept = None
        if inputs.ignore is not None:
            keep = labels != inputs.ignore
            labels = torch.where(keep, labels, 0)  # (any class: its term is weighted by 0)
            kept = keep.to(x.dtype)
        weight = None
        if class_weight is not None:  # (index_select: half the time of class_weight[labels])
            weight = class_weight.index_select(0, labels.reshape(-1)).reshape(labels.shape)
        if kept is not None:
            weight = kept if weight is None else weight * kept
        scale = factor
        if inputs.reduction == "mean":
            if weighted_mean and weight is not None:
                denominator = float(weight.sum())
            else:
                denominator = float(labels.numel()) if kept is None else float(kept.sum())
            if denominator == 0.0:
                return None
            scale /= denominator
        apply: Any = ReducedSoftmaxFocal.apply
        total: torch.Tensor = apply(x, labels.unsqueeze(inputs.axis), inputs.axis, gamma, epsilon,
                                    weight, scale)  # fmt: skip
        return total

    def rowwise(
        self,
        elements: Callable[[Any], Array],
        inputs: RowwiseCall,
        parameter: Array | None,
        gradient: Callable[[Any], tuple[Array, Array]] | None = None,
    ) -> Array:
        x = inputs.x
        if not inputs.eager or x.numel() < 2 * ROW_BLOCK:
            return elements(inputs)
        cuts = inputs.block_cuts(ROW_BLOCK)
        if len(cuts) == 1:
            return elements(inputs)
        if not (x.requires_grad and torch.is_grad_enabled()):
            return torch.cat([elements(inputs.block(cut)) for cut in cuts])
        if inputs.targets.requires_grad or (parameter is not None and parameter.requires_grad):
            return elements(inputs)  # (only the logits' gradient is evaluated by blocks)
        apply: Any = RowwiseLoss.apply
        loss: torch.Tensor = apply(x, elements, inputs, cuts, gradient)
        return loss

    def add_at_label(
        self, values: Array, labels: Array, amounts: Array, axis: int, xp: Namespace
    ) -> Array:
        index = labels.long().unsqueeze(axis)
        return values.scatter_add_(axis, index, amounts.unsqueeze(axis).to(values.dtype))

    def cross_entropy(self, inputs: SoftmaxCall, weight: Array | None) -> Array | None:
        x, targets = inputs.x, inputs.targets
        if not (inputs.eager and inputs.from_logits):
            return None
        if weight is not None and weight.requires_grad:
            return None  # (F.cross_entropy is not differentiable in its weight)
        if inputs.labels is None:
            if x.numel() == 0:
                return None  # (the definition's NaN mean and zero sum)
            target = targets if targets.dtype is x.dtype else targets.to(x.dtype)
        else:
            if weight is not None and inputs.b != 0.0 and bool((weight == 0).any()):
                return None  # (its smoothing term multiplies a zero weight by a masked -inf)
            if inputs.b == 0.0:
                # with a gradient wanted: the kernel's one exponential per logit and one
                # saved buffer (F.cross_entropy's backward exponentiates again and
                # allocates two more); its mean divides by the kept labels' summed weight
                out = self.label_kernel(inputs, weight, 0.0, 0.0, weighted_mean=True)
                if out is not None:
                    return out if out.dtype is inputs.out_dtype else out.to(inputs.out_dtype)
            target = targets if targets.dtype is torch.int64 else targets.long()
        # "others" smoothing is PyTorch's uniform smoothing with eps' = b K: both are
        # q' = a q + b with a + b K = 1. Beyond eps' = 1 PyTorch refuses it.
        torch_eps = inputs.b * inputs.num_classes
        if torch_eps > 1.0:
            return None
        ax = inputs.axis
        if x.ndim > 1 and ax != 1:
            x = torch.movedim(x, ax, 1)
            if inputs.labels is None:  # (a distribution has the class axis too)
                target = torch.movedim(target, ax, 1)
        out = F.cross_entropy(
            x,
            target,
            weight=weight,
            # with ignore_index=None every label was checked to be in range
            ignore_index=-100 if inputs.ignore is None else inputs.ignore,
            reduction=inputs.reduction,
            label_smoothing=torch_eps,
        )
        if inputs.labels is None and bool(torch.isnan(out.detach()).any()):
            # a class without target mass whose logit is -inf (a masked class) gives
            # 0 * -inf = NaN there, where the definition's 0 log 0 is 0: the definition
            # runs instead (and gives NaN itself where the input holds one). Reading
            # the result is free on CPU: a scalar, or one value per row.
            return None
        return out if out.dtype is inputs.out_dtype else out.to(inputs.out_dtype)


# ------------------------------------------------------------ the autograd function


class BlockKernel(Protocol):
    """One elementwise loss, as :class:`ReducedElementwiseLoss` evaluates it.

    ``scale`` (a Python float, or a 0-d tensor in the backward pass) multiplies the
    results: ``1 / N`` turns block sums into a mean.
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
    """:func:`~arraylosses._elementwise.sigmoid_focal` and its gradient on blocks.

    The definition's terms come from PyTorch's fused operations, about half the
    operations of the array-API primitives (what counts on small and medium batches,
    where every operation's dispatch does): ``BCE = -lerp(log sigmoid(-x),
    log sigmoid(x), y')`` (:func:`_bce`), ``p = sigmoid(x)``, ``q = sigmoid(-x)``
    (accurate where ``p`` is close to 1) and ``b = 1 - p_t = lerp(p, q, y')``
    (exactly ``q`` for ``y' = 1`` and ``p`` for 0).
    The focal weight and the gradient are the definitions' own functions.
    """

    def __init__(self, alpha: float | None, gamma: float) -> None:
        self.alpha, self.gamma = alpha, gamma

    def _terms(self, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, ...]:
        minus_x = -x
        bce = _bce(x, minus_x, y)
        p, q = torch.sigmoid(x), torch.sigmoid(minus_x)
        b = torch.lerp(p, q, y)
        return bce, b, p, q, focal_weight(b, y, self.alpha, self.gamma, array_namespace(x))

    def loss_sum(self, x: torch.Tensor, y: torch.Tensor, scale: Any) -> torch.Tensor:
        if self.gamma == 0.0:
            bce = _bce(x, -x, y)
            weight = focal_weight(bce, y, self.alpha, 0.0, array_namespace(x))
        else:
            bce, _, _, _, weight = self._terms(x, y)
        total: torch.Tensor = _weighted_sum(weight, bce) * scale
        return total

    def loss_sum_and_gradient(
        self, x: torch.Tensor, y: torch.Tensor, scale: Any, out: torch.Tensor
    ) -> torch.Tensor:
        bce, b, p, q, weight = self._terms(x, y)
        grad = sigmoid_focal_gradient(
            bce, b, p, q, y, self.alpha, self.gamma, array_namespace(x), weight=weight
        )
        torch.mul(grad, scale, out=out)
        total: torch.Tensor = _weighted_sum(weight, bce) * scale
        return total

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xp = array_namespace(x)
        log_p, log_q = log_sigmoid_pair(x, xp)
        bce, b, p, q, logs = binary_terms(x, log_p, log_q, y, True, xp, with_logs=True)
        grad: torch.Tensor = sigmoid_focal_gradient(
            bce, b, p, q, y, self.alpha, self.gamma, xp, logs=logs
        )
        return grad


def _bce(x: torch.Tensor, minus_x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-(y' log sigmoid(x) + (1 - y') log sigmoid(-x))`` as a mix of two
    non-positive log-sigmoids: it keeps its relative accuracy for soft targets at
    saturated logits and the ``e^-|x|`` tail of confident elements, in every dtype.
    (``binary_cross_entropy_with_logits`` cancels in ``(1 - y) x + ...`` and rounds
    ``log(1 + e^-|x|)`` to 0 beyond |x| ~ 17 in float32; ``softplus`` returns ``x``
    beyond its threshold, 5e-13 off in float64.)"""
    return -torch.lerp(F.logsigmoid(minus_x), F.logsigmoid(x), y)


def _weighted_sum(weight: Any, values: torch.Tensor) -> torch.Tensor:
    if isinstance(weight, torch.Tensor) and weight.ndim:
        return torch.dot(weight, values)
    total: torch.Tensor = values.sum() * weight
    return total


class ReducedElementwiseLoss(torch.autograd.Function):
    """``sum(loss(x, y)) / denominator`` for a :class:`BlockKernel`; ``y`` gets no
    gradient (callers route targets that need one to the definition).

    The forward pass also computes the gradient of the result (for a unit output
    gradient), in the same blocks, and keeps it on ``ctx``: one full-size buffer,
    where autograd through the formula would save a dozen. The backward pass scales it
    in place and hands it over; a second backward (``retain_graph=True``) computes it
    again, and with ``create_graph=True`` it is the kernel's differentiable
    ``gradient``, so double backward works.

    Written in the classic ``forward(ctx, ...)`` style: the ``setup_context`` style
    that ``torch.func`` transforms need costs an ``inspect.signature`` binding on
    every call (10-20 µs, as much as the loss on a small batch), and every
    ``torch.func``, ``torch.compile`` and forward-mode-AD context takes the
    definitions anyway.
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
        if grad is not None and not transform_state((grad_output,), wrapped_only=True)[0]:
            ctx.grad = None  # autograd may keep it as x.grad: never touch it again
            return (grad.mul_(grad_output), *nothing)
        if grad is not None:
            # a batched output gradient (is_grads_batched, vectorised jacobians): vmap
            # cannot write a batch into the unbatched buffer; keep the buffer
            return (grad * grad_output, *nothing)
        # a second backward (retain_graph=True): the buffer was given away
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        _blocks(ctx.kernel, x, y, scale, ctx.block, out)
        return (out, *nothing)


class ReducedSoftmaxFocal(torch.autograd.Function):
    """``scale * sum`` of the softmax focal loss of class indices (no smoothing), each
    label's term times its ``weight`` (a class weight, 0 for an ignored label), with
    its gradient written analytically into the one full-size buffer the forward pass
    keeps: the probabilities ``p = softmax(x)``, overwritten in place by
    ``w (onehot - p)`` in the backward pass, where ``w = dloss/d log p_y`` per element
    (:func:`~arraylosses._elementwise.softmax_focal_slope`). The loss needs only the
    label's log-probability, ``log p_y``, the log of the gathered probability (as
    accurate as ``log_softmax``'s, :func:`_label_log_prob`): one exponential per
    element in all, where autograd through ``log_softmax`` takes two and allocates
    the gather's zero-filled gradient and the softmax backward's result besides. A
    second backward, a batched output gradient or ``create_graph=True`` take the
    out-of-place formula of the saved input, which autograd can differentiate again.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        index: torch.Tensor,
        axis: int,
        gamma: float,
        epsilon: float,
        weight: torch.Tensor | None,
        scale: float,
    ) -> torch.Tensor:
        p = torch.softmax(x, dim=axis)
        total, slope = _label_terms(*_label_log_prob(x, p, index, axis), gamma, epsilon, weight)
        ctx.save_for_backward(x, index)
        ctx.axis, ctx.gamma, ctx.epsilon, ctx.weight, ctx.scale = (
            axis,
            gamma,
            epsilon,
            weight,
            scale,
        )
        ctx.p, ctx.slope = p, slope  # kept on ctx: backward overwrites p and gives it away
        return total * scale

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        nothing = (None,) * 6
        if not ctx.needs_input_grad[0]:
            return (None, *nothing)
        x, index = ctx.saved_tensors
        axis = ctx.axis
        p, ctx.p = ctx.p, None  # (no reference left here: autograd can keep it as x.grad)
        batched = transform_state((grad_output,), wrapped_only=True)[0]
        if p is None or torch.is_grad_enabled() or batched:
            # out of place, from the saved input (differentiable again), with the same
            # arithmetic as below: a second backward gives the same bits
            fresh = torch.softmax(x, dim=axis)
            log_p_y, p_y = _label_log_prob(x, fresh, index, axis)
            _, slope = _label_terms(log_p_y, p_y, ctx.gamma, ctx.epsilon, ctx.weight)
            w = (slope * (grad_output * ctx.scale)).unsqueeze(axis)
            if batched:  # (a batch of output gradients: a one-hot, no scatter)
                onehot = torch.zeros_like(fresh).scatter_(axis, index, 1.0)
                return ((fresh - onehot) * w, *nothing)
            return ((fresh * w).scatter_add(axis, index, -w), *nothing)
        # the loss is -T(log p_y), so its gradient is S (p - onehot) for S = dT/d log p_y
        w = (ctx.slope * (grad_output * ctx.scale)).unsqueeze(axis)
        grad = p.mul_(w)  # S p, in the saved buffer
        grad.scatter_add_(axis, index, -w)  # - S at the label
        return (grad, *nothing)


class RowwiseLoss(torch.autograd.Function):
    """The per-element loss of a row-wise loss (``Backend.rowwise``: a softmax loss, or
    an elementwise one, whose rows are single elements), evaluated block by block
    with each block's gradient taken at once, by the loss's analytic ``gradient``
    where it has one, else by autograd through the definition on that block alone,
    and written into one full-size buffer.

    An element's loss depends on its own row of logits only, so the gradient of
    ``sum_i g_i loss_i`` is every row's gradient times its ``g_i``: the backward pass
    scales the buffer in place by the output gradient broadcast along the class axis
    (``inputs.spread``) and hands it over. Autograd through the whole array would keep every
    intermediate of the definition at full size until the backward pass; here each
    exists for one block at a time. A second backward evaluates the blocks again,
    a batched output gradient multiplies out of place, and ``create_graph=True``
    differentiates the definition of the whole array, which autograd can
    differentiate again.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        elements: Callable[[Any], torch.Tensor],
        inputs: RowwiseCall,
        cuts: list[tuple[slice, ...]],
        gradient: Callable[[Any], tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> torch.Tensor:
        grad = torch.empty_like(x)
        loss = _rowwise_blocks(elements, inputs, cuts, grad, gradient)
        ctx.save_for_backward(x)
        ctx.elements, ctx.inputs, ctx.cuts, ctx.grad = elements, inputs, cuts, grad
        ctx.gradient = gradient
        return loss

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        nothing = (None,) * 4
        if not ctx.needs_input_grad[0]:
            return (None, *nothing)
        (x,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: differentiable again
            loss = ctx.elements(ctx.inputs)
            (grad,) = torch.autograd.grad(loss, x, grad_output, create_graph=True)
            return (grad, *nothing)
        per_row = ctx.inputs.spread(grad_output)
        grad, ctx.grad = ctx.grad, None
        if grad is None:  # a second backward (retain_graph=True): the buffer was given away
            grad = torch.empty_like(x)
            _rowwise_blocks(ctx.elements, ctx.inputs, ctx.cuts, grad, ctx.gradient)
        if transform_state((grad_output,), wrapped_only=True)[0]:
            ctx.grad = grad  # a batched output gradient: keep the unbatched buffer
            return (grad * per_row, *nothing)
        return (grad.mul_(per_row), *nothing)


def _rowwise_blocks(
    elements: Callable[[Any], torch.Tensor],
    inputs: RowwiseCall,
    cuts: list[tuple[slice, ...]],
    grad: torch.Tensor,
    gradient: Callable[[Any], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """The per-element loss block by block (concatenated); writes each block's
    gradient of its summed loss into ``grad`` (the shape of the logits): the loss's
    analytic ``gradient`` where it has one, else autograd through the definition."""
    parts = []
    for cut in cuts:
        block = inputs.block(cut)
        if gradient is not None:
            with torch.no_grad():
                block.x = block.x.detach()
                loss, block_grad = gradient(block)
        else:
            with torch.enable_grad():
                leaf = block.x.detach().requires_grad_()
                block.x = leaf
                loss = elements(block)
                (block_grad,) = torch.autograd.grad(loss.sum(), leaf)
        grad[cut].copy_(block_grad)
        parts.append(loss.detach())
    return torch.cat(parts)


def _label_log_prob(
    x: torch.Tensor, p: torch.Tensor, index: torch.Tensor, axis: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p_y, p_y)`` (``axis`` removed) from the probabilities ``p = softmax(x)``:
    the log of the gathered probability has the accuracy of ``log_softmax``'s
    ``x_y - max - log(sum)`` (within an ulp of it) as long as ``p_y`` is a normal
    number; where one underflows (a logit gap beyond about 87 in float32) every
    label's comes from ``log_softmax`` instead (reading one minimum is free on the CPU
    tensors this runs on)."""
    picked = p.gather(axis, index).squeeze(axis)
    if float(picked.amin()) < torch.finfo(p.dtype).tiny:
        return F.log_softmax(x, dim=axis).gather(axis, index).squeeze(axis), picked
    return torch.log(picked), picked


def _label_terms(
    log_p: torch.Tensor,
    p: torch.Tensor,
    gamma: float,
    epsilon: float,
    weight: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum of the loss, dloss/d log p_y per element)`` of the label's class term,
    from the label's log-probability and probability, each times its ``weight``.
    ``1 - p_y`` is the difference itself, as in the definitions (which take ``p`` as
    ``exp(log p)``; here it is the softmax's own rounded value)."""
    xp = array_namespace(log_p)
    one_minus_p = 1 - p
    factor = None if gamma == 0.0 else modulating_factor(one_minus_p, gamma, xp)
    terms = softmax_focal_terms(
        poly_log_prob(log_p, one_minus_p, epsilon), one_minus_p, gamma, xp, factor
    )
    slope = softmax_focal_slope(log_p, one_minus_p, gamma, epsilon, xp, p=p, factor=factor)
    if weight is not None:
        terms, slope = weight * terms, weight * slope
    return -terms.sum(), slope


def _blocks(
    kernel: BlockKernel,
    x: torch.Tensor,
    y: torch.Tensor,
    scale: Any,
    block: int,
    grad: torch.Tensor | None,
) -> torch.Tensor:
    """``scale * sum(loss)`` block by block; with ``grad`` (contiguous, the shape of
    ``x``) also writes ``scale * d loss / d x`` into it. Blocks are views of the
    flattened inputs: no copy (this is not differentiated)."""
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
    assert total is not None  # n > 0: the caller sends empty inputs to the definition
    return total


def reduced_loss(
    kernel: BlockKernel, x: torch.Tensor, y: torch.Tensor, denominator: int, block: int
) -> torch.Tensor:
    """``sum(loss) / denominator`` (``denominator`` 1 for a sum) of eager tensors.

    Through :class:`ReducedElementwiseLoss`, whose forward pass also computes the
    gradient, when one will be needed (``x`` requires it and grad mode is on);
    otherwise the blocks are summed directly, with no autograd bookkeeping at all.
    """
    if x.requires_grad and torch.is_grad_enabled():
        apply: Any = ReducedElementwiseLoss.apply
        total: torch.Tensor = apply(x, y, kernel, denominator, block)
        return total
    return _blocks(kernel, x, y, 1.0 / denominator if denominator != 1 else 1.0, block, None)
