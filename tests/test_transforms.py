"""Autodiff and program transforms: jax.grad / vmap / jit, torch autograd / func / compile.

Gradients are compared with values computed independently of the package: central
finite differences of the float64 NumPy reference (``arraylosses.testing.reference``), closed-form
gradients worked out by hand (BCE, cross-entropy, both focal losses at logits exactly 0),
and ``torch.autograd.gradcheck``. These tests run in the torch and jax sessions only;
every other backend skips them with the reason.

The public functions are called as ``al.<name>`` on purpose: ``test_values`` tags them
with ``lazy_xp_function``, and only names imported into a test module's globals get
wrapped in ``jax.jit``; here the transforms are applied explicitly.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import arraylosses as al
from arraylosses.testing import reference as ref

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")
DYNAMO_LRU_WARNING = (
    "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
)


def only(*backends: str) -> Callable[[Any], Any]:
    """Run the test on ``backends`` only; every other backend skips with the reason."""
    reason = f"{' and '.join(backends)} transforms: runs in the {'/'.join(backends)} session"

    def decorate(fn: Any) -> Any:
        for b in ALL_BACKENDS:
            if b not in backends:
                fn = pytest.mark.skip_xp_backend(b, reason=reason)(fn)
        return fn

    return decorate


def seeded(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


# --------------------------------------------------------------- gradient cases

C = 4
# name -> (function name, targets kind, shape, options); arrays in options are
# drawn from ("vec", low, high) specs so they can be built on any backend.
GRAD_CASES: dict[str, tuple[str, str, tuple[int, ...], dict[str, Any]]] = {
    "bce": ("binary_cross_entropy", "soft", (6, C), {}),
    "bce_weight_pos_weight_smooth_sum": (
        "binary_cross_entropy",
        "hard",
        (6, C),
        {"weight": "vec", "pos_weight": "vec", "label_smoothing": 0.2, "reduction": "sum"},
    ),
    "bce_others_none": (
        "binary_cross_entropy",
        "hard",
        (6, C),
        {"label_smoothing": 0.1, "smoothing": "others", "reduction": "none"},
    ),
    "bce_probs": ("binary_cross_entropy", "soft", (6, C), {"from_logits": False}),
    "sigmoid_focal": ("sigmoid_focal_loss", "hard", (6, C), {}),
    "sigmoid_focal_gamma_0.5_others": (
        "sigmoid_focal_loss",
        "hard",
        (6, C),
        {"gamma": 0.5, "label_smoothing": 0.1, "smoothing": "others"},
    ),
    "sigmoid_focal_gamma_0_float": ("sigmoid_focal_loss", "soft", (6, C), {"gamma": 0.0}),
    "sigmoid_focal_gamma_array_none": (
        "sigmoid_focal_loss",
        "hard",
        (6, C),
        {"gamma": "per_sample", "alpha": None, "reduction": "none"},
    ),
    "sigmoid_focal_probs": ("sigmoid_focal_loss", "soft", (6, C), {"from_logits": False}),
    "ce": ("cross_entropy", "int", (6, C), {}),
    "ce_nchw_weight_ignore_smooth": (
        "cross_entropy",
        "int",
        (2, C, 3, 2),
        {"axis": 1, "weight": "vec", "ignore_index": -100, "label_smoothing": 0.1},
    ),
    "ce_soft_others_sum": (
        "cross_entropy",
        "soft",
        (6, C),
        {"label_smoothing": 0.2, "smoothing": "others", "reduction": "sum"},
    ),
    "ce_none_weight": ("cross_entropy", "int", (6, C), {"weight": "vec", "reduction": "none"}),
    "ce_probs": ("cross_entropy", "int", (6, C), {"from_logits": False}),
    "softmax_focal": ("softmax_focal_loss", "int", (6, C), {}),
    "softmax_focal_alpha_vec_ignore_nchw": (
        "softmax_focal_loss",
        "int",
        (2, C, 3, 2),
        {"axis": 1, "alpha": "vec01", "ignore_index": -100},
    ),
    "softmax_focal_gamma_0.5_soft_smooth": (
        "softmax_focal_loss",
        "soft",
        (6, C),
        {"gamma": 0.5, "label_smoothing": 0.1},
    ),
    "softmax_focal_gamma_array_none": (
        "softmax_focal_loss",
        "int",
        (6, C),
        {"gamma": "per_sample", "alpha": 0.25, "reduction": "none"},
    ),
    "softmax_focal_probs": ("softmax_focal_loss", "int", (6, C), {"from_logits": False}),
}


class Case:
    """NumPy inputs of one gradient case, and the reference loss as a scalar."""

    def __init__(self, name: str, at_zero: bool = False) -> None:
        fname, kind, shape, raw = GRAD_CASES[name]
        rng = seeded(name)
        self.fn = getattr(al, fname)
        self.ref_fn = getattr(ref, fname)
        axis = raw.get("axis", -1)
        self.axis = axis
        softmax_family = fname in ("cross_entropy", "softmax_focal_loss")
        label_shape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
        from_logits = raw.get("from_logits", True)
        x = np.zeros(shape) if at_zero else 1.5 * rng.normal(size=shape)
        if not from_logits:
            x = ref.softmax(x, axis=axis) if softmax_family else ref.sigmoid(x)
        self.x = x
        if kind == "soft" and softmax_family:
            t = np.moveaxis(rng.dirichlet(np.ones(C), size=label_shape), -1, axis)
        elif kind == "soft":
            t = rng.uniform(size=shape)
        elif kind == "hard":
            t = (rng.uniform(size=shape) < 0.5).astype(np.float64)
        else:
            t = rng.integers(0, C, size=label_shape)
            if "ignore_index" in raw:
                t.reshape(-1)[::4] = raw["ignore_index"]
        self.t = t
        self.options: dict[str, Any] = {}
        for key, value in raw.items():
            if value == "vec":
                value = rng.uniform(0.3, 2.0, size=C)
            elif value == "vec01":
                value = rng.uniform(0.1, 1.0, size=C)
            elif value == "per_sample":
                value = rng.uniform(0.0, 3.0, size=(shape[0],) + (1,) * (len(shape) - 1))
            self.options[key] = value
        self.reduction = raw.get("reduction", "mean")
        out_shape = label_shape if softmax_family else shape
        # a fixed cotangent turns reduction="none" into a scalar
        self.cotangent = rng.uniform(0.5, 1.5, size=out_shape)

    def ref_scalar(self, x: np.ndarray) -> float:
        out = self.ref_fn(x, self.t, **self.options)
        if self.reduction == "none":
            out = np.sum(out * self.cotangent)
        return float(out)

    def fd_grad(self, h: float = 1e-6) -> np.ndarray:
        """Central finite differences of the float64 reference."""
        g = np.zeros_like(self.x)
        for i in np.ndindex(self.x.shape):
            up, down = self.x.copy(), self.x.copy()
            up[i] += h
            down[i] -= h
            g[i] = (self.ref_scalar(up) - self.ref_scalar(down)) / (2 * h)
        return g

    def converted(self, xp: Any, device: Any) -> tuple[Any, dict[str, Any], Any]:
        """(targets, options, cotangent) as arrays of ``xp``."""

        def conv(a: Any) -> Any:
            if isinstance(a, np.ndarray):
                return xp.asarray(a, device=device)
            return a

        return conv(self.t), {k: conv(v) for k, v in self.options.items()}, conv(self.cotangent)

    def scalar_fn(self, xp: Any, device: Any) -> Callable[[Any], Any]:
        """x -> scalar loss in ``xp`` (the cotangent-weighted sum for "none")."""
        t, opts, v = self.converted(xp, device)
        fn, none = self.fn, self.reduction == "none"

        def scalar(x: Any) -> Any:
            out = fn(x, t, **opts)
            return xp.sum(out * v) if none else out

        return scalar


def assert_grad_close(got: Any, want: np.ndarray, rtol: float, atol: float, msg: str = "") -> None:
    got_np = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got)
    assert got_np.dtype == np.float64, got_np.dtype
    np.testing.assert_allclose(got_np, want, rtol=rtol, atol=atol, err_msg=msg)


def autodiff_grad(backend: str, scalar: Callable[[Any], Any], x: np.ndarray, device: Any) -> Any:
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return jax.grad(scalar)(jnp.asarray(x))
    import torch

    xt = torch.tensor(x, dtype=torch.float64, device=device, requires_grad=True)
    scalar(xt).backward()
    return xt.grad


# ------------------------------------------------------------- analytic gradients


def analytic_grad_at_zero(case: Case) -> np.ndarray:
    """Closed-form gradient of the case's scalar loss at logits exactly 0.

    With p = sigmoid(0) = 1/2 or softmax(0) = 1/K the derivatives simplify to:
    - BCE:  w * ((1 - y') / 2 - pw * y' / 2)
    - sigmoid focal: alpha_t * (g 2^(1-g) (1 - 2y') log(2) / 4 + 2^-g (1/2 - y'))
    - CE: -w_c q'_c + (1/K) sum_k w_k q'_k
    - softmax focal: -(F/K) (a_c q'_c - (1/K) sum_k a_k q'_k) with
      F = -g (1 - 1/K)^(g-1) log(1/K) + K (1 - 1/K)^g
    each divided by the mean's denominator and weighted by the cotangent for "none".
    """
    o = dict(case.options)
    name = case.fn.__name__
    eps = o.get("label_smoothing", 0.0)
    smoothing = o.get("smoothing", "uniform")
    if name in ("binary_cross_entropy", "sigmoid_focal_loss"):
        y = ref._smooth(np.asarray(case.t, dtype=np.float64), eps, 2, smoothing)
        if name == "binary_cross_entropy":
            pw = o.get("pos_weight", 1.0)
            g = o.get("weight", 1.0) * (0.5 * (1 - y) - 0.5 * pw * y)
        else:
            gamma = np.broadcast_to(o.get("gamma", 2.0), y.shape)
            alpha = o.get("alpha", 0.25)
            a_t = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
            g = a_t * (
                gamma * 0.5 ** (gamma - 1) * 0.25 * (1 - 2 * y) * np.log(2.0)
                + 0.5**gamma * (0.5 - y)
            )
        g = np.broadcast_to(g, case.x.shape)
        denominator = g.size
    else:
        axis = case.axis
        t = np.asarray(case.t)
        if t.dtype.kind == "i":
            kept = t != o.get("ignore_index", -(10**9))
            q = np.eye(C)[np.where(kept, t, 0)]
        else:
            q = np.moveaxis(t, axis, -1)
            kept = np.ones(q.shape[:-1], dtype=bool)
        q = ref._smooth(q, eps, C, smoothing)
        if name == "cross_entropy":
            w = o.get("weight", np.ones(C))
            wq = w * q
            g = -wq + wq.sum(-1, keepdims=True) / C
            denominator = (
                np.sum(np.where(kept, w[np.where(kept, t, 0)], 0.0))
                if t.dtype.kind == "i"
                else kept.size
            )
        else:
            alpha = o.get("alpha")
            a = np.ones(C) if alpha is None else np.broadcast_to(alpha, (C,))
            gamma = o.get("gamma", 2.0)
            gamma = np.moveaxis(np.broadcast_to(gamma, case.x.shape), axis, -1)
            big_f = -gamma * (1 - 1 / C) ** (gamma - 1) * np.log(1 / C) + C * (1 - 1 / C) ** gamma
            aq = a * q
            # gamma is per-sample here (constant along the class axis)
            g = -(big_f / C) * (aq - aq.sum(-1, keepdims=True) / C)
            denominator = int(kept.sum())
        g = np.where(kept[..., None], g, 0.0)
        if case.reduction == "none":
            g = g * case.cotangent[..., None]
        g = np.moveaxis(g, -1, axis)
    if case.reduction == "none" and name in ("binary_cross_entropy", "sigmoid_focal_loss"):
        g = g * case.cotangent
    if case.reduction == "mean":
        g = g / denominator
    return np.asarray(g, dtype=np.float64)


def analytic_grad(case: Case) -> np.ndarray:
    """Closed-form gradient at any logits, for BCE and cross-entropy (from logits).

    BCE: w * (sigmoid(x) * (pw y' + 1 - y') - pw y');  CE: p_c sum_k w_k q'_k - w_c q'_c.
    """
    o = dict(case.options)
    name = case.fn.__name__
    eps = o.get("label_smoothing", 0.0)
    smoothing = o.get("smoothing", "uniform")
    if name == "binary_cross_entropy":
        y = ref._smooth(np.asarray(case.t, dtype=np.float64), eps, 2, smoothing)
        pw = o.get("pos_weight", 1.0)
        g = o.get("weight", 1.0) * (ref.sigmoid(case.x) * (pw * y + 1 - y) - pw * y)
        if case.reduction == "none":
            return g * case.cotangent
        return g / (g.size if case.reduction == "mean" else 1)
    assert name == "cross_entropy"
    axis = case.axis
    t = np.asarray(case.t)
    kept = t != o.get("ignore_index", -(10**9))
    q = ref._smooth(np.eye(C)[np.where(kept, t, 0)], eps, C, smoothing)
    w = o.get("weight", np.ones(C))
    p = ref.softmax(np.moveaxis(case.x, axis, -1))
    wq = w * q
    g = np.where(kept[..., None], p * wq.sum(-1, keepdims=True) - wq, 0.0)
    if case.reduction == "none":
        g = g * case.cotangent[..., None]
    elif case.reduction == "mean":
        g = g / np.sum(np.where(kept, w[np.where(kept, t, 0)], 0.0))
    return np.moveaxis(g, -1, axis)


ANALYTIC_CASES = [
    "bce",
    "bce_weight_pos_weight_smooth_sum",
    "bce_others_none",
    "ce",
    "ce_nchw_weight_ignore_smooth",
    "ce_none_weight",
]
ZERO_CASES = [n for n in GRAD_CASES if GRAD_CASES[n][3].get("from_logits", True)]


def test_analytic_formulas_match_reference_fd():
    """The hand-derived gradients above agree with finite differences of the reference."""
    for name in ANALYTIC_CASES:
        case = Case(name)
        np.testing.assert_allclose(analytic_grad(case), case.fd_grad(), rtol=1e-6, atol=1e-9)
    for name in ZERO_CASES:
        case = Case(name, at_zero=True)
        np.testing.assert_allclose(
            analytic_grad_at_zero(case), case.fd_grad(), rtol=1e-6, atol=1e-9, err_msg=name
        )


# ------------------------------------------------ gradients: torch and jax alike


@only("torch", "jax")
@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_grad_matches_reference_finite_differences(xp, backend, device, name):
    case = Case(name)
    g = autodiff_grad(backend, case.scalar_fn(xp, device), case.x, device)
    assert_grad_close(g, case.fd_grad(), rtol=1e-6, atol=1e-9)


@only("torch", "jax")
@pytest.mark.parametrize("name", ANALYTIC_CASES)
def test_grad_matches_closed_form(xp, backend, device, name):
    case = Case(name)
    g = autodiff_grad(backend, case.scalar_fn(xp, device), case.x, device)
    assert_grad_close(g, analytic_grad(case), rtol=1e-12, atol=1e-15)


@only("torch", "jax")
@pytest.mark.parametrize("name", ZERO_CASES)
def test_grad_at_exactly_zero_logits(xp, backend, device, name):
    """Zero-initialised heads: the two-sided derivative, not a clamp's one-sided one."""
    case = Case(name, at_zero=True)
    g = autodiff_grad(backend, case.scalar_fn(xp, device), case.x, device)
    assert_grad_close(g, analytic_grad_at_zero(case), rtol=1e-12, atol=1e-15)


@only("torch", "jax")
def test_bce_grad_at_zero_is_half_minus_target(xp, backend, device):
    """d/dx BCE(x, y) at x = 0 is sigmoid(0) - y = 0.5 - y (sum reduction)."""
    y = np.array([0.0, 1.0, 0.25, 0.5, 0.9])
    t = xp.asarray(y, device=device)
    g = autodiff_grad(
        backend,
        lambda x: al.binary_cross_entropy(x, t, reduction="sum"),
        np.zeros(5),
        device,
    )
    assert_grad_close(g, 0.5 - y, rtol=0, atol=1e-16)


# --------------------------------------------------------------------------- JAX


@only("jax")
@pytest.mark.parametrize("name", [*ANALYTIC_CASES, "softmax_focal_alpha_vec_ignore_nchw"])
def test_jax_jit_of_grad(xp, device, name):
    import jax

    case = Case(name)
    g = jax.jit(jax.grad(case.scalar_fn(xp, device)))(xp.asarray(case.x))
    want = analytic_grad(case) if name in ANALYTIC_CASES else case.fd_grad()
    assert_grad_close(g, want, rtol=1e-6 if name not in ANALYTIC_CASES else 1e-12, atol=1e-12)


@only("jax")
@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
@pytest.mark.parametrize("axis", [0, 1])
def test_jax_class_axis_not_last_both_routes(xp, device, name, axis):
    """With the class axis not last, the label's log-probability is taken after moving
    the axis last when nothing differentiates (eager, jax.jit, jax.vmap) and in place
    under differentiation: both against the float64 reference, values and gradients,
    and the route that each transform takes."""
    import jax

    from arraylosses._backends._jax import _differentiated

    rng = seeded(f"class-axis-{name}-{axis}")
    x = rng.normal(0, 3, (3, 5, 4, 2))
    x[0, 0, 0, 0] = 40.0  # a confident element
    shape = [3, 5, 4, 2]
    del shape[axis]
    t = rng.integers(0, x.shape[axis], tuple(shape))
    fn = getattr(al, name)
    want = getattr(ref, name)(x, t, axis=axis, reduction="none")
    xj, tj = xp.asarray(x), xp.asarray(t)

    def per_element(z: Any) -> Any:
        return fn(z, tj, axis=axis, reduction="none")

    for got in (per_element(xj), jax.jit(per_element)(xj), jax.vmap(per_element)(xj[None])[0]):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=0)
    grad = jax.jit(jax.grad(lambda z: fn(z, tj, axis=axis, reduction="sum")))(xj)
    step = 1e-6
    probe = rng.normal(0, 1, x.shape)

    def total(z: np.ndarray) -> float:
        return float(getattr(ref, name)(z, t, axis=axis, reduction="sum"))

    fd = (total(x + step * probe) - total(x - step * probe)) / (2 * step)
    np.testing.assert_allclose(float(np.sum(np.asarray(grad) * probe)), fd, rtol=1e-6)
    seen: list[bool] = []

    def record(z: Any) -> Any:
        seen.append(_differentiated(z))
        return z.sum()

    jax.jit(record)(xj), jax.vmap(record)(xj), jax.grad(record)(xj)
    jax.jvp(record, (xj,), (xj,)), jax.linearize(record, xj)
    assert seen == [False, False, True, True, True]


VMAP_CASES = {
    "binary_cross_entropy": ("binary", {"pos_weight": "vec", "label_smoothing": 0.1}),
    "sigmoid_focal_loss": ("binary", {"gamma": 0.5, "alpha": 0.3}),
    "cross_entropy": ("int", {"weight": "vec", "ignore_index": -100}),
    "cross_entropy_soft": ("soft", {"label_smoothing": 0.2, "smoothing": "others"}),
    "softmax_focal_loss": ("int", {"alpha": "vec01", "ignore_index": -100}),
}


def vmap_inputs(name: str) -> tuple[Any, Any, np.ndarray, np.ndarray, dict[str, Any]]:
    kind, raw = VMAP_CASES[name]
    fname = name.removesuffix("_soft")
    rng = seeded("vmap" + name)
    x = 2.0 * rng.normal(size=(3, 5, C))
    if kind == "binary":
        t = (rng.uniform(size=x.shape) < 0.5).astype(np.float64)
    elif kind == "int":
        t = rng.integers(0, C, size=(3, 5))
        t[:, ::3] = -100
    else:
        t = rng.dirichlet(np.ones(C), size=(3, 5))
    opts = {}
    for k, v in raw.items():
        if v == "vec":
            v = rng.uniform(0.3, 2.0, size=C)
        elif v == "vec01":
            v = rng.uniform(0.1, 1.0, size=C)
        opts[k] = v
    return getattr(al, fname), getattr(ref, fname), x, t, opts


def conv_opts(xp: Any, device: Any, opts: dict[str, Any]) -> dict[str, Any]:
    return {
        k: xp.asarray(v, device=device) if isinstance(v, np.ndarray) else v for k, v in opts.items()
    }


@only("jax")
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", list(VMAP_CASES))
def test_jax_vmap(xp, device, name, reduction):
    """vmap over a leading batch axis equals the reference applied batch by batch."""
    import jax

    fn, ref_fn, x, t, opts = vmap_inputs(name)
    o = conv_opts(xp, device, opts)
    got = jax.vmap(lambda a, b: fn(a, b, reduction=reduction, **o))(xp.asarray(x), xp.asarray(t))
    want = np.stack([ref_fn(x[i], t[i], reduction=reduction, **opts) for i in range(3)])
    assert got.dtype == xp.float64
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-14)


@only("jax")
def test_jax_vmap_smooth_labels_and_one_hot(xp):
    import jax

    labels = np.array([[0, 3, 1], [2, 2, 0]])
    got = jax.vmap(lambda a: al.one_hot(a, 4, axis=0))(xp.asarray(labels))
    np.testing.assert_array_equal(
        np.asarray(got), np.stack([ref.one_hot(r, 4, axis=0) for r in labels])
    )
    q = np.eye(4)[labels]
    got = jax.vmap(lambda a: al.smooth_labels(a, 0.2, smoothing="others"))(xp.asarray(q))
    np.testing.assert_allclose(
        np.asarray(got), ref.smooth_labels(q, 0.2, smoothing="others"), rtol=1e-15
    )
    got = jax.vmap(lambda a: al.smooth_labels(a, 0.3, num_classes=4))(xp.asarray(labels))
    np.testing.assert_allclose(np.asarray(got), ref.smooth_labels(labels, 0.3, num_classes=4))


@only("jax")
def test_jax_vmap_of_grad(xp, device):
    """Per-example gradients: vmap(grad) equals the closed form, example by example."""
    import jax

    rng = seeded("vmap_grad")
    x = rng.normal(size=(4, 6, C))
    t = rng.integers(0, C, size=(4, 6))
    w = rng.uniform(0.5, 2.0, size=C)
    wx = xp.asarray(w)
    g = jax.vmap(jax.grad(lambda a, b: al.cross_entropy(a, b, weight=wx, label_smoothing=0.1)))(
        xp.asarray(x), xp.asarray(t)
    )
    for i in range(4):
        q = ref._smooth(np.eye(C)[t[i]], 0.1, C, "uniform")
        wq = w * q
        want = (ref.softmax(x[i]) * wq.sum(-1, keepdims=True) - wq) / w[t[i]].sum()
        np.testing.assert_allclose(np.asarray(g[i]), want, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------- torch


@only("torch")
@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_torch_gradcheck(xp, device, name):
    import torch

    case = Case(name)
    scalar = case.scalar_fn(xp, device)
    x = torch.tensor(case.x, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(scalar, (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


@only("torch")
@pytest.mark.parametrize(
    "name", ["bce_weight_pos_weight_smooth_sum", "sigmoid_focal", "ce", "softmax_focal"]
)
def test_torch_gradgradcheck(xp, device, name):
    """Second derivatives too (double backward through whatever backward is used)."""
    import torch

    case = Case(name)
    scalar = case.scalar_fn(xp, device)
    x = torch.tensor(case.x, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradgradcheck(scalar, (x,), eps=1e-6, atol=1e-6, rtol=1e-4)


@only("torch")
@pytest.mark.parametrize("name", ["bce", "sigmoid_focal_gamma_0.5_others", "ce", "softmax_focal"])
def test_torch_func_grad(xp, device, name):
    import torch

    case = Case(name)
    g = torch.func.grad(case.scalar_fn(xp, device))(
        torch.tensor(case.x, dtype=torch.float64, device=device)
    )
    want = analytic_grad(case) if name in ANALYTIC_CASES else case.fd_grad()
    assert_grad_close(g, want, rtol=1e-6, atol=1e-10)


@only("torch")
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", list(VMAP_CASES))
def test_torch_func_vmap(xp, device, name, reduction):
    import torch

    fn, ref_fn, x, t, opts = vmap_inputs(name)
    o = conv_opts(xp, device, opts)
    got = torch.func.vmap(lambda a, b: fn(a, b, reduction=reduction, **o))(
        torch.tensor(x, device=device), torch.tensor(t, device=device)
    )
    want = np.stack([ref_fn(x[i], t[i], reduction=reduction, **opts) for i in range(3)])
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-12, atol=1e-14)


@only("torch")
def test_torch_func_vmap_of_grad(xp, device):
    import torch

    rng = seeded("vmap_grad")
    x = rng.normal(size=(4, 6, C))
    y = (rng.uniform(size=(4, 6, C)) < 0.5).astype(np.float64)
    pw = rng.uniform(0.5, 2.0, size=C)
    pwt = torch.tensor(pw, device=device)
    g = torch.func.vmap(
        torch.func.grad(lambda a, b: al.binary_cross_entropy(a, b, pos_weight=pwt, reduction="sum"))
    )(torch.tensor(x, device=device), torch.tensor(y, device=device))
    want = ref.sigmoid(x) * (pw * y + 1 - y) - pw * y
    assert_grad_close(g, want, rtol=1e-12, atol=1e-15)


# torch.compile: one representative call per function, kept small (the expensive part
# is Dynamo tracing, not the arithmetic).
COMPILE_CASES = {
    "binary_cross_entropy": (
        "binary",
        {"weight": "vec", "pos_weight": "vec", "label_smoothing": 0.1, "smoothing": "others"},
    ),
    "sigmoid_focal_loss": ("binary", {"gamma": 0.5, "alpha": 0.3, "label_smoothing": 0.1}),
    "cross_entropy": ("int", {"weight": "vec", "ignore_index": -100, "label_smoothing": 0.1}),
    "cross_entropy_soft": ("soft", {"weight": "vec", "axis": 1}),
    "softmax_focal_loss": ("int", {"alpha": "vec01", "ignore_index": -100, "axis": 1}),
    "softmax_focal_loss_per_sample_gamma": ("int", {"gamma": "per_sample", "alpha": 0.25}),
}


def compile_inputs(name: str) -> tuple[Callable, Callable, np.ndarray, np.ndarray, dict]:
    kind, raw = COMPILE_CASES[name]
    fname = name.removesuffix("_soft").removesuffix("_per_sample_gamma")
    rng = seeded("compile" + name)
    axis = raw.get("axis", -1)
    x = 2.0 * rng.normal(size=(6, C))
    if kind == "binary":
        t = (rng.uniform(size=x.shape) < 0.5).astype(np.float64)
    elif kind == "int":
        t = rng.integers(0, C, size=6)
        t[::3] = -100 if "ignore_index" in raw else t[::3]
    else:
        t = rng.dirichlet(np.ones(C), size=6)
    if axis == 1:  # the (N, C, d) layout
        x = x.reshape(3, 2, C).transpose(0, 2, 1).copy()
        t = t.reshape(3, 2) if kind == "int" else t.reshape(3, 2, C).transpose(0, 2, 1).copy()
    opts: dict[str, Any] = {}
    for k, v in raw.items():
        if v == "vec":
            v = rng.uniform(0.3, 2.0, size=C if kind != "binary" else x.shape[-1])
        elif v == "vec01":
            v = rng.uniform(0.1, 1.0, size=C)
        elif v == "per_sample":
            v = rng.uniform(0.0, 3.0, size=(x.shape[0], 1))
        opts[k] = v
    return getattr(al, fname), getattr(ref, fname), x, t, opts


@only("torch")
@pytest.mark.slow
@pytest.mark.filterwarnings(DYNAMO_LRU_WARNING)
@pytest.mark.parametrize("name", list(COMPILE_CASES))
def test_torch_compile_fullgraph(xp, device, name):
    """fullgraph=True: any graph break is an error. Values, and a backward, checked."""
    import torch

    torch._dynamo.reset()
    fn, ref_fn, x, t, opts = compile_inputs(name)
    o = conv_opts(xp, device, opts)
    tt = torch.tensor(t, device=device)

    def loss(a: Any, b: Any) -> Any:
        return fn(a, b, reduction="sum", **o)

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    xt = torch.tensor(x, device=device, requires_grad=True)
    out = compiled(xt, tt)
    np.testing.assert_allclose(
        out.detach().cpu().numpy(), ref_fn(x, t, reduction="sum", **opts), rtol=1e-12
    )
    out.backward()
    scalar_ref = lambda a: float(ref_fn(a, t, reduction="sum", **opts))  # noqa: E731
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        fd[i] = (scalar_ref(up) - scalar_ref(down)) / 2e-6
    assert_grad_close(xt.grad, fd, rtol=1e-6, atol=1e-9)


@only("torch")
@pytest.mark.slow
@pytest.mark.filterwarnings(DYNAMO_LRU_WARNING)
def test_torch_compile_every_reduction_and_one_hot_smooth_labels(xp, device):
    import torch

    torch._dynamo.reset()
    rng = seeded("compile_misc")
    x = rng.normal(size=(5, C))
    t = rng.integers(0, C, size=5)
    xt, tt = torch.tensor(x, device=device), torch.tensor(t, device=device)
    for reduction in ("none", "mean", "sum"):
        got = torch.compile(
            lambda a, b, r=reduction: al.softmax_focal_loss(a, b, reduction=r),
            fullgraph=True,
            backend="eager",
        )(xt, tt)
        want = ref.softmax_focal_loss(x, t, reduction=reduction)
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-12)
    got = torch.compile(lambda b: al.one_hot(b, C, axis=0), fullgraph=True, backend="eager")(tt)
    np.testing.assert_array_equal(got.cpu().numpy(), ref.one_hot(t, C, axis=0))
    got = torch.compile(
        lambda b: al.smooth_labels(b, 0.2, num_classes=C, smoothing="others", dtype=torch.float64),
        fullgraph=True,
        backend="eager",
    )(tt)
    np.testing.assert_allclose(
        got.cpu().numpy(), ref.smooth_labels(t, 0.2, num_classes=C, smoothing="others")
    )


EXPLAIN_CALLS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "binary_cross_entropy": lambda x, y, t: al.binary_cross_entropy(
        x, y, pos_weight=x[0], label_smoothing=0.1
    ),
    "sigmoid_focal_loss": lambda x, y, t: al.sigmoid_focal_loss(x, y, gamma=0.5),
    "cross_entropy": lambda x, y, t: al.cross_entropy(
        x, t, weight=[1.0, 2.0, 0.5, 1.0], ignore_index=-100, label_smoothing=0.1
    ),
    "softmax_focal_loss": lambda x, y, t: al.softmax_focal_loss(
        x, t, alpha=[0.1, 0.2, 0.3, 0.4], ignore_index=-100
    ),
    "smooth_labels": lambda x, y, t: al.smooth_labels(t, 0.1, num_classes=C),
    "one_hot": lambda x, y, t: al.one_hot(t, C),
}


@only("torch")
@pytest.mark.slow
@pytest.mark.filterwarnings(DYNAMO_LRU_WARNING)
@pytest.mark.parametrize("name", list(EXPLAIN_CALLS))
def test_torch_dynamo_explain_no_graph_breaks(xp, device, name):
    import torch

    torch._dynamo.reset()
    x = torch.randn(5, C, dtype=torch.float64, device=device)
    y = (torch.rand(5, C, device=device) < 0.5).to(torch.float64)
    t = torch.tensor([0, 3, -100, 1, 2], device=device)
    if name in ("smooth_labels", "one_hot"):
        t = torch.tensor([0, 3, 3, 1, 2], device=device)
    explanation = torch._dynamo.explain(EXPLAIN_CALLS[name])(x, y, t)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
