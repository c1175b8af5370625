"""Keras 3 losses over the functional ones, for ``model.compile(loss=...)``.

One ``keras.losses.Loss`` subclass per loss, thin: the options go to ``__init__``
(with the functional defaults, ``from_logits=True`` included: pass
``from_logits=False`` for a model that ends in a sigmoid or softmax), ``call(y_true,
y_pred)`` returns the loss of each sample, and Keras applies its ``reduction``, masks
and ``sample_weight`` to it, as it does for its own losses. Binary losses average
over the last axis (Keras's convention for ``binary_crossentropy``; ``[batch]``
predictions give one loss per sample); softmax losses take the classes on the last
axis and integer class indices (``[batch]`` or ``[batch, 1]``, Keras's sparse
layout, which Keras hands over as floats) or a one-hot / probability ``y_true`` of
the shape of ``y_pred``.

``get_config`` / ``from_config`` round-trip every option, and the classes are
registered with Keras (package ``arraylosses``), so a saved model reloads with
``keras.models.load_model`` alone. They run on the JAX, PyTorch and NumPy backends of
Keras (NumPy: ``evaluate`` and ``predict``; Keras trains on the other two); the
TensorFlow and OpenVINO backends, whose tensors array-api-compat does not support,
are refused at construction. Importing this module imports keras; ``import
arraylosses`` does not.

>>> import numpy as np
>>> from arraylosses.keras import SigmoidFocalLoss
>>> loss = SigmoidFocalLoss(alpha=0.25, gamma=2.0)
>>> round(float(loss(np.array([[1.0], [0.0]]), np.array([[3.0], [-3.0]]))), 6)
5.5e-05
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, ClassVar

try:
    import keras
except ModuleNotFoundError as exc:  # Keras without KERAS_BACKEND imports TensorFlow
    if (exc.name or "").split(".")[0] != "tensorflow":
        raise
    raise ModuleNotFoundError(
        "Keras is set to its TensorFlow backend (the default when KERAS_BACKEND is unset), "
        "which is not installed here and which arraylosses.keras does not run on: set "
        "KERAS_BACKEND=jax, torch or numpy before importing keras.",
        name=exc.name,
    ) from exc

from ._binary import asymmetric_loss, binary_cross_entropy, sigmoid_focal_loss
from ._categorical import cross_entropy, softmax_focal_loss
from ._compat import array_namespace
from ._validation import check_loss_options
from ._weighting import flsd53_gamma

__all__ = [
    "AsymmetricLoss",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "SigmoidFocalLoss",
    "SoftmaxFocalLoss",
]

#: the Keras backends whose tensors the functions accept
SUPPORTED_BACKENDS = ("jax", "torch", "numpy")

#: callables a config can name (a gamma schedule is saved by its name)
_CALLABLES: dict[str, Callable[..., Any]] = {"flsd53_gamma": flsd53_gamma}


def _check_backend() -> None:
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise RuntimeError(
            f"arraylosses.keras runs on the Keras backends {', '.join(SUPPORTED_BACKENDS)}; "
            f"this Keras uses {backend!r}, whose tensors array-api-compat does not support. "
            "Set KERAS_BACKEND=jax (or torch) before importing keras."
        )


def _plain(value: Any, name: str) -> Any:
    """An option as a config can hold it: arrays and tensors become nested lists."""
    if value is None or isinstance(value, (str, bool, numbers.Real)):
        return value
    if callable(value) and not hasattr(value, "shape"):
        return value
    try:
        array = keras.ops.convert_to_numpy(value).astype(float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`{name}` must be a float, a sequence of floats or an array; got {value!r}."
        ) from exc
    return array.tolist()


class _Loss(keras.losses.Loss):  # type: ignore[misc]
    """Stores the options and calls ``function`` on ``(y_pred, y_true)``."""

    function: ClassVar[Callable[..., Any]]
    binary: ClassVar[bool]
    #: ``alpha`` may be a per-class array (else a float in [0, 1] or None)
    array_alpha: ClassVar[bool] = False

    def __init__(
        self, options: dict[str, Any], name: str | None, reduction: Any, dtype: Any
    ) -> None:
        check_loss_options(options, array_alpha=self.array_alpha)
        _check_backend()
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.options = {k: _plain(v, k) for k, v in options.items()}

    def call(self, y_true: Any, y_pred: Any) -> Any:
        xp = array_namespace(y_pred)
        options = dict(self.options)
        if self.binary:
            targets = _binary_targets(xp, y_true, y_pred)
            loss = type(self).function(y_pred, targets, reduction="none", **options)
            return xp.mean(loss, axis=-1) if loss.ndim > 1 else loss
        targets = _softmax_targets(xp, y_true, y_pred, options.get("axis", -1))
        return type(self).function(y_pred, targets, reduction="none", **options)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        for name, value in self.options.items():
            if callable(value):
                known = {f: n for n, f in _CALLABLES.items()}
                if value not in known:
                    raise TypeError(
                        f"`{name}`={value!r} cannot be saved in a Keras config; pass its "
                        f"values as an array, or one of {', '.join(_CALLABLES)}."
                    )
                value = {"arraylosses_callable": known[value]}
            config[name] = value
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _Loss:
        config = dict(config)
        for name, value in config.items():
            if isinstance(value, dict) and set(value) == {"arraylosses_callable"}:
                config[name] = _CALLABLES[value["arraylosses_callable"]]
        return cls(**config)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({options})"


def _shape(a: Any) -> tuple[Any, ...]:
    return tuple(a.shape)


def _binary_targets(xp: Any, y_true: Any, y_pred: Any) -> Any:
    """``y_true`` of the shape of ``y_pred`` (Keras's ``[batch]`` against
    ``[batch, 1]`` aligned), or a ValueError."""
    if y_true.ndim == y_pred.ndim - 1 and _shape(y_pred)[-1] == 1:
        y_true = y_true[..., None]
    elif y_true.ndim == y_pred.ndim + 1 and _shape(y_true)[-1] == 1:
        y_true = y_true[..., 0]
    if _shape(y_true) != _shape(y_pred):
        raise ValueError(
            f"`y_true` must have the shape of `y_pred` {_shape(y_pred)} (one target per "
            f"output); got {_shape(y_true)}."
        )
    return y_true


def _softmax_targets(xp: Any, y_true: Any, y_pred: Any, axis: int) -> Any:
    """Integer class indices or a distribution, as ``y_true``'s shape says."""
    shape = _shape(y_pred)
    ax = axis % len(shape)
    without = shape[:ax] + shape[ax + 1 :]
    if _shape(y_true) == shape:
        return y_true
    if _shape(y_true) == without or (
        _shape(y_true)[: len(without)] == without and _shape(y_true)[len(without) :] == (1,)
    ):
        labels = xp.reshape(y_true, without) if _shape(y_true) != without else y_true
        return xp.astype(labels, xp.int32)
    raise ValueError(
        f"`y_true` must be class indices of shape {without} (or {(*without, 1)}) or a "
        f"one-hot / probability array of the shape of `y_pred` {shape}; got "
        f"{_shape(y_true)}."
    )


def _register(cls: type) -> type:
    return keras.saving.register_keras_serializable(package="arraylosses")(cls)  # type: ignore[no-any-return]


@_register
class BinaryCrossEntropy(_Loss):
    """:func:`arraylosses.binary_cross_entropy` as a Keras loss (Keras's
    ``BinaryCrossentropy``, with ``pos_weight``, both smoothing conventions or a prior,
    and Poly-1)."""

    function = staticmethod(binary_cross_entropy)
    binary = True

    def __init__(
        self,
        *,
        weight: Any = None,
        pos_weight: Any = None,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        poly_epsilon: float = 0.0,
        reduction: Any = "sum_over_batch_size",
        name: str | None = "binary_cross_entropy",
        dtype: Any = None,
    ) -> None:
        options = {
            k: v for k, v in (("weight", weight), ("pos_weight", pos_weight)) if v is not None
        }
        super().__init__(
            {**options, "label_smoothing": label_smoothing, "smoothing": smoothing,
             "from_logits": from_logits, "poly_epsilon": poly_epsilon},
            name, reduction, dtype,
        )  # fmt: skip


@_register
class SigmoidFocalLoss(_Loss):
    """:func:`arraylosses.sigmoid_focal_loss` as a Keras loss (Lin et al. 2017; Keras's
    ``BinaryFocalCrossentropy`` with ``apply_class_balancing=alpha is not None``)."""

    function = staticmethod(sigmoid_focal_loss)
    binary = True

    def __init__(
        self,
        *,
        alpha: float | None = 0.25,
        gamma: Any = 2.0,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        weight: Any = None,
        pos_weight: Any = None,
        poly_epsilon: float = 0.0,
        reduction: Any = "sum_over_batch_size",
        name: str | None = "sigmoid_focal_loss",
        dtype: Any = None,
    ) -> None:
        options = {
            k: v for k, v in (("weight", weight), ("pos_weight", pos_weight)) if v is not None
        }
        super().__init__(
            {"alpha": alpha, "gamma": gamma, "label_smoothing": label_smoothing,
             "smoothing": smoothing, "from_logits": from_logits, **options,
             "poly_epsilon": poly_epsilon},
            name, reduction, dtype,
        )  # fmt: skip


@_register
class AsymmetricLoss(_Loss):
    """:func:`arraylosses.asymmetric_loss` as a Keras loss (Ridnik et al. 2021)."""

    function = staticmethod(asymmetric_loss)
    binary = True

    def __init__(
        self,
        *,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        reduction: Any = "sum_over_batch_size",
        name: str | None = "asymmetric_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            {"gamma_pos": gamma_pos, "gamma_neg": gamma_neg, "clip": clip,
             "label_smoothing": label_smoothing, "smoothing": smoothing,
             "from_logits": from_logits},
            name, reduction, dtype,
        )  # fmt: skip


@_register
class CrossEntropy(_Loss):
    """:func:`arraylosses.cross_entropy` as a Keras loss (Keras's
    ``CategoricalCrossentropy`` and ``SparseCategoricalCrossentropy`` in one, as
    ``y_true``'s shape says, with class ``weight``, both smoothing conventions or a
    prior, and Poly-1). With class indices and ``weight``, each sample's loss is
    ``w_y`` times its cross-entropy (Keras then averages over the batch, not over the
    summed weights as PyTorch's ``"mean"`` does)."""

    function = staticmethod(cross_entropy)
    binary = False

    def __init__(
        self,
        *,
        axis: int = -1,
        weight: Any = None,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        poly_epsilon: float = 0.0,
        reduction: Any = "sum_over_batch_size",
        name: str | None = "cross_entropy",
        dtype: Any = None,
    ) -> None:
        options = {} if weight is None else {"weight": weight}
        super().__init__(
            {"axis": axis, **options, "label_smoothing": label_smoothing,
             "smoothing": smoothing, "from_logits": from_logits,
             "poly_epsilon": poly_epsilon},
            name, reduction, dtype,
        )  # fmt: skip


@_register
class SoftmaxFocalLoss(_Loss):
    """:func:`arraylosses.softmax_focal_loss` as a Keras loss (Keras's
    ``CategoricalFocalCrossentropy`` for a float ``alpha``, without its 1e-7
    probability clip; class indices accepted too)."""

    function = staticmethod(softmax_focal_loss)
    binary = False
    array_alpha = True

    def __init__(
        self,
        *,
        alpha: Any = None,
        gamma: Any = 2.0,
        axis: int = -1,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        poly_epsilon: float = 0.0,
        reduction: Any = "sum_over_batch_size",
        name: str | None = "softmax_focal_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            {"alpha": alpha, "gamma": gamma, "axis": axis,
             "label_smoothing": label_smoothing, "smoothing": smoothing,
             "from_logits": from_logits, "poly_epsilon": poly_epsilon},
            name, reduction, dtype,
        )  # fmt: skip
