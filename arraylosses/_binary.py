"""Binary (sigmoid) losses: binary cross-entropy, sigmoid focal loss and asymmetric loss.

Each public function reads top to bottom: validate once (``BinaryInputs``), delegate
where the backend has a native path, otherwise the definition (``_elementwise``) and
the reduction.
"""

from __future__ import annotations

from collections.abc import Callable

from ._backends import quiet_overflow
from ._elementwise import asymmetric, binary_terms, poly_binary_cross_entropy, sigmoid_focal
from ._elementwise import binary_cross_entropy as binary_cross_entropy_terms
from ._inputs import BinaryInputs
from ._primitives import needs_log_base
from ._typing import Array
from ._validation import (
    check_asymmetric_options,
    check_finite_float,
    check_gamma,
    check_unit_interval,
)


@quiet_overflow
def binary_cross_entropy(
    logits: Array,
    targets: Array,
    /,
    *,
    weight: Array | None = None,
    pos_weight: Array | None = None,
    label_smoothing: float = 0.0,
    smoothing: str | Array = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    poly_epsilon: float = 0.0,
    where: Array | None = None,
    normalizer: float | Array | None = None,
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
    smoothing : {"uniform", "others"} or array, default "uniform"
        ``"uniform"``: ``y' = (1 - eps) y + eps/2``; ``"others"``:
        ``y' = (1 - eps) y + eps (1 - y)``; an array (or float) ``u`` in ``[0, 1]``
        broadcastable to ``logits``, the prior of the positive class:
        ``y' = (1 - eps) y + eps u``.
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: that sum
        divided by the number of elements of ``logits`` (that ``where`` keeps).
    poly_epsilon : float, default 0.0
        Poly-1 (Leng et al. 2022): adds ``eps w (1 - p_t)`` per element (``w`` the
        element's ``weight``, not ``pos_weight``); any finite float, 0 is the loss
        without it.
    where : bool array, optional
        Broadcastable to ``logits``: the elements that count. Masked elements have
        loss 0 and gradient exactly 0 whatever ``logits`` holds there, and are left
        out of the ``"mean"`` denominator.
    normalizer : float or 0-d array, optional
        With ``reduction="mean"``: divide the sum by this instead (RetinaNet's number
        of positive anchors, mmdet's ``avg_factor``).

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
    inputs = BinaryInputs(
        logits, targets, label_smoothing, smoothing, from_logits, reduction, where, normalizer
    )
    pw = None if pos_weight is None else inputs.parameter(pos_weight, "pos_weight")
    w = None if weight is None else inputs.parameter(weight, "weight")
    eps = 0.0 if poly_epsilon == 0.0 else check_finite_float(poly_epsilon, "poly_epsilon")
    if w is None and pw is None and eps == 0.0:
        # the sigmoid focal loss at gamma 0 without alpha is this loss: its reduced
        # kernel, where the backend has one
        reduced = _reduced_focal_kernel(inputs, None, 0.0)
        if reduced is not None:
            return reduced

    def elements(block: BinaryInputs) -> Array:
        return _binary_cross_entropy_elements(block, pw, eps)

    loss = _elementwise(elements, inputs, pw)  # (weight multiplies the result)
    return inputs.finish(loss if w is None else w * loss)


def _elementwise(
    elements: Callable[[BinaryInputs], Array], inputs: BinaryInputs, *options: object
) -> Array:
    """``elements(inputs)``, the per-element loss, by row blocks
    (:meth:`~._backends.Backend.rowwise`) where no array among ``options`` varies
    along the cut axis (:meth:`BinaryInputs.same_in_every_block`), whole otherwise.
    The one array option, if any, goes along: a backend leaves a call whose option
    needs a gradient to the definition (``rowwise`` takes one such parameter, so two
    arrays take the whole definition)."""
    arrays = [v for v in options if v is not None and not isinstance(v, float)]
    if len(arrays) <= 1 and all(map(inputs.same_in_every_block, arrays)):
        return inputs.backend.rowwise(elements, inputs, arrays[0] if arrays else None)
    return elements(inputs)


def _binary_cross_entropy_elements(
    inputs: BinaryInputs, pos_weight: Array | None, poly_epsilon: float
) -> Array:
    """The per-element binary cross-entropy, without ``weight``."""
    log_p, log_q = inputs.log_probs()
    if poly_epsilon == 0.0:
        return binary_cross_entropy_terms(log_p, log_q, inputs.y, pos_weight=pos_weight)
    # Poly-1 needs 1 - p_t too
    bce, b, _, _, _ = binary_terms(
        inputs.x, log_p, log_q, inputs.y, inputs.from_logits, inputs.xp, pos_weight=pos_weight
    )
    return poly_binary_cross_entropy(bce, b, poly_epsilon)


@quiet_overflow
def sigmoid_focal_loss(
    logits: Array,
    targets: Array,
    /,
    *,
    alpha: float | None = 0.25,
    gamma: float | Array | Callable[[Array], Array] = 2.0,
    label_smoothing: float = 0.0,
    smoothing: str | Array = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    weight: Array | None = None,
    pos_weight: Array | None = None,
    poly_epsilon: float = 0.0,
    where: Array | None = None,
    normalizer: float | Array | None = None,
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
    gamma : float, array or callable, default 2.0
        Focusing parameter ``>= 0``, an array broadcastable to ``logits``
        (per-element focusing), or a callable ``gamma(p_t)`` returning one per
        element (sample-dependent focusing, e.g. :func:`flsd53_gamma`; differentiated
        through as ordinary code).
    label_smoothing : float, default 0.0
        Smoothing strength ``eps`` in ``[0, 1]``; 0 disables smoothing.
    smoothing : {"uniform", "others"} or array, default "uniform"
        ``y' = (1 - eps) y + eps/2``, ``y' = (1 - eps) y + eps (1 - y)``, or
        ``y' = (1 - eps) y + eps u`` for a prior ``u`` of the positive class.
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: that sum
        divided by the number of elements of ``logits`` (that ``where`` keeps).
    weight, pos_weight : array, sequence or float, optional
        As in :func:`binary_cross_entropy` (kornia's and MONAI's binary focal losses
        have them): ``weight`` rescales each element's loss, ``pos_weight`` the
        positive term of the BCE before the focal factor applies.
    poly_epsilon : float, default 0.0
        Poly-1 (Leng et al. 2022): adds ``eps w (1 - p_t)^(gamma + 1)`` per element
        (``w = weight alpha_t``, not ``pos_weight``); any finite float, 0 is the loss
        without it.
    where : bool array, optional
        Broadcastable to ``logits``: the elements that count. Masked elements have
        loss 0 and gradient exactly 0 whatever ``logits`` holds there, and are left
        out of the ``"mean"`` denominator.
    normalizer : float or 0-d array, optional
        With ``reduction="mean"``: divide the sum by this instead (RetinaNet's number
        of positive anchors, mmdet's ``avg_factor``).

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
    inputs = BinaryInputs(
        logits, targets, label_smoothing, smoothing, from_logits, reduction, where, normalizer
    )
    xp, x = inputs.xp, inputs.x
    g = check_gamma(gamma, xp, x, inputs.backend)
    a = None if alpha is None else check_unit_interval(alpha, "alpha")
    pw = None if pos_weight is None else inputs.parameter(pos_weight, "pos_weight")
    w = None if weight is None else inputs.parameter(weight, "weight")
    eps = 0.0 if poly_epsilon == 0.0 else check_finite_float(poly_epsilon, "poly_epsilon")
    if isinstance(g, float) and w is None and pw is None and eps == 0.0:
        reduced = _reduced_focal_kernel(inputs, a, g)  # delegate where possible
        if reduced is not None:
            return reduced
    return sigmoid_focal_by_definition(inputs, a, g, w, pw, eps)


def _reduced_focal_kernel(inputs: BinaryInputs, alpha: float | None, gamma: float) -> Array | None:
    """The reduced sigmoid focal loss (a float gamma, no weights, no Poly-1) by the
    backend's kernel (``Backend.reduced_sigmoid_focal``), normalised and cast; None
    where it has none or the call needs the definition (probabilities, no
    reduction, a ``where`` mask)."""
    if not inputs.from_logits or inputs.reduction == "none" or inputs.where is not None:
        return None
    reduction = "sum" if inputs.normalizer is not None else inputs.reduction
    reduced = inputs.backend.reduced_sigmoid_focal(
        inputs.x, inputs.y, alpha, gamma, reduction, inputs.xp
    )
    if reduced is None:
        return None
    if inputs.normalizer is not None:
        reduced = inputs.normalize(reduced)
    return inputs.cast(reduced)


def sigmoid_focal_by_definition(
    inputs: BinaryInputs,
    alpha: float | None,
    gamma: float | Array | Callable[[Array], Array],
    weight: Array | None = None,
    pos_weight: Array | None = None,
    poly_epsilon: float = 0.0,
) -> Array:
    """:func:`sigmoid_focal_loss` of validated inputs by its definition, on any backend:
    by row blocks (:meth:`~._backends.Backend.rowwise`) where no per-element option
    varies along the cut axis (a float or per-class gamma, no or a per-class
    ``pos_weight``; ``weight`` multiplies the result), whole otherwise."""

    def elements(block: BinaryInputs) -> Array:
        return _sigmoid_focal_elements(block, alpha, gamma, pos_weight, poly_epsilon)

    if callable(gamma):  # (it may depend on the whole batch: never cut)
        loss = elements(inputs)
    else:
        loss = _elementwise(elements, inputs, gamma, pos_weight)
    return inputs.finish(loss if weight is None else weight * loss)


def _sigmoid_focal_elements(
    inputs: BinaryInputs,
    alpha: float | None,
    gamma: float | Array | Callable[[Array], Array],
    pos_weight: Array | None,
    poly_epsilon: float,
) -> Array:
    """The per-element sigmoid focal loss, without ``weight`` (before the mask and the
    reduction)."""
    xp, y = inputs.xp, inputs.y
    # a smooth factor for a fractional or sample-dependent gamma
    with_logs = callable(gamma) or needs_log_base(gamma)
    log_p, log_q = inputs.log_probs()
    bce, b, p, q, logs = binary_terms(
        inputs.x, log_p, log_q, y, inputs.from_logits, xp, with_logs=with_logs,
        pos_weight=pos_weight,
    )  # fmt: skip
    if callable(gamma):
        gamma = gamma(y * p + (1 - y) * q)  # p_t, the probability of the target
    log_b = None if logs is None else logs[2]
    return sigmoid_focal(
        poly_binary_cross_entropy(bce, b, poly_epsilon), b, y, alpha, gamma, xp, log_b
    )


@quiet_overflow
def asymmetric_loss(
    logits: Array,
    targets: Array,
    /,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    label_smoothing: float = 0.0,
    smoothing: str | Array = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
    where: Array | None = None,
    normalizer: float | Array | None = None,
) -> Array:
    r"""Asymmetric loss for multi-label classification (Ridnik et al. 2021).

    In a multi-label problem most labels of an image are negatives. The asymmetric
    loss focuses the two sides differently (``gamma_neg > gamma_pos``) and shifts the
    negatives' probability by a margin, so that easy negatives (``p <= clip``) are
    discarded entirely and mislabelled negatives are not over-penalised. With
    ``p = sigmoid(x)``, ``y'`` the (smoothed) target and ``p_m = max(p - clip, 0)``:

    .. math::

        \ell = -\left[ y' (1 - p)^{\gamma_+} \log p
               + (1 - y')\, p_m^{\gamma_-} \log(1 - p_m) \right]

    Each term has its own factor: for 0/1 targets this is timm's
    ``AsymmetricLossMultiLabel`` per element (without its 1e-8 probability clamp, and
    before timm's sum). Computed in log space: ``log(1 - p_m) = log(min(1, 1 - p +
    clip))`` from ``log(1 - p)``, finite for every finite logit; the gradient is
    finite everywhere, and at ``p == clip`` exactly it is that of the branch
    ``p_m = 0``. With ``clip = 0`` and ``gamma_pos = gamma_neg = gamma`` it is
    :func:`sigmoid_focal_loss` with ``alpha=None`` for 0/1 targets.

    Parameters
    ----------
    logits : array
        Real floating logits, any shape ``[...]`` (probabilities if
        ``from_logits=False``), e.g. ``[batch, num_labels]``.
    targets : array
        Targets in ``[0, 1]`` broadcastable to ``logits`` (float, bool or integer 0/1).
    gamma_pos, gamma_neg : float, default 0.0 and 4.0
        Focusing parameters ``>= 0`` of the positive and the negative term.
    clip : float, default 0.05
        The probability margin ``m`` in ``[0, 1)``; 0 disables the shift.
    label_smoothing : float, default 0.0
        Smoothing strength ``eps`` in ``[0, 1]``.
    smoothing : {"uniform", "others"} or array, default "uniform"
        As in :func:`binary_cross_entropy`.
    from_logits : bool, default True
        False: ``logits`` holds probabilities (log-probabilities clamped at -100).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the per-element loss; ``"sum"``: its sum; ``"mean"``: that sum
        divided by the number of elements (that ``where`` keeps).
    where : bool array, optional
        Broadcastable to ``logits``: the elements that count.
    normalizer : float or 0-d array, optional
        With ``reduction="mean"``: divide the sum by this instead.

    Returns
    -------
    array
        Shape of ``logits`` for ``"none"``, 0-d otherwise; dtype, library and device of
        ``logits``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> logits = xp.asarray([2.0, -3.0, -1.0])
    >>> targets = xp.asarray([1.0, 0.0, 0.0])
    >>> [round(float(v), 6) for v in al.asymmetric_loss(logits, targets, reduction="none")]
    [0.126928, 0.0, 0.000568]

    References
    ----------
    Ridnik, Ben-Baruch, Zamir, Noy, Friedman, Protter, Zelnik-Manor, "Asymmetric Loss
    For Multi-Label Classification", ICCV 2021, equations (1)-(5).
    """
    inputs = BinaryInputs(
        logits, targets, label_smoothing, smoothing, from_logits, reduction, where, normalizer
    )
    g_pos, g_neg, m = check_asymmetric_options(gamma_pos, gamma_neg, clip)

    def elements(block: BinaryInputs) -> Array:
        return _asymmetric_elements(block, g_pos, g_neg, m)

    return inputs.finish(_elementwise(elements, inputs))


def _asymmetric_elements(inputs: BinaryInputs, g_pos: float, g_neg: float, m: float) -> Array:
    """The per-element asymmetric loss (before the mask and the reduction)."""
    xp, x = inputs.xp, inputs.x
    log_p, log_q = inputs.log_probs(fused=True)
    q = xp.exp(log_q) if inputs.from_logits else 1 - x
    if m == 0.0:  # the plain asymmetric focusing
        p_m = xp.exp(log_p) if inputs.from_logits else x
        log_1m_pm = log_q
    else:
        # p - m as (1 - m) - q: the margin's own subtraction, with no second exp
        shifted = q < 1.0 - m  # p > m; at p == clip exactly: the branch p_m = 0
        p_m = xp.where(shifted, (1.0 - m) - q, 0.0)
        # log(1 - p_m) = log(q + m): q accurate (from log q), m > 0 added to it, so
        # nothing cancels; log 1 = 0 where not shifted
        log_1m_pm = xp.log(xp.where(shifted, q + m, 1.0))
    return asymmetric(log_p, log_q, q, p_m, log_1m_pm, inputs.y, g_pos, g_neg, xp)
