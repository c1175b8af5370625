"""Weights and focusing schedules that feed the losses: class-balanced weights from
class counts (Cui et al. 2019) and the FLSD-53 gamma schedule (Mukhoti et al. 2020)."""

from __future__ import annotations

import math

from ._backends import backend_of
from ._compat import default_dtype
from ._typing import Array
from ._validation import _first_values, check_dtype, check_unit_interval, dtype_is, namespace_of


def class_balanced_weights(counts: Array, /, *, beta: float = 0.999, dtype: object = None) -> Array:
    r"""Class-balanced weights from per-class sample counts (Cui et al. 2019).

    The effective number of samples of a class seen ``n`` times is
    ``(1 - beta^n) / (1 - beta)``; its inverse re-weights the class:

    .. math::

        w_c = \frac{1 - \beta}{1 - \beta^{n_c}} \quad (n_c > 0), \qquad w_c = 0
        \quad (n_c = 0)

    then scaled so that the weights sum to the number of classes that have samples.
    ``beta = 0`` gives every present class weight 1, ``beta -> 1`` the inverse
    frequency ``1 / n_c`` (``beta = 1`` is that limit). The denominator is computed as
    ``-expm1(n_c log beta)``, so that ``beta`` close to 1 keeps its precision. A class
    without samples gets 0, never NaN or inf.

    Parameters
    ----------
    counts : array
        1-D real or integer array of the K per-class sample counts, ``[K]``.
    beta : float, default 0.999
        In ``[0, 1]``; the paper uses 0.9 to 0.9999.
    dtype : dtype, optional
        Of the result; default: the namespace's default real floating dtype.

    Returns
    -------
    array
        ``[K]`` weights in ``counts``' library and device, usable as ``weight=`` of
        :func:`cross_entropy` or ``alpha=`` of :func:`softmax_focal_loss`.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> w = al.class_balanced_weights(xp.asarray([1000, 10, 0]), beta=0.99)
    >>> [round(float(v), 4) for v in w]
    [0.1746, 1.8254, 0.0]

    References
    ----------
    Cui, Jia, Lin, Song, Belongie, "Class-Balanced Loss Based on Effective Number of
    Samples", CVPR 2019, equation (5).
    """
    xp = namespace_of([("counts", counts)])
    backend = backend_of(xp)
    if not (dtype_is(xp, counts.dtype, "real floating") or dtype_is(xp, counts.dtype, "integral")):
        raise TypeError(f"`counts` must be a real or integer array; got dtype {counts.dtype}.")
    if counts.ndim != 1:
        raise ValueError(
            f"`counts` must be 1-D (one count per class); got shape {tuple(counts.shape)}."
        )
    b = check_unit_interval(beta, "beta")
    if dtype is None:
        dtype = default_dtype(xp)
    else:
        check_dtype(dtype, xp)
        if not dtype_is(xp, dtype, "real floating"):
            raise TypeError(f"`dtype` must be a real floating dtype; got {dtype}.")
    if backend.reads_values(counts) and bool(xp.any(counts < 0)):
        bad = _first_values(counts, counts >= 0, xp)
        raise ValueError(f"`counts` must be non-negative; got {bad}.")
    n = xp.astype(counts, dtype)
    present = n > 0
    safe = xp.where(present, n, xp.ones_like(n))
    if b == 0.0:
        effective = xp.ones_like(n)  # 1 - 0^n = 1 for every present class
    elif b == 1.0:
        effective = safe  # the limit: (1 - beta^n) / (1 - beta) -> n
    else:
        # (1 - beta) cancels in the normalisation below; log1p keeps beta near 1 exact
        effective = -xp.expm1(safe * math.log1p(b - 1.0)) / (1.0 - b)
    w = xp.where(present, 1.0 / effective, xp.zeros_like(n))
    total = xp.sum(w)
    classes = xp.sum(xp.astype(present, dtype))
    scale = xp.where(total > 0, classes / xp.where(total > 0, total, 1.0), 0.0)
    return w * scale


def flsd53_gamma(p: Array, /) -> Array:
    r"""The FLSD-53 focusing schedule (Mukhoti et al. 2020): 5 where ``p < 0.2``, 3
    elsewhere.

    Pass it as ``gamma=al.flsd53_gamma`` to :func:`sigmoid_focal_loss` or
    :func:`softmax_focal_loss`: the loss calls it on the probability inside its
    modulating factor (``p_t``, or each class's ``p_c``) and focuses hard examples
    (low probability of the true class) more strongly, which the paper finds keeps
    the network calibrated.

    .. math::

        \gamma(p) = \begin{cases} 5 & p < 0.2 \\ 3 & p \ge 0.2 \end{cases}

    Parameters
    ----------
    p : array
        Real floating probabilities, any shape.

    Returns
    -------
    array
        The shape, dtype, library and device of ``p``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arraylosses as al
    >>> [float(v) for v in al.flsd53_gamma(xp.asarray([0.1, 0.2, 0.9]))]
    [5.0, 3.0, 3.0]

    References
    ----------
    Mukhoti, Kulharia, Sanyal, Golodetz, Torr, Dokania, "Calibrating Deep Neural
    Networks using Focal Loss", NeurIPS 2020, section 5.
    """
    xp = namespace_of([("p", p)])
    if not dtype_is(xp, p.dtype, "real floating"):
        raise TypeError(f"`p` must be a real floating array; got dtype {p.dtype}.")
    return xp.where(p < 0.2, xp.full_like(p, 5.0), xp.full_like(p, 3.0))
