"""Properties of the losses, checked with hypothesis on every backend.

Shapes come from short lists (JAX compiles every operation once per shape and dtype,
so drawing arbitrary shapes would spend the run compiling); values, dtypes and options
are drawn freely. Where a property needs an independent quantity (p_t, a permutation,
a subset) it is computed in float64 NumPy, by the reference or by the test itself.
"""

from __future__ import annotations

from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import arraylosses as al
from arraylosses.testing import reference as ref

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")
# Examples per property: JAX compiles each new shape/dtype/branch and Dask builds and
# computes a graph per call, so they get fewer.
EXAMPLES = {"jax": 12, "dask": 10}
PROPERTY = settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

BINARY_SHAPES = [(5,), (3, 4), (2, 3, 2)]
# (logits shape, class axis)
SOFTMAX_LAYOUTS = [((4, 3), -1), ((5, 2), 1), ((2, 4, 3), 1), ((3, 2, 5), 0)]
RTOL = {"float32": 2e-5, "float64": 1e-11}
ATOL = {"float32": 2e-6, "float64": 1e-13}

dtypes = st.sampled_from(["float32", "float64"])
epsilons = st.one_of(st.sampled_from([0.0, 0.1, 1.0]), st.floats(0.0, 1.0))
smoothings = st.sampled_from(["uniform", "others"])
gammas = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]), st.floats(0.0, 5.0))


def only(*backends: str) -> Any:
    reason = f"needs autograd: runs on {'/'.join(backends)} only"

    def decorate(fn: Any) -> Any:
        for b in ALL_BACKENDS:
            if b not in backends:
                fn = pytest.mark.skip_xp_backend(b, reason=reason)(fn)
        return fn

    return decorate


def prop(**strategies: Any) -> Any:
    """Turn ``body(xp, backend, asarray, **drawn)`` into a test over the ``xp`` backends
    that runs hypothesis with ``strategies`` and the backend's number of examples."""

    def decorate(body: Any) -> Any:
        def test(xp: Any, backend: str, asarray: Any) -> None:
            examples = EXAMPLES.get(backend, PROPERTY.max_examples)

            @settings(PROPERTY, max_examples=examples)
            @given(**strategies)
            def run(**drawn: Any) -> None:
                body(xp, backend, asarray, **drawn)

            run()

        test.__name__, test.__qualname__ = body.__name__, body.__qualname__
        test.__doc__, test.__module__ = body.__doc__, body.__module__
        return test

    return decorate


def to_numpy(x: Any) -> np.ndarray:
    module = type(x).__module__
    if module.startswith("dask"):
        x = x.compute()
    if module.startswith("torch"):
        x = x.detach().cpu()
        return (x.double() if x.is_floating_point() else x).numpy()
    if module.startswith("array_api_strict"):
        return np.from_dlpack(x).astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def logits_for(data: st.DataObject, shape: tuple[int, ...], bound: float = 30.0) -> np.ndarray:
    """float32-representable logits (exact in both dtypes)."""
    return data.draw(
        hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, width=32)),
        label="logits",
    )


def binary_targets(data: st.DataObject, shape: tuple[int, ...]) -> np.ndarray:
    if data.draw(st.booleans(), label="soft targets"):
        return data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0, width=32)))
    return data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))


def batch_of(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    axis %= len(shape)
    return shape[:axis] + shape[axis + 1 :]


def labels_for(data: st.DataObject, shape: tuple[int, ...], axis: int) -> np.ndarray:
    k = shape[axis]
    return data.draw(
        hnp.arrays(np.int64, batch_of(shape, axis), elements=st.integers(0, k - 1)), label="labels"
    )


def close(got: Any, expected: Any, dtype: str, scale: float = 1.0, what: str = "") -> None:
    np.testing.assert_allclose(
        to_numpy(got),
        np.asarray(expected, dtype=np.float64),
        rtol=RTOL[dtype] * scale,
        atol=ATOL[dtype] * scale,
        err_msg=what,
    )


# ----------------------------------------------------------- focal versus CE


@prop(data=st.data(), dtype=dtypes, gamma=gammas, eps=epsilons, smoothing=smoothings)
def test_sigmoid_focal_at_most_bce(xp, backend, asarray, data, dtype, gamma, eps, smoothing):
    """alpha=None: the focal loss never exceeds the binary cross-entropy, elementwise."""
    shape = data.draw(st.sampled_from(BINARY_SHAPES))
    x, y = asarray(logits_for(data, shape), dtype), asarray(binary_targets(data, shape), dtype)
    opts = {"label_smoothing": eps, "smoothing": smoothing, "reduction": "none"}
    focal = to_numpy(al.sigmoid_focal_loss(x, y, alpha=None, gamma=gamma, **opts))
    bce = to_numpy(al.binary_cross_entropy(x, y, **opts))
    assert np.all(focal <= bce * (1 + RTOL[dtype]) + ATOL[dtype]), (focal, bce)


@prop(data=st.data(), dtype=dtypes, gamma=gammas, eps=epsilons, smoothing=smoothings)
def test_softmax_focal_at_most_ce(xp, backend, asarray, data, dtype, gamma, eps, smoothing):
    """alpha=None: softmax focal loss <= cross-entropy, elementwise, any targets."""
    shape, axis = data.draw(st.sampled_from(SOFTMAX_LAYOUTS))
    x = asarray(logits_for(data, shape), dtype)
    if data.draw(st.booleans(), label="integer labels"):
        t = asarray(labels_for(data, shape, axis), "int64")
    else:
        z = np.exp(logits_for(data, shape, 3.0))
        t = asarray(z / z.sum(axis=axis, keepdims=True), dtype)
    opts = {"axis": axis, "label_smoothing": eps, "smoothing": smoothing, "reduction": "none"}
    focal = to_numpy(al.softmax_focal_loss(x, t, gamma=gamma, **opts))
    ce = to_numpy(al.cross_entropy(x, t, **opts))
    assert np.all(focal <= ce * (1 + RTOL[dtype]) + ATOL[dtype]), (focal, ce)


@prop(
    data=st.data(),
    dtype=dtypes,
    gamma=gammas,
    alpha=st.one_of(st.none(), st.floats(0.0, 1.0)),
    eps=epsilons,
    smoothing=smoothings,
)
def test_sigmoid_focal_over_bce_is_alpha_t_times_modulating_factor(
    xp, backend, asarray, data, dtype, gamma, alpha, eps, smoothing
):
    """focal = alpha_t (1 - p_t)^gamma * BCE with p_t, alpha_t from the float64 reference."""
    shape = data.draw(st.sampled_from(BINARY_SHAPES))
    x_np, y_np = logits_for(data, shape), binary_targets(data, shape)
    x, y = asarray(x_np, dtype), asarray(y_np, dtype)
    opts = {"label_smoothing": eps, "smoothing": smoothing, "reduction": "none"}
    focal = to_numpy(al.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma, **opts))
    bce = to_numpy(al.binary_cross_entropy(x, y, **opts))
    ys = y_np * (1 - eps) + (eps / 2 if smoothing == "uniform" else (1 - y_np) * eps)
    one_minus_pt = ref.sigmoid(x_np) * (1 - ys) + ref.sigmoid(-x_np) * ys
    alpha_t = 1.0 if alpha is None else alpha * ys + (1 - alpha) * (1 - ys)
    close(focal, alpha_t * one_minus_pt**gamma * bce, dtype, 1 + gamma, "focal / BCE")


@prop(data=st.data(), dtype=dtypes, gamma=gammas, per_class=st.booleans())
def test_softmax_focal_over_ce_is_alpha_times_modulating_factor(
    xp, backend, asarray, data, dtype, gamma, per_class
):
    """Hard labels: focal = alpha_y (1 - p_y)^gamma * CE, p_y from the float64 reference."""
    shape, axis = data.draw(st.sampled_from(SOFTMAX_LAYOUTS))
    x_np, labels = logits_for(data, shape), labels_for(data, shape, axis)
    k = shape[axis]
    a = data.draw(hnp.arrays(np.float64, (k,), elements=st.floats(0.0, 1.0))) if per_class else None
    x, t = asarray(x_np, dtype), asarray(labels, "int64")
    alpha = None if a is None else asarray(a, dtype)
    focal = to_numpy(al.softmax_focal_loss(x, t, alpha=alpha, gamma=gamma, axis=axis,
                                           reduction="none"))  # fmt: skip
    ce = to_numpy(al.cross_entropy(x, t, axis=axis, reduction="none"))
    log_p = np.moveaxis(ref.log_softmax(x_np, axis=axis), axis, -1)
    p_y = np.exp(np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0])
    alpha_y = 1.0 if a is None else a[labels]
    close(focal, alpha_y * (1 - p_y) ** gamma * ce, dtype, 1 + gamma, "focal / CE")


@prop(data=st.data(), dtype=dtypes, eps=epsilons, smoothing=smoothings,
       reduction=st.sampled_from(["none", "mean", "sum"]))  # fmt: skip
def test_gamma_zero_is_cross_entropy(xp, backend, asarray, data, dtype, eps, smoothing, reduction):
    """gamma = 0, alpha = None: both focal losses equal their cross-entropy."""
    shape = data.draw(st.sampled_from(BINARY_SHAPES))
    x, y = asarray(logits_for(data, shape), dtype), asarray(binary_targets(data, shape), dtype)
    opts = {"label_smoothing": eps, "smoothing": smoothing, "reduction": reduction}
    bce = to_numpy(al.binary_cross_entropy(x, y, **opts))
    close(al.sigmoid_focal_loss(x, y, alpha=None, gamma=0.0, **opts), bce, dtype)
    shape, axis = data.draw(st.sampled_from(SOFTMAX_LAYOUTS))
    x = asarray(logits_for(data, shape), dtype)
    labels = labels_for(data, shape, axis)
    ignore = data.draw(st.sampled_from([None, 0]))
    t = asarray(labels, "int64")
    opts = {**opts, "axis": axis, "ignore_index": ignore}
    ce = to_numpy(al.cross_entropy(x, t, **opts))
    close(al.softmax_focal_loss(x, t, gamma=0.0, **opts), ce, dtype)


@only("torch", "jax")
@prop(data=st.data(), dtype=dtypes, eps=epsilons, smoothing=smoothings)
def test_gamma_zero_gradient_is_cross_entropy_gradient(
    xp, backend, asarray, data, dtype, eps, smoothing
):
    """The gradient w.r.t. the logits at gamma = 0 is the cross-entropy's gradient."""
    # one shape each: every new shape costs a compilation of the backward pass on JAX
    shape, (shape_s, axis) = BINARY_SHAPES[1], SOFTMAX_LAYOUTS[2]
    x_np, y_np = logits_for(data, shape), binary_targets(data, shape)
    xs_np, labels = logits_for(data, shape_s), labels_for(data, shape_s, axis)
    opts = {"label_smoothing": eps, "smoothing": smoothing, "reduction": "sum"}
    pairs = [
        (lambda a, b: al.sigmoid_focal_loss(a, b, alpha=None, gamma=0.0, **opts),
         lambda a, b: al.binary_cross_entropy(a, b, **opts), x_np, asarray(y_np, dtype)),
        (lambda a, b: al.softmax_focal_loss(a, b, gamma=0.0, axis=axis, **opts),
         lambda a, b: al.cross_entropy(a, b, axis=axis, **opts), xs_np, asarray(labels, "int64")),
    ]  # fmt: skip
    for focal, ce, logits, target in pairs:
        if backend == "jax":
            import jax

            g_focal = jax.grad(focal)(asarray(logits, dtype), target)
            g_ce = jax.grad(ce)(asarray(logits, dtype), target)
        else:
            import torch

            grads = []
            for fn in (focal, ce):
                a = asarray(logits, dtype).requires_grad_(True)
                (g,) = torch.autograd.grad(fn(a, target), a)
                grads.append(g)
            g_focal, g_ce = grads
        close(g_focal, to_numpy(g_ce), dtype, 1.0, "gradient at gamma = 0")


# ------------------------------------------------------------ invariances


@prop(
    data=st.data(),
    dtype=dtypes,
    shift=st.integers(-64, 64),
    gamma=gammas,
    eps=epsilons,
    smoothing=smoothings,
)
def test_softmax_losses_invariant_to_shift(
    xp, backend, asarray, data, dtype, shift, gamma, eps, smoothing
):
    """Adding a constant to every logit changes nothing (both shifts exact: x on a 1/8
    grid within +-64, an integer shift)."""
    shape, axis = data.draw(st.sampled_from(SOFTMAX_LAYOUTS))
    x_np = np.round(logits_for(data, shape, 60.0) * 8) / 8
    labels = labels_for(data, shape, axis)
    t = asarray(labels, "int64")
    opts = {"axis": axis, "label_smoothing": eps, "smoothing": smoothing, "reduction": "none"}
    for fn, extra in ((al.cross_entropy, {}), (al.softmax_focal_loss, {"gamma": gamma})):
        base = to_numpy(fn(asarray(x_np, dtype), t, **opts, **extra))
        moved = fn(asarray(x_np + shift, dtype), t, **opts, **extra)
        # log-softmax is exact up to rounding of (x - max) and logsumexp
        close(moved, base, dtype, 1 + 64 + 64, f"{fn.__name__} shifted by {shift}")


@prop(data=st.data(), dtype=dtypes, gamma=gammas, eps=epsilons, smoothing=smoothings,
       use_weight=st.booleans())  # fmt: skip
def test_class_permutation_equivariance(
    xp, backend, asarray, data, dtype, gamma, eps, smoothing, use_weight
):
    """Relabelling the classes (logits, labels, weight / alpha permuted together) leaves
    every loss unchanged, and permutes one_hot / smooth_labels' class axis."""
    shape, axis = data.draw(st.sampled_from(SOFTMAX_LAYOUTS))
    k = shape[axis]
    perm = np.asarray(data.draw(st.permutations(range(k)), label="permutation"))
    inverse = np.argsort(perm)
    x_np, labels = logits_for(data, shape), labels_for(data, shape, axis)
    w = data.draw(hnp.arrays(np.float64, (k,), elements=st.floats(0.125, 1.0, width=32)))
    x_perm = np.take(x_np, perm, axis=axis)  # class j of x_perm is class perm[j] of x
    labels_perm = inverse[labels]
    opts = {"axis": axis, "label_smoothing": eps, "smoothing": smoothing, "reduction": "none"}
    for name, key in (("cross_entropy", "weight"), ("softmax_focal_loss", "alpha")):
        fn = getattr(al, name)
        extra = {"gamma": gamma} if name == "softmax_focal_loss" else {}
        kw, kw_perm = dict(extra), dict(extra)
        if use_weight:
            kw[key], kw_perm[key] = asarray(w, dtype), asarray(w[perm], dtype)
        base = to_numpy(fn(asarray(x_np, dtype), asarray(labels, "int64"), **opts, **kw))
        got = fn(asarray(x_perm, dtype), asarray(labels_perm, "int64"), **opts, **kw_perm)
        close(got, base, dtype, 10.0, f"{name} with classes permuted by {perm}")
    t = asarray(labels, "int64")
    t_perm = asarray(labels_perm, "int64")
    for fn, args in ((al.one_hot, (k,)), (al.smooth_labels, (eps,))):
        kw = {"num_classes": k, "smoothing": smoothing} if fn is al.smooth_labels else {}
        base = to_numpy(fn(t, *args, axis=axis, **kw))
        close(fn(t_perm, *args, axis=axis, **kw), np.take(base, perm, axis=axis), "float64")


@prop(data=st.data(), eps=epsilons, smoothing=smoothings, dtype=dtypes,
       integer=st.booleans())  # fmt: skip
def test_smoothed_targets_sum_to_one(xp, backend, asarray, data, eps, smoothing, dtype, integer):
    """smooth_labels keeps a distribution a distribution: it sums to 1 along the axis,
    every entry in [0, 1]."""
    shape, axis = data.draw(st.sampled_from(SOFTMAX_LAYOUTS))
    if integer:
        out = al.smooth_labels(asarray(labels_for(data, shape, axis), "int64"), eps,
                               num_classes=shape[axis], axis=axis, smoothing=smoothing,
                               dtype=getattr(xp, dtype))  # fmt: skip
    else:
        z = np.exp(logits_for(data, shape, 5.0))
        q = asarray(z / z.sum(axis=axis, keepdims=True), dtype)
        out = al.smooth_labels(q, eps, axis=axis, smoothing=smoothing)
    q_out = to_numpy(out)
    close(q_out.sum(axis=axis), np.ones(batch_of(shape, axis)), dtype, 4.0, "sum over classes")
    assert np.all((q_out >= -ATOL[dtype]) & (q_out <= 1 + RTOL[dtype]))


# ------------------------------------------------------------------ reductions


@prop(data=st.data(), dtype=dtypes, gamma=gammas, eps=epsilons)
def test_sum_is_sum_of_none(xp, backend, asarray, data, dtype, gamma, eps):
    """reduction="sum" equals the float64 sum of reduction="none", for all four losses."""
    shape = data.draw(st.sampled_from(BINARY_SHAPES))
    x, y = asarray(logits_for(data, shape), dtype), asarray(binary_targets(data, shape), dtype)
    shape_s, axis = data.draw(st.sampled_from(SOFTMAX_LAYOUTS))
    xs = asarray(logits_for(data, shape_s), dtype)
    t = asarray(labels_for(data, shape_s, axis), "int64")
    calls = [
        (al.binary_cross_entropy, x, y, {}),
        (al.sigmoid_focal_loss, x, y, {"gamma": gamma}),
        (al.cross_entropy, xs, t, {"axis": axis, "ignore_index": 1}),
        (al.softmax_focal_loss, xs, t, {"axis": axis, "gamma": gamma, "ignore_index": 1}),
    ]
    for fn, a, b, kw in calls:
        none = to_numpy(fn(a, b, label_smoothing=eps, reduction="none", **kw))
        total = fn(a, b, label_smoothing=eps, reduction="sum", **kw)
        n = max(none.size, 1)
        close(total, none.sum(), dtype, n, f"{fn.__name__}: sum vs none.sum()")


@prop(
    data=st.data(),
    dtype=dtypes,
    eps=epsilons,
    gamma=gammas,
    ignore=st.sampled_from([-100, 0, 2]),
    use_weight=st.booleans(),
)
def test_ignoring_an_element_equals_dropping_it(
    xp, backend, asarray, data, dtype, eps, gamma, ignore, use_weight
):
    """Marking elements with ignore_index gives the loss of the batch without them, for
    "mean" (PyTorch's denominator for CE with weights) and "sum"."""
    k = 4
    x_np = logits_for(data, (6, k))
    labels = data.draw(hnp.arrays(np.int64, (6,), elements=st.integers(0, k - 1)))
    # an ignore value inside [0, K) would also drop the labels equal to it: keep the
    # kept labels off it, so that exactly two elements are dropped (one shape on JAX)
    labels = np.where(labels == ignore, (ignore + 1) % k, labels)
    dropped = data.draw(st.lists(st.integers(0, 5), min_size=2, max_size=2, unique=True))
    drop = np.isin(np.arange(6), dropped)
    marked = np.where(drop, ignore, labels)
    w = data.draw(hnp.arrays(np.float64, (k,), elements=st.floats(0.125, 1.0, width=32)))
    for fn, extra in ((al.cross_entropy, "weight"), (al.softmax_focal_loss, "alpha")):
        kw = {extra: asarray(w, dtype)} if use_weight else {}
        if fn is al.softmax_focal_loss:
            kw["gamma"] = gamma
        for reduction in ("mean", "sum"):
            got = fn(asarray(x_np, dtype), asarray(marked, "int64"), ignore_index=ignore,
                     label_smoothing=eps, reduction=reduction, **kw)  # fmt: skip
            kept = fn(asarray(x_np[~drop], dtype), asarray(labels[~drop], "int64"),
                      label_smoothing=eps, reduction=reduction, **kw)  # fmt: skip
            close(got, to_numpy(kept), dtype, 10.0, f"{fn.__name__} {reduction}, drop {drop}")


@prop(data=st.data(), dtype=dtypes, eps=epsilons, ignore=st.sampled_from([-100, 1]))
def test_all_ignored_mean_is_nan(xp, backend, asarray, data, dtype, eps, ignore):
    """Every target ignored: "mean" is NaN (nothing to average), "sum" is 0."""
    shape, axis = data.draw(st.sampled_from(SOFTMAX_LAYOUTS))
    x = asarray(logits_for(data, shape), dtype)
    t = asarray(np.full(batch_of(shape, axis), ignore), "int64")
    for fn in (al.cross_entropy, al.softmax_focal_loss):
        kw = {"axis": axis, "ignore_index": ignore, "label_smoothing": eps}
        assert np.isnan(to_numpy(fn(x, t, reduction="mean", **kw))), fn.__name__
        assert to_numpy(fn(x, t, reduction="sum", **kw)) == 0.0, fn.__name__
        w = asarray(np.ones(shape[axis]), dtype)
        extra = {"weight": w} if fn is al.cross_entropy else {"alpha": w}
        assert np.isnan(to_numpy(fn(x, t, reduction="mean", **kw, **extra))), fn.__name__
