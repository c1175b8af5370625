"""Edges docs/contract.md claims, tested over whole classes of input.

Each test covers one class of failure found by fuzzing 0.1 (not one reproducer):
bfloat16 softmax losses computed in float32, relative accuracy of every arrangement
at saturated logits with soft targets, NaN reaching the row's loss with
``from_logits=False``, batched backward through the PyTorch autograd function,
differentiable class weights, every integer label dtype, Dask arrays of unknown
size, negative summed class weights, and infinite gamma entries.
"""

from __future__ import annotations

import itertools
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from array_api_extra.testing import assert_close

import arraylosses as al
from arraylosses.testing import load, to_numpy
from arraylosses.testing import reference as ref

# ------------------------------------------------ bfloat16 softmax, float32 compute

BF16_MAX = 3.3895313892515355e38
EXTREME_ROWS = [
    [-3e38, 3e38, 3e38],
    [3e38, -3e38, 0.0],
    [-3.3e38, 3.3e38, 1.0],
    [1e38, -1e38, -3e38],
    [0.0, 1.0, -2.0],
]


def _bf16_cases() -> list[tuple[str, dict[str, Any], str]]:
    cases = []
    for name, options in itertools.product(
        ["cross_entropy", "softmax_focal_loss"],
        [
            {},
            {"label_smoothing": 0.1},
            {"label_smoothing": 0.3, "smoothing": "others"},
        ],
    ):
        for targets in ("labels", "soft"):
            cases.append((name, options, targets))
    cases += [
        ("softmax_focal_loss", {"gamma": "array"}, "labels"),
        ("softmax_focal_loss", {"gamma": "array", "label_smoothing": 0.1}, "soft"),
        ("softmax_focal_loss", {"gamma": 0.5, "alpha": [0.2, 0.3, 0.5]}, "labels"),
    ]
    return cases


@pytest.mark.parametrize(("name", "options", "targets"), _bf16_cases())
@pytest.mark.parametrize("backend_name", ["jax (x64 off)", "torch"])
def test_bfloat16_softmax_losses_near_the_largest_finite_value(
    backend_name: str, name: str, options: dict[str, Any], targets: str
) -> None:
    """Per-row losses of bfloat16 logits spanning up to ``max - (-max)``: within bf16
    rounding of the float64 reference on the rounded inputs, ``inf`` exactly where the
    true loss exceeds the bfloat16 range, never NaN; and the gradient finite."""
    import ml_dtypes

    x64 = np.asarray(EXTREME_ROWS, dtype=ml_dtypes.bfloat16).astype(np.float64)
    n, k = x64.shape
    labels = np.arange(n) % k
    soft = np.asarray([[0.1, 0.1, 0.8]] * n, dtype=ml_dtypes.bfloat16).astype(np.float64)
    t64 = labels if targets == "labels" else soft
    ref_options = {key: (2.0 if v == "array" else v) for key, v in options.items()}
    want = getattr(ref, name)(x64, t64, reduction="none", **ref_options)
    if backend_name == "torch":
        torch = pytest.importorskip("torch")

        def put(a: Any) -> Any:
            if a.dtype.kind == "f":
                return torch.asarray(a, dtype=torch.bfloat16)
            return torch.asarray(a)

        context: Any = _null()
    else:
        jax = pytest.importorskip("jax")

        def put(a: Any) -> Any:
            import jax.numpy as jnp

            return jnp.asarray(a, dtype=jnp.bfloat16 if a.dtype.kind == "f" else jnp.int32)

        context = jax.enable_x64(False)
    with context:
        call_options = dict(options)
        if options.get("gamma") == "array":
            call_options["gamma"] = put(np.full((n, k), 2.0))
        got = getattr(al, name)(put(x64), put(t64), reduction="none", **call_options)
        got64 = to_numpy(got).astype(np.float64)
    too_big = want > BF16_MAX
    assert not np.isnan(got64).any(), got64
    assert (np.isinf(got64) == too_big).all(), (got64, want)
    fine = ~too_big
    np.testing.assert_allclose(got64[fine], want[fine], rtol=2e-2, atol=1e-2)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


# ------------------------------- relative accuracy at saturated logits, soft targets

SAT_LOGITS = [20.0, -20.0, 50.0, -50.0, 100.0, -100.0, 1e4, -1e4]
SAT_TARGETS = [0.0, 1e-6, 1e-3, 0.3, 1 - 1e-3, 1 - 1e-6, 1.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("gamma", [0.0, 1e-6, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_sigmoid_focal_keeps_relative_accuracy_at_saturated_logits(
    xp: ModuleType, asarray: Any, dtype: str, gamma: float, reduction: str
) -> None:
    """Every arrangement (the definition, the NumPy kernel, the PyTorch kernel) keeps
    the definition's relative accuracy for soft targets near 0 and 1 at saturated
    logits, including the ``e^-|x|`` tails of confident elements; gamma = 0 equals
    the binary cross-entropy there."""
    pairs = np.asarray(list(itertools.product(SAT_LOGITS, SAT_TARGETS)))
    x_np = pairs[:, 0].astype(dtype)
    y_np = pairs[:, 1].astype(dtype)  # the reference sees the rounded targets
    x, y = asarray(x_np), asarray(y_np)
    got = al.sigmoid_focal_loss(x, y, alpha=None, gamma=gamma, reduction=reduction)
    want = ref.sigmoid_focal_loss(x_np, y_np, alpha=None, gamma=gamma, reduction=reduction)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    # relative accuracy down to the smallest normal number; below it (e^-100 in
    # float32) subnormals carry few digits, and the focal factor's limit is 0
    tiny = float(np.finfo(dtype).smallest_normal)
    np.testing.assert_allclose(to_numpy(got).astype(np.float64), want, rtol=rtol, atol=tiny)
    if gamma == 0.0:
        bce = al.binary_cross_entropy(x, y, reduction=reduction)
        np.testing.assert_allclose(to_numpy(got), to_numpy(bce), rtol=4 * rtol, atol=tiny)


# --------------------------------------------------- NaN reaches the row's loss


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"gamma": 0.5}])
def test_nan_probability_anywhere_in_a_row_reaches_its_loss(
    xp: ModuleType, asarray: Any, name: str, options: dict[str, Any]
) -> None:
    if name == "cross_entropy" and "gamma" in options:
        pytest.skip("no gamma")
    k = 4
    rows = []
    for position in range(k):
        row = np.full(k, 1.0 / k)
        row[position] = np.nan
        rows.append(row)
    rows.append(np.full(k, 1.0 / k))  # a clean row stays finite
    p = asarray(np.asarray(rows))
    labels = asarray(np.zeros(len(rows), dtype=np.int64))
    got = to_numpy(getattr(al, name)(p, labels, from_logits=False, reduction="none", **options))
    assert np.isnan(got[:k]).all(), got
    assert np.isfinite(got[k])


# ------------------------------ finite derivative of the clamped log (probabilities)

PROB_DTYPES = ["float16", "bfloat16", "float32", "float64"]


def _probability_grid(library: str, dtype: str) -> tuple[Any, np.ndarray]:
    """Probabilities of one dtype from 0 through its subnormals, its smallest normal
    number, the -100 floor of the log (e^-100 is normal in float64 only) and up to 1,
    as an array of ``library`` and in float64."""
    import ml_dtypes

    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    info = ml_dtypes.finfo(np_dtype) if dtype == "bfloat16" else np.finfo(np_dtype)
    tiny = float(info.smallest_normal)
    values = [0.0, float(info.smallest_subnormal), tiny / 8, tiny / 2, tiny, 2 * tiny]
    values += [1e-50, np.exp(-100.0) / 2, np.exp(-99.0), 1e-30, 1e-6, 0.3, 0.9, 1.0]
    p64 = np.unique(np.asarray(values).astype(np_dtype).astype(np.float64))
    if library == "torch":
        torch = pytest.importorskip("torch")
        return torch.asarray(p64).to(getattr(torch, dtype)), p64
    import jax.numpy as jnp

    return jnp.asarray(p64, dtype=getattr(jnp, dtype)), p64


def _gradient(library: str, f: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """(loss, gradient) of ``sum(f(p))`` by reverse mode, in float64."""
    if library == "torch":
        leaf = p.clone().requires_grad_(True)
        loss = f(leaf)
        (g,) = pytest.importorskip("torch").autograd.grad(loss.sum(), leaf)
        return to_numpy(loss.detach()).astype(np.float64), to_numpy(g).astype(np.float64)
    import jax

    loss, g = jax.vmap(jax.value_and_grad(f))(p)
    return np.asarray(loss, np.float64), np.asarray(g, np.float64)


@pytest.mark.parametrize("library", ["torch", "jax"])
@pytest.mark.parametrize("dtype", PROB_DTYPES)
@pytest.mark.parametrize("target", [1.0, 0.0, 0.3])
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("binary_cross_entropy", {}),
        ("binary_cross_entropy", {"label_smoothing": 0.1}),
        ("sigmoid_focal_loss", {"gamma": 0.0}),
        ("sigmoid_focal_loss", {"gamma": 0.01}),
        ("sigmoid_focal_loss", {"gamma": 0.5, "label_smoothing": 0.1}),
        ("sigmoid_focal_loss", {"gamma": 2.0}),
        ("sigmoid_focal_loss", {"gamma": "array"}),
    ],
)
def test_probability_gradients_are_finite_and_exact_where_representable(
    library: str, dtype: str, target: float, name: str, options: dict[str, Any]
) -> None:
    """``from_logits=False``: the derivative of the clamped log is finite for every
    probability of every dtype (``1/p`` of a subnormal overflowed to -inf), 0 where the
    -100 floor is active, and for binary cross-entropy equal to the float64 derivative
    ``-y'/p + (1 - y')/(1 - p)`` of the clamped logs wherever that is representable."""
    pytest.importorskip(library)
    pytest.importorskip("ml_dtypes")
    ctx = _null()
    if library == "jax":
        import jax

        ctx = jax.enable_x64(dtype == "float64")
    with ctx:
        p, p64 = _probability_grid(library, dtype)
        xp = load(library)
        kw = dict(options)
        if kw.get("gamma") == "array":
            kw["gamma"] = xp.asarray(0.5)

        def f(a: Any) -> Any:
            y = xp.full_like(a, target)
            return getattr(al, name)(a, y, from_logits=False, reduction="none", **kw)

        loss, grad = _gradient(library, f, p)
    finite = np.isfinite(loss)
    assert finite.all(), p64[~finite]
    assert np.isfinite(grad).all(), (p64[~np.isfinite(grad)], grad[~np.isfinite(grad)])
    if name != "binary_cross_entropy":
        return
    eps = options.get("label_smoothing", 0.0)
    t = float(np.asarray([target]).astype(p.dtype if library == "jax" else np.float64)[0])
    if library == "torch":  # the target as the dtype rounds it
        t = float(pytest.importorskip("torch").tensor(target, dtype=p.dtype))
    y = t * (1 - eps) + eps / 2

    def clamped_slope(q: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", over="ignore"):
            return np.where(np.log(q) > ref.LOG_CLAMP, 1.0 / q, 0.0)

    expected = -y * clamped_slope(p64) + (1 - y) * clamped_slope(1 - p64)
    if library == "jax" and dtype != "float64":
        representable = p64 >= 1.2e-38  # XLA on CPU flushes subnormals to zero
    else:
        representable = np.ones_like(p64, dtype=bool)
    wide = dtype in ("float16", "bfloat16")
    out_tiny = 6.2e-5 if dtype == "float16" else 1.2e-38 if dtype != "float64" else 2.3e-308
    representable &= p64 >= out_tiny  # 1/p of a subnormal overflows: finite is the promise
    rtol = {"float16": 1e-2, "bfloat16": 1e-2, "float32": 1e-5, "float64": 1e-12}[dtype]
    assert_close(grad[representable], expected[representable], rtol=rtol * (4 if wide else 1))


@pytest.mark.parametrize("library", ["torch", "jax"])
@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_of_confident_logits_has_finite_gradient(
    library: str, name: str, smoothing: float, dtype: str
) -> None:
    """``loss(softmax(x), from_logits=False)`` where softmax underflows to a subnormal
    (or to 0) at the label's class: finite loss, finite gradient with respect to ``x``."""
    pytest.importorskip(library)
    gaps = [92.0, 100.0, 103.0, 200.0] if dtype == "float32" else [700.0, 740.0, 745.0, 800.0]
    rows = np.asarray([[0.0, g, -1.0] for g in gaps], dtype=dtype)
    labels = np.zeros(len(gaps), dtype=np.int64)
    ctx = _null()
    if library == "jax":
        import jax

        ctx = jax.enable_x64(dtype == "float64")
    with ctx:
        if library == "torch":
            torch = pytest.importorskip("torch")
            x = torch.asarray(rows).requires_grad_(True)
            loss = getattr(al, name)(
                torch.softmax(x, -1), torch.asarray(labels), from_logits=False,
                label_smoothing=smoothing, reduction="none",
            )  # fmt: skip
            (g,) = torch.autograd.grad(loss.sum(), x)
            loss_np, grad = to_numpy(loss.detach()), to_numpy(g)
        else:
            import jax
            import jax.numpy as jnp

            def f(a: Any) -> Any:
                return getattr(al, name)(
                    jax.nn.softmax(a, axis=-1), jnp.asarray(labels), from_logits=False,
                    label_smoothing=smoothing, reduction="sum",
                )  # fmt: skip

            loss_np = np.asarray(f(jnp.asarray(rows)))
            grad = np.asarray(jax.grad(f)(jnp.asarray(rows)))
    assert np.isfinite(loss_np).all()
    assert np.isfinite(grad).all(), grad


# ------------------------------------------- batched backward through the kernel


def test_batched_backward_through_the_torch_kernel() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = torch.asarray(rng.normal(0, 3, 12))
    y = torch.asarray((rng.random(12) < 0.3).astype(np.float64))

    def f(a: Any) -> Any:
        return al.sigmoid_focal_loss(a, y, reduction="sum") * torch.stack([a.sum() ** 0, a[0] ** 0])

    looped = torch.autograd.functional.jacobian(f, x)
    vectorised = torch.autograd.functional.jacobian(f, x, vectorize=True)
    assert_close(vectorised, looped, rtol=1e-12, atol=0)
    leaf = x.clone().requires_grad_(True)
    out = al.sigmoid_focal_loss(leaf, y, reduction="sum")
    eye = torch.eye(1, dtype=x.dtype).reshape(1)
    (batched,) = torch.autograd.grad(
        out, leaf, torch.stack([eye[0], 2 * eye[0]]), is_grads_batched=True
    )
    (single,) = torch.autograd.grad(al.sigmoid_focal_loss(leaf, y, reduction="sum"), leaf)
    assert_close(batched, torch.stack([single, 2 * single]), rtol=1e-12, atol=0)


# ----------------------------------------------------- differentiable class weights


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"ignore_index": 1}])
@pytest.mark.parametrize("targets", ["labels", "soft"])
def test_cross_entropy_weight_gradient_equals_finite_differences(
    options: dict[str, Any], targets: str
) -> None:
    torch = pytest.importorskip("torch")
    if targets == "soft" and "ignore_index" in options:
        pytest.skip("ignore_index needs class indices")
    rng = np.random.default_rng(1)
    x = torch.asarray(rng.normal(0, 2, (7, 4)))
    if targets == "labels":
        t = torch.asarray(rng.integers(0, 4, 7))
    else:
        s = rng.random((7, 4))
        t = torch.asarray(s / s.sum(1, keepdims=True))
    w = torch.asarray(rng.uniform(0.5, 2.0, 4)).requires_grad_(True)
    (g,) = torch.autograd.grad(al.cross_entropy(x, t, weight=w, **options), w)
    h = 1e-6
    fd = []
    for c in range(4):
        e = torch.zeros(4, dtype=w.dtype)
        e[c] = h
        up = float(al.cross_entropy(x, t, weight=w.detach() + e, **options))
        down = float(al.cross_entropy(x, t, weight=w.detach() - e, **options))
        fd.append((up - down) / (2 * h))
    np.testing.assert_allclose(g.numpy(), fd, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------- integer label dtypes

INTEGER_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@pytest.mark.parametrize("label_dtype", INTEGER_DTYPES)
def test_every_integer_label_dtype_gives_the_int64_result(
    xp: ModuleType, asarray: Any, label_dtype: str
) -> None:
    if not hasattr(xp, label_dtype):
        pytest.skip(f"this backend has no {label_dtype}")
    rng = np.random.default_rng(2)
    x = asarray(rng.normal(0, 2, (9, 5)))
    t_np = rng.integers(0, 5, 9)
    t, t64 = asarray(t_np, label_dtype), asarray(t_np, "int64")
    for options in ({}, {"ignore_index": -100}, {"ignore_index": 3, "label_smoothing": 0.1}):
        for name in ("cross_entropy", "softmax_focal_loss"):
            f = getattr(al, name)
            assert_close(f(x, t, **options), f(x, t64, **options), rtol=1e-14, atol=0)
    assert_close(al.one_hot(t, 5), al.one_hot(t64, 5))
    assert_close(al.smooth_labels(t, 0.1, num_classes=5), al.smooth_labels(t64, 0.1, num_classes=5))


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_ignore_index_outside_int64_is_refused(xp: ModuleType, asarray: Any, value: int) -> None:
    x = asarray(np.zeros((3, 4)))
    t = asarray(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"`ignore_index` must fit in int64"):
        al.cross_entropy(x, t, ignore_index=value)


# ---------------------------------------------------- Dask arrays of unknown size


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_dask_arrays_of_unknown_size(reduction: str) -> None:
    """After boolean indexing a Dask array's sizes are NaN: every function accepts it,
    stays lazy, and agrees with NumPy on the computed arrays."""
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(3)
    x = da.from_array(rng.normal(0, 3, (40, 3)), chunks=7)
    keep = x[:, 0] > 0
    xs = x[keep]
    ys = da.from_array((rng.random((40, 3)) < 0.3).astype(np.float64), chunks=7)[keep]
    labels = da.from_array(rng.integers(0, 3, 40), chunks=7)[keep]
    assert xs.shape[0] != xs.shape[0]  # NaN: unknown
    calls = [
        (al.sigmoid_focal_loss, (xs, ys), {}),
        (al.binary_cross_entropy, (xs, ys), {"label_smoothing": 0.1}),
        (al.cross_entropy, (xs, labels), {"label_smoothing": 0.1}),
        (al.softmax_focal_loss, (xs, labels), {"alpha": [0.2, 0.3, 0.5]}),
        (al.cross_entropy, (xs, ys / 3.0 + 0.0), {}),
    ]

    def forbid(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed before .compute()")

    for f, args, options in calls:
        with dask.config.set(scheduler=forbid):
            lazy = f(*args, reduction=reduction, **options)
        assert isinstance(lazy, da.Array)
        computed = [a.compute() for a in args]
        np.testing.assert_allclose(
            lazy.compute(), f(*computed, reduction=reduction, **options), rtol=1e-12
        )
    with dask.config.set(scheduler=forbid):
        assert isinstance(al.one_hot(labels, 3), da.Array)
        assert isinstance(al.smooth_labels(labels, 0.1, num_classes=3), da.Array)


# ------------------------------------------------ negative summed class weights


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "weight", [[-2.0, -3.0, -1.5], [-9.0, 4.0, 0.5], [1.0, -1.0, 2.0]], ids=["neg", "mixed", "mix2"]
)
def test_weighted_mean_divides_by_a_negative_denominator(
    xp: ModuleType, asarray: Any, dtype: str, weight: list[float]
) -> None:
    """PyTorch's rule: only an exactly zero summed weight is special."""
    rng = np.random.default_rng(4)
    x_np = rng.normal(0, 2, (6, 3)).astype(dtype)
    t_np = np.array([0, 1, 2, 1, 0, 2])
    got = al.cross_entropy(asarray(x_np), asarray(t_np), weight=asarray(np.asarray(weight), dtype))
    want = ref.cross_entropy(x_np, t_np, weight=np.asarray(weight, dtype=dtype))
    assert np.isfinite(want)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(to_numpy(got), want, rtol=rtol)


# ------------------------------------------------------------ infinite gamma


@pytest.mark.parametrize("bad", [np.inf, -1.0, np.nan])
@pytest.mark.parametrize("name", ["sigmoid_focal_loss", "softmax_focal_loss"])
def test_gamma_arrays_with_invalid_entries(
    xp: ModuleType, asarray: Any, backend: str, bad: float, name: str
) -> None:
    """The rule of a scalar gamma, for arrays: refused where values are free to read,
    NaN (never a silent number) elsewhere."""
    x = asarray(np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]))
    t = asarray(np.array([0, 2])) if name == "softmax_focal_loss" else asarray(np.ones((2, 3)))
    gamma = np.full((2, 3), 2.0)
    gamma[1, :] = bad  # every term of row 1 uses it (a class no target weighs is unused)
    g = asarray(gamma)
    reads = backend in ("numpy", "array_api_strict") or (
        backend == "torch" and str(getattr(x, "device", "cpu")).startswith("cpu")
    )
    if reads:
        with pytest.raises(ValueError, match=r"`gamma` must be finite and >= 0"):
            getattr(al, name)(x, t, gamma=g)
    else:
        out = getattr(al, name)(x, t, gamma=g, reduction="none")
        assert np.isnan(to_numpy(out)).any()


# ------------------------------------------------ second derivatives, every gamma

HESSIAN_LOGITS = [0.5, 3.0, 30.0, 59.0, 70.0, 88.0, 100.0, 472.0, 600.0, 708.0, 1e4]


GAMMAS_2ND = [0.0, 0.25, 0.5, 0.9, 1.0, 1.5, 2.0, 2.5, 9.0]


def _hessian_grid(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = list(itertools.product(HESSIAN_LOGITS, [1.0, 0.0, 0.3, 1 - 1e-6]))
    x = np.asarray([s * x for x, _ in pairs for s in (1, -1)], dtype=dtype)
    y = np.asarray([t for _, t in pairs for _ in (1, -1)], dtype=dtype)
    return x, y


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("gamma", GAMMAS_2ND)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_second_derivatives_are_finite_and_agree(gamma: float, dtype: str) -> None:
    """``torch.func.hessian`` (forward over reverse, through the definition) and double
    backward through the PyTorch kernel: finite wherever the loss is, for every gamma
    (for 0 < gamma < 1, ``b**(gamma - 2)`` overflowed while ``b`` was still normal,
    and ``logaddexp``'s own derivative overflows), and equal to each other."""
    torch = pytest.importorskip("torch")
    x_np, y_np = _hessian_grid(dtype)
    x, y = torch.asarray(x_np), torch.asarray(y_np)

    def f(a: Any) -> Any:
        return al.sigmoid_focal_loss(a, y, gamma=gamma, reduction="sum")

    forward_over_reverse = torch.diag(torch.func.hessian(f)(x)).numpy()
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(leaf), leaf, create_graph=True)
    (double_backward,) = torch.autograd.grad(g.sum(), leaf)  # separable: the diagonal
    assert np.isfinite(forward_over_reverse).all(), x_np[~np.isfinite(forward_over_reverse)]
    assert bool(torch.isfinite(double_backward).all())
    if dtype == "float64":
        # (at logits of exactly 0 the definition's second derivative is known to be
        # off, see tests/test_backends.py; the grid has none)
        np.testing.assert_allclose(
            forward_over_reverse, double_backward.numpy(), rtol=1e-6, atol=1e-300
        )


@pytest.mark.parametrize("gamma", GAMMAS_2ND)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_jax_second_derivatives_are_finite_and_match_differences(gamma: float, dtype: str) -> None:
    """``jax.hessian`` of the definition: finite for every gamma and logit, and (in
    float64) the central differences of ``jax.grad``."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x_np, y_np = _hessian_grid(dtype)
    with jax.enable_x64(dtype == "float64"):
        y = jnp.asarray(y_np)

        def f(a: Any) -> Any:
            return al.sigmoid_focal_loss(a, y, gamma=gamma, reduction="sum")

        h = np.diag(np.asarray(jax.hessian(f)(jnp.asarray(x_np))))
        assert np.isfinite(h).all(), x_np[~np.isfinite(h)]
        if dtype == "float64":
            grad = jax.grad(f)
            step = 1e-5 * np.maximum(1.0, np.abs(x_np))
            up = np.asarray(grad(jnp.asarray(x_np + step)))
            down = np.asarray(grad(jnp.asarray(x_np - step)))
            central = (up - down) / (2 * step)
            np.testing.assert_allclose(h, central, rtol=1e-4, atol=1e-12)


# ------------------------------------------------------------- infinite logits

MASKED = np.array(
    [
        [-np.inf, 1.0, 2.0, 0.5],
        [0.5, -np.inf, -np.inf, 3.0],
        [-np.inf, -np.inf, -np.inf, 0.0],
        [1.0, 2.0, 3.0, 4.0],
    ]
)
MASKED_LABELS = np.array([2, 3, 3, 0])


def _without_masked(row: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(row)
    return row[keep][None, :], q[keep][None, :]


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
@pytest.mark.parametrize("targets", ["labels", "distribution"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masked_classes_have_probability_zero(
    xp: ModuleType, asarray: Any, name: str, targets: str, dtype: str
) -> None:
    """A class whose logit is -inf has probability 0: with no target mass on it, the
    loss is that of the other classes alone (finite) and its gradient is exactly 0
    there; with mass on it (a distribution, or label smoothing), the loss is +inf."""
    n, k = MASKED.shape
    if targets == "labels":
        t_np = MASKED_LABELS
        q_np = np.eye(k)[MASKED_LABELS]
    else:
        q_np = np.where(np.isfinite(MASKED), 1.0, 0.0)
        q_np = q_np / q_np.sum(axis=1, keepdims=True)
        t_np = q_np
    x = asarray(MASKED.astype(dtype))
    t = asarray(t_np if targets == "labels" else t_np.astype(dtype))
    f = getattr(al, name)
    got = to_numpy(f(x, t, reduction="none")).astype(np.float64)
    want = np.array(
        [
            float(getattr(ref, name)(*_without_masked(MASKED[i], q_np[i]), reduction="none")[0])
            for i in range(n)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12)
    # mass on a masked class: +inf (label smoothing puts eps/K on every class)
    smoothed = to_numpy(f(x, t, label_smoothing=0.1, reduction="none"))
    has_masked = ~np.isfinite(MASKED).all(axis=1)
    assert np.isposinf(smoothed[has_masked]).all()
    assert np.isfinite(smoothed[~has_masked]).all()


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
@pytest.mark.parametrize("targets", ["labels", "distribution"])
@pytest.mark.parametrize("library", ["torch", "jax"])
def test_masked_classes_get_exactly_zero_gradient(name: str, targets: str, library: str) -> None:
    k = MASKED.shape[1]
    if targets == "labels":
        t_np: np.ndarray = MASKED_LABELS
    else:
        q = np.where(np.isfinite(MASKED), 1.0, 0.0)
        t_np = q / q.sum(axis=1, keepdims=True)
    options: dict[str, Any] = {} if name == "cross_entropy" else {"gamma": 0.5}
    if library == "torch":
        torch = pytest.importorskip("torch")
        x = torch.asarray(MASKED).requires_grad_(True)
        getattr(al, name)(x, torch.asarray(t_np), **options).backward()
        g = x.grad.numpy()
    else:
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp

        with jax.enable_x64(True):
            t = jnp.asarray(t_np)
            g = np.asarray(
                jax.grad(lambda a: getattr(al, name)(a, t, **options))(jnp.asarray(MASKED))
            )
    assert np.isfinite(g).all(), g
    assert (g[~np.isfinite(MASKED)] == 0).all()
    assert g.shape == (MASKED.shape[0], k)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
def test_plus_inf_or_nan_logit_makes_its_row_nan(
    xp: ModuleType, asarray: Any, bad: float, name: str
) -> None:
    x_np = np.array([[0.5, bad, -1.0], [0.5, 2.0, -1.0]])
    x = asarray(x_np)
    for t in (asarray(np.array([0, 2])), asarray(np.array([[1.0, 0, 0], [0, 0, 1.0]]))):
        with np.errstate(invalid="ignore"):  # inf - inf on host backends
            got = to_numpy(getattr(al, name)(x, t, reduction="none"))
        assert np.isnan(got[0]), got
        assert np.isfinite(got[1]), got


@pytest.mark.parametrize("name", ["binary_cross_entropy", "sigmoid_focal_loss"])
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_infinite_binary_logits_are_nan(
    xp: ModuleType, asarray: Any, name: str, reduction: str
) -> None:
    """Binary losses: an infinite logit is not a logit; its element is NaN on every
    backend and path (PyTorch's and optax's BCE give NaN there too), never a silent
    0 or inf."""
    x = asarray(np.array([np.inf, -np.inf, np.inf, -np.inf, 1.0] * 3))
    y = asarray(np.array([1.0, 0.0, 0.0, 0.3, 1.0] * 3))
    with np.errstate(invalid="ignore"):  # inf * 0 on host backends
        got = to_numpy(getattr(al, name)(x, y, reduction=reduction))
    if reduction == "none":
        assert np.isnan(got[np.isinf(to_numpy(x))]).all(), got
        assert np.isfinite(got[~np.isinf(to_numpy(x))]).all()
    else:
        assert np.isnan(got)


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
def test_dask_wide_float32_logits_compute_without_overflow_warnings(name: str) -> None:
    """Dask computes after the call returns, beyond the public functions' NumPy
    ``errstate``: its log-softmax must not overflow for logits spanning more than the
    float32 range (``filterwarnings = error`` turns a worker's warning into a
    failure), and it gives NumPy's values."""
    da = pytest.importorskip("dask.array")
    x_np = np.float32([[-3e38, 3e38, 3e38], [0.0, 1.0, 2.0], [3e38, -3e38, 0.0]])
    labels = np.array([1, 2, 0])
    x, t = da.from_array(x_np, chunks=1), da.from_array(labels, chunks=1)
    for options in ({}, {"label_smoothing": 0.1}):
        got = getattr(al, name)(x, t, reduction="none", **options).compute()
        want = getattr(al, name)(x_np, labels, reduction="none", **options)
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------- messages that name things


def _message_cases(xp: ModuleType, asarray: Any) -> list[tuple[Any, type, str]]:
    x4 = asarray(np.zeros((2, 5, 4, 4)))
    t_nhw = asarray(np.zeros((2, 4, 4), dtype=np.int64))
    return [
        (
            lambda: al.cross_entropy(
                asarray(np.zeros((4, 3))), asarray(np.array([0.0, 1.0, 2.0, 1.0]))
            ),
            ValueError,
            r"Class indices need an integer dtype",
        ),
        (lambda: al.cross_entropy(x4, t_nhw), ValueError, r"pass axis=1"),
        (lambda: al.softmax_focal_loss(x4, t_nhw), ValueError, r"pass axis=1"),
        (
            lambda: al.smooth_labels(
                asarray(np.array([0, 0])), 0.1, num_classes=1, smoothing="others"
            ),
            ValueError,
            r"spreads `epsilon`.*epsilon=0.1",
        ),
        (
            lambda: al.one_hot(asarray(np.array([0, 1])), 3, dtype="float32"),
            TypeError,
            r"`dtype` must be a dtype of",
        ),
        (
            lambda: al.smooth_labels(
                asarray(np.array([0, 1])), 0.1, num_classes=3, dtype="float32"
            ),
            TypeError,
            r"`dtype` must be a dtype of",
        ),
        (
            lambda: al.smooth_labels(asarray(np.array([0, 1])), 0.1, num_classes=3, dtype=xp.int32),
            TypeError,
            r"`dtype` must be a real floating dtype",
        ),
    ]


@pytest.mark.parametrize("case", range(7))
def test_messages_name_the_argument_and_give_the_hint(
    xp: ModuleType, asarray: Any, case: int
) -> None:
    call, error, pattern = _message_cases(xp, asarray)[case]
    with pytest.raises(error, match=pattern):
        call()


def test_numpy_bfloat16_logits_are_refused_by_name() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    with pytest.raises(TypeError, match=r"`logits` has dtype bfloat16.*NumPy has no bfloat16"):
        al.sigmoid_focal_loss(np.zeros(3, dtype=ml_dtypes.bfloat16), np.zeros(3))


def test_another_librarys_dtype_is_refused_by_name() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"`dtype` must be a dtype of .*got dtype torch.float32"):
        al.one_hot(np.array([0, 1]), 3, dtype=torch.float32)
