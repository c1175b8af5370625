"""The generic array-API behaviour every library gets, and the library-neutral
helpers of the delegation layer (namespace and device lookup, array checks)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from .. import _compat
from .._primitives import log_sigmoid_pair, log_softmax
from .._typing import Array, DType, Namespace


class RowwiseCall(Protocol):
    """What :meth:`Backend.rowwise` receives: the validated inputs of one call of a
    loss whose every element depends on its own row of logits and its own target
    only (``_inputs.SoftmaxInputs``; ``_inputs.BinaryInputs``, whose rows are single
    elements)."""

    x: Array  # logits in the compute dtype

    @property
    def targets(self) -> Array:
        """The targets (the softmax losses': as given)."""
        ...

    @property
    def eager(self) -> bool:
        """``Backend.eager(x, targets)``."""
        ...

    def block_cuts(self, size: int) -> list[tuple[slice, ...]]:
        """Index tuples cutting ``x`` into row blocks of about ``size`` values."""
        ...

    def block(self, cut: tuple[slice, ...]) -> Any:
        """These inputs restricted to one block (the same kind of inputs)."""
        ...

    def spread(self, per_element: Array) -> Array:
        """Values of the per-element loss's shape, broadcast against ``x``."""
        ...


class SoftmaxCall(Protocol):
    """What a backend's native softmax path receives: the validated inputs of one
    call (``_inputs.SoftmaxInputs``), nothing left to check."""

    x: Array  # logits in the compute dtype
    targets: Array  # as given: class indices or a distribution
    labels: Array | None  # None for a distribution
    axis: int  # normalised, in [0, ndim)
    num_classes: int
    ignore: int | None
    a: float  # smoothing: q' = a q + b
    b: float
    eager: bool  # Backend.eager(x, targets)
    from_logits: bool
    reduction: str
    out_dtype: DType
    where: Array | None  # the elements that count (None: all)
    normalizer: float | Array | None

    def block_cuts(self, size: int) -> list[tuple[slice, ...]]:
        """Index tuples cutting ``x`` into row blocks of about ``size`` values."""
        ...

    def block(self, cut: tuple[slice, ...]) -> SoftmaxCall:
        """These inputs restricted to one block."""
        ...


class Backend:
    """The generic array-API behaviour; a library's module subclasses what differs.

    Every method receives the namespace ``xp`` explicitly (a backend object serves
    every namespace of its library, e.g. both NumPy and compat's wrapped NumPy).
    """

    #: The library's name in messages and in the backend list of ``arraylosses.testing``.
    name = "generic"

    #: The library's identity with a zero derivative (``detach``, ``stop_gradient``),
    #: or None where it has no automatic differentiation: derivatives the exact formula
    #: would overflow are bounded with it (``_primitives.clamped_log``).
    stop_gradient: Callable[[Array], Array] | None = None

    def reads_values(self, x: Array) -> bool:
        """Whether the values of ``x`` can be read without a device sync or breaking a
        trace (then bad labels and parameters raise; elsewhere they become NaN)."""
        return False

    def eager(self, x: Array, y: Array) -> bool:
        """Whether both arrays live in host memory with no trace or transform active:
        where the library's own eager kernels may run (and values may be read)."""
        return False

    def compute_dtype(self, dtype: DType, x: Array, xp: Namespace) -> DType:
        """The dtype a loss is computed in: half precision in float32 (float16's whole
        range is tiny for float32; bfloat16 shares float32's exponent range, so a logit
        gap of ``max - (-max)`` overflows float32, see ``log_prob_scale``)."""
        return xp.float32 if "float16" in str(dtype) else dtype

    def log_prob_scale(self, dtype: DType, compute: DType, num_classes: int) -> float:
        """The unit of the log-probabilities softmax losses are computed in: 1, or
        for bfloat16 computed in float32 the power of two at least ``2 K``, so that
        neither a logit gap nor a sum of K log-probabilities overflows (see
        :func:`~.._primitives.scaled_log_softmax`); the loss is multiplied back at
        the end."""
        if dtype == compute:  # (the common call: no string is built)
            return 1.0
        if "bfloat16" in str(dtype) and "float32" in str(compute):
            return float(2 ** (2 * num_classes - 1).bit_length())
        return 1.0

    def log_softmax(self, x: Array, axis: int, xp: Namespace) -> Array:
        return log_softmax(x, axis, xp)

    def label_log_prob(self, x: Array, labels: Array, axis: int, xp: Namespace) -> Array:
        """``log_softmax(x)`` at the labels' classes (``axis`` removed; labels in
        range). A backend may compute it without the other classes'
        log-probabilities, with the same arithmetic: ``(x_y - max) - log(sum(exp(x -
        max)))``."""
        return self.take_class(self.log_softmax(x, axis, xp), labels, axis, xp)

    def log_sigmoid_pair(self, x: Array, xp: Namespace) -> tuple[Array, Array]:
        """``(log sigmoid(x), log sigmoid(-x))``, by the library's fused kernel where
        it has one of the same accuracy."""
        return log_sigmoid_pair(x, xp)

    def take_class(self, values: Array, labels: Array, axis: int, xp: Namespace) -> Array:
        """``values`` at index ``labels`` along ``axis`` (removed); labels in range."""
        index = xp.expand_dims(labels, axis=axis)
        return xp.squeeze(xp.take_along_axis(values, index, axis=axis), axis=axis)

    def move_axis(self, x: Array, source: int, destination: int, xp: Namespace) -> Array:
        """``moveaxis``, and a no-op when nothing moves."""
        if source % x.ndim == destination % x.ndim:
            return x
        return xp.moveaxis(x, source, destination)

    def one_hot(self, labels: Array, num_classes: int, dtype: DType, xp: Namespace) -> Array:
        """One-hot of in-range labels, class axis last."""
        return _compat.one_hot(labels, num_classes, dtype=dtype, xp=xp)

    def add_at_label(
        self, values: Array, labels: Array, amounts: Array, axis: int, xp: Namespace
    ) -> Array:
        """``values`` plus ``amounts`` (the shape of ``labels``) at each label's class
        along ``axis``; labels in range. A backend may write into ``values``, a
        temporary of the caller's."""
        at_label = label_mask(labels, values.shape[axis], axis, xp)
        spread = xp.expand_dims(amounts, axis=axis)
        return values + xp.where(at_label, spread, xp.zeros_like(spread))

    def as_result(self, out: Array, dtype: DType, xp: Namespace) -> Array:
        """Cast back to the dtype of ``logits``."""
        return out if out.dtype == dtype else xp.astype(out, dtype)

    def labels_in_range(self, labels: Array, num_classes: int, xp: Namespace) -> bool:
        """Whether every label is in ``[0, num_classes)`` (only asked where
        :meth:`reads_values`)."""
        return bool(xp.all((labels >= 0) & (labels < num_classes)))

    # Native paths: None means "none here", and the caller runs the definition.

    def reduced_sigmoid_focal(
        self, x: Array, y: Array, alpha: float | None, gamma: float, reduction: str, xp: Namespace
    ) -> Array | None:
        """``sum`` or ``mean`` of the sigmoid focal loss of logits ``x`` and smoothed
        targets ``y`` (one shape, one dtype), by a faster route than the definition."""
        return None

    def cross_entropy(self, inputs: SoftmaxCall, weight: Array | None) -> Array | None:
        """The whole of ``cross_entropy`` by the library's own kernel."""
        return None

    def reduced_softmax_focal(
        self,
        inputs: SoftmaxCall,
        alpha_vec: Array | None,
        alpha_scalar: float | None,
        gamma: float,
        epsilon: float,
    ) -> Array | None:
        """``sum`` or ``mean`` of the softmax focal loss of class indices without
        smoothing, by a route with an analytic gradient."""
        return None

    def rowwise(
        self,
        elements: Callable[[Any], Array],
        inputs: RowwiseCall,
        parameter: Array | None,
        gradient: Callable[[Any], tuple[Array, Array]] | None = None,
    ) -> Array:
        """``elements(inputs)``: the per-element loss of a loss whose every element
        depends on its own row of logits and its own target only (and on
        ``parameter``, a per-class vector, if any): a softmax loss, or an elementwise
        one (rows of one element). A backend whose whole-array temporaries cost more
        than their arithmetic evaluates it block by block (``inputs.block_cuts``);
        the definition is the same either way. ``gradient``, where the loss has one,
        returns ``(elements(inputs), d sum(elements(inputs)) / d inputs.x)`` with the
        gradient written analytically; a backend with automatic differentiation may
        take a block's gradient from it instead of differentiating the definition."""
        return elements(inputs)


class HostBackend(Backend):
    """Eager arrays in host memory (NumPy, array-api-strict): values are free to read,
    so bad labels and parameters raise, and eager kernels may run."""

    def reads_values(self, x: Array) -> bool:
        return True

    def eager(self, x: Array, y: Array) -> bool:
        return True


def masked_take(values: Array, labels: Array, axis: int, xp: Namespace) -> Array:
    """``take_along_axis`` as a sum under a one-hot comparison mask (lazy-safe and
    traceable: no value of ``labels`` is read), for namespaces without a gather."""
    mask = label_mask(labels, values.shape[axis], axis, xp)
    return xp.sum(xp.where(mask, values, xp.zeros_like(values)), axis=axis)


def label_mask(labels: Array, num_classes: int, axis: int, xp: Namespace) -> Array:
    """The boolean one-hot of ``labels`` with the class axis at ``axis``."""
    classes = xp.arange(num_classes, dtype=labels.dtype, device=device(labels))
    # (``[..., None]`` rather than ``expand_dims``: Dask reshapes for the latter,
    # which fails on unknown chunk sizes)
    return xp.moveaxis(labels[..., None] == classes, -1, axis)


# ---------------------------------------------------------------- which library

# array_namespace() inspects the type of its argument on every call; a loss is called
# every training step, so remember the answer per array type.
_NAMESPACES: dict[type, Namespace] = {}


def array_namespace(x: Array) -> Namespace:
    """The (compat-wrapped) array-API namespace of one array, cached by type."""
    cls = type(x)
    xp = _NAMESPACES.get(cls)
    if xp is None:
        xp = _compat.array_namespace(x)
        _NAMESPACES[cls] = xp
    return xp


def _torch_tensor_type() -> type | None:
    torch = sys.modules.get("torch")
    return None if torch is None else torch.Tensor


def is_array(x: object) -> bool:
    """True for an array of any array-API library (Python scalars and lists are not)."""
    # Tensors first: compat's check goes through ``functools.lru_cache`` helpers, which
    # torch.compile warns about on every traced call.
    tensor = _torch_tensor_type()
    if tensor is not None and isinstance(x, tensor):
        return True
    return bool(_compat.is_array_api_obj(x)) and not isinstance(x, (bool, int, float, complex))


def device(x: Array) -> Any:
    """The device of an array (``x.device`` for tensors, without compat's helpers)."""
    tensor = _torch_tensor_type()
    if tensor is not None and isinstance(x, tensor):
        return cast(Any, x).device
    return _compat.device(x)


# -------------------------------------------------------------------- warnings

F = TypeVar("F", bound=Callable[..., Any])


def quiet_overflow(func: F) -> F:
    """Run ``func`` with NumPy's overflow warning silenced when its first argument is a
    NumPy or array-api-strict array (which computes with NumPy).

    A loss whose true value exceeds the dtype's range (logits spanning more than
    ``finfo.max``) saturates to ``inf``, the right limit; ``docs/contract.md`` promises no
    RuntimeWarning for finite input. Invalid operations (NaN) are not silenced: they
    are avoided by construction. The wrapper takes ``*args, **kwargs`` so that Python
    itself checks the call against the public signature (``inspect.signature``
    follows ``__wrapped__``), naming the public parameters in its errors.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if args and type(args[0]).__module__.startswith(("numpy", "array_api_strict")):
            with sys.modules["numpy"].errstate(over="ignore"):
                return func(*args, **kwargs)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
