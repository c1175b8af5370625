r"""The losses as gradient-boosting objectives: XGBoost, LightGBM, any Newton booster.

A booster fits each tree to the first and second derivative of the loss with respect
to its raw score (the margin, a logit). :func:`gradient_hessian` computes both
analytically for every loss of the package, on any array backend (CuPy arrays for
GPU boosting included); :func:`xgboost_objective` and :func:`lightgbm_objective` wrap
it in the callables those libraries accept, and :func:`xgboost_metric` /
:func:`lightgbm_metric` evaluate the same loss on a validation set.

Neither XGBoost nor LightGBM is imported here: the adapters recognise their data sets
by the ``get_label`` method they share.

>>> import numpy as np
>>> from arraylosses.boosting import gradient_hessian
>>> g, h = gradient_hessian("binary_cross_entropy", np.array([0.0, 2.0]), np.array([1.0, 0.0]))
>>> [round(float(v), 6) for v in g], [round(float(v), 6) for v in h]
([-0.5, 0.880797], [0.25, 0.104994])
"""

from __future__ import annotations

import math
from typing import Any

from . import _binary, _categorical
from ._compat import array_namespace, device
from ._derivatives import (
    BINARY,
    check_derivative_options,
    loss_name,
)
from ._derivatives import (
    gradient_hessian as _gradient_hessian,
)
from ._typing import Array

__all__ = [
    "gradient_hessian",
    "lightgbm_metric",
    "lightgbm_objective",
    "xgboost_metric",
    "xgboost_objective",
]

#: the default floor of the Hessian the adapters pass to the booster
MIN_HESSIAN = 1e-6


def gradient_hessian(
    loss: Any, logits: Array, targets: Array, /, **options: Any
) -> tuple[Array, Array]:
    r"""First and second derivative of the per-element loss with respect to each logit.

    For the binary losses (:func:`~arraylosses.binary_cross_entropy`,
    :func:`~arraylosses.sigmoid_focal_loss`, :func:`~arraylosses.asymmetric_loss`)
    ``dl_i/dx_i`` and ``d^2 l_i/dx_i^2``; for the softmax losses
    (:func:`~arraylosses.cross_entropy`, :func:`~arraylosses.softmax_focal_loss`) the
    gradient of each row's loss and the diagonal of its Hessian,
    ``dl/dx_j`` and ``d^2 l/dx_j^2`` (what multi-class boosters use). Both have the
    shape of ``logits``, their dtype, library and device.

    For the sigmoid focal loss with ``b = 1 - p_t`` and ``r = b'/b``:

    .. math::

        \ell' = \alpha_t b^\gamma (\gamma r\, \mathrm{BCE} + p - y'), \qquad
        \ell'' = \alpha_t b^\gamma \left(\gamma [(\gamma - 1) r^2 + r (q - p)]
                 \mathrm{BCE} + 2 \gamma r (p - y') + p q\right)

    (``q = 1 - p``; the BCE's ``p - y'`` and ``p q`` carry ``pos_weight`` and the Poly-1
    term where given). The derivatives are exact, not floored: the focal loss is not
    convex, so ``d^2 l/dx^2`` is negative for confidently wrong elements when
    ``gamma > 0``, and tiny for confident right ones. They are finite wherever the
    loss is, for every ``gamma >= 0`` (including ``0 < gamma < 1`` at saturated
    logits), computed in log space without automatic differentiation.

    Parameters
    ----------
    loss : function or str
        One of the package's losses, e.g. ``arraylosses.sigmoid_focal_loss`` or
        ``"sigmoid_focal_loss"``.
    logits : array
        Raw scores (margins): any shape for the binary losses, ``[..., K, ...]`` with
        the class axis at ``axis`` for the softmax losses.
    targets : array
        As the loss takes them: binary targets in ``[0, 1]`` broadcastable to
        ``logits``; class indices or a distribution for the softmax losses.
    **options
        The loss's options that shape its per-element value: ``alpha``, ``gamma``
        (a float or an array; a callable gamma is refused: pass its values),
        ``label_smoothing``, ``smoothing``, ``weight``, ``pos_weight``,
        ``poly_epsilon``, ``gamma_pos``, ``gamma_neg``, ``clip``, ``axis``, as the
        loss accepts them. ``reduction``, ``where``, ``normalizer`` and
        ``ignore_index`` have no per-element meaning and raise ``TypeError``.

    Returns
    -------
    (gradient, hessian) : tuple of arrays
        Each of the shape of ``logits``.

    Examples
    --------
    >>> import numpy as np
    >>> import arraylosses as al
    >>> g, h = gradient_hessian(al.sigmoid_focal_loss, np.array([3.0]), np.array([0.0]))
    >>> round(float(g[0]), 4), round(float(h[0]), 4)
    (0.8451, -0.0151)
    """
    return _gradient_hessian(loss, logits, targets, **options)


# -------------------------------------------------------------------- adapters


def _check_min_hessian(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`min_hessian` must be a float >= 0; got {value!r}.")
    v = float(value)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"`min_hessian` must be a finite float >= 0; got {value!r}.")
    return v


class _Adapter:
    """What the objectives and the metrics share: the loss, its options, and turning
    a booster's margins and float labels into the loss's logits and targets."""

    def __init__(self, loss: Any, options: dict[str, Any], what: str) -> None:
        self.loss = loss_name(loss)
        check_derivative_options(self.loss, options)
        if "axis" in options:
            raise TypeError(
                "`axis` is fixed by the booster's layout (classes last); do not pass it."
            )
        self.options = options
        self.binary = self.loss in BINARY
        self.__name__ = f"{self.loss}_{what}"

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({self.loss!r}{options})"

    def layout(self, margins: Any, labels: Any) -> tuple[Any, Any, Any]:
        """``(xp, logits, targets)`` from what the booster passes."""
        xp = array_namespace(margins)
        labels = _on(xp, labels, margins)
        if self.binary:
            if margins.ndim == 2 and margins.shape[1] == 1:
                margins = xp.reshape(margins, (-1,))
            size = math.prod(int(n) for n in margins.shape)
            if margins.ndim == 2 and labels.ndim == 1 and int(labels.shape[0]) == size:
                labels = xp.reshape(labels, tuple(margins.shape))  # multi-label, flattened
            if margins.ndim == 2 and labels.ndim == 1:
                raise ValueError(
                    f"{self.loss} is a binary loss, but the booster passes margins of "
                    f"shape {tuple(margins.shape)}: a multi-class booster (num_class="
                    f"{margins.shape[1]}). Use softmax_focal_loss or cross_entropy for "
                    f"multi-class, or binary labels of shape {tuple(margins.shape)} for "
                    "multi-label."
                )
            if tuple(labels.shape) != tuple(margins.shape):
                labels = xp.reshape(labels, tuple(margins.shape))
            return xp, margins, labels
        if margins.ndim != 2:
            raise ValueError(
                f"{self.loss} is a multi-class loss, but the booster passes margins of "
                f"shape {tuple(margins.shape)}: a binary or regression booster. Set "
                "num_class to the number of classes (objective 'multi:softprob' in "
                "XGBoost, 'multiclass' in LightGBM when it is not a callable)."
            )
        k = int(margins.shape[1])
        for name in ("alpha", "weight", "smoothing"):
            value = self.options.get(name)
            if value is not None and not isinstance(value, (str, int, float)):
                n = len(value) if not hasattr(value, "shape") else int(value.shape[0])
                if n != k:
                    raise ValueError(f"`{name}` has {n} entries but the booster has num_class={k}.")
        labels = xp.reshape(labels, (-1,))
        as_int = xp.astype(labels, xp.int64)
        if not bool(xp.all(xp.astype(as_int, labels.dtype) == labels)) or not bool(
            xp.all((as_int >= 0) & (as_int < k))
        ):
            raise ValueError(
                f"the labels of a booster with num_class={k} must be the class indices "
                f"0..{k - 1}; got values from {float(xp.min(labels))} to "
                f"{float(xp.max(labels))}."
            )
        return xp, margins, as_int

    def weights(self, xp: Any, weight: Any, like: Any) -> Any | None:
        """Per-sample weights broadcast to the margins' shape, None when absent."""
        if weight is None or getattr(weight, "size", 1) == 0:
            return None
        w = _on(xp, weight, like)
        return w if like.ndim == 1 else w[:, None]

    def derivatives(
        self, margins: Any, labels: Any, weight: Any, min_hessian: float
    ) -> tuple[Any, Any]:
        xp, logits, targets = self.layout(margins, labels)
        grad, hess = _gradient_hessian(self.loss, logits, targets, **self.options)
        hess = xp.clip(hess, min=min_hessian)
        w = self.weights(xp, weight, logits)
        if w is not None:
            grad, hess = grad * w, hess * w
        return grad, hess

    def value(self, margins: Any, labels: Any, weight: Any) -> float:
        """The weighted mean per-sample loss."""
        xp, logits, targets = self.layout(margins, labels)
        function = getattr(_binary if self.binary else _categorical, self.loss)
        per = function(logits, targets, reduction="none", **self.options)
        w = self.weights(xp, weight, logits)
        if w is None:
            return float(xp.mean(per))
        if per.ndim != w.ndim:  # softmax: one loss per sample
            w = w[:, 0]
        w = xp.broadcast_to(w, tuple(per.shape))
        return float(xp.sum(per * w) / xp.sum(w))


def _on(xp: Any, values: Any, like: Any) -> Any:
    """``values`` (labels, weights: NumPy from the booster) as a floating array of
    ``like``'s namespace and device."""
    return xp.asarray(values, dtype=like.dtype, device=device(like))


def _is_data_set(value: object) -> bool:
    return hasattr(value, "get_label")


class _Objective(_Adapter):
    """An objective: the loss's derivatives, the Hessian floored at ``min_hessian``."""

    def __init__(self, loss: Any, min_hessian: float, options: dict[str, Any]) -> None:
        super().__init__(loss, options, "objective")
        self.min_hessian = _check_min_hessian(min_hessian)


class XGBoostObjective(_Objective):
    """A custom objective for XGBoost; see :func:`xgboost_objective`."""

    def __call__(self, first: Any, second: Any, sample_weight: Any = None) -> tuple[Any, Any]:
        if _is_data_set(second):  # xgboost.train(obj=...): (margins, DMatrix)
            margins, labels, weight = first, second.get_label(), second.get_weight()
        else:  # XGBClassifier(objective=...): (y_true, y_pred, sample_weight)
            margins, labels, weight = second, first, sample_weight
        return self.derivatives(margins, labels, weight, self.min_hessian)


class LightGBMObjective(_Objective):
    """A custom objective for LightGBM; see :func:`lightgbm_objective`."""

    # three parameters: LGBMClassifier counts them and passes (y_true, y_pred, weight)
    def __call__(self, first: Any, second: Any, weight: Any = None) -> tuple[Any, Any]:
        if _is_data_set(second):  # lightgbm.train: (preds, Dataset)
            margins, labels, weight = first, second.get_label(), second.get_weight()
        else:
            margins, labels = second, first
        return self.derivatives(margins, labels, weight, self.min_hessian)


class _Metric(_Adapter):
    """A metric: the weighted mean per-sample loss."""

    def __init__(self, loss: Any, options: dict[str, Any]) -> None:
        super().__init__(loss, options, "loss")


class XGBoostMetric(_Metric):
    """An evaluation metric for XGBoost; see :func:`xgboost_metric`."""

    def __call__(self, first: Any, second: Any, sample_weight: Any = None) -> Any:
        if _is_data_set(second):  # xgboost.train(custom_metric=...)
            return self.__name__, self.value(first, second.get_label(), second.get_weight())
        return self.value(second, first, sample_weight)  # XGBClassifier(eval_metric=...)


class LightGBMMetric(_Metric):
    """An evaluation metric for LightGBM; see :func:`lightgbm_metric`."""

    def __call__(self, first: Any, second: Any, weight: Any = None) -> tuple[str, float, bool]:
        if _is_data_set(second):  # lightgbm.train(feval=...)
            value = self.value(first, second.get_label(), second.get_weight())
        else:  # LGBMClassifier.fit(eval_metric=...)
            value = self.value(second, first, weight)
        return self.__name__, value, False


def xgboost_objective(
    loss: Any, /, *, min_hessian: float = MIN_HESSIAN, **options: Any
) -> XGBoostObjective:
    """A custom objective for ``xgboost.train(obj=...)`` and
    ``XGBClassifier(objective=...)``.

    Binary losses take a booster with one output (labels 0/1, or a ``[n, T]`` label
    matrix for multi-label); the softmax losses a multi-class booster (``num_class``
    set; XGBoost passes margins ``[n, num_class]`` and float class labels). Sample
    weights of the ``DMatrix`` (or ``sample_weight=`` of ``fit``) multiply both
    derivatives. ``xgboost.train`` reads ``base_score`` as a margin under a custom
    objective: ``base_score=0`` starts every sample at ``p = 1/2`` (what
    ``binary:logistic`` does with ``base_score=0.5``). ``XGBClassifier`` reads it as
    a probability: leave it unset (or 0.5). Predictions are margins
    (``output_margin=True``; apply the sigmoid or softmax).

    The objective passes the booster ``hessian = max(d^2 l/dx^2, min_hessian)``
    (times the sample weight): a Newton booster divides the summed gradient by the
    summed Hessian, and the focal loss is not convex (``gamma > 0`` gives a negative
    Hessian for confidently wrong samples and a tiny one for confident right ones), so
    an unfloored Hessian can send a leaf's step to infinity or the wrong way. With
    ``gamma = 0`` (the BCE and cross-entropy, which are convex) the floor only
    matters where the Hessian is below it. :func:`gradient_hessian` itself stays
    exact.

    Parameters
    ----------
    loss : function or str
        One of the package's losses.
    min_hessian : float, default 1e-6
        The floor of the Hessian passed to the booster (see above).
    **options
        The loss's options, as for :func:`gradient_hessian` (no ``axis``: classes are
        last).

    Examples
    --------
    >>> import arraylosses as al
    >>> from arraylosses.boosting import xgboost_objective
    >>> xgboost_objective(al.sigmoid_focal_loss, gamma=2.0, alpha=0.25)
    XGBoostObjective('sigmoid_focal_loss', gamma=2.0, alpha=0.25)
    """
    return XGBoostObjective(loss, min_hessian, options)


def lightgbm_objective(
    loss: Any, /, *, min_hessian: float = MIN_HESSIAN, **options: Any
) -> LightGBMObjective:
    """A custom objective for ``lightgbm.train(params={"objective": ...})`` and
    ``LGBMClassifier(objective=...)``.

    LightGBM passes raw scores ``[n]`` (binary) or ``[n, num_class]`` (multi-class,
    ``num_class`` set in the parameters) and float labels; the weights of the
    ``Dataset`` (or ``sample_weight=`` of ``fit``) multiply both derivatives. Under a
    custom objective LightGBM starts every score at 0 (no ``boost_from_average``) and
    ``predict`` / ``predict_proba`` return raw scores: apply the sigmoid or softmax.

    The objective passes the booster ``hessian = max(d^2 l/dx^2, min_hessian)``
    (times the sample weight): a Newton booster divides the summed gradient by the
    summed Hessian, and the focal loss is not convex (``gamma > 0`` gives a negative
    Hessian for confidently wrong samples and a tiny one for confident right ones), so
    an unfloored Hessian can send a leaf's step to infinity or the wrong way. With
    ``gamma = 0`` (the BCE and cross-entropy, which are convex) the floor only
    matters where the Hessian is below it. :func:`gradient_hessian` itself stays
    exact.

    Parameters
    ----------
    loss : function or str
        One of the package's losses.
    min_hessian : float, default 1e-6
        The floor of the Hessian passed to the booster (see above).
    **options
        The loss's options, as for :func:`gradient_hessian` (no ``axis``).
    """
    return LightGBMObjective(loss, min_hessian, options)


def xgboost_metric(loss: Any, /, **options: Any) -> XGBoostMetric:
    """The loss as an evaluation metric: ``xgboost.train(custom_metric=...)``
    (returns ``(name, value)``) and ``XGBClassifier(eval_metric=...)`` (returns the
    value). The value is the mean per-sample loss of the margins, weighted by the
    sample weights where given; lower is better."""
    return XGBoostMetric(loss, options)


def lightgbm_metric(loss: Any, /, **options: Any) -> LightGBMMetric:
    """The loss as an evaluation metric: ``lightgbm.train(feval=...)`` and
    ``LGBMClassifier.fit(eval_metric=...)``; returns ``(name, value, False)`` (lower
    is better), the weighted mean per-sample loss of the raw scores."""
    return LightGBMMetric(loss, options)
