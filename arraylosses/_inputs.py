"""The validated inputs of each loss family: every check, once, for every path.

A public loss builds one of these first. Construction checks everything that can be
checked (types, shapes, options, labels and parameters where values are free to
read) and raises with a message naming the argument; what it holds afterwards is what
both the definitions and a backend's native path consume, so no path validates
again. Array work that only the definitions need (widened labels, masks, smoothed
distributions) is done when first asked for, so that a native path pays nothing
for it.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from ._backends import Backend, backend_of, masked_take
from ._elementwise import mass_times_log
from ._primitives import clamped_log, log_sigmoid_pair, scaled_log_softmax
from ._reduction import nan_where_invalid, reduce_loss
from ._smoothing import (
    as_index_array,
    binary_prior,
    check_label_range,
    class_prior,
    is_prior,
    smoothing_coefficients,
)
from ._typing import Array, Namespace
from ._validation import (
    as_parameter_array,
    check_axis,
    check_binary_targets,
    check_broadcasts_to,
    check_ignore_index,
    check_logits,
    check_normalizer,
    check_options,
    check_per_class,
    check_probabilities,
    check_where,
    dtype_is,
    known_size,
    namespace_of,
    same_shape,
)

# (type of logits, type of targets) -> their namespace and its backend
_NAMESPACES: dict[tuple[type, type], tuple[Namespace, Backend]] = {}


def _cuts(shape: tuple[int, ...], d: int, size: int) -> list[tuple[slice, ...]]:
    """Consecutive slices of axis ``d`` of an array of ``shape``, each about ``size``
    values (at least one index); the whole where one slice would hold it all."""
    n = int(shape[d])
    step = max(1, size // max(1, math.prod(int(m) for m in shape) // max(n, 1)))
    if step >= n:
        return [(slice(None),)]
    return [(slice(None),) * d + (slice(i, i + step),) for i in range(0, n, step)]


class _Inputs:
    """What both families share: the namespace, its backend, logits in the compute
    dtype, and the options."""

    # slots: built on every call of a loss, so attribute writes should be cheap
    __slots__ = (
        "backend", "from_logits", "normalizer", "out_dtype", "reduction", "where", "x", "xp",
    )  # fmt: skip

    def _logits(
        self,
        logits: Array,
        targets: Array,
        label_smoothing: object,
        smoothing: object,
        from_logits: object,
        reduction: object,
    ) -> float:
        """Check and store what every loss shares; return the smoothing strength."""
        types = (type(logits), type(targets))
        found = _NAMESPACES.get(types)
        if found is None:  # whether a value is an array, and of which library, is its type's
            xp = namespace_of([("logits", logits), ("targets", targets)])
            found = _NAMESPACES[types] = (xp, backend_of(xp))
        xp, backend = found
        check_logits(logits, xp)
        eps = check_options(reduction, smoothing, label_smoothing, from_logits)
        self.xp, self.backend = xp, backend
        self.out_dtype = logits.dtype
        dtype = backend.compute_dtype(logits.dtype, logits, xp)
        x = logits if dtype == logits.dtype else xp.astype(logits, dtype)
        self.x = x if from_logits else check_probabilities(x, xp, backend)
        self.from_logits = bool(from_logits)
        self.reduction = str(reduction)
        return eps

    def _mask_and_normalizer(
        self, where: object, normalizer: object, shape: tuple[object, ...]
    ) -> None:
        """Check and store ``where`` (broadcastable to the per-element loss, of
        ``shape``) and ``normalizer``."""
        self.normalizer = (
            None if normalizer is None else check_normalizer(normalizer, self.reduction)
        )
        self.where = None if where is None else check_where(where, self.xp, shape)

    @property
    def plain(self) -> bool:
        """No mask and no normalizer: a native path may reduce on its own."""
        return self.where is None and self.normalizer is None

    def reduce(
        self, loss: Array, denominator: Array | int | None = None, masked: bool = False
    ) -> Array:
        """``reduction`` of the per-element loss: masked elements count nowhere, and
        ``normalizer`` replaces the mean's denominator. ``masked``: the caller has
        already zeroed the masked elements and counted them out of ``denominator``."""
        xp = self.xp
        if self.where is not None and not masked:
            loss = xp.where(self.where, loss, xp.zeros_like(loss))
            if denominator is None and self.reduction == "mean":
                kept = xp.where(self.where, xp.ones_like(loss), xp.zeros_like(loss))
                denominator = xp.sum(kept)
        if self.normalizer is not None:  # (reduction="mean")
            return self.normalize(xp.sum(loss))
        return reduce_loss(loss, self.reduction, xp, denominator)

    def normalize(self, total: Array) -> Array:
        """``total / normalizer`` (a float, or a 0-d array used as given)."""
        n: Any = self.normalizer
        if isinstance(n, float) or dtype_is(self.xp, n.dtype, "real floating"):
            return total / n
        return total / self.xp.astype(n, total.dtype)

    def cast(self, out: Array) -> Array:
        """The result in the dtype of ``logits`` (a 0-d array, never a NumPy scalar)."""
        return self.backend.as_result(out, self.out_dtype, self.xp)

    def clamped_log(self, p: Array) -> Array:
        """The log of probabilities, clamped at -100, with a derivative that stays
        finite for subnormal probabilities of the caller's dtype (see
        :func:`~._primitives.clamped_log`)."""
        return clamped_log(p, self.xp, self.backend.stop_gradient, self.out_dtype)


class BinaryInputs(_Inputs):
    """Validated inputs of a binary loss: logits and smoothed targets ``y`` in the
    compute dtype."""

    __slots__ = ("y",)

    def __init__(
        self,
        logits: Array,
        targets: Array,
        label_smoothing: object,
        smoothing: object,
        from_logits: object,
        reduction: object,
        where: object = None,
        normalizer: object = None,
    ) -> None:
        eps = self._logits(logits, targets, label_smoothing, smoothing, from_logits, reduction)
        xp = self.xp
        check_binary_targets(
            targets, tuple(logits.shape), xp, "a real floating, integer or bool array"
        )
        # copy=False: a target array that already has the compute dtype is used as is.
        y = xp.astype(targets, self.x.dtype, copy=False)
        if is_prior(smoothing):  # the positive class's prior, per element
            u = binary_prior(smoothing, xp, self.x, self.backend)
            self.y = y if eps == 0.0 else (1.0 - eps) * y + eps * u
        else:
            a, b = smoothing_coefficients(eps, 2, str(smoothing))
            self.y = y if b == 0.0 else a * y + b
        self._mask_and_normalizer(where, normalizer, tuple(logits.shape))
        if self.where is not None:
            # masked elements: neutral values, so that whatever they held (NaN,
            # extremes) reaches neither the loss nor the gradient
            fill = 0.0 if self.from_logits else 0.5
            self.x = xp.where(self.where, self.x, xp.full_like(self.x, fill))
            self.y = xp.where(self.where, self.y, xp.zeros_like(self.y))

    @property
    def targets(self) -> Array:
        """The (smoothed) targets, as :meth:`Backend.rowwise` asks of its inputs."""
        return self.y

    @property
    def eager(self) -> bool:
        """Whether the backend's eager kernels may run on these arrays."""
        return self.backend.eager(self.x, self.y)

    def block_cuts(self, size: int) -> list[tuple[slice, ...]]:
        """Index tuples that cut the logits into consecutive blocks of about ``size``
        values along axis 0 (one block, the whole, where the targets are broadcast
        or a ``where`` mask would have to be cut too): an elementwise loss is
        row-wise with rows of one element, so it can be evaluated by blocks
        (:meth:`block`) and concatenated along axis 0."""
        x = self.x
        if x.ndim < 1 or self.where is not None or tuple(self.y.shape) != tuple(x.shape):
            return [(slice(None),)]
        return _cuts(tuple(x.shape), 0, size)

    def block(self, cut: tuple[slice, ...]) -> BinaryInputs:
        """These inputs restricted to one block of :meth:`block_cuts` (views)."""
        sub = copy.copy(self)
        sub.x, sub.y = self.x[cut], self.y[cut]
        return sub

    def spread(self, per_element: Array) -> Array:
        """Values of the per-element loss's shape, broadcast against the logits (the
        same shape here)."""
        return per_element

    def same_in_every_block(self, value: object) -> bool:
        """Whether a per-element option (``pos_weight``, a gamma array), broadcast
        against the logits, is constant along axis 0, the axis that
        :meth:`block_cuts` cuts: None, a Python number, or an array with fewer
        dimensions than the logits or of length 1 along axis 0 (a per-class
        ``pos_weight``, PyTorch's usual one). Such a value needs no cutting."""
        if value is None or isinstance(value, (int, float)):
            return True
        shape = tuple(getattr(value, "shape", ()))
        return not shape or len(shape) < self.x.ndim or bool(shape[0] == 1)

    def parameter(self, value: object, name: str) -> Array:
        """A per-element parameter (weight, pos_weight) broadcastable to ``logits``."""
        arr = as_parameter_array(value, name, self.xp, self.x, allow_scalar=True)
        check_broadcasts_to(tuple(arr.shape), tuple(self.x.shape), name)
        return arr

    def log_probs(self, fused: bool = False) -> tuple[Array, Array]:
        """``(log p, log(1 - p))`` of the probability of class 1: from logits in log
        space (one ``exp``, one ``log1p``), or the clamped logs of probabilities.

        ``fused``: the backend's fused log-sigmoid where it has one (PyTorch's
        ``F.logsigmoid``: the same values and first derivatives in a third of the
        time, but its double backward loses relative accuracy at saturated logits,
        so the losses that promise exact second derivatives do not ask for it)."""
        if self.from_logits:
            if fused:
                return self.backend.log_sigmoid_pair(self.x, self.xp)
            return log_sigmoid_pair(self.x, self.xp)
        return self.clamped_log(self.x), self.clamped_log(1 - self.x)

    def finish(self, loss: Array) -> Array:
        """Reduce the per-element loss and cast it back."""
        return self.cast(self.reduce(loss))


class SoftmaxInputs(_Inputs):
    """Validated inputs of a softmax loss: logits in the compute dtype, the class axis,
    and the targets, which are integer class indices (``labels``) or a distribution
    along ``axis`` (``dist``), as their dtype says."""

    __slots__ = (
        "_dist", "_masks", "a", "axis", "b", "eager", "ignore", "keep", "labels", "num_classes",
        "prior", "reads_labels", "targets",
    )  # fmt: skip

    def __init__(
        self,
        logits: Array,
        targets: Array,
        axis: object,
        ignore_index: object,
        label_smoothing: object,
        smoothing: object,
        from_logits: object,
        reduction: object,
        where: object = None,
        normalizer: object = None,
    ) -> None:
        eps = self._logits(logits, targets, label_smoothing, smoothing, from_logits, reduction)
        xp, backend = self.xp, self.backend
        ndim = logits.ndim
        ax = axis if type(axis) is int and -ndim <= axis < ndim else check_axis(axis, ndim)
        self.axis = ax = ax % ndim
        self.ignore = ignore = None if ignore_index is None else check_ignore_index(ignore_index)
        shape = logits.shape
        self.num_classes = k = int(shape[ax])
        if k == 0:
            raise ValueError(
                f"`logits` has no classes: axis {ax} of shape {tuple(shape)} is empty."
            )
        self.prior: Array | None = None
        if is_prior(smoothing):  # q' = (1 - eps) q + eps u
            self.prior = class_prior(smoothing, k, xp, self.x, backend)
            self.a, self.b = (1.0, 0.0) if eps == 0.0 else (1.0 - eps, eps)
        else:
            self.a, self.b = (
                (1.0, 0.0) if eps == 0.0 else smoothing_coefficients(eps, k, str(smoothing))
            )
        expected = shape[:ax] + shape[ax + 1 :]
        self._mask_and_normalizer(where, normalizer, tuple(expected))
        if self.where is not None:
            # masked elements: neutral logits, so that whatever they held (NaN,
            # extremes) reaches neither the loss nor the gradient
            self.x = self._masked(self.x, along_classes=True)
        self.targets = targets
        self._masks: tuple[Array, Array | None, Array | None] | None = None
        self._dist: Array | None = None
        # eager: the backend's own eager kernels may run on these arrays
        self.eager = eager = backend.eager(self.x, targets)
        self.reads_labels = False  # the label values were read and checked
        if dtype_is(xp, targets.dtype, "integral"):
            self.labels: Array | None = targets
            if not same_shape(targets.shape, expected):
                hint = ""
                if ax != 1 and ndim > 2 and same_shape(targets.shape, shape[:1] + shape[2:]):
                    hint = " For PyTorch's (N, C, d1, ...) layout pass axis=1."
                raise ValueError(
                    f"integer `targets` (class indices) must have the shape of `logits` "
                    f"without axis {ax}, {tuple(expected)}; got {tuple(targets.shape)} "
                    f"(`logits` has shape {tuple(shape)}).{hint}"
                )
            if self.where is not None:  # masked labels count nowhere: not checked either
                targets = self.targets = self.labels = self._masked(targets, False)
            self.reads_labels = eager or backend.reads_values(targets)
            if self.reads_labels:
                check_label_range(targets, k, ignore, xp, "targets", backend)
            return
        self.labels = None
        if ignore is not None:
            raise ValueError(
                f"`ignore_index`={ignore} applies to integer class-index targets only; "
                f"`targets` has dtype {targets.dtype}."
            )
        if not (
            dtype_is(xp, targets.dtype, "real floating") or dtype_is(xp, targets.dtype, "bool")
        ):
            raise TypeError(
                f"`targets` must be integer class indices or a real floating "
                f"distribution; got dtype {targets.dtype}."
            )
        if not same_shape(targets.shape, shape):
            hint = ""
            if same_shape(targets.shape, shape[:ax] + shape[ax + 1 :]):
                hint = (
                    f" Class indices need an integer dtype; `targets` has dtype "
                    f"{targets.dtype} (convert them, e.g. with astype(int64))."
                )
            raise ValueError(
                f"`targets` as a distribution must have the shape of `logits` "
                f"{tuple(shape)}; got {tuple(targets.shape)}.{hint}"
            )
        if self.where is not None:
            self.targets = self._masked(targets, along_classes=True)

    def _masked(self, values: Array, along_classes: bool) -> Array:
        """``values`` where ``where`` keeps the element, 0 elsewhere (the mask
        broadcast along the class axis for arrays that have one)."""
        xp, mask = self.xp, self.where
        assert mask is not None
        if along_classes:
            missing = self.x.ndim - 1 - mask.ndim
            if missing > 0:
                mask = mask[(None,) * missing + (...,)]
            # ([..., None] rather than expand_dims: unknown Dask sizes)
            mask = xp.moveaxis(mask[..., None], -1, self.axis)
        return xp.where(mask, values, xp.zeros_like(values))

    def block_cuts(self, size: int) -> list[tuple[slice, ...]]:
        """Index tuples that cut the logits into consecutive blocks of about ``size``
        values along the first axis that is not the class axis (one block, the
        whole, where there is nothing to cut or a ``where`` mask would have to be
        cut too). Every softmax loss is row-wise -- an element's loss depends on its
        own row of logits and its own target only -- so a per-element loss can be
        evaluated block by block (:meth:`block`) and concatenated along axis 0."""
        x = self.x
        if x.ndim < 2 or self.where is not None:
            return [(slice(None),)]
        return _cuts(tuple(x.shape), 1 if self.axis == 0 else 0, size)

    def spread(self, per_element: Array) -> Array:
        """Values of the per-element loss's shape (the logits' without the class
        axis), broadcast against the logits along the class axis."""
        return self.xp.expand_dims(per_element, axis=self.axis)

    def block(self, cut: tuple[slice, ...]) -> SoftmaxInputs:
        """These inputs restricted to one block of :meth:`block_cuts` (views; masks
        and distributions are computed afresh for the block when asked for)."""
        sub = copy.copy(self)
        sub.x = self.x[cut]
        # class indices have no class axis: the cut axis is their axis 0 either way
        sub.targets = self.targets[cut if self.labels is None else cut[-1:]]
        sub.labels = None if self.labels is None else sub.targets
        sub._masks = sub._dist = None
        return sub

    # What the definitions need, computed when first asked for.

    def label_masks(self) -> tuple[Array, Array | None, Array | None]:
        """``(labels, ignored, valid)`` for integer targets: the labels widened to the
        index dtype with every ignored or out-of-range one replaced by 0, the mask of
        ignored elements (None without ``ignore_index``), and the mask of acceptable
        labels where values could not be checked (None where they were: out-of-range
        labels have raised). ``keep`` (the labels that count) is None where all do."""
        if self._masks is None:
            xp, k = self.xp, self.num_classes
            labels = as_index_array(self.targets, xp)
            if self.reads_labels and self.ignore is None and self.where is None:
                # every label was read and is in range, none ignored: nothing to mask
                # (the common call; five full-size operations saved)
                self.keep = None
                self._masks = (labels, None, None)
                return self._masks
            keep = (labels >= 0) & (labels < k)
            acceptable = keep
            ignored = None
            if self.ignore is not None:
                ignored = labels == self.ignore
                acceptable = keep | ignored
                keep = keep & ~ignored
            if self.where is not None:  # masked elements are ignored ones
                ignored = ~self.where if ignored is None else ignored | ~self.where
                keep = keep & self.where
            valid = None if self.reads_labels else acceptable
            self.keep = keep
            self._masks = (xp.where(keep, labels, xp.zeros_like(labels)), ignored, valid)
        return self._masks

    @property
    def dist(self) -> Array:
        """The smoothed target distribution (float targets), in the compute dtype."""
        if self._dist is None:
            q = self.xp.astype(self.targets, self.x.dtype, copy=False)
            if self.b == 0.0:
                self._dist = q
            elif self.prior is None:
                self._dist = self.a * q + self.b
            else:
                self._dist = self.a * q + self.b * self.broadcast_class(self.prior)
        return self._dist

    def row_sum(self, values: Array, mass: Array | None = None) -> Array:
        """``sum_c m_c u_c values_c`` along the class axis: the smoothing term of a
        one-hot target (``q' = a q + b u``), ``u`` the prior (1 for the two
        conventions, whose share ``b`` is per class) and ``m`` class weights
        broadcast along the axis, if any. A class without mass contributes 0, even
        where ``values`` is ``-inf`` (a masked class)."""
        if self.prior is not None:
            u = self.broadcast_class(self.prior)
            mass = u if mass is None else mass * u
        if mass is None:
            return self.xp.sum(values, axis=self.axis)
        return self.xp.sum(mass_times_log(mass, values, self.xp), axis=self.axis)

    def log_probs(self) -> tuple[Array, float]:
        """``(log p / scale, scale)`` along the class axis: the log-probabilities in
        units of ``scale`` (a power of two where gaps or their sums would overflow
        the compute dtype, see ``Backend.log_prob_scale``; 1 otherwise). Softmax
        losses are linear in them and multiply the per-element loss by ``scale`` at
        the end. Probabilities
        (``from_logits=False``) have their log clamped at -100."""
        if not self.from_logits:
            return self.clamped_log(self.x), 1.0
        scale = self.backend.log_prob_scale(self.out_dtype, self.x.dtype, self.num_classes)
        if scale != 1.0:
            return scaled_log_softmax(self.x, self.axis, scale, self.xp), scale
        return self.backend.log_softmax(self.x, self.axis, self.xp), 1.0

    def label_log_probs(self) -> tuple[Array, float]:
        """``(log p_y / scale, scale)`` of integer targets: the label's
        log-probability alone (:meth:`log_probs` at the label), which a backend may
        compute without the other classes' (``Backend.label_log_prob``)."""
        labels = self.label_masks()[0]
        if self.from_logits:
            dtype, k = self.x.dtype, self.num_classes
            if self.backend.log_prob_scale(self.out_dtype, dtype, k) == 1.0:
                return self.backend.label_log_prob(self.x, labels, self.axis, self.xp), 1.0
        log_p, scale = self.log_probs()
        return self.take_class(log_p, labels), scale

    def per_class(self, value: object, name: str) -> Array:
        """A per-class parameter (weight, alpha) as an array of length K."""
        arr = as_parameter_array(value, name, self.xp, self.x)
        check_per_class(arr, name, self.num_classes)
        return arr

    def broadcast_class(self, vector: Array) -> Array:
        """Reshape a per-class vector to broadcast along the class axis."""
        shape = [1] * self.x.ndim
        shape[self.axis] = vector.shape[0]
        return self.xp.reshape(vector, tuple(shape))

    def take_class(self, values: Array, labels: Array) -> Array:
        """``values`` at the label's class (the class axis removed).

        With ``from_logits=False`` a NaN probability of another class would be left
        behind by the gather (from logits it reaches every log-probability through the
        normaliser); ``0 * sum`` of the row carries it along, and is 0 otherwise
        (``values`` are finite: clamped logs, or focal terms of them)."""
        picked = self.backend.take_class(values, labels, self.axis, self.xp)
        if self.from_logits:
            return picked
        return picked + 0.0 * self.xp.sum(values, axis=self.axis)

    def class_values(self, vector: Array, labels: Array) -> Array:
        """``vector[labels]`` for a per-class vector and in-range labels."""
        xp = self.xp
        if labels.ndim == 1:
            return xp.take(vector, labels, axis=0)
        if all(map(known_size, labels.shape)):
            flat = xp.take(vector, xp.reshape(labels, (-1,)), axis=0)
            return xp.reshape(flat, tuple(labels.shape))
        # unknown sizes (Dask after boolean indexing) cannot be flattened: select
        return masked_take(vector, labels, -1, xp)

    def finish(self, loss: Array, denominator: Array | int | None = None) -> Array:
        """Zero the ignored elements, NaN the out-of-range ones, reduce and cast back.

        ``"mean"`` divides by ``denominator`` when given (``cross_entropy``'s summed
        label weights), else by the number of elements that are not ignored.
        """
        xp = self.xp
        if self.labels is not None:
            _, ignored, valid = self.label_masks()
            if ignored is not None:
                loss = xp.where(ignored, xp.zeros_like(loss), loss)
                if denominator is None:
                    denominator = xp.sum(xp.astype(self.keep, loss.dtype))
            loss = nan_where_invalid(loss, valid, xp)
        # (with integer labels, ``where`` is folded into the ignored elements)
        return self.cast(self.reduce(loss, denominator, masked=self.labels is not None))
