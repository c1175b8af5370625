"""``torch.nn.Module`` losses over the functional ones, for ``criterion = ...(...)``.

One module per loss, thin: the options go to ``__init__`` with the functional
defaults, ``forward(input, target)`` calls the function. Per-class and per-element
arrays (``weight``, ``pos_weight``, ``alpha``, a gamma tensor, a smoothing prior) are
registered as buffers, so that ``.to(device)``, ``.half()`` and ``state_dict()``
carry them with the model. Per-batch values (a ``where`` mask, a ``normalizer`` such
as the number of positive anchors) are arguments of ``forward``. Importing this module
imports torch; ``import arraylosses`` does not.

>>> import torch
>>> from arraylosses.torch import SigmoidFocalLoss
>>> criterion = SigmoidFocalLoss(alpha=0.25, gamma=2.0)
>>> criterion
SigmoidFocalLoss(alpha=0.25, gamma=2.0)
>>> round(float(criterion(torch.tensor([3.0, -3.0]), torch.tensor([1.0, 0.0]))), 6)
5.5e-05
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from ._binary import asymmetric_loss, binary_cross_entropy, sigmoid_focal_loss
from ._categorical import cross_entropy, softmax_focal_loss
from ._validation import check_loss_options

__all__ = [
    "AsymmetricLoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "SigmoidFocalLoss",
    "SoftmaxFocalLoss",
]

#: options that may hold arrays, registered as buffers
_ARRAY_OPTIONS = ("weight", "pos_weight", "alpha", "gamma", "smoothing")


class _Loss(torch.nn.Module):
    """Stores the options (arrays as buffers) and calls ``function`` in ``forward``."""

    function: ClassVar[Callable[..., torch.Tensor]]
    defaults: ClassVar[dict[str, Any]]
    #: ``alpha`` may be a per-class array (else a float in [0, 1] or None)
    array_alpha: ClassVar[bool] = False

    def __init__(self, options: dict[str, Any]) -> None:
        check_loss_options(options, array_alpha=self.array_alpha)
        super().__init__()
        self._scalars: dict[str, Any] = {}
        self._tensors: list[str] = []
        for name, value in options.items():
            scalar = isinstance(value, (int, float)) and not isinstance(value, bool)
            if name in ("weight", "pos_weight") and not (_is_array_like(value) or scalar):
                raise TypeError(
                    f"`{name}` must be a tensor, a sequence of floats or a float; got {value!r}."
                )
            if name in _ARRAY_OPTIONS and _is_array_like(value):
                self.register_buffer(name, _as_tensor(value, name))
                self._tensors.append(name)
            else:
                self._scalars[name] = value

    def _options(self) -> dict[str, Any]:
        options = dict(self._scalars)
        for name in self._tensors:
            options[name] = getattr(self, name)
        return options

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        where: torch.Tensor | None = None,
        normalizer: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of ``input`` (logits, or probabilities with ``from_logits=False``)
        against ``target``; ``where`` and ``normalizer`` as in the function."""
        options = self._options()
        if where is not None:
            options["where"] = where
        if normalizer is not None:
            options["normalizer"] = normalizer
        return type(self).function(input, target, **options)

    def extra_repr(self) -> str:
        shown = []
        for name, value in self._scalars.items():
            if value != self.defaults.get(name, object()) or name in ("alpha", "gamma"):
                text = getattr(value, "__name__", None) if callable(value) else None
                shown.append(f"{name}={text or repr(value)}")
        for name in self._tensors:
            shown.append(f"{name}=<buffer {tuple(getattr(self, name).shape)}>")
        return ", ".join(shown)


def _is_array_like(value: object) -> bool:
    return isinstance(value, (torch.Tensor, list, tuple)) or hasattr(value, "__array__")


def _as_tensor(value: object, name: str) -> torch.Tensor:
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"`{name}` must be a tensor or a sequence of floats; got {value!r}."
        ) from exc
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"`{name}` must be real; got dtype {tensor.dtype}.")
    return tensor if tensor.is_floating_point() else tensor.to(torch.get_default_dtype())


class BCEWithLogitsLoss(_Loss):
    """:func:`arraylosses.binary_cross_entropy` as a module (PyTorch's
    ``nn.BCEWithLogitsLoss``, with label smoothing and Poly-1)."""

    function = staticmethod(binary_cross_entropy)
    defaults: ClassVar[dict[str, Any]] = {
        "label_smoothing": 0.0, "smoothing": "uniform", "from_logits": True,
        "reduction": "mean", "poly_epsilon": 0.0,
    }  # fmt: skip

    def __init__(
        self,
        *,
        weight: Any = None,
        pos_weight: Any = None,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        reduction: str = "mean",
        poly_epsilon: float = 0.0,
    ) -> None:
        options = {
            k: v for k, v in (("weight", weight), ("pos_weight", pos_weight)) if v is not None
        }
        super().__init__({
            **options, "label_smoothing": label_smoothing, "smoothing": smoothing,
            "from_logits": from_logits, "reduction": reduction, "poly_epsilon": poly_epsilon,
        })  # fmt: skip


class SigmoidFocalLoss(_Loss):
    """:func:`arraylosses.sigmoid_focal_loss` as a module (Lin et al. 2017)."""

    function = staticmethod(sigmoid_focal_loss)
    defaults: ClassVar[dict[str, Any]] = {
        "alpha": 0.25, "gamma": 2.0, "label_smoothing": 0.0, "smoothing": "uniform",
        "from_logits": True, "reduction": "mean", "poly_epsilon": 0.0,
    }  # fmt: skip

    def __init__(
        self,
        *,
        alpha: float | None = 0.25,
        gamma: float | Any = 2.0,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        reduction: str = "mean",
        weight: Any = None,
        pos_weight: Any = None,
        poly_epsilon: float = 0.0,
    ) -> None:
        options = {
            k: v for k, v in (("weight", weight), ("pos_weight", pos_weight)) if v is not None
        }
        super().__init__({
            "alpha": alpha, "gamma": gamma, "label_smoothing": label_smoothing,
            "smoothing": smoothing, "from_logits": from_logits, "reduction": reduction,
            **options, "poly_epsilon": poly_epsilon,
        })  # fmt: skip


class AsymmetricLoss(_Loss):
    """:func:`arraylosses.asymmetric_loss` as a module (Ridnik et al. 2021)."""

    function = staticmethod(asymmetric_loss)
    defaults: ClassVar[dict[str, Any]] = {
        "gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05, "label_smoothing": 0.0,
        "smoothing": "uniform", "from_logits": True, "reduction": "mean",
    }  # fmt: skip

    def __init__(
        self,
        *,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__({
            "gamma_pos": gamma_pos, "gamma_neg": gamma_neg, "clip": clip,
            "label_smoothing": label_smoothing, "smoothing": smoothing,
            "from_logits": from_logits, "reduction": reduction,
        })  # fmt: skip


class CrossEntropyLoss(_Loss):
    """:func:`arraylosses.cross_entropy` as a module (PyTorch's ``nn.CrossEntropyLoss``
    semantics, with any class axis, both smoothing conventions or a prior, Poly-1)."""

    function = staticmethod(cross_entropy)
    defaults: ClassVar[dict[str, Any]] = {
        "axis": -1, "ignore_index": None, "label_smoothing": 0.0, "smoothing": "uniform",
        "from_logits": True, "reduction": "mean", "poly_epsilon": 0.0,
    }  # fmt: skip

    def __init__(
        self,
        *,
        axis: int = -1,
        weight: Any = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        reduction: str = "mean",
        poly_epsilon: float = 0.0,
    ) -> None:
        options = {} if weight is None else {"weight": weight}
        super().__init__({
            "axis": axis, **options, "ignore_index": ignore_index,
            "label_smoothing": label_smoothing, "smoothing": smoothing,
            "from_logits": from_logits, "reduction": reduction, "poly_epsilon": poly_epsilon,
        })  # fmt: skip


class SoftmaxFocalLoss(_Loss):
    """:func:`arraylosses.softmax_focal_loss` as a module."""

    function = staticmethod(softmax_focal_loss)
    array_alpha = True
    defaults: ClassVar[dict[str, Any]] = {
        "alpha": None, "gamma": 2.0, "axis": -1, "ignore_index": None,
        "label_smoothing": 0.0, "smoothing": "uniform", "from_logits": True,
        "reduction": "mean", "poly_epsilon": 0.0,
    }  # fmt: skip

    def __init__(
        self,
        *,
        alpha: Any = None,
        gamma: float | Any = 2.0,
        axis: int = -1,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        smoothing: Any = "uniform",
        from_logits: bool = True,
        reduction: str = "mean",
        poly_epsilon: float = 0.0,
    ) -> None:
        super().__init__({
            "alpha": alpha, "gamma": gamma, "axis": axis, "ignore_index": ignore_index,
            "label_smoothing": label_smoothing, "smoothing": smoothing,
            "from_logits": from_logits, "reduction": reduction, "poly_epsilon": poly_epsilon,
        })  # fmt: skip
