"""Where arraylosses leaves the pure array-API path for speed, and the switch back.

The pure path (the loss formula applied to whole arrays, reduced with ``xp.sum``) is
the definition; every fast path here computes the same numbers behind the same
contract and is tested against it in ``tests/test_fastpaths.py``:

- on libraries without autodiff (NumPy, array-api-strict) the sigmoid focal loss is
  evaluated in a form arranged for eager evaluation (one ``exp``, one ``log1p``, no
  ``where``), and reduced losses block by block (:func:`~._reduction.blockwise_sum`;
  on NumPy a kernel writing into reused buffers, ``_numpy_blocks``);
- on eager PyTorch they go through one autograd function whose forward pass runs a
  fused block kernel that also computes the analytic gradient (``_torch_autograd``);
- cross-entropy of eager CPU tensors is PyTorch's own fused kernel, called after the
  contract's validation.

Fast paths are taken only where they can honour the whole contract: not while
``torch.compile`` traces (the pure path compiles into fused kernels anyway), not
inside ``torch.func`` transforms, not on JAX or Dask (compiled or lazy: nothing to
gain, laziness to lose). Set :data:`ENABLED` to False (or use :func:`disabled`) to run
the pure path everywhere.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from ._compat import (
    array_namespace,
    is_array_api_strict_namespace,
    is_numpy_namespace,
    is_torch_namespace,
)
from ._reduction import blockwise_sum
from ._smoothing import label_validity, smoothing_coefficients
from ._validation import (
    as_parameter_array,
    check_axis,
    check_ignore_index,
    check_options,
    check_per_class,
    compute_dtype,
)

Array = Any

#: Module-level switch: False sends every call down the pure array-API path.
ENABLED = True

# Blocks of a blockwise reduction (measured on a 2-core x86 CPU, RetinaNet-sized
# inputs). NumPy: 128 KiB per temporary (32768 float32 values), where each of the
# formula's temporaries is still served from glibc's heap: at 256 KiB the time of a
# reduction jumps 3x (fresh mmaps and page faults again). PyTorch: 65536 elements per
# block, where its fewer, fused operations amortise their dispatch and still split
# over two threads.
HOST_BLOCK_BYTES = 1 << 17
TORCH_BLOCK = 1 << 16


@contextmanager
def disabled() -> Iterator[None]:
    """Run the pure array-API path everywhere inside the ``with`` block (for tests)."""
    global ENABLED
    saved = ENABLED
    ENABLED = False
    try:
        yield
    finally:
        ENABLED = saved


def is_torch_eager(*arrays: Array) -> bool:
    """True for PyTorch tensors used eagerly: not traced by ``torch.compile``, no
    ``torch.func`` transform active and no tensor wrapped by one (wrapped tensors
    refuse in-place writes and value reads)."""
    torch = sys.modules["torch"]
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return False
    return not any(map(torch._C._functorch.is_functorch_wrapped_tensor, arrays))


def in_torch_forward_ad() -> bool:
    """Inside ``torch.autograd.forward_ad.dual_level()``: forward-mode AD of the
    autograd function would need a jvp rule, while the pure path has one for free."""
    level: int = getattr(sys.modules["torch"].autograd.forward_ad, "_current_level", -1)
    return level >= 0


def values_only(xp: ModuleType) -> bool:
    """True for libraries without automatic differentiation whose arrays are computed
    eagerly (NumPy, array-api-strict): there a loss may be evaluated in a form whose
    derivative is not exact, for speed."""
    return ENABLED and (is_numpy_namespace(xp) or is_array_api_strict_namespace(xp))


def reduced_elementwise(
    loss: Callable[[Array, Array], Array],
    torch_kernel: Callable[[], Any],
    x: Array,
    y: Array,
    reduction: str,
    xp: ModuleType,
    numpy_sum: Callable[[Array, Array, int], Array] | None = None,
) -> Array | None:
    """``sum`` or ``mean`` of ``loss(x, y)`` by a fast path, or None if none applies.

    ``loss`` is the elementwise formula (evaluated blockwise on host arrays);
    ``torch_kernel()`` makes the PyTorch block kernel (see ``_torch_autograd``) that
    eager PyTorch runs instead, and ``numpy_sum(x, y, block)``, where given, is a NumPy
    kernel for the whole blockwise sum (see ``_numpy_blocks``). ``x`` and ``y`` must
    have one shape and ``y`` must not need a gradient; otherwise the caller's pure
    path runs.
    """
    if not ENABLED or tuple(y.shape) != tuple(x.shape):
        return None
    if is_torch_namespace(xp):
        n = x.numel()
        if n == 0 or y.requires_grad or not is_torch_eager(x, y) or in_torch_forward_ad():
            return None  # (n == 0: the pure path's NaN mean and zero sum)
        # Blocks pay on CPU (cache, heap); elsewhere one block is one kernel launch each.
        block = TORCH_BLOCK if x.is_cpu else n
        reduced_loss = _torch_autograd().reduced_loss
        return reduced_loss(torch_kernel(), x, y, n if reduction == "mean" else 1, block)
    if not values_only(xp):
        return None
    n = math.prod(x.shape)
    if n == 0:
        return None
    block = max(1, HOST_BLOCK_BYTES // (xp.finfo(x.dtype).bits // 8))
    if numpy_sum is not None and is_numpy_namespace(xp):
        total = numpy_sum(x, y, block)
    else:
        total = blockwise_sum(loss, (x, y), xp, block)
    return total / n if reduction == "mean" else total


_TORCH_AUTOGRAD: ModuleType | None = None


def _torch_autograd() -> ModuleType:
    """The PyTorch-only module, imported on first use (importing arraylosses never
    imports torch) and then kept: an import statement costs microseconds per call."""
    global _TORCH_AUTOGRAD
    if _TORCH_AUTOGRAD is None:
        from . import _torch_autograd as module

        _TORCH_AUTOGRAD = module
    return _TORCH_AUTOGRAD


def _options_need_checking(
    reduction: object, smoothing: object, label_smoothing: object, from_logits: object
) -> bool:
    """False when the shared options are plainly valid (the common call, checked in a
    fraction of a microsecond); True sends them through the full validation."""
    return not (
        from_logits is True
        and (reduction == "mean" or reduction == "sum" or reduction == "none")
        and (smoothing == "uniform" or smoothing == "others")
        and type(label_smoothing) is float
        and 0.0 <= label_smoothing <= 1.0
    )


def _labels_in_range(labels: Array, num_classes: int) -> bool:
    """Whether every label of an eager CPU tensor is in ``[0, num_classes)``.

    The host check the contract asks for, at the cost of one reduction: a handful of
    labels is cheaper to read as a Python list than to reduce (the common small-batch
    call), larger ones take one ``aminmax``.
    """
    n = labels.numel()
    if n == 0:
        return True
    if n <= 32 and labels.ndim == 1:
        values: list[int] = labels.tolist()
        return min(values) >= 0 and max(values) < num_classes
    low, high = sys.modules["torch"].aminmax(labels)
    return int(low.item()) >= 0 and int(high.item()) < num_classes


def torch_cross_entropy(
    logits: Array,
    targets: Array,
    axis: object,
    weight: object,
    ignore_index: object,
    label_smoothing: object,
    smoothing: object,
    from_logits: object,
    reduction: object,
) -> Array | None:
    """:func:`~._categorical.cross_entropy` by ``torch.nn.functional.cross_entropy``.

    For eager CPU tensors, after the contract's validation: the contract *is*
    PyTorch's cross-entropy (class axis moved to 1), and its fused kernel is what the
    pure array-API path cannot match (about 1.5× slower). ``"others"`` smoothing is
    PyTorch's uniform smoothing with ``eps' = eps K / (K - 1)``: both are
    ``q' = a q + b`` with ``a + b K = 1``, so ``eps' = b K``. Returns None (the pure
    path runs, and raises where it must) for anything else: other devices (there an
    out-of-range label must become NaN, and reading labels would wait on the device),
    tracing, ``from_logits=False``, bool targets, shapes that do not match.

    A loss is called every training step, often on small batches, so the checks are
    ordered to cost little more than the kernel itself on the common call.
    """
    torch = sys.modules["torch"]
    if not (
        ENABLED
        and isinstance(targets, torch.Tensor)
        and logits.is_cpu
        and logits.is_floating_point()
        and is_torch_eager(logits, targets)
    ):
        return None
    probabilities = targets.is_floating_point()
    if not probabilities and (targets.dtype is torch.bool or targets.is_complex()):
        return None
    if _options_need_checking(reduction, smoothing, label_smoothing, from_logits):
        check_options(reduction, smoothing, label_smoothing, from_logits)
        if not from_logits:
            return None
    eps = float(label_smoothing)  # type: ignore[arg-type]
    ndim = logits.ndim
    ax = axis if type(axis) is int and -ndim <= axis < ndim else check_axis(axis, ndim)
    ax %= ndim
    if ignore_index is not None:
        ignore_index = check_ignore_index(ignore_index)
        if probabilities:
            return None  # the pure path raises: ignore_index needs class indices
    shape = logits.shape
    k = int(shape[ax])
    if k == 0:
        return None  # the pure path raises: no classes
    torch_eps = 0.0 if eps == 0.0 else smoothing_coefficients(eps, k, str(smoothing))[1] * k
    if torch_eps > 1.0:  # "others" with eps > (K - 1) / K: beyond PyTorch's range
        return None
    if probabilities:
        expected = shape
    else:
        expected = shape[:-1] if ax == ndim - 1 else shape[:ax] + shape[ax + 1 :]
    if targets.shape != expected:
        return None
    x = logits
    if logits.dtype not in (torch.float32, torch.float64):  # half precision
        x = logits.to(compute_dtype(array_namespace(logits), logits.dtype, logits))
    w = None
    if weight is not None:
        w = as_parameter_array(weight, "weight", array_namespace(logits), x)
        check_per_class(w, "weight", k)
    if probabilities:
        t = targets.to(x.dtype)
    else:
        if not _labels_in_range(targets, k):
            # raises unless every out-of-range label is ignore_index
            label_validity(targets, k, ignore_index, array_namespace(targets), "targets")
        t = targets if targets.dtype is torch.int64 else targets.long()
    if ndim > 1 and ax != 1:
        x = torch.movedim(x, ax, 1)
        if probabilities:
            t = torch.movedim(t, ax, 1)
    out = torch.nn.functional.cross_entropy(
        x,
        t,
        weight=w,
        # with ignore_index=None every label was checked to be in range
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
        label_smoothing=torch_eps,
    )
    return out if out.dtype == logits.dtype else out.to(logits.dtype)
