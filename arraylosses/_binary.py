"""Binary (sigmoid) losses: binary cross-entropy and sigmoid focal loss.

Each public function reads top to bottom: validate once (``BinaryInputs``), delegate
where the backend has a native path, otherwise the definition (``_elementwise``) and
the reduction.
"""

from __future__ import annotations

from ._backends import quiet_overflow
from ._elementwise import binary_cross_entropy as binary_cross_entropy_terms
from ._elementwise import binary_terms, sigmoid_focal
from ._inputs import BinaryInputs
from ._primitives import needs_log_base
from ._typing import Array
from ._validation import check_gamma, check_unit_interval


@quiet_overflow
def binary_cross_entropy(
    logits: Array,
    targets: Array,
    /,
    *,
    weight: Array | None = None,
    pos_weight: Array | None = None,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> Array:
    r"""Binary cross-entropy on logits, with optional label smoothing.

    With ``x`` the logits, ``y'`` the (smoothed) targets, ``w`` the weight and
    ``w_+`` the positive weight:

    .. math::

        \ell = -w \left[ w_+\, y' \log \sigma(x) + (1 - y') \log \sigma(-x) \right]

    computed in log space (no overflow for any finite logit, exact gradient at 0).
    With ``label_smoothing = 0`` it equals PyTorch's
    ``binary_cross_entropy_with_logits(logits, targets, weight, pos_weight=pos_weight,
    reduction=reduction)``; with ``eps > 0`` the targets are smoothed first:
    ``y' = (1 - eps) y + eps/2`` (``"uniform"``, as Keras's ``binary_crossentropy``)
    or ``y' = (1 - eps) y + eps (1 - y)`` (``"others"``).

    Parameters
    ----------
    logits : array
        Real floating logits of any shape ``[...]``; with ``from_logits=False``,
        probabilities in ``[0, 1]`` (log-probabilities are clamped at -100 as PyTorch's
        ``binary_cross_entropy`` does).
    targets : array
        Targets in ``[0, 1]`` broadcastable to ``logits``: float (soft targets allowed),
        bool or integer 0/1.
    weight, pos_weight : array, sequence or float, optional
        Broadcastable to ``logits``: a per-element rescaling and the weight of the
        positive term (``pos_weight = #neg / #pos`` balances classes), as in PyTorch.
    label_smoothing : float, default 0.0
        ``eps`` in ``[0, 1]``.
    smoothing : {"uniform", "others"}, default "uniform"
        ``"uniform"``: ``q' = (1 - eps) q + eps/K``; ``"others"``: the true class keeps
        ``1 - eps`` and the others share ``eps`` (see :func:`smooth_labels`).
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: that sum
        divided by the number of elements of ``logits``.

    Returns
    -------
    array
        Shape of ``logits`` for ``"none"``, a 0-d array otherwise; dtype, library and
        device of ``logits``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> logits = xp.asarray([0.0, 2.0, -1.0])
    >>> targets = xp.asarray([1.0, 1.0, 0.0])
    >>> round(float(al.binary_cross_entropy(logits, targets, reduction="sum")), 6)
    1.133337

    References
    ----------
    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016, section 7 (label smoothing). The unsmoothed loss reproduces PyTorch's
    ``binary_cross_entropy_with_logits``.
    """
    inputs = BinaryInputs(logits, targets, label_smoothing, smoothing, from_logits, reduction)
    pw = None if pos_weight is None else inputs.parameter(pos_weight, "pos_weight")
    w = None if weight is None else inputs.parameter(weight, "weight")
    log_p, log_q = inputs.log_probs()
    loss = binary_cross_entropy_terms(log_p, log_q, inputs.y, pos_weight=pw)
    return inputs.finish(loss if w is None else w * loss)


@quiet_overflow
def sigmoid_focal_loss(
    logits: Array,
    targets: Array,
    /,
    *,
    alpha: float | None = 0.25,
    gamma: float | Array = 2.0,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> Array:
    r"""Sigmoid focal loss (Lin et al. 2017, RetinaNet).

    Down-weights well-classified examples so that training on a heavily imbalanced
    problem (dense detection: ~100 000 easy background anchors per image) is not
    swamped by the easy majority. With ``p = sigmoid(x)`` and ``y'`` the (smoothed)
    target:

    .. math::

        p_t = p\, y' + (1 - p)(1 - y'), \qquad
        \alpha_t = \alpha\, y' + (1 - \alpha)(1 - y')

        \ell = -\alpha_t\, (1 - p_t)^\gamma
               \left[ y' \log p + (1 - y') \log (1 - p) \right]

    with ``alpha_t = 1`` when ``alpha`` is None. For 0/1 targets this is torchvision's
    ``sigmoid_focal_loss``; elementwise it is optax's ``sigmoid_focal_loss``; it is
    Keras's ``binary_focal_crossentropy(apply_class_balancing=alpha is not None)``
    before Keras's mean over the last axis. ``gamma = 0`` gives (alpha-weighted) binary
    cross-entropy exactly. Gradients are finite for every ``gamma >= 0``, including
    ``0 < gamma < 1`` at saturated logits.

    Parameters
    ----------
    logits : array
        Real floating logits, any shape ``[...]`` (probabilities if
        ``from_logits=False``).
    targets : array
        Targets in ``[0, 1]`` broadcastable to ``logits`` (float, bool or integer 0/1).
    alpha : float or None, default 0.25
        Weight of the positive class in ``[0, 1]``; None disables balancing.
    gamma : float or array, default 2.0
        Focusing parameter ``>= 0``, or an array broadcastable to ``logits``
        (per-element focusing).
    label_smoothing : float, default 0.0
        Smoothing strength ``eps`` in ``[0, 1]``; 0 disables smoothing.
    smoothing : {"uniform", "others"}, default "uniform"
        ``y' = (1 - eps) y + eps/2`` or ``y' = (1 - eps) y + eps (1 - y)``.
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: that sum
        divided by the number of elements of ``logits``.

    Returns
    -------
    array
        Shape of ``logits`` for ``"none"``, 0-d otherwise; dtype, library and device of
        ``logits``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> logits = xp.asarray([3.0, -3.0, 0.0])
    >>> targets = xp.asarray([1.0, 0.0, 1.0])
    >>> loss = al.sigmoid_focal_loss(logits, targets, reduction="none")
    >>> [round(float(v), 6) for v in loss]
    [2.7e-05, 8.2e-05, 0.043322]

    References
    ----------
    Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object Detection",
    ICCV 2017, equation (5).
    """
    inputs = BinaryInputs(logits, targets, label_smoothing, smoothing, from_logits, reduction)
    xp, x, y = inputs.xp, inputs.x, inputs.y
    g = check_gamma(gamma, xp, x, inputs.backend)
    a = None if alpha is None else check_unit_interval(alpha, "alpha")
    if inputs.from_logits and inputs.reduction != "none" and isinstance(g, float):
        # delegate where possible
        reduced = inputs.backend.reduced_sigmoid_focal(x, y, a, g, inputs.reduction, xp)
        if reduced is not None:
            return inputs.cast(reduced)
    return sigmoid_focal_by_definition(inputs, a, g)


def sigmoid_focal_by_definition(
    inputs: BinaryInputs, alpha: float | None, gamma: float | Array
) -> Array:
    """:func:`sigmoid_focal_loss` of validated inputs by its definition, on any backend."""
    xp, y = inputs.xp, inputs.y
    with_logs = needs_log_base(gamma)  # a smooth factor for a fractional gamma
    log_p, log_q = inputs.log_probs()
    bce, b, _, _, logs = binary_terms(
        inputs.x, log_p, log_q, y, inputs.from_logits, xp, with_logs=with_logs
    )
    log_b = None if logs is None else logs[2]
    return inputs.finish(sigmoid_focal(bce, b, y, alpha, gamma, xp, log_b))
