"""Numerics matrix: extreme logits, every gamma, soft and hard targets, four dtypes.

- values: finite and close to the float64 reference (computed on the rounded inputs)
  for logits up to +-1e4 in float32/float64 and up to the largest finite value in
  float16/bfloat16 (NumPy too, where it also checks that no RuntimeWarning is raised:
  pytest turns warnings into errors);
- gradients (torch.autograd, jax.grad): finite, and equal to central differences of
  the float64 reference (the losses are smooth in the logits everywhere);
- Hessians (jax.hessian, torch.func.hessian) finite at +-100 with gamma = 0.5 and
  soft targets;
- shift invariance of the softmax losses at 1e6 (float32), 4096 (float16) and 256
  (bfloat16) for logits exactly representable before and after the shift.

The softmax losses can reach twice the largest logit (``lse - x_y``), so in half
precision their logits go to half the largest finite value: the loss itself stays
representable, and what is tested is the algorithm, not the dtype's range.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest

import arraylosses as al
from arraylosses.testing import reference as ref

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")
DTYPES = ("float16", "bfloat16", "float32", "float64")
GAMMAS = (0.0, 0.25, 0.5, 1.0, 2.0, 5.0)
LARGEST = {
    "float16": float(np.finfo(np.float16).max),
    "bfloat16": float(ml_dtypes.finfo(ml_dtypes.bfloat16).max),
    "float32": 1e4,
    "float64": 1e4,
}
EPS = {
    "float16": 2.0**-10,
    "bfloat16": 2.0**-7,
    "float32": 2.0**-23,
    "float64": 2.0**-52,
}
CASES = [
    ("binary_cross_entropy", None),
    ("cross_entropy", None),
    *[("sigmoid_focal_loss", g) for g in GAMMAS],
    *[("softmax_focal_loss", g) for g in GAMMAS],
]
CASE_IDS = [name if g is None else f"{name}-gamma{g}" for name, g in CASES]
K = 4
# torch.func.hessian (jacfwd) calls torch.jit.script internally on first use
TORCH_JIT_SCRIPT_WARNING = "ignore:`torch.jit.script` is deprecated:DeprecationWarning"


def only(*backends: str) -> Any:
    reason = f"numerics matrix: runs on {'/'.join(backends)}"

    def decorate(fn: Any) -> Any:
        for b in ALL_BACKENDS:
            if b not in backends:
                fn = pytest.mark.skip_xp_backend(b, reason=reason)(fn)
        return fn

    return decorate


def round_to(a: Any, dtype: str) -> np.ndarray:
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    return np.asarray(a, dtype=np.float64).astype(np_dtype).astype(np.float64)


def to_numpy(x: Any) -> np.ndarray:
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        return (x.double() if x.is_floating_point() else x).numpy()
    return np.asarray(x).astype(np.float64)


def backend_dtype(xp: Any, backend: str, dtype: str) -> Any:
    dt = getattr(xp, dtype, None)
    if dt is None:
        pytest.skip(f"{backend} has no {dtype} dtype")
    return dt


def binary_inputs(dtype: str, soft: bool) -> tuple[np.ndarray, np.ndarray]:
    m = LARGEST[dtype]
    x = np.array([-m, -m / 2, -1e4, -100, -17.5, -1, -1e-3, 0, 1e-3, 1, 17.5, 100, 1e4, m / 2, m])
    x = round_to(np.clip(x, -m, m), dtype)
    if soft:
        y = round_to(np.resize([0.3, 0.7, 0.05, 0.5, 0.95, 0.0, 1.0], x.shape), dtype)
    else:
        y = np.resize([1.0, 0.0, 0.0, 1.0, 1.0], x.shape)
    return x, y


def softmax_inputs(dtype: str, soft: bool) -> tuple[np.ndarray, np.ndarray]:
    h = LARGEST[dtype] / 2 if dtype in ("float16", "bfloat16") else LARGEST[dtype]
    x = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],
            [h, -h, 0.0, 1.0],
            [-h, h, 100.0, -100.0],
            [1e-3, 0.0, -1e-3, 17.5],
            [100.0, 100.0, -100.0, 0.0],
            [-h, -h, -h, -h],
            [h, h / 2, -h / 2, 3.0],
        ]
    )
    x = round_to(x, dtype)
    if soft:
        q = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.0, 0.5, 0.5, 0.0],
                      [0.7, 0.1, 0.1, 0.1], [0.0, 0.0, 1.0, 0.0], [0.4, 0.3, 0.2, 0.1],
                      [0.05, 0.05, 0.05, 0.85]])  # fmt: skip
        return x, q
    return x, np.array([0, 1, 0, 3, 2, 1, 2])


def inputs_for(name: str, dtype: str, soft: bool) -> tuple[np.ndarray, np.ndarray]:
    return (
        binary_inputs(dtype, soft)
        if "sigmoid" in name or "binary" in name
        else (softmax_inputs(dtype, soft))
    )


def options(name: str, gamma: float | None) -> dict[str, Any]:
    opts: dict[str, Any] = {"reduction": "none"}
    if gamma is not None:
        opts["gamma"] = gamma
    if name == "sigmoid_focal_loss":
        opts["alpha"] = 0.25
    return opts


def tolerance(dtype: str, x: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per-element allowed error: a few ulps of the loss, plus of the logits it cancels."""
    scale = np.abs(x) if x.shape == expected.shape else np.abs(x).max(axis=-1)
    ulps = 8.0 if dtype in ("float16", "bfloat16") else 64.0
    return ulps * EPS[dtype] * (np.abs(expected) + scale + 1.0)


def backend_targets(xp: Any, backend: str, device: Any, t: np.ndarray, dtype: str) -> Any:
    if t.dtype.kind == "i":
        return xp.asarray(t, device=device) if device is not None else xp.asarray(t)
    return make_array(xp, backend, device, t, dtype)


def make_array(xp: Any, backend: str, device: Any, a: np.ndarray, dtype: str) -> Any:
    """``a`` (already rounded to ``dtype``) as a ``dtype`` array of the backend."""
    dt = backend_dtype(xp, backend, dtype)
    if backend == "torch":
        import torch

        return torch.tensor(a, dtype=torch.float64, device=device).to(dt)
    return xp.astype(xp.asarray(np.asarray(a, dtype=np.float64)), dt)


# ------------------------------------------------------------------------ values


@only("numpy", "torch", "jax")
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "gamma"), CASES, ids=CASE_IDS)
def test_extreme_logits_values(xp, backend, device, name, gamma, dtype, soft):
    """Finite, and within a few ulps of the float64 reference, at extreme logits.
    (On NumPy this also proves that no RuntimeWarning is emitted.)"""
    x_np, t_np = inputs_for(name, dtype, soft)
    x = make_array(xp, backend, device, x_np, dtype)
    t = backend_targets(xp, backend, device, t_np, dtype)
    opts = options(name, gamma)
    got = to_numpy(getattr(al, name)(x, t, **opts))
    expected = getattr(ref, name)(x_np, t_np, **opts)
    where = f"{name} {opts} {dtype} {'soft' if soft else 'hard'}"
    assert np.isfinite(got).all(), f"{where}: not finite at {np.argwhere(~np.isfinite(got))}"
    err = np.abs(got - expected)
    tol = tolerance(dtype, x_np, expected)
    assert (err <= tol).all(), (
        f"{where}: max error {err.max():.3g} at {np.argmax(err - tol)}; got {got}, "
        f"reference {expected}"
    )


# --------------------------------------------------------------------- gradients


def reference_gradient(name: str, x: np.ndarray, t: np.ndarray, opts: dict) -> np.ndarray:
    """Central differences of the float64 reference, one class column at a time.

    Softmax losses are differentiated at ``x - max(x)`` (the same loss, by shift
    invariance): near a huge common value no float64 step is small enough.
    """
    fn = getattr(ref, name)
    if x.ndim == 2:
        x = x - x.max(axis=-1, keepdims=True)
        # the loss is O(spread of the row): a step relative to it keeps float64
        # rounding of the loss below 1e-8 of the gradient
        h = 1e-7 * np.maximum(1.0, np.abs(x).max(axis=-1, keepdims=True)) * np.ones_like(x)
    else:
        h = 1e-7 * np.maximum(1.0, np.abs(x))
    grad = np.zeros_like(x)
    columns = [slice(None)] if x.ndim == 1 else [(slice(None), c) for c in range(x.shape[1])]
    for col in columns:
        up, down = x.copy(), x.copy()
        up[col] += h[col]
        down[col] -= h[col]
        step = up[col] - down[col]
        diff = fn(up, t, **opts) - fn(down, t, **opts)
        grad[col] = diff / step
    return grad


def backend_gradient(backend: str, fn: Any, x: Any, t: Any) -> Any:
    if backend == "jax":
        import jax

        return jax.grad(lambda a: fn(a, t))(x)
    import torch

    leaf = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(leaf, t), leaf)
    return g


@only("torch", "jax")
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "gamma"), CASES, ids=CASE_IDS)
def test_extreme_logits_gradients(xp, backend, device, name, gamma, dtype, soft):
    """Gradients finite for every gamma >= 0 (0 < gamma < 1 at saturated logits too), and
    equal to finite differences of the float64 reference."""
    x_np, t_np = inputs_for(name, dtype, soft)
    x = make_array(xp, backend, device, x_np, dtype)
    t = backend_targets(xp, backend, device, t_np, dtype)
    opts = {**options(name, gamma), "reduction": "sum"}
    g = to_numpy(backend_gradient(backend, lambda a, b: getattr(al, name)(a, b, **opts), x, t))
    where = f"d {name} {opts} / d logits, {dtype} {'soft' if soft else 'hard'}"
    assert np.isfinite(g).all(), f"{where}: not finite at {np.argwhere(~np.isfinite(g))}: {g}"
    fd = reference_gradient(name, x_np, t_np, {**opts, "reduction": "none"})
    # gradients are O(1); half precision rounds the result (and float32 the internals)
    tol = {"float16": 4e-3, "bfloat16": 2e-2, "float32": 1e-4, "float64": 1e-6}[dtype]
    np.testing.assert_allclose(g, fd, rtol=tol, atol=tol, err_msg=where)


@only("torch", "jax")
@pytest.mark.filterwarnings(TORCH_JIT_SCRIPT_WARNING)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["sigmoid_focal_loss", "softmax_focal_loss",
                                  "binary_cross_entropy", "cross_entropy"])  # fmt: skip
def test_hessian_finite_at_saturation(xp, backend, device, name, dtype):
    """Second derivatives at +-100, gamma = 0.5, soft targets: finite everywhere."""
    if "sigmoid" in name or "binary" in name:
        x_np = np.array([-100.0, 100.0, -100.0, 100.0, 0.0, 3.0])
        t_np = np.array([0.3, 0.7, 0.0, 1.0, 0.5, 0.2])
    else:
        x_np = np.array([[100.0, -100.0, 0.0], [-100.0, 100.0, 100.0], [0.0, 0.0, -100.0]])
        t_np = np.array([[0.2, 0.3, 0.5], [0.0, 0.6, 0.4], [0.1, 0.0, 0.9]])
    opts: dict[str, Any] = {"reduction": "sum", "label_smoothing": 0.1}
    if "focal" in name:
        opts["gamma"] = 0.5
    x = make_array(xp, backend, device, x_np, dtype)
    t = make_array(xp, backend, device, t_np, dtype)
    if backend == "jax":
        import jax

        # jit: one XLA compilation instead of one per primitive of the second derivative
        hess = jax.jit(jax.hessian(lambda a: getattr(al, name)(a, t, **opts)))(x)
    else:
        import torch

        hess = torch.func.hessian(lambda a: getattr(al, name)(a, t, **opts))(x)
    h = to_numpy(hess)
    assert h.shape == x_np.shape * 2
    assert np.isfinite(h).all(), f"{name} Hessian not finite at {np.argwhere(~np.isfinite(h))}"


# ------------------------------------------------------------ shift invariance

SHIFTS = {"float32": 1e6, "float16": 4096.0, "bfloat16": 256.0}
# grid steps that keep x and x + shift exact: ulp(1e6) in float32 is 1/16, ulp(4096)
# in float16 is 4, ulp(256) in bfloat16 is 2
GRID = {"float32": 1 / 16, "float16": 4.0, "bfloat16": 2.0}


@only("torch", "jax")
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("dtype", list(SHIFTS))
@pytest.mark.parametrize(
    ("name", "gamma"),
    [("cross_entropy", None), *[("softmax_focal_loss", g) for g in GAMMAS]],
    ids=["cross_entropy", *[f"softmax_focal_loss-gamma{g}" for g in GAMMAS]],
)
def test_softmax_shift_invariance(xp, backend, device, name, gamma, dtype, soft):
    """loss(x + c) == loss(x) for c = 1e6 / 4096 / 256, x and x + c exactly representable,
    and both equal to the float64 reference at x."""
    rng = np.random.default_rng(7)
    x_np = GRID[dtype] * rng.integers(-4, 5, size=(6, K)).astype(np.float64)
    shifted_np = x_np + SHIFTS[dtype]
    assert np.array_equal(round_to(x_np, dtype), x_np)
    assert np.array_equal(round_to(shifted_np, dtype), shifted_np)
    if soft:
        z = rng.random((6, K))
        t_np = round_to(z / z.sum(axis=-1, keepdims=True), dtype)
    else:
        t_np = rng.integers(0, K, size=6)
    t = backend_targets(xp, backend, device, t_np, dtype)
    opts = options(name, gamma)
    fn = getattr(al, name)
    base = to_numpy(fn(make_array(xp, backend, device, x_np, dtype), t, **opts))
    moved = to_numpy(fn(make_array(xp, backend, device, shifted_np, dtype), t, **opts))
    expected = getattr(ref, name)(x_np, t_np, **opts)
    where = f"{name} {opts} {dtype} shifted by {SHIFTS[dtype]}"
    tol = tolerance(dtype, x_np, expected)
    assert (np.abs(moved - base) <= tol).all(), f"{where}: {moved} vs unshifted {base}"
    assert (np.abs(moved - expected) <= tol).all(), f"{where}: {moved} vs reference {expected}"


# ------------------------------------------------------------- NumPy warnings


@only("numpy")
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("name", ["binary_cross_entropy", "sigmoid_focal_loss",
                                  "cross_entropy", "softmax_focal_loss"])  # fmt: skip
def test_numpy_no_runtime_warning_at_dtype_limits(xp, name, dtype):
    """Any finite input, up to the dtype's largest and smallest values, probabilities of
    exactly 0 and 1: no RuntimeWarning (pytest raises on one), every option."""
    info = np.finfo(dtype)
    big, tiny = float(info.max), float(info.smallest_subnormal)
    values = np.array([-big, big, -tiny, tiny, 0.0, 1.0, -1e4, 1e4], dtype=dtype)
    probs = np.array([0.0, 1.0, tiny, 1 - float(info.eps), 0.5, 0.25, 0.0, 1.0], dtype=dtype)
    fn = getattr(al, name)
    if "sigmoid" in name or "binary" in name:
        inputs = [(values, np.resize(np.array([1.0, 0.0, 0.3], dtype), 8))]
        prob_inputs = [(probs, np.resize(np.array([1.0, 0.0, 0.3], dtype), 8))]
    else:
        # labels on the largest logit of each row: the loss is ~0 (representable), while
        # x - max(x) reaches -2 * max on the way
        rows = values.reshape(2, 4)
        soft = np.array([[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype)
        inputs = [(rows, np.array([1, 3])), (rows, soft)]
        prob_inputs = [(probs.reshape(2, 4), np.array([0, 3]))]
    for eps in (0.0, 0.1):
        for extra in ({}, {"gamma": 0.5}) if "focal" in name else ({},):
            for x, t in inputs:
                fn(x, t, label_smoothing=eps, reduction="none", **extra)
            for p, t in prob_inputs:
                out = fn(p, t, label_smoothing=eps, from_logits=False, reduction="none", **extra)
                assert np.isfinite(out).all(), f"{name} on probabilities {p}: {out}"


# ------------------------------------------------------------ confident classes


def _exact_softmax_focal(
    x: np.ndarray, labels: np.ndarray, gamma: float, eps: float
) -> tuple[list, np.ndarray, np.ndarray]:
    """The softmax focal loss of each row, uniform smoothing ``eps``, in 40-digit
    arithmetic from the rounded logits (``1 - p_c`` as the other classes' share: no
    cancellation); with it, per row, ``1 - p`` of the most probable class and that
    class's term of the loss."""
    mpmath = pytest.importorskip("mpmath", reason="mpmath gives the exact reference")
    with mpmath.workdps(40):
        losses, shares, top_terms = [], [], []
        for row, label in zip(x, labels):
            z = [mpmath.mpf(float(v)) for v in row]
            lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
            others = [mpmath.fsum(mpmath.exp(w - lse) for d, w in enumerate(z) if d != c)
                      for c in range(len(z))]  # fmt: skip
            q = [(1 - eps) * (c == label) + mpmath.mpf(eps) / len(z) for c in range(len(z))]
            terms = [-q[c] * others[c] ** gamma * (z[c] - lse) for c in range(len(z))]
            losses.append(mpmath.fsum(terms))
            top = int(np.argmax(row))
            shares.append(float(others[top]))
            top_terms.append(float(terms[top]))
    return losses, np.array(shares), np.array(top_terms)


@only("numpy", "torch", "jax")
@pytest.mark.parametrize("eps", [0.0, 0.1], ids=["hard", "smoothed"])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_focal_confident_classes(xp, backend, device, dtype, gamma, eps):
    """``1 - p`` of a confident class (``1 - exp(log p)``) is as accurate as the
    softmax's own rounding permits: that class's term ``(1 - p)^gamma (-log p)`` is
    about ``delta^(gamma + 1)`` for ``delta = 1 - p``, which the softmax's rounded sum
    ``1 + delta`` knows to an ulp of 1, so the term's relative error is at most
    ``gamma + 1`` ulps of 1 over ``delta`` (allowed: 4 times that), and the rest of
    the loss is within a few ulps (with smoothing, the other classes' terms are most of
    the loss). Checked against 40-digit arithmetic, from ``delta`` near 1 down to the
    dtype's epsilon, with the label on the confident class (every third row on
    another)."""
    top = 17.0 if dtype == "float32" else 36.0
    x_np = np.zeros((40, 5))
    x_np[:, 0] = np.linspace(1.0, top, 40)  # the confident class
    x_np[:, 2:] = [-1.0, 0.5, -2.0]
    x_np = round_to(x_np, dtype)
    labels = np.resize([0, 0, 1], 40)
    expected, delta, top_term = _exact_softmax_focal(x_np, labels, gamma, eps)
    x = make_array(xp, backend, device, x_np, dtype)
    t = backend_targets(xp, backend, device, labels, dtype)
    got = to_numpy(al.softmax_focal_loss(x, t, gamma=gamma, label_smoothing=eps,
                                         reduction="none"))  # fmt: skip
    err = np.array([float(abs(g - e)) for g, e in zip(got, expected)])
    exact = np.array([float(e) for e in expected])
    bound = 4 * (gamma + 1) * EPS[dtype] / delta * top_term + 64 * EPS[dtype] * exact
    worst = int(np.argmax(err / bound))
    assert (err <= bound).all(), (
        f"row {worst} (1 - p = {delta[worst]:.3g}): error {err[worst]:.3g} > "
        f"{bound[worst]:.3g}; got {got[worst]!r}, exact {exact[worst]!r}"
    )
