"""Every native path of a backend against the definitions, on the same inputs.

The definitions (``arraylosses._elementwise``, applied to whole arrays and reduced)
are the numbers; a backend (``arraylosses._backends``) leaves them only for speed:

- reduced sigmoid focal loss on NumPy: a block kernel re-arranging the definition
  (integer gamma) or the definition evaluated blockwise;
- reduced sigmoid focal loss on eager PyTorch: an autograd function (blockwise forward
  on CPU, analytic backward, differentiable backward for double backward);
- cross-entropy on eager CPU PyTorch: ``torch.nn.functional.cross_entropy`` on the
  validated inputs.

Each test calls the public function and the definition (``pure_*`` below: the
validated inputs, the definition, the reduction -- no backend's native path), and
compares values and gradients. Small block sizes make the blockwise loops run (with a
ragged last block) on small arrays. Each test also checks that the native path it
claims to test was actually taken. array-api-strict has none: the definitions run
there unchanged.
"""

from __future__ import annotations

import importlib.util
import tracemalloc
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from array_api_extra.testing import assert_close

import arraylosses as al
from arraylosses import _backends
from arraylosses._binary import sigmoid_focal_by_definition
from arraylosses._categorical import cross_entropy_by_definition
from arraylosses._elementwise import binary_terms, sigmoid_focal, sigmoid_focal_gradient
from arraylosses._inputs import BinaryInputs, SoftmaxInputs
from arraylosses._primitives import log_sigmoid_pair
from arraylosses.testing import reference as ref

FAST_BACKENDS = ("numpy", "torch")
NO_FAST_PATH = "no native path on this backend (compiled, lazy or the oracle): nothing to compare"
RTOL = {"float64": 1e-12, "float32": 2e-6}


def fast_backends_only(fn: Any) -> Any:
    for b in ("array_api_strict", "jax", "dask", "cupy"):
        fn = pytest.mark.skip_xp_backend(b, reason=NO_FAST_PATH)(fn)
    return fn


def pure_sigmoid_focal_loss(
    logits: Any,
    targets: Any,
    /,
    *,
    alpha: float | None = 0.25,
    gamma: Any = 2.0,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    reduction: str = "mean",
) -> Any:
    """The validated inputs, the definition and the reduction: no native path."""
    inputs = BinaryInputs(logits, targets, label_smoothing, smoothing, True, reduction)
    g = float(gamma) if isinstance(gamma, (int, float)) else inputs.xp.astype(gamma, inputs.x.dtype)
    return sigmoid_focal_by_definition(inputs, alpha, g)


def pure_cross_entropy(
    logits: Any,
    targets: Any,
    /,
    *,
    axis: int = -1,
    weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    reduction: str = "mean",
) -> Any:
    """The validated inputs, the definition and the reduction: no native path."""
    inputs = SoftmaxInputs(
        logits, targets, axis, ignore_index, label_smoothing, smoothing, True, reduction
    )
    w = None if weight is None else inputs.per_class(weight, "weight")
    return cross_entropy_by_definition(inputs, w)


def native_cross_entropy(
    x: Any, t: Any, axis: int, weight: Any, ignore: Any, eps: float, smoothing: str, reduction: str
) -> Any:
    """The backend's native cross-entropy of validated inputs (None where it has none)."""
    inputs = SoftmaxInputs(x, t, axis, ignore, eps, smoothing, True, reduction)
    w = None if weight is None else inputs.per_class(weight, "weight")
    return inputs.backend.cross_entropy(inputs, w)


PURE = {al.sigmoid_focal_loss: pure_sigmoid_focal_loss, al.cross_entropy: pure_cross_entropy}


def torch_only(fn: Any) -> Any:
    for b in ("numpy", "array_api_strict", "jax", "dask", "cupy"):
        fn = pytest.mark.skip_xp_backend(b, reason="a PyTorch fast path")(fn)
    return fn


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 64 elements: blockwise loops run on test-sized arrays."""
    from arraylosses._backends import _numpy

    monkeypatch.setattr(_numpy, "BLOCK_BYTES", 64 * 8)  # 64 float64 values
    if importlib.util.find_spec("torch") is not None:  # sessions without torch skip it
        from arraylosses._backends import _torch

        monkeypatch.setattr(_torch, "BLOCK", 64)


@pytest.fixture
def blockwise_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the host-array blockwise reductions the NumPy backend runs (its
    kernel)."""
    from arraylosses._backends import _numpy

    calls: list[int] = []

    def spy_on(module: Any, name: str) -> None:
        original = getattr(module, name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)

    spy_on(_numpy, "sigmoid_focal_sum")
    return calls


def pure(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with every public loss among ``fn`` and ``args``
    replaced by its definition (``torch_grad(al.cross_entropy, ...)`` differentiates
    the definition)."""
    fn = PURE.get(fn, fn)
    return fn(*(PURE.get(a, a) if callable(a) else a for a in args), **kwargs)


def logits_np(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Spread logits with exact zeros (zero-initialised heads) and saturated ones."""
    x = 4.0 * rng.standard_normal(shape)
    flat = x.reshape(-1)
    flat[:6] = [0.0, 0.0, 1e4, -1e4, 30.0, -30.0]
    return x


def sigmoid_targets(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "soft":
        return rng.uniform(size=shape)
    hard = rng.uniform(size=shape) < 0.3
    hard.reshape(-1)[:6] = [True, False, True, False, True, False]
    return {"hard": hard.astype(np.float64), "bool": hard, "int": hard.astype(np.int64)}[kind]


def to_xp(xp: ModuleType, device: Any, a: np.ndarray, dtype: str | None = None) -> Any:
    name = dtype if dtype is not None else {"f": "float64", "b": "bool"}.get(a.dtype.kind, "int64")
    kwargs = {} if device is None else {"device": device}
    return xp.asarray(a, dtype=getattr(xp, name), **kwargs)


def torch_grad(
    fn: Callable[..., Any], x: Any, *args: Any, create_graph: bool = False, **kw: Any
) -> tuple[Any, Any]:
    """``fn(x, ...)`` and its gradient in ``x`` (per-element results are weighted
    unevenly before summing, so every element's gradient is checked)."""
    import torch

    leaf = x.detach().clone().requires_grad_(True)
    out = fn(leaf, *args, **kw)
    scalar = out
    if out.ndim:
        weights = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype, device=out.device)
        scalar = (out * weights.reshape(out.shape)).sum()
    (g,) = torch.autograd.grad(scalar, leaf, create_graph=create_graph)
    return out, g


# ------------------------------------------------------------ sigmoid focal loss

FOCAL_OPTIONS = [
    {},
    {"gamma": 0.0},
    {"gamma": 0.5, "alpha": None},
    {"gamma": 1.0, "alpha": 0.9},
    {"gamma": 2.5},
    {"gamma": 5.0, "alpha": None},
    {"gamma": 9.0},
    {"label_smoothing": 0.1},
    {"label_smoothing": 0.2, "smoothing": "others", "gamma": 0.25},
]
FOCAL_IDS = [",".join(f"{k}={v}" for k, v in o.items()) or "defaults" for o in FOCAL_OPTIONS]


@fast_backends_only
@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("options", FOCAL_OPTIONS, ids=FOCAL_IDS)
def test_sigmoid_focal_values(
    xp, backend, device, monkeypatch, blockwise_calls, dtype, reduction, options
):
    """Reduced losses: blockwise on host arrays, the PyTorch block kernel on torch."""
    if backend == "torch":
        from arraylosses._backends import _torch

        original = _torch._blocks

        def spy(*args: Any) -> Any:
            blockwise_calls.append(1)
            return original(*args)

        monkeypatch.setattr(_torch, "_blocks", spy)
    rng = np.random.default_rng(0)
    x = to_xp(xp, device, logits_np(rng, (37, 11)), dtype)
    y = to_xp(xp, device, sigmoid_targets(rng, (37, 11), "soft"), dtype)
    got = al.sigmoid_focal_loss(x, y, reduction=reduction, **options)
    want = pure(al.sigmoid_focal_loss, x, y, reduction=reduction, **options)
    assert_close(got, want, rtol=RTOL[dtype], atol=0)
    assert blockwise_calls, "the fast path was not taken"


@fast_backends_only
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("options", FOCAL_OPTIONS, ids=FOCAL_IDS)
def test_sigmoid_focal_values_none_and_broadcast(xp, device, dtype, options):
    """Per-element results, broadcast targets and per-sample gamma arrays (the
    definitions on every backend) against the definition."""
    rng = np.random.default_rng(14)
    x = to_xp(xp, device, logits_np(rng, (37, 11)), dtype)
    y = to_xp(xp, device, sigmoid_targets(rng, (37, 11), "soft"), dtype)
    row = to_xp(xp, device, sigmoid_targets(rng, (1, 11), "hard"), dtype)
    calls = [
        ((x, y), {"reduction": "none"}),
        ((x, row), {"reduction": "mean"}),
        ((x, row), {"reduction": "none"}),
    ]
    if "gamma" not in options:
        gamma = to_xp(xp, device, rng.uniform(0.0, 3.0, size=(37, 1)), dtype)
        calls.append(((x, y), {"reduction": "sum", "gamma": gamma}))
    for args, kwargs in calls:
        got = al.sigmoid_focal_loss(*args, **options, **kwargs)
        want = pure(al.sigmoid_focal_loss, *args, **options, **kwargs)
        tiny = 1e-300 if dtype == "float64" else 1e-37
        assert_close(got, want, rtol=4 * RTOL[dtype], atol=tiny)


@fast_backends_only
@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("kind", ["hard", "bool", "int"])
def test_sigmoid_focal_target_dtypes(xp, device, kind):
    rng = np.random.default_rng(1)
    x = to_xp(xp, device, logits_np(rng, (300,)))
    y = to_xp(xp, device, sigmoid_targets(rng, (300,), kind))
    assert_close(al.sigmoid_focal_loss(x, y), pure(al.sigmoid_focal_loss, x, y), rtol=1e-12, atol=0)


@fast_backends_only
@pytest.mark.usefixtures("small_blocks")
def test_sigmoid_focal_nan_propagates(xp, device):
    rng = np.random.default_rng(2)
    a = logits_np(rng, (200,))
    a[150] = np.nan
    x = to_xp(xp, device, a)
    y = to_xp(xp, device, sigmoid_targets(rng, (200,), "hard"))
    assert bool(xp.isnan(al.sigmoid_focal_loss(x, y)))
    assert bool(xp.isnan(al.sigmoid_focal_loss(x, y, reduction="sum", gamma=0.0)))


@fast_backends_only
def test_sigmoid_focal_not_blockwise_where_it_does_not_apply(xp, backend, device, blockwise_calls):
    """ "none", broadcast targets and array gamma are not blockwise reductions."""
    rng = np.random.default_rng(3)
    x = to_xp(xp, device, logits_np(rng, (8, 5)))
    y = to_xp(xp, device, sigmoid_targets(rng, (8, 5), "hard"))
    al.sigmoid_focal_loss(x, y[:1, ...])
    al.sigmoid_focal_loss(x, y, gamma=to_xp(xp, device, np.full((8, 1), 2.0)))
    al.sigmoid_focal_loss(x, y, reduction="none")
    assert not blockwise_calls


@fast_backends_only
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("alpha", [None, 0.25, 1.0])
@pytest.mark.parametrize("gamma", [0, 1, 2, 3, 8, 0.25, 0.5, 2.5, 9])
def test_numpy_block_kernel_against_the_formula(xp, backend, dtype, alpha, gamma):
    """The NumPy kernel (buffers reused across ragged blocks) against the definition."""
    if backend != "numpy":
        pytest.skip("a NumPy kernel")
    from arraylosses._backends._numpy import sigmoid_focal_sum

    rng = np.random.default_rng(15)
    x = xp.asarray(logits_np(rng, (1000,)).astype(dtype))
    y_np = sigmoid_targets(rng, (1000,), "soft")
    y_np[::2] = np.round(y_np[::2])
    y = xp.asarray(y_np.astype(dtype))
    bce, b, _, _, logs = binary_terms(x, *log_sigmoid_pair(x, xp), y, True, xp, with_logs=True)
    want = xp.sum(sigmoid_focal(bce, b, y, alpha, float(gamma), xp, logs[2]))
    for block in (1000, 128, 37):
        got = sigmoid_focal_sum(x, y, alpha, float(gamma), block)
        assert_close(got, want, rtol=4 * RTOL[dtype], atol=0)
    x[7] = np.nan
    assert np.isnan(sigmoid_focal_sum(x, y, alpha, float(gamma), 128))


@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("gamma", [0, 2, 0.5])
def test_dask_per_chunk_kernel_against_the_definition(xp, backend, alpha, gamma):
    """Dask's reduced sigmoid focal loss runs the NumPy kernel per chunk: uneven,
    empty and mismatched chunks of logits and targets, lazily, equal to the
    definition (the ``"none"`` loss summed)."""
    if backend != "dask":
        pytest.skip("the Dask per-chunk kernel")
    import dask.array as da

    rng = np.random.default_rng(16)
    x_np = logits_np(rng, (7, 3))
    y_np = sigmoid_targets(rng, (7, 3), "soft")
    x = da.from_array(x_np, chunks=((3, 0, 4), (2, 1)))
    y = da.from_array(y_np, chunks=((7,), (3,)))
    for reduction in ("sum", "mean"):
        got = al.sigmoid_focal_loss(x, y, alpha=alpha, gamma=float(gamma), reduction=reduction)
        assert isinstance(got, da.Array)
        per = al.sigmoid_focal_loss(x, y, alpha=alpha, gamma=float(gamma), reduction="none")
        want = per.sum() if reduction == "sum" else per.mean()
        assert_close(got.compute(), want.compute(), rtol=1e-12, atol=0)
    layers = al.sigmoid_focal_loss(x, y, alpha=alpha, gamma=float(gamma)).__dask_graph__().layers
    assert any("_focal_chunk_sum" in name for name in layers)


@fast_backends_only
def test_numpy_peak_memory_is_a_few_blocks(xp, backend):
    """Reduced loss of a large host array: no full-size temporaries (target: <= 3x)."""
    if backend != "numpy":
        pytest.skip("tracemalloc sees NumPy's allocations only")
    rng = np.random.default_rng(4)
    n = 64 * _backends._numpy.BLOCK_BYTES // 4
    x = xp.asarray(rng.standard_normal(n, dtype=np.float32))
    y = xp.asarray((rng.uniform(size=n) < 0.01).astype(np.float32))
    tracemalloc.start()
    try:
        al.sigmoid_focal_loss(x, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= x.nbytes, (peak, x.nbytes)


# ------------------------------------------ sigmoid focal loss: PyTorch autograd


def graph_nodes(out: Any) -> str:
    """Names of the autograd nodes that produced ``out`` (the last few)."""
    names, node = [], out.grad_fn
    while node is not None and len(names) < 3:
        names.append(type(node).__name__)
        node = node.next_functions[0][0] if node.next_functions else None
    return " <- ".join(names)


def assert_torch_fast(out: Any) -> None:
    nodes = graph_nodes(out)
    assert "ReducedElementwiseLoss" in nodes, f"fast path not taken: {nodes}"


def assert_torch_pure(out: Any) -> None:
    nodes = graph_nodes(out)
    assert "ReducedElementwiseLoss" not in nodes, f"pure path not taken: {nodes}"


BCE_KERNEL_CASES = [
    *(({}, r) for r in ("mean", "sum")),
    *(({"label_smoothing": 0.1}, r) for r in ("mean", "sum")),
    ({"label_smoothing": 0.2, "smoothing": "others"}, "sum"),
    ({"normalizer": 7.0}, "mean"),  # (a normalizer divides "mean" only)
]


def binary_cross_entropy_by_definition(x: Any, y: Any, reduction: str, **options: Any) -> Any:
    """The validated inputs, the per-element definition and the reduction."""
    from arraylosses._binary import _binary_cross_entropy_elements

    eps = options.get("label_smoothing", 0.0)
    smoothing = options.get("smoothing", "uniform")
    normalizer = options.get("normalizer")
    inputs = BinaryInputs(x, y, eps, smoothing, True, reduction, None, normalizer)
    return inputs.finish(_binary_cross_entropy_elements(inputs, None, 0.0))


@fast_backends_only
@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("options", "reduction"), BCE_KERNEL_CASES, ids=str)
def test_binary_cross_entropy_takes_the_focal_kernel(
    xp, backend, device, dtype, options, reduction
):
    """The reduced binary cross-entropy of logits without weights or Poly-1 is the
    sigmoid focal loss at gamma 0 without alpha, by its blockwise kernel: its value
    against the BCE definition, and on PyTorch its analytic gradient against autograd
    through the definition (in float64, where autograd keeps its digits)."""
    rng = np.random.default_rng(13)
    x = to_xp(xp, device, logits_np(rng, (37, 11)), dtype)
    y = to_xp(xp, device, sigmoid_targets(rng, (37, 11), "soft"), dtype)
    got = al.binary_cross_entropy(x, y, reduction=reduction, **options)
    want = binary_cross_entropy_by_definition(x, y, reduction, **options)
    assert_close(got, want, rtol=RTOL[dtype] * 4, atol=0)
    if backend != "torch":
        return
    out, g = torch_grad(al.binary_cross_entropy, x, y, reduction=reduction, **options)
    assert_torch_fast(out)
    wide = xp.float64
    _, g_def = torch_grad(
        binary_cross_entropy_by_definition, xp.astype(x, wide), xp.astype(y, wide), reduction,
        **options,
    )  # fmt: skip
    scale = float(g_def.abs().max())
    assert_close(xp.astype(g, wide), g_def, rtol=RTOL[dtype] * 4, atol=RTOL[dtype] * scale)


@torch_only
@pytest.mark.parametrize("blocks", ["one block", "small blocks"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("options", FOCAL_OPTIONS, ids=FOCAL_IDS)
def test_torch_sigmoid_focal_gradient(xp, device, request, blocks, dtype, reduction, options):
    if blocks == "small blocks":
        request.getfixturevalue("small_blocks")
    rng = np.random.default_rng(5)
    x = to_xp(xp, device, logits_np(rng, (37, 11)), dtype)
    y = to_xp(xp, device, sigmoid_targets(rng, (37, 11), "soft"), dtype)
    out, g = torch_grad(al.sigmoid_focal_loss, x, y, reduction=reduction, **options)
    assert_torch_fast(out)
    out_pure, g_pure = pure(torch_grad, al.sigmoid_focal_loss, x, y, reduction=reduction, **options)
    assert_torch_pure(out_pure)
    assert_close(out.detach(), out_pure.detach(), rtol=RTOL[dtype], atol=0)
    if dtype == "float32":
        # Where a soft target meets a saturated logit, autograd through the float32
        # composition loses digits (1e-3 relative at x = -1e4) that the analytic
        # gradient keeps: compare both with the pure path in float64 on the same inputs.
        wide = xp.float64
        _, g_pure = pure(
            torch_grad,
            al.sigmoid_focal_loss,
            xp.astype(x, wide),
            xp.astype(y, wide),
            reduction=reduction,
            **options,
        )
        g = xp.astype(g, wide)
    scale = float(g_pure.abs().max())
    assert_close(g, g_pure, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)
    assert bool(xp.all(xp.isfinite(g)))


@torch_only
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 2.5])
def test_torch_sigmoid_focal_gradient_at_zero_and_saturation(xp, device, gamma):
    """Exact two-sided gradient at logits of exactly 0; finite at |x| = 1e4."""
    x = to_xp(xp, device, np.array([0.0, 0.0, 1e4, -1e4, 1e4, -1e4]))
    y = to_xp(xp, device, np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0]))
    out, g = torch_grad(al.sigmoid_focal_loss, x, y, gamma=gamma, alpha=None, reduction="sum")
    assert_torch_fast(out)
    _, g_pure = pure(
        torch_grad, al.sigmoid_focal_loss, x, y, gamma=gamma, alpha=None, reduction="sum"
    )
    assert_close(g, g_pure, rtol=1e-15, atol=0)
    # at x = 0: factor 0.5**gamma, dBCE/dx = 0.5 - y, d(1 - p_t)/dx = (1 - 2y) / 4
    bce0 = np.log(2.0)
    for i, t in enumerate([1.0, 0.0]):
        want = 0.5**gamma * (0.5 - t) + gamma * 0.5 ** (gamma - 1) * (1 - 2 * t) * 0.25 * bce0
        assert float(g[i]) == pytest.approx(want, rel=1e-14)


@torch_only
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_torch_sigmoid_focal_half_precision(xp, device, dtype):
    rng = np.random.default_rng(6)
    x = to_xp(xp, device, logits_np(rng, (300,)), dtype)
    x[2], x[3] = 6e4 if dtype == "float16" else 3e38, -6e4 if dtype == "float16" else -3e38
    y = to_xp(xp, device, sigmoid_targets(rng, (300,), "hard"), dtype)
    out, g = torch_grad(al.sigmoid_focal_loss, x, y)
    assert_torch_fast(out)
    out_pure, g_pure = pure(torch_grad, al.sigmoid_focal_loss, x, y)
    assert out.dtype == x.dtype
    assert g.dtype == x.dtype
    assert float(out.detach()) == float(out_pure.detach())
    # both are computed in float32: at most one rounding step apart in the half dtype
    ulp = {"float16": 2.0**-10, "bfloat16": 2.0**-7}[dtype]
    f32 = xp.float32
    assert_close(xp.astype(g, f32), xp.astype(g_pure, f32), rtol=ulp, atol=ulp * 1e-3)


@torch_only
def test_torch_sigmoid_focal_double_backward(xp, device):
    """create_graph=True: the analytic gradient is itself differentiated exactly."""
    import torch

    rng = np.random.default_rng(7)
    a = logits_np(rng, (40,))
    a[:2] = [0.5, -0.5]  # second derivatives at exactly 0: next test
    a[6:] /= 4.0
    x = to_xp(xp, device, a).requires_grad_(True)
    y = to_xp(xp, device, sigmoid_targets(rng, (40,), "soft"))
    for gamma in (0.0, 1.0, 2.0, 2.5):

        def f(b: Any, gamma: float = gamma) -> Any:
            return al.sigmoid_focal_loss(b, y, gamma=gamma)

        assert_torch_fast(f(x))
        assert torch.autograd.gradgradcheck(f, (x,))
        v = torch.randn(40, dtype=x.dtype, device=x.device)
        hvp = torch.autograd.functional.hvp(f, x.detach(), v)[1]
        hvp_pure = pure(torch.autograd.functional.hvp, f, x.detach(), v)[1]
        assert_close(hvp, hvp_pure, rtol=1e-10, atol=1e-12)


@torch_only
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0])
def test_torch_sigmoid_focal_second_derivative_at_zero(xp, device, gamma):
    """At logits of exactly 0 the analytic gradient's derivative is the true one.

    (Autograd through the pure path's ``|x|`` forms is exact to first order only: its
    second derivative at exactly 0 drops the curvature of ``log1p(exp(-|x|))``.)
    Checked against central differences of the gradient.
    """
    import torch

    y = to_xp(xp, device, np.array([0.3, 1.0, 0.0]))
    x0 = to_xp(xp, device, np.zeros(3))

    def grad_at(a: Any, create_graph: bool = False) -> Any:
        return torch_grad(
            al.sigmoid_focal_loss, a, y, gamma=gamma, reduction="sum", create_graph=create_graph
        )[1]

    leaf = x0.clone().requires_grad_(True)
    out = al.sigmoid_focal_loss(leaf, y, gamma=gamma, reduction="sum")
    assert_torch_fast(out)
    (g,) = torch.autograd.grad(out, leaf, create_graph=True)
    (diag,) = torch.autograd.grad(g.sum(), leaf)  # the loss is separable: Hessian diagonal
    h = 1e-5
    central = (grad_at(x0 + h) - grad_at(x0 - h)) / (2 * h)
    assert_close(diag, central, rtol=1e-7, atol=1e-9)


@torch_only
def test_torch_transforms_take_the_pure_path(xp, device):
    """Under torch.func the dispatcher runs the pure path (the autograd function is
    classic-style, for speed), also for a loss of tensors no transform wraps."""
    import torch

    rng = np.random.default_rng(8)
    x = to_xp(xp, device, logits_np(rng, (4, 30)))
    y = to_xp(xp, device, sigmoid_targets(rng, (4, 30), "soft"))

    def fast(a: Any, b: Any) -> Any:
        return al.sigmoid_focal_loss(a, b)

    def reference(a: Any, b: Any) -> Any:
        return pure_sigmoid_focal_loss(a, b)

    vmap, grad = torch.func.vmap, torch.func.grad
    assert_close(vmap(fast)(x, y), vmap(reference)(x, y), rtol=1e-12, atol=0)
    assert_close(vmap(grad(fast))(x, y), vmap(grad(reference))(x, y), rtol=1e-12, atol=0)
    constant = al.sigmoid_focal_loss(x, y)
    assert_close(vmap(lambda a: fast(x, y) + 0 * a.sum())(x), xp.stack([constant] * 4))


@torch_only
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_torch_block_kernel_against_the_formula(xp, device, gamma, alpha):
    """The fused PyTorch kernel of one block against the array-API formula and
    gradient, with a float scale and with a tensor scale (the backward pass's)."""
    import torch

    from arraylosses._backends._torch import SigmoidFocalBlocks

    rng = np.random.default_rng(11)
    x = to_xp(xp, device, logits_np(rng, (500,)))
    y = to_xp(xp, device, sigmoid_targets(rng, (500,), "soft"))
    kernel = SigmoidFocalBlocks(alpha, gamma)
    bce, b, p, q, logs = binary_terms(x, *log_sigmoid_pair(x, xp), y, True, xp, with_logs=True)
    loss = sigmoid_focal(bce, b, y, alpha, gamma, xp, logs[2])
    grad = sigmoid_focal_gradient(bce, b, p, q, y, alpha, gamma, xp, logs=logs)
    for scale in (1.0, 0.125, torch.tensor(0.375, dtype=x.dtype, device=x.device)):
        out = xp.empty_like(x)
        total = kernel.loss_sum_and_gradient(x, y, scale, out)
        assert_close(total, xp.sum(loss) * scale, rtol=1e-12, atol=0)
        assert_close(kernel.loss_sum(x, y, scale), xp.sum(loss) * scale, rtol=1e-12, atol=0)
        assert_close(out, grad * scale, rtol=1e-12, atol=1e-300)
    assert_close(kernel.gradient(x, y), grad, rtol=0, atol=0)


@torch_only
def test_torch_backward_twice_with_retain_graph(xp, device):
    """The first backward hands over the precomputed buffer; the second recomputes."""
    import torch

    rng = np.random.default_rng(12)
    x = to_xp(xp, device, logits_np(rng, (300,))).requires_grad_(True)
    y = to_xp(xp, device, sigmoid_targets(rng, (300,), "hard"))
    out = al.sigmoid_focal_loss(x, y, reduction="sum")
    assert_torch_fast(out)
    (first,) = torch.autograd.grad(out, x, retain_graph=True)
    (second,) = torch.autograd.grad(3.0 * out, x)
    _, want = pure(torch_grad, al.sigmoid_focal_loss, x, y, reduction="sum")
    assert_close(first, want, rtol=1e-12, atol=1e-15)
    assert_close(second, 3.0 * want, rtol=1e-12, atol=1e-15)
    out2 = al.sigmoid_focal_loss(x, y)
    out2.backward()
    out3 = al.sigmoid_focal_loss(x, y)
    out3.backward()  # accumulates into x.grad: the handed-over buffer is not reused
    assert_close(x.grad, 2.0 * want / 300, rtol=1e-12, atol=1e-15)


@torch_only
def test_torch_targets_that_need_a_gradient_take_the_pure_path(xp, device):
    rng = np.random.default_rng(9)
    x = to_xp(xp, device, logits_np(rng, (50,))).requires_grad_(True)
    y = to_xp(xp, device, sigmoid_targets(rng, (50,), "soft")).requires_grad_(True)
    out = al.sigmoid_focal_loss(x, y)
    assert_torch_pure(out)
    out.backward()
    assert y.grad is not None
    assert bool(xp.all(xp.isfinite(y.grad)))


@torch_only
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_forward_mode_ad_takes_the_pure_path(xp, device):
    import torch.autograd.forward_ad as fwad

    rng = np.random.default_rng(10)
    x = to_xp(xp, device, logits_np(rng, (30,)))
    y = to_xp(xp, device, sigmoid_targets(rng, (30,), "soft"))
    v = to_xp(xp, device, rng.standard_normal(30))
    with fwad.dual_level():
        tangent = fwad.unpack_dual(al.sigmoid_focal_loss(fwad.make_dual(x, v), y)).tangent
    _, g = torch_grad(al.sigmoid_focal_loss, x, y)
    assert_close(tangent, xp.sum(g * v), rtol=1e-12, atol=0)


@torch_only
def test_torch_pure_path_is_reachable(xp, device):
    x = to_xp(xp, device, np.zeros((3, 4))).requires_grad_(True)
    y = to_xp(xp, device, np.ones((3, 4)))
    assert_torch_fast(al.sigmoid_focal_loss(x, y))
    assert_torch_pure(pure(al.sigmoid_focal_loss, x, y))


# ---------------------------------------------- cross-entropy: F.cross_entropy


def ce_case(
    rng: np.random.Generator, shape: tuple[int, ...], axis: int, targets: str
) -> tuple[np.ndarray, np.ndarray]:
    x = 3.0 * rng.standard_normal(shape)
    x.reshape(-1)[:2] = [0.0, 0.0]
    k = shape[axis]
    if targets == "probabilities":
        p = rng.uniform(size=shape)
        return x, p / p.sum(axis=axis, keepdims=True)
    label_shape = shape[: axis % len(shape)] + shape[axis % len(shape) + 1 :]
    return x, rng.integers(0, k, size=label_shape)


CE_OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"label_smoothing": 0.3, "smoothing": "others"},
    {"label_smoothing": 1.0},
    {"weight": "vector"},
    {"weight": "list", "label_smoothing": 0.2},
    {"weight": "vector", "label_smoothing": 0.05, "smoothing": "others"},
    {"ignore_index": 1},
    {"ignore_index": -1, "weight": "vector", "label_smoothing": 0.1},
    {"ignore_index": -100},
]
CE_IDS = [",".join(f"{k}={v}" for k, v in o.items()) or "defaults" for o in CE_OPTIONS]
CE_LAYOUTS = {
    "2d": ((33, 7), -1),
    "nchw": ((4, 5, 3, 2), 1),
    "axis0": ((5, 6, 4), 0),
    "1d": ((9,), 0),
}


def ce_options(xp: ModuleType, device: Any, options: dict[str, Any], k: int) -> dict[str, Any]:
    out = dict(options)
    if options.get("weight") == "vector":
        out["weight"] = to_xp(xp, device, np.linspace(0.2, 2.0, k))
    elif options.get("weight") == "list":
        out["weight"] = list(np.linspace(2.0, 0.5, k))
    return out


@torch_only
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", list(CE_LAYOUTS))
@pytest.mark.parametrize("options", CE_OPTIONS, ids=CE_IDS)
def test_torch_cross_entropy_labels(xp, device, reduction, layout, options):
    if device.type != "cpu":
        pytest.skip("F.cross_entropy is the fast path of eager CPU tensors only")
    shape, axis = CE_LAYOUTS[layout]
    rng = np.random.default_rng(10)
    x_np, t_np = ce_case(rng, shape, axis, "labels")
    if "ignore_index" in options:
        t_np.reshape(-1)[::3] = options["ignore_index"]
    x, t = to_xp(xp, device, x_np), to_xp(xp, device, t_np)
    opts = ce_options(xp, device, options, shape[axis])
    kwargs = dict(axis=axis, reduction=reduction, **opts)
    fast = native_cross_entropy(
        x,
        t,
        axis,
        opts.get("weight"),
        opts.get("ignore_index"),
        opts.get("label_smoothing", 0.0),
        opts.get("smoothing", "uniform"),
        reduction,
    )
    assert fast is not None, "F.cross_entropy path not taken"
    out, g = torch_grad(al.cross_entropy, x, t, **kwargs)
    out_pure, g_pure = pure(torch_grad, al.cross_entropy, x, t, **kwargs)
    assert_close(fast.detach(), out_pure.detach(), rtol=1e-12, atol=1e-14)
    assert_close(out.detach(), out_pure.detach(), rtol=1e-12, atol=1e-14)
    assert_close(g, g_pure, rtol=1e-10, atol=1e-14)


@torch_only
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["2d", "nchw", "axis0"])
@pytest.mark.parametrize(
    "options",
    [o for o in CE_OPTIONS if "ignore_index" not in o],
    ids=[i for i, o in zip(CE_IDS, CE_OPTIONS) if "ignore_index" not in o],
)
def test_torch_cross_entropy_probabilities(xp, device, reduction, layout, options):
    """Probability targets of eager CPU logits are F.cross_entropy itself, unless its
    result holds a NaN: a masked class (logit -inf) without target mass gives
    0 * -inf = NaN there, docs/contract.md gives 0, so the definition runs. Another
    device takes the definition. Either way the result equals F.cross_entropy's
    wherever the logits are finite, and the definition's."""
    import torch

    shape, axis = CE_LAYOUTS[layout]
    rng = np.random.default_rng(11)
    x_np, q_np = ce_case(rng, shape, axis, "probabilities")
    x, q = to_xp(xp, device, x_np), to_xp(xp, device, q_np)
    opts = ce_options(xp, device, options, shape[axis])
    kwargs = dict(axis=axis, reduction=reduction, **opts)

    def native(logits: Any, targets: Any = q) -> Any:
        return native_cross_entropy(
            logits, targets, axis, opts.get("weight"), None, opts.get("label_smoothing", 0.0),
            opts.get("smoothing", "uniform"), reduction,
        )  # fmt: skip

    assert (native(x) is not None) == (device.type == "cpu")
    masked, q_masked = x.clone(), q.clone()
    masked.reshape(-1)[3] = -float("inf")
    q_masked.reshape(-1)[3] = 0.0  # no target mass on the masked class
    with_mask = native(masked, q_masked)
    if opts.get("label_smoothing", 0.0) == 0.0:  # (smoothing puts mass there: +inf)
        assert with_mask is None
        want_masked = pure(al.cross_entropy, masked, q_masked, **kwargs)
        assert torch.isfinite(want_masked).all()
        assert_close(al.cross_entropy(masked, q_masked, **kwargs), want_masked)
    elif with_mask is not None:
        assert_close(with_mask, pure(al.cross_entropy, masked, q_masked, **kwargs))
    out, g = torch_grad(al.cross_entropy, x, q, **kwargs)
    out_pure, g_pure = pure(torch_grad, al.cross_entropy, x, q, **kwargs)
    assert_close(out.detach(), out_pure.detach(), rtol=1e-12, atol=1e-14)
    assert_close(g, g_pure, rtol=1e-10, atol=1e-14)
    eps = opts.get("label_smoothing", 0.0)
    if opts.get("smoothing") == "others":
        eps = eps * shape[axis] / (shape[axis] - 1)  # "others" as PyTorch's uniform
    w = opts.get("weight")
    w = None if w is None else torch.as_tensor(w, dtype=x.dtype, device=x.device)

    def peer(a: Any) -> Any:
        moved = (torch.movedim(a, axis, 1), torch.movedim(q, axis, 1)) if a.ndim > 1 else (a, q)
        return torch.nn.functional.cross_entropy(
            *moved, weight=w, reduction=reduction, label_smoothing=eps
        )

    want, g_peer = torch_grad(peer, x)
    assert_close(out.detach(), want.detach(), rtol=1e-12, atol=1e-14)
    assert_close(g, g_peer, rtol=1e-10, atol=1e-14)


@torch_only
@pytest.mark.parametrize("label_dtype", ["int64", "int32", "int16", "uint8"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("n", [5, 200])
def test_torch_cross_entropy_dtypes(xp, device, label_dtype, dtype, n):
    if device.type != "cpu":
        pytest.skip("F.cross_entropy is the fast path of eager CPU tensors only")
    rng = np.random.default_rng(12)
    x_np, t_np = ce_case(rng, (n, 6), -1, "labels")
    x, t = to_xp(xp, device, x_np, dtype), to_xp(xp, device, t_np, label_dtype)
    out, g = torch_grad(al.cross_entropy, x, t, label_smoothing=0.1)
    out_pure, g_pure = pure(torch_grad, al.cross_entropy, x, t, label_smoothing=0.1)
    assert out.dtype == x.dtype
    assert g.dtype == x.dtype
    assert float(out.detach()) == pytest.approx(float(out_pure.detach()), rel=1e-6)
    assert_close(xp.astype(g, xp.float32), xp.astype(g_pure, xp.float32), rtol=1e-2, atol=1e-3)


@torch_only
def test_torch_cross_entropy_edge_cases(xp, device):
    if device.type != "cpu":
        pytest.skip("F.cross_entropy is the fast path of eager CPU tensors only")
    x = to_xp(xp, device, np.random.default_rng(13).standard_normal((6, 4)))
    every_ignored = to_xp(xp, device, np.full(6, 2))
    for smoothing in (0.0, 0.1):
        for reduction in ("mean", "sum", "none"):
            kw = {"ignore_index": 2, "label_smoothing": smoothing, "reduction": reduction}
            got, want = (
                al.cross_entropy(x, every_ignored, **kw),
                pure(al.cross_entropy, x, every_ignored, **kw),
            )
            assert_close(got, want, rtol=1e-12, atol=0)
    empty_x = to_xp(xp, device, np.zeros((0, 4)))
    empty_t = to_xp(xp, device, np.zeros(0, dtype=np.int64))
    for reduction in ("mean", "sum", "none"):
        got, want = (
            al.cross_entropy(empty_x, empty_t, reduction=reduction),
            pure(al.cross_entropy, empty_x, empty_t, reduction=reduction),
        )
        assert got.shape == want.shape
        assert got.dtype == want.dtype
        assert bool(xp.all((got == want) | (xp.isnan(got) & xp.isnan(want))))
    nan_x = x.clone()
    nan_x[1, 2] = float("nan")
    t = to_xp(xp, device, np.array([0, 1, 2, 3, 0, 1]))
    assert bool(xp.isnan(al.cross_entropy(nan_x, t)))
    # "others" beyond PyTorch's smoothing range: the pure path answers
    assert native_cross_entropy(x, t, -1, None, None, 0.9, "others", "mean") is None
    assert_close(
        al.cross_entropy(x, t, label_smoothing=0.9, smoothing="others"),
        pure(al.cross_entropy, x, t, label_smoothing=0.9, smoothing="others"),
        rtol=1e-12,
        atol=0,
    )


@torch_only
@pytest.mark.parametrize(
    ("labels", "ignore_index"),
    [([0, 4, 1], None), ([0, -1, 1], None), ([0, -100, 1], None), ([0, 7, -1], -1), ([0, 7, 1], 2)],
)
@pytest.mark.parametrize("n", [3, 100])
def test_torch_cross_entropy_out_of_range_labels_raise_like_pure(
    xp, device, labels, ignore_index, n
):
    if device.type != "cpu":
        pytest.skip("out-of-range labels raise on host arrays only")
    x = to_xp(xp, device, np.zeros((n, 4)))
    t = to_xp(xp, device, np.resize(np.array(labels), n))
    with pytest.raises(ValueError, match="class indices outside") as fast_error:
        al.cross_entropy(x, t, ignore_index=ignore_index)
    with pytest.raises(ValueError, match="class indices outside") as pure_error:
        pure(al.cross_entropy, x, t, ignore_index=ignore_index)
    assert str(fast_error.value) == str(pure_error.value)


@pytest.fixture
def label_kernel_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PyTorch label kernel for inputs of any size (it takes large ones only)."""
    from arraylosses._backends import _torch

    monkeypatch.setattr(_torch, "LABEL_KERNEL_MIN", 1)


@torch_only
def test_torch_label_kernel_takes_large_inputs_only(xp, device):
    import torch

    from arraylosses._backends import _torch

    n = _torch.LABEL_KERNEL_MIN // 8
    for rows, name in ((n - 1, "NllLoss"), (n, "ReducedSoftmaxFocal")):
        x = torch.zeros(rows, 8, device=device, requires_grad=True)
        t = torch.zeros(rows, dtype=torch.int64, device=device)
        assert name in graph_nodes(al.cross_entropy(x, t))


@torch_only
def test_torch_cross_entropy_definition_is_reachable(xp, device, label_kernel_always):
    x = to_xp(xp, device, np.zeros((3, 4))).requires_grad_(True)
    t = to_xp(xp, device, np.array([0, 1, 2]))
    if device.type == "cpu":
        assert native_cross_entropy(x, t, -1, None, None, 0.0, "uniform", "mean") is not None
        # with a gradient wanted the label kernel, with smoothing F.cross_entropy
        assert "ReducedSoftmaxFocal" in graph_nodes(al.cross_entropy(x, t))
        assert "Nll" in graph_nodes(al.cross_entropy(x, t, label_smoothing=0.1))
    assert "Nll" not in graph_nodes(pure_cross_entropy(x, t))
    assert_close(
        pure_cross_entropy(x, t).detach(), al.cross_entropy(x, t).detach(), rtol=1e-15, atol=0
    )


@torch_only
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "options",
    [{}, {"weight": "array"}, {"ignore_index": 2}, {"ignore_index": -100, "weight": "array"}],
    ids=str,
)
@pytest.mark.parametrize("layout", ["axis=1", "axis=-1"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_torch_cross_entropy_kernel_against_pytorch(
    xp, device, label_kernel_always, dtype, options, layout, reduction
):
    """With a gradient wanted, class-index cross-entropy without smoothing is the label
    kernel (gamma 0): its value and gradient are F.cross_entropy's (PyTorch's own
    autograd), with weights, ignored labels and confident pixels."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(29)
    shape, axis = ((2, 5, 3, 4), 1) if layout == "axis=1" else ((2, 3, 4, 5), -1)
    x_np = rng.normal(0, 4, shape)
    x_np.flat[::7] = 40.0
    label_shape = tuple(n for i, n in enumerate(shape) if i != axis % 4)
    t_np = rng.integers(0, 5, label_shape)
    opts = dict(options)
    if "ignore_index" in opts:
        t_np = np.where(rng.uniform(size=label_shape) < 0.3, opts["ignore_index"], t_np)
    dt = getattr(torch, dtype)
    if opts.get("weight") == "array":
        opts["weight"] = torch.tensor(rng.uniform(0.1, 2.0, 5), dtype=dt, device=device)
    t = torch.tensor(t_np, device=device)
    x = torch.tensor(x_np, dtype=dt, device=device, requires_grad=True)
    loss = al.cross_entropy(x, t, axis=axis, reduction=reduction, **opts)
    assert "ReducedSoftmaxFocal" in graph_nodes(loss)
    (got,) = torch.autograd.grad(loss, x)
    ref_x = x.detach().clone().requires_grad_(True)
    want = F.cross_entropy(torch.movedim(ref_x, axis, 1), t, reduction=reduction, **opts)
    (want_grad,) = torch.autograd.grad(want, ref_x)
    assert_close(loss.detach(), want.detach(), rtol=RTOL[dtype], atol=0)
    assert_close(got, want_grad, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 1e-3)


@torch_only
def test_torch_cross_entropy_kernel_leaves_an_all_ignored_mean_to_the_definition(
    xp, device, label_kernel_always
):
    """Every label ignored: the mean is NaN, its gradient 0 (the definition's), and
    the sum 0, whichever path runs."""
    import torch

    x = torch.randn(4, 3, dtype=torch.float64, device=device, requires_grad=True)
    t = torch.full((4,), -100, device=device)
    for fn in (al.cross_entropy, al.softmax_focal_loss):
        loss = fn(x, t, ignore_index=-100)
        assert torch.isnan(loss)
        assert "ReducedSoftmaxFocal" not in graph_nodes(loss)
        total = fn(x, t, ignore_index=-100, reduction="sum")
        assert float(total.detach()) == 0.0
        (grad,) = torch.autograd.grad(total, x)
        assert torch.equal(grad, torch.zeros_like(x))


@torch_only
def test_torch_private_apis_are_pinned(xp, device):
    """``_backends._torch.transform_state`` is the one user of torch's private APIs:
    they exist, and they answer as the dispatcher expects in each context."""
    import torch
    import torch.autograd.forward_ad as fwad

    from arraylosses._backends._torch import transform_state

    assert callable(torch._C._functorch.is_functorch_wrapped_tensor)
    assert callable(torch._C._functorch.is_legacy_batchedtensor)
    assert callable(torch._C._are_functorch_transforms_active)
    assert isinstance(torch.autograd.forward_ad._current_level, int)
    x = to_xp(xp, device, np.zeros(3))
    assert transform_state((x,)) == (False, False)
    seen: list[tuple[bool, bool]] = []

    def record(a: Any) -> Any:
        seen.append(transform_state((a,)))
        seen.append(transform_state((x,)))
        return a.sum()

    torch.func.vmap(record)(xp.stack([x, x]))
    assert seen == [(True, True), (False, True)]
    with fwad.dual_level():
        assert transform_state((x,)) == (False, True)
    assert transform_state((x,)) == (False, False)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_fused_log_sigmoid_pair_against_the_primitive(dtype: str) -> None:
    """The asymmetric loss's fused log-sigmoid on PyTorch: the primitive's values and
    first derivatives (relative accuracy in both tails), NaN for infinite logits."""
    torch = pytest.importorskip("torch")
    from arraylosses._backends import backend_of
    from arraylosses._backends._generic import array_namespace

    grid = np.concatenate([np.linspace(-120, 120, 481), [0.0, -1e4, 1e4, 17.5, -17.5]])
    x = torch.asarray(grid.astype(dtype)).requires_grad_(True)
    xp = array_namespace(x)
    fused = backend_of(xp).log_sigmoid_pair(x, xp)
    plain = log_sigmoid_pair(x, xp)
    rtol = 2e-7 if dtype == "float32" else 1e-15
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=0)
        (ga,) = torch.autograd.grad(a.sum(), x, retain_graph=True)
        (gb,) = torch.autograd.grad(b.sum(), x, retain_graph=True)
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=4 * rtol, atol=0)
    inf = torch.asarray(np.asarray([np.inf, -np.inf], dtype=dtype))
    assert all(bool(torch.isnan(v).all()) for v in backend_of(xp).log_sigmoid_pair(inf, xp))


@torch_only
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "options",
    [
        {"gamma": 2.0},
        {"gamma": 0.0},
        {"gamma": 0.5, "alpha": 0.3},
        {"gamma": 3.5, "alpha": [1.0, 2.0, 0.5, 3.0, 1.5], "poly_epsilon": 1.0},
        {"gamma": 2.0, "poly_epsilon": -0.5},
        {"gamma": 2.0, "ignore_index": 1, "alpha": [1.0, 2.0, 0.5, 3.0, 1.5]},
    ],
    ids=str,
)
@pytest.mark.parametrize("layout", ["axis=1", "axis=-1"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_torch_softmax_focal_kernel_gradient_equals_the_definition(
    xp, device, label_kernel_always, dtype, options, layout, reduction
):
    """The analytic gradient of the softmax focal kernel (class indices, no
    smoothing) against autograd through the definition (torch.func.grad takes it), at
    segmentation layouts with saturated logits; a second backward gives the same."""
    import torch

    rng = np.random.default_rng(17)
    shape, axis = ((2, 5, 3, 4), 1) if layout == "axis=1" else ((2, 3, 4, 5), -1)
    x_np = rng.normal(0, 4, shape)
    x_np.flat[::7] = 40.0  # confident pixels: p_y rounds to 1 in float32
    t_np = rng.integers(0, 5, tuple(n for i, n in enumerate(shape) if i != axis % 4))
    dt = getattr(torch, dtype)
    opts = dict(options)
    if isinstance(opts.get("alpha"), list):
        opts["alpha"] = torch.tensor(opts["alpha"], dtype=dt, device=device)
    t = torch.tensor(t_np, device=device)
    x = torch.tensor(x_np, dtype=dt, device=device, requires_grad=True)
    loss = al.softmax_focal_loss(x, t, axis=axis, reduction=reduction, **opts)
    assert type(loss.grad_fn).__name__ == "ReducedSoftmaxFocalBackward"
    (got,) = torch.autograd.grad(loss, x, retain_graph=True)
    (again,) = torch.autograd.grad(loss, x)
    want = torch.func.grad(
        lambda z: al.softmax_focal_loss(z, t, axis=axis, reduction=reduction, **opts)
    )(x.detach())
    assert torch.isfinite(got).all()
    assert_close(got, want, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 1e-3)
    assert torch.equal(got, again)
    with torch.no_grad():  # the value is the definition's
        plain = al.softmax_focal_loss(x, t, axis=axis, reduction=reduction, **opts)
    assert_close(loss.detach(), plain, rtol=RTOL[dtype], atol=0)


@torch_only
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_softmax_focal_kernel_where_the_label_probability_underflows(
    xp, device, label_kernel_always, dtype
):
    """The kernel takes ``log p_y`` as the log of the gathered probability; where that
    probability underflows (a logit gap beyond the dtype's exponent range) the loss is
    still the gap, not inf, and the gradient is finite: against the float64 formula
    ``-(1 - p)^2 log p`` with ``log p = -gap - log(1 + 2 e^-gap)`` written out here."""
    import torch

    gap = 120.0 if dtype == "float32" else 800.0  # beyond exp's range (~87, ~708)
    dt = getattr(torch, dtype)
    x = torch.tensor(
        [[gap, 0.0, 0.0], [0.0, 1.0, 2.0]], dtype=dt, device=device, requires_grad=True
    )
    t = torch.tensor([1, 0], device=device)
    loss = al.softmax_focal_loss(x, t, reduction="sum")
    assert type(loss.grad_fn).__name__ == "ReducedSoftmaxFocalBackward"
    log_p_row2 = -2.0 - np.log1p(np.exp(-1.0) + np.exp(-2.0))  # label 0 of [0, 1, 2]
    want = gap + np.log1p(2 * np.exp(-gap)) - (1 - np.exp(log_p_row2)) ** 2 * log_p_row2
    np.testing.assert_allclose(float(loss.detach()), want, rtol=RTOL[dtype], atol=0)
    loss.backward()
    assert torch.isfinite(x.grad).all()
    # row 1: dloss/dx = w (p - onehot) with p = (1, 0, 0) and w = 1 (log p_y = -gap)
    assert_close(x.grad[0], torch.tensor([1.0, -1.0, 0.0], dtype=dt, device=device))


@torch_only
@pytest.mark.parametrize(
    "case",
    [
        ("softmax_focal_loss", {"label_smoothing": 0.1}),
        ("softmax_focal_loss", {"ignore_index": 2, "alpha": [1.0, 2.0, 0.5, 3.0, 1.5],
                                "label_smoothing": 0.05}),
        ("softmax_focal_loss", {"gamma": 0.5, "poly_epsilon": 1.0, "smoothing": "others",
                                "label_smoothing": 0.2}),
        ("softmax_focal_loss", {"targets": "distribution", "alpha": 0.25}),
        ("softmax_focal_loss", {"gamma": 1.0, "label_smoothing": 1.0}),
        ("softmax_focal_loss", {"gamma": 2.5, "alpha": [1.0, 0.0, 2.0, 0.5, 1.5],
                                "label_smoothing": 0.3, "poly_epsilon": -0.7}),
        ("softmax_focal_loss", {"gamma": 0.0, "label_smoothing": 0.1, "smoothing": "others"}),
        ("softmax_focal_loss", {"gamma": 3.0, "alpha": 0.25, "label_smoothing": 0.1}),
        ("softmax_focal_loss", {"smoothing": [0.1, 0.2, 0.3, 0.2, 0.2],
                                "label_smoothing": 0.3}),
        ("cross_entropy", {"poly_epsilon": 2.0, "ignore_index": 1}),
        ("cross_entropy", {"smoothing": [0.1, 0.2, 0.3, 0.2, 0.2], "label_smoothing": 0.3,
                           "weight": [1.0, 2.0, 0.5, 3.0, 1.5]}),
        ("cross_entropy", {"targets": "distribution", "poly_epsilon": 0.5}),
    ],
    ids=str,
)  # fmt: skip
@pytest.mark.parametrize("layout", ["axis=1", "axis=-1", "axis=0"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_rowwise_blocks_gradient_equals_the_definition(
    xp, device, monkeypatch, case, layout, reduction
):
    """The row blocks' autograd function (``RowwiseLoss``, blocks of 16 logits here)
    against autograd through the whole definition (torch.func.grad takes it, as it
    takes every transform): gradients for a random output gradient, a second backward
    (the same bits), and create_graph=True (a Hessian-vector product)."""
    import torch

    from arraylosses._backends import _torch

    monkeypatch.setattr(_torch, "ROW_BLOCK", 16)
    name, options = case
    opts = dict(options)
    rng = np.random.default_rng(23)
    shape, axis = {"axis=1": ((3, 5, 2, 4), 1), "axis=-1": ((3, 2, 4, 5), -1),
                   "axis=0": ((5, 12, 2), 0)}[layout]  # fmt: skip
    x_np = rng.normal(0, 3, shape)
    x_np.flat[::11] = 30.0  # confident rows
    label_shape = tuple(n for i, n in enumerate(shape) if i != axis % len(shape))
    if opts.pop("targets", None) == "distribution":
        t = torch.tensor(np.moveaxis(rng.dirichlet(np.ones(5), label_shape), -1, axis))
    else:
        t = torch.tensor(rng.integers(0, 5, label_shape))
    for key in ("alpha", "weight", "smoothing"):
        if isinstance(opts.get(key), list):
            opts[key] = torch.tensor(opts[key], dtype=torch.float64)
    fn = getattr(al, name)

    def loss_of(z: Any) -> Any:
        return fn(z, t, axis=axis, reduction=reduction, **opts)

    check_rowwise_gradient(loss_of, x_np, rng)


@torch_only
@pytest.mark.parametrize(
    ("name", "options", "analytic"),
    [
        ("softmax_focal_loss", {"label_smoothing": 0.1}, True),
        ("softmax_focal_loss", {"label_smoothing": 0.2, "alpha": [1.0, 0.0, 2.0, 0.5, 1.5],
                                "ignore_index": 1}, True),
        ("softmax_focal_loss", {"label_smoothing": 0.1, "gamma": 0.5, "poly_epsilon": 1.0},
         True),
        ("softmax_focal_loss", {"targets": "distribution", "alpha": [1.0, 0.0, 2.0, 0.5, 1.5]},
         True),
        ("softmax_focal_loss", {"targets": "sparse distribution", "gamma": 0.5,
                                "alpha": [1.0, 3.0, 2.0, 0.0, 1.5]}, True),
        ("softmax_focal_loss", {"targets": "sparse distribution", "gamma": 0.0}, True),
        ("softmax_focal_loss", {"label_smoothing": 0.1,
                                "smoothing": [0.1, 0.2, 0.3, 0.2, 0.2]}, False),  # a prior
        ("softmax_focal_loss", {"label_smoothing": 0.1, "from_logits": False}, False),
        ("softmax_focal_loss", {"label_smoothing": 0.1, "gamma": "per-class"}, False),
        # the cross-entropy's definition: autograd by blocks (at gamma 0 it is as fast)
        ("cross_entropy", {"targets": "distribution", "weight": [1.0, 0.0, 2.0, 0.5, 1.5],
                           "poly_epsilon": 0.5}, False),
        ("cross_entropy", {"targets": "sparse distribution"}, False),
        ("cross_entropy", {"label_smoothing": 0.1, "weight": [1.0, 0.0, 2.0, 0.5, 1.5],
                           "ignore_index": 3}, False),
    ],
    ids=str,
)  # fmt: skip
def test_torch_row_blocks_take_the_analytic_softmax_gradient(
    xp, device, monkeypatch, name, options, analytic
):
    """The softmax focal loss of a distribution, or of smoothed class indices without a
    prior, from logits (a float gamma): each row block's gradient is the analytic
    ``softmax_focal_gradient``, called once per block and nowhere else; the other
    softmax losses keep autograd through the definition.
    Value and gradient agree with torch.func on the whole definition, where no block
    is cut (a sparse distribution has classes without mass: their logit -inf too)."""
    import torch

    from arraylosses import _categorical
    from arraylosses._backends import _torch

    monkeypatch.setattr(_torch, "ROW_BLOCK", 16)
    calls = []
    original = _categorical.softmax_focal_gradient

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0].x.shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(_categorical, "softmax_focal_gradient", counted)
    opts = dict(options)
    rng = np.random.default_rng(31)
    x_np = rng.normal(0, 3, (6, 5, 4))
    targets = opts.pop("targets", None)
    if targets is None:
        t = torch.tensor(rng.integers(0, 5, (6, 4)))
    else:
        q = np.moveaxis(rng.dirichlet(np.ones(5), (6, 4)), -1, 1)
        if targets == "sparse distribution":  # class 2 gets no mass, and is masked out
            q[:, 2] = 0.0
            q /= q.sum(axis=1, keepdims=True)
            x_np[:, 2] = -np.inf
        t = torch.tensor(q)
    if opts.get("from_logits") is False:
        x_np = np.moveaxis(rng.dirichlet(np.ones(5), (6, 4)), -1, 1)
    if opts.get("gamma") == "per-class":
        opts["gamma"] = torch.tensor(rng.uniform(0.5, 3.0, (1, 5, 1)))
    for key in ("alpha", "smoothing", "weight"):
        if isinstance(opts.get(key), list):
            opts[key] = torch.tensor(opts[key], dtype=torch.float64)
    fn = getattr(al, name)

    def loss_of(z: Any) -> Any:
        return fn(z, t, axis=1, **opts)

    x = torch.tensor(x_np, requires_grad=True)
    loss = loss_of(x)
    (got,) = torch.autograd.grad(loss, x)
    assert len(calls) == (6 if analytic else 0)  # one call per block of 16 logits: 6 rows
    assert all(shape == (1, 5, 4) for shape in calls)
    assert torch.isfinite(got).all()
    assert torch.isfinite(loss)
    monkeypatch.setattr(_torch, "ROW_BLOCK", 1 << 20)  # one block: autograd throughout
    want_value = loss_of(x)
    (want,) = torch.autograd.grad(want_value, x)
    assert_close(got, want, rtol=1e-12, atol=1e-15)
    assert_close(loss.detach(), want_value.detach(), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "case",
    [
        {"gamma": 2.0},
        {"gamma": 0.0, "ignore_index": 2},
        {"gamma": 0.5, "alpha": "per-class", "poly_epsilon": 1.5},
        {"gamma": 3.0, "alpha": "per-class", "smoothing": "others", "label_smoothing": 1.0},
        {"gamma": 1.5, "poly_epsilon": -0.5},
        {"gamma": 2.0, "targets": "distribution", "label_smoothing": 0.0},
        {"gamma": 0.0, "targets": "distribution", "alpha": "per-class", "poly_epsilon": 0.5},
        {"gamma": 0.5, "targets": "distribution", "smoothing": "others"},
    ],
    ids=str,
)
def test_softmax_focal_gradient_matches_finite_differences(xp, device, case):
    """The analytic gradient of the softmax focal loss of a distribution or of
    smoothed class indices (the cross-entropy's at gamma 0), written against the
    array API (every backend runs it, with the generic ``Backend.add_at_label`` or the
    library's own), against central differences of the float64 reference, and its
    per-element loss against the reference's."""
    from arraylosses._categorical import softmax_focal_gradient

    opts = dict(case)
    rng = np.random.default_rng(37)
    x_np = rng.normal(0, 2, (3, 5, 4))
    x_np[0, :, 0] = [9.0, -9.0, 0.0, 1.0, -2.0]  # a confident row
    t_np = rng.integers(0, 5, (3, 4))
    if opts.pop("targets", None) == "distribution":
        t_np = np.moveaxis(rng.dirichlet(np.ones(5), (3, 4)), -1, 1)
    alpha = rng.uniform(0.0, 2.0, 5) if opts.pop("alpha", None) == "per-class" else None
    if alpha is not None:
        alpha[1] = 0.0  # a class without mass
    eps = opts.pop("label_smoothing", 0.2)
    smoothing = opts.pop("smoothing", "uniform")
    ignore = opts.pop("ignore_index", None)
    gamma, poly = opts.pop("gamma"), opts.pop("poly_epsilon", 0.0)
    assert not opts

    def reference(z: np.ndarray, reduction: str) -> Any:
        return ref.softmax_focal_loss(
            z, t_np, axis=1, alpha=alpha, gamma=gamma, label_smoothing=eps,
            smoothing=smoothing, poly_epsilon=poly, ignore_index=ignore, reduction=reduction,
        )  # fmt: skip

    h = 1e-6
    fd = np.zeros_like(x_np)
    for i in np.ndindex(x_np.shape):
        up, down = x_np.copy(), x_np.copy()
        up[i] += h
        down[i] -= h
        fd[i] = (float(reference(up, "sum")) - float(reference(down, "sum"))) / (2 * h)
    inputs = SoftmaxInputs(
        xp.asarray(x_np, device=device), xp.asarray(t_np, device=device), 1, ignore, eps,
        smoothing, True, "none",
    )  # fmt: skip
    alpha_vec = None if alpha is None else inputs.per_class(alpha.tolist(), "alpha")
    loss, grad = softmax_focal_gradient(inputs, alpha_vec, gamma, poly)
    loss, grad = np.asarray(loss), np.asarray(grad)
    if ignore is not None:  # (ignored labels count nowhere: the caller zeroes them)
        kept = t_np != ignore
        loss = np.where(kept, loss, 0.0)
        grad = np.where(kept[:, None], grad, 0.0)
    np.testing.assert_allclose(loss, reference(x_np, "none"), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


@torch_only
def test_softmax_focal_slope_matches_autograd(xp, device):
    """``softmax_focal_slope`` (both of its arrangements: the power form for a float
    gamma >= 1, the guarded ratio for 0 < gamma < 1 and array gammas) against autograd
    of the class term it differentiates, ``(1 - p)^gamma (log p - eps (1 - p))`` as a
    function of ``log p``, from ``log p = 0`` (p = 1) to deep in the tail."""
    import torch

    from arraylosses._backends._generic import array_namespace
    from arraylosses._elementwise import poly_log_prob, softmax_focal_slope, softmax_focal_terms

    tx = array_namespace(torch.zeros(1))
    log_p = -torch.tensor(
        [0.0, 1e-300, 1e-12, 1e-6, 0.01, 0.3, 0.69, 1.0, 4.0, 30.0, 700.0],
        dtype=torch.float64, device=device,
    )  # fmt: skip
    gammas: list[Any] = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 7.0]
    gammas.append(torch.tensor([0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 0.7, 2.0, 1.0, 0.0, 4.0],
                               dtype=torch.float64, device=device))  # fmt: skip
    for gamma in gammas:
        for eps in (0.0, 0.7, -1.3):
            leaf = log_p.clone().requires_grad_()
            u = -torch.expm1(leaf)
            term = softmax_focal_terms(poly_log_prob(leaf, u, eps), u, gamma, tx)
            (want,) = torch.autograd.grad(term.sum(), leaf)
            u0 = -torch.expm1(log_p)
            got = softmax_focal_slope(log_p, u0, gamma, eps, tx)
            assert torch.isfinite(got).all(), (gamma, eps)
            assert_close(got, want, rtol=1e-12, atol=1e-300)


def check_rowwise_gradient(
    loss_of: Callable[[Any], Any], x_np: np.ndarray, rng: np.random.Generator
) -> Any:
    """``loss_of(x)`` goes through ``RowwiseLoss``: its gradient for a random output
    gradient, a second backward (the same bits), the value, and a Hessian-vector
    product (``create_graph=True``), each against torch.func on the whole
    definition. Returns the logits tensor."""
    import torch

    x = torch.tensor(x_np, requires_grad=True)
    loss = loss_of(x)
    assert any(type(f).__name__ == "RowwiseLossBackward" for f in _graph(loss.grad_fn))
    v = torch.tensor(rng.normal(size=tuple(loss.shape)))
    (got,) = torch.autograd.grad(loss, x, v, retain_graph=True)
    (again,) = torch.autograd.grad(loss, x, v, retain_graph=True)
    want, want_value = torch.func.grad_and_value(lambda z: (loss_of(z) * v).sum())(x.detach())
    assert_close(got, want, rtol=1e-12, atol=1e-15)
    assert torch.equal(got, again)
    assert_close((loss * v).sum().detach(), want_value, rtol=1e-12, atol=0)  # the value
    u = torch.tensor(rng.normal(size=x_np.shape))
    (first,) = torch.autograd.grad(loss, x, v, create_graph=True)
    (hvp,) = torch.autograd.grad((first * u).sum(), x)
    want_hvp = torch.func.grad(
        lambda z: (torch.func.grad(lambda w: (loss_of(w) * v).sum())(z) * u).sum()
    )(x.detach())
    assert_close(hvp, want_hvp, rtol=1e-10, atol=1e-13)
    return x


@torch_only
@pytest.mark.parametrize(
    "case",
    [
        ("asymmetric_loss", {}),
        ("asymmetric_loss", {"gamma_pos": 0.5, "gamma_neg": 2.5, "clip": 0.1}),
        ("asymmetric_loss", {"clip": 0.0, "label_smoothing": 0.1}),
        ("sigmoid_focal_loss", {"gamma": 0.5, "poly_epsilon": 1.0}),
        ("sigmoid_focal_loss", {"weight": "per-class", "label_smoothing": 0.1}),
        ("binary_cross_entropy", {"weight": "per-class", "poly_epsilon": -0.5}),
        ("binary_cross_entropy", {"pos_weight": "per-class"}),
        ("sigmoid_focal_loss", {"gamma": "per-class", "alpha": None}),
    ],
    ids=str,
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_elementwise_losses_by_row_blocks_gradient(xp, device, monkeypatch, case, reduction):
    """Elementwise losses (rows of one element) go through the row blocks' autograd
    function (blocks of 16 elements here): the gradient, a second backward and a
    Hessian-vector product against torch.func on the whole definition. Targets that
    need a gradient, or broadcast against the logits, take the definition."""
    import torch

    from arraylosses._backends import _torch

    monkeypatch.setattr(_torch, "ROW_BLOCK", 16)
    name, options = case
    opts = dict(options)
    rng = np.random.default_rng(29)
    for key in ("weight", "pos_weight", "gamma"):
        if opts.get(key) == "per-class":
            opts[key] = torch.tensor(rng.uniform(0.5, 2.0, 7))
    x_np = rng.normal(0, 4, (12, 7))
    x_np.flat[::9] = 35.0  # saturated elements
    y = torch.tensor(rng.random((12, 7)) < 0.3, dtype=torch.float64)
    fn = getattr(al, name)

    def loss_of(z: Any, t: Any = y) -> Any:
        return fn(z, t, reduction=reduction, **opts)

    x = check_rowwise_gradient(loss_of, x_np, rng)
    for other in (y.clone().requires_grad_(), y[:1]):  # a target gradient; broadcast targets
        out = loss_of(x, other)
        assert not any(type(f).__name__ == "RowwiseLossBackward" for f in _graph(out.grad_fn))
    for key in ("pos_weight", "gamma"):  # a per-class option that needs its gradient
        if isinstance(opts.get(key), torch.Tensor):
            opts[key] = opts[key].clone().requires_grad_()
            out = loss_of(x)
            assert not any(type(f).__name__ == "RowwiseLossBackward" for f in _graph(out.grad_fn))
            (g,) = torch.autograd.grad(out.sum(), opts[key])
            assert torch.isfinite(g).all()


def _graph(node: Any) -> list[Any]:
    """Every node of an autograd graph below ``node``."""
    seen, stack = [], [node]
    while stack:
        n = stack.pop()
        if n is None or n in seen:
            continue
        seen.append(n)
        stack.extend(f for f, _ in n.next_functions)
    return seen


@torch_only
def test_torch_softmax_focal_kernel_only_where_it_applies(xp, device, label_kernel_always):
    """Smoothing, where, a normalizer, a gamma array, no reduction and no gradient
    take the definition; ignore_index takes the kernel."""
    import torch

    x = torch.randn(6, 4, dtype=torch.float64, device=device, requires_grad=True)
    t = torch.tensor([0, 1, 2, 3, 0, 1], device=device)
    kernel = "ReducedSoftmaxFocalBackward"
    assert type(al.softmax_focal_loss(x, t).grad_fn).__name__ == kernel
    assert type(al.softmax_focal_loss(x, t, ignore_index=1).grad_fn).__name__ == kernel
    for options in (
        {"label_smoothing": 0.1},
        {"where": t > 0},
        {"gamma": torch.full((6, 4), 2.0, dtype=torch.float64, device=device)},
        {"reduction": "none"},
        {"normalizer": 3.0},
    ):
        assert type(al.softmax_focal_loss(x, t, **options).grad_fn).__name__ != kernel
    with torch.no_grad():
        assert al.softmax_focal_loss(x, t).grad_fn is None
