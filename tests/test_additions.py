"""The 0.2 additions against their float64 references, on every backend.

Asymmetric loss, Poly-1, callable gamma (FLSD-53), class-balanced weights, the
``normalizer``, prior smoothing, ``where`` masks, ``weight`` / ``pos_weight`` on the
sigmoid focal loss and the calibration error. Every function is tagged with
``lazy_xp_function``: on JAX each call runs under ``jax.jit``, on Dask with
computation forbidden. Peers (optax, timm's formula, torchmetrics) are checked in
their backend's session.
"""

from __future__ import annotations

import itertools
import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from array_api_extra.testing import assert_close, lazy_xp_function

import arraylosses as al
from arraylosses import (
    asymmetric_loss,
    binary_cross_entropy,
    calibration_error,
    class_balanced_weights,
    cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_focal_loss,
)
from arraylosses.testing import reference as ref
from arraylosses.testing import to_numpy

for _f in (
    asymmetric_loss,
    binary_cross_entropy,
    calibration_error,
    class_balanced_weights,
    cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_focal_loss,
):
    lazy_xp_function(_f)

RTOL = {"float32": 2e-5, "float64": 1e-11}
ATOL = {"float32": 1e-6, "float64": 1e-13}
REDUCTIONS = ("none", "sum", "mean")


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(abs(hash(repr(key))) % 2**32)


def _binary_data(dtype: str, soft: bool, n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11 if soft else 7)
    x = np.concatenate([rng.normal(0, 4, n - 6), [30.0, -30.0, 0.0, 1e4, -1e4, -2.9444389]])
    y = rng.random(n) if soft else (rng.random(n) < 0.3).astype(float)
    x = x.astype(dtype).astype(np.float64)
    return x, y.astype(dtype).astype(np.float64)


def _class_data(dtype: str, k: int = 5, n: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 3, (n, k))
    x[0] = [40.0, -40.0, 0.0, 1.0, 2.0]
    x = x.astype(dtype).astype(np.float64)
    labels = rng.integers(0, k, n)
    soft = rng.random((n, k))
    soft = (soft / soft.sum(1, keepdims=True)).astype(dtype).astype(np.float64)
    return x, labels, soft


def _close(got: Any, want: np.ndarray, xp: ModuleType, like: Any, dtype: str) -> None:
    expected = xp.asarray(np.asarray(want), dtype=getattr(xp, dtype))
    if hasattr(like, "device") and not isinstance(like, np.ndarray):
        try:
            expected = xp.asarray(expected, device=like.device)
        except (TypeError, ValueError, AttributeError):
            pass
    assert_close(got, expected, rtol=RTOL[dtype], atol=ATOL[dtype])


# ------------------------------------------------------------------- asymmetric loss

ASL_OPTIONS = [
    {},
    {"gamma_pos": 1.0, "gamma_neg": 4.0, "clip": 0.05},
    {"gamma_pos": 0.5, "gamma_neg": 2.5, "clip": 0.1},
    {"gamma_pos": 0.0, "gamma_neg": 0.0, "clip": 0.0},
    {"gamma_neg": 0.3, "clip": 0.2, "label_smoothing": 0.1},
]


@pytest.mark.parametrize("options", ASL_OPTIONS)
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_asymmetric_loss_values(
    xp: ModuleType, asarray: Any, options: dict[str, Any], soft: bool, reduction: str, dtype: str
) -> None:
    x, y = _binary_data(dtype, soft)
    logits = asarray(x, dtype)
    got = asymmetric_loss(logits, asarray(y, dtype), reduction=reduction, **options)
    _close(got, ref.asymmetric_loss(x, y, reduction=reduction, **options), xp, logits, dtype)


@pytest.mark.parametrize("options", [*ASL_OPTIONS, {"from_logits": False}])
@pytest.mark.parametrize("shape", [(48,), (8, 6)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_asymmetric_loss_by_row_blocks(
    xp: ModuleType,
    asarray: Any,
    small_row_blocks: None,
    options: dict[str, Any],
    shape: tuple[int, ...],
    reduction: str,
    dtype: str,
) -> None:
    """The blockwise evaluation of the definition against the float64 reference."""
    x, y = _binary_data(dtype, soft=True)
    if options.get("from_logits") is False:
        x = 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))
    x, y = x.reshape(shape), y.reshape(shape)
    logits = asarray(x, dtype)
    got = asymmetric_loss(logits, asarray(y, dtype), reduction=reduction, **options)
    _close(got, ref.asymmetric_loss(x, y, reduction=reduction, **options), xp, logits, dtype)


def test_asymmetric_loss_from_probabilities(xp: ModuleType, asarray: Any) -> None:
    p = np.asarray([0.0, 0.01, 0.05, 0.3, 0.7, 0.99, 1.0])
    y = np.asarray([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    got = asymmetric_loss(asarray(p), asarray(y), from_logits=False, reduction="none")
    _close(got, ref.asymmetric_loss(p, y, from_logits=False, reduction="none"), xp, p, "float64")


def _timm_asymmetric(x: np.ndarray, y: np.ndarray, gp: float, gn: float, clip: float) -> np.ndarray:
    """timm's ``AsymmetricLossMultiLabel`` per element (its formula, with its 1e-8
    clamp), before its sum."""
    xs_pos = 1 / (1 + np.exp(-x))
    xs_neg = np.minimum(1 - xs_pos + clip, 1) if clip > 0 else 1 - xs_pos
    loss = y * np.log(np.maximum(xs_pos, 1e-8)) + (1 - y) * np.log(np.maximum(xs_neg, 1e-8))
    pt = xs_pos * y + xs_neg * (1 - y)
    return -(loss * (1 - pt) ** (gp * y + gn * (1 - y)))


@pytest.mark.parametrize(("gp", "gn", "clip"), [(0.0, 4.0, 0.05), (1.0, 2.0, 0.0), (2.0, 5.0, 0.2)])
def test_asymmetric_loss_is_timms_for_binary_targets(
    xp: ModuleType, asarray: Any, gp: float, gn: float, clip: float
) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 3, (16, 10))  # where timm's clamp is inactive
    y = (rng.random((16, 10)) < 0.2).astype(float)
    got = asymmetric_loss(
        asarray(x), asarray(y), gamma_pos=gp, gamma_neg=gn, clip=clip, reduction="none"
    )
    _close(got, _timm_asymmetric(x, y, gp, gn, clip), xp, x, "float64")


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_asymmetric_without_clip_is_the_focal_loss(
    xp: ModuleType, asarray: Any, gamma: float
) -> None:
    x, y = _binary_data("float64", soft=False)
    asl = asymmetric_loss(
        asarray(x), asarray(y), gamma_pos=gamma, gamma_neg=gamma, clip=0.0, reduction="none"
    )
    focal = sigmoid_focal_loss(asarray(x), asarray(y), alpha=None, gamma=gamma, reduction="none")
    assert_close(asl, focal, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("library", ["torch", "jax"])
@pytest.mark.parametrize("options", ASL_OPTIONS)
def test_asymmetric_loss_gradients_are_finite_and_match_differences(
    library: str, options: dict[str, Any]
) -> None:
    """Finite everywhere, at ``p == clip`` exactly (the branch ``p_m = 0``) and at
    saturated logits; central differences in float64 away from the margin."""
    clip = options.get("clip", 0.05)
    at_margin = math.log(clip / (1 - clip)) if clip > 0 else 0.0
    x = np.asarray([at_margin, -1e4, 1e4, 80.0, -80.0, 0.0, 1.5, -2.0, 3.0])
    y = np.asarray([0.0, 0.0, 1.0, 0.0, 1.0, 0.3, 1.0, 0.0, 0.6])
    grad = _grad(library, lambda a, t: al.asymmetric_loss(a, t, reduction="sum", **options), x, y)
    assert np.isfinite(grad).all(), grad
    central = _central(lambda a: ref.asymmetric_loss(a, y, reduction="none", **options), x)
    away = np.abs(x - at_margin) > 1e-3
    np.testing.assert_allclose(grad[away], central[away], rtol=1e-5, atol=1e-9)


def _grad(library: str, f: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``d sum f / d x`` in float64 by the library's reverse mode."""
    if library == "torch":
        torch = pytest.importorskip("torch")
        leaf = torch.asarray(x).requires_grad_(True)
        (g,) = torch.autograd.grad(f(leaf, torch.asarray(y)), leaf)
        return g.numpy()
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    with jax.enable_x64(True):
        return np.asarray(jax.grad(lambda a: f(a, jnp.asarray(y)))(jnp.asarray(x)))


def _central(f: Any, x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central differences of an elementwise ``f`` (element by element, so that no
    other element's value rounds the difference)."""
    out = np.empty_like(x)
    for i in range(x.size):
        h = step * max(1.0, abs(x.flat[i]))
        up, down = x.copy(), x.copy()
        up.flat[i] += h
        down.flat[i] -= h
        out.flat[i] = (f(up).flat[i] - f(down).flat[i]) / (2 * h)
    return out


# ------------------------------------------------------------------------- Poly-1

POLY_EPS = [-1.0, 0.5, 2.0]


@pytest.mark.parametrize("eps", POLY_EPS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("binary_cross_entropy", {}),
        ("binary_cross_entropy", {"weight": [0.5, 2.0], "pos_weight": 3.0}),
        ("sigmoid_focal_loss", {}),
        ("sigmoid_focal_loss", {"gamma": 0.5, "alpha": None, "label_smoothing": 0.1}),
    ],
)
def test_poly_binary(
    xp: ModuleType, asarray: Any, eps: float, reduction: str, name: str, options: dict[str, Any]
) -> None:
    x, y = _binary_data("float64", soft=True)
    x, y = x.reshape(-1, 2), y.reshape(-1, 2)
    kw = dict(options)
    if "weight" in kw:
        kw["weight"] = asarray(np.asarray(kw["weight"]))
    got = getattr(al, name)(asarray(x), asarray(y), poly_epsilon=eps, reduction=reduction, **kw)
    want = getattr(ref, name)(x, y, poly_epsilon=eps, reduction=reduction, **options)
    _close(got, want, xp, x, "float64")


@pytest.mark.parametrize("eps", POLY_EPS)
@pytest.mark.parametrize("targets", ["labels", "soft"])
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("cross_entropy", {}),
        ("cross_entropy", {"weight": [1.0, 2.0, 0.5, 1.0, 3.0], "label_smoothing": 0.2}),
        ("softmax_focal_loss", {}),
        ("softmax_focal_loss", {"gamma": 0.5, "alpha": [0.1, 0.2, 0.3, 0.2, 0.2]}),
        ("softmax_focal_loss", {"label_smoothing": 0.1}),
    ],
)
def test_poly_softmax(
    xp: ModuleType, asarray: Any, eps: float, targets: str, name: str, options: dict[str, Any]
) -> None:
    x, labels, soft = _class_data("float64")
    t = labels if targets == "labels" else soft
    kw = dict(options)
    for key in ("weight", "alpha"):
        if key in kw:
            kw[key] = asarray(np.asarray(kw[key]))
    for reduction in REDUCTIONS:
        got = getattr(al, name)(asarray(x), asarray(t), poly_epsilon=eps, reduction=reduction, **kw)
        want = getattr(ref, name)(x, t, poly_epsilon=eps, reduction=reduction, **options)
        _close(got, want, xp, x, "float64")


@pytest.mark.parametrize("name", ["binary_cross_entropy", "sigmoid_focal_loss"])
def test_poly_zero_is_exactly_the_loss(xp: ModuleType, asarray: Any, name: str) -> None:
    x, y = _binary_data("float32", soft=True)
    a, t = asarray(x, "float32"), asarray(y, "float32")
    f = getattr(al, name)
    assert_close(
        f(a, t, poly_epsilon=0.0, reduction="none"), f(a, t, reduction="none"), rtol=0, atol=0
    )


@pytest.mark.parametrize("targets", ["labels", "soft"])
@pytest.mark.parametrize("eps", POLY_EPS)
def test_poly_cross_entropy_is_optax(targets: str, eps: float) -> None:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    x, labels, soft = _class_data("float32")
    onehot = np.eye(x.shape[1])[labels] if targets == "labels" else soft
    with jax.enable_x64(False):
        want = optax.losses.poly_loss_cross_entropy(
            jnp.asarray(x, jnp.float32), jnp.asarray(onehot, jnp.float32), epsilon=eps
        )
        t = jnp.asarray(labels) if targets == "labels" else jnp.asarray(soft, jnp.float32)
        got = al.cross_entropy(jnp.asarray(x, jnp.float32), t, poly_epsilon=eps, reduction="none")
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=2e-6)


# ------------------------------------------------------------------ callable gamma


def test_flsd53_gamma(xp: ModuleType, asarray: Any) -> None:
    p = np.asarray([0.0, 0.1, 0.199, 0.2, 0.5, 1.0])
    got = al.flsd53_gamma(asarray(p))
    _close(got, ref.flsd53_gamma(p), xp, p, "float64")


@pytest.mark.parametrize("name", ["sigmoid_focal_loss", "softmax_focal_loss"])
@pytest.mark.parametrize("targets", ["labels", "soft"])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}])
def test_callable_gamma_values(
    xp: ModuleType, asarray: Any, name: str, targets: str, options: dict[str, Any]
) -> None:
    if name == "sigmoid_focal_loss":
        x, y = _binary_data("float64", soft=targets == "soft")
        t = y
    else:
        x, labels, soft = _class_data("float64")
        t = labels if targets == "labels" else soft
    for gamma in (al.flsd53_gamma, lambda p: 1.0 + p):
        for reduction in REDUCTIONS:
            got = getattr(al, name)(
                asarray(x), asarray(t), gamma=gamma, reduction=reduction, **options
            )
            want = getattr(ref, name)(x, t, gamma=ref_gamma(gamma), reduction=reduction, **options)
            _close(got, want, xp, x, "float64")


def ref_gamma(gamma: Any) -> Any:
    return ref.flsd53_gamma if gamma is al.flsd53_gamma else (lambda p: 1.0 + p)


@pytest.mark.parametrize("library", ["torch", "jax"])
@pytest.mark.parametrize("name", ["sigmoid_focal_loss", "softmax_focal_loss"])
def test_flsd53_gradient_is_that_of_the_same_gamma_array(library: str, name: str) -> None:
    """Away from the threshold FLSD-53 is piecewise constant: its gradient is the one
    of the same gamma given as an array."""
    if name == "sigmoid_focal_loss":
        x, y = _binary_data("float64", soft=False)
        p_t = ref.sigmoid(x) * y + ref.sigmoid(-x) * (1 - y)
        gammas = ref.flsd53_gamma(p_t)
    else:
        x, y, _ = _class_data("float64")
        gammas = ref.flsd53_gamma(ref.softmax(x, axis=-1))

    def f(array_gamma: bool) -> Any:
        def loss(a: Any, t: Any) -> Any:
            g = (
                al.flsd53_gamma
                if not array_gamma
                else type(a)(gammas)
                if library == "torch"
                else None
            )
            if library == "jax" and array_gamma:
                import jax.numpy as jnp

                g = jnp.asarray(gammas)
            return getattr(al, name)(a, t, gamma=g, reduction="sum")

        return loss

    np.testing.assert_allclose(
        _grad(library, f(False), x, y), _grad(library, f(True), x, y), rtol=1e-12, atol=1e-15
    )


@pytest.mark.filterwarnings(
    "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
)
def test_callable_gamma_under_torch_compile() -> None:
    torch = pytest.importorskip("torch")
    torch._dynamo.reset()
    x, y = _binary_data("float32", soft=False)
    f = torch.compile(
        lambda a, t: al.sigmoid_focal_loss(a, t, gamma=al.flsd53_gamma),
        fullgraph=True,
        backend="aot_eager",
    )
    got = f(torch.asarray(x, dtype=torch.float32), torch.asarray(y, dtype=torch.float32))
    want = ref.sigmoid_focal_loss(x, y, gamma=ref.flsd53_gamma)
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-5)


# ----------------------------------------------------------- class-balanced weights


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.999, 0.9999, 1.0])
@pytest.mark.parametrize("counts", [[1000, 100, 10, 1], [5, 0, 7, 0, 1], [0, 0, 3]])
def test_class_balanced_weights(
    xp: ModuleType, asarray: Any, beta: float, counts: list[int]
) -> None:
    c = asarray(np.asarray(counts, dtype=np.int64))
    got = class_balanced_weights(c, beta=beta, dtype=xp.float64)
    want = ref.class_balanced_weights(counts, beta=beta)
    _close(got, want, xp, c, "float64")
    host = to_numpy(got)
    assert np.isfinite(host).all()
    np.testing.assert_allclose(host.sum(), np.count_nonzero(counts), rtol=1e-12)


def test_class_balanced_weights_keep_precision_near_one(xp: ModuleType, asarray: Any) -> None:
    """beta = 1 - 1e-12: ``1 - beta**n`` computed directly loses about four digits in
    float64; the closed form ``n (1 - beta)`` to first order is the truth."""
    beta, counts = 1 - 1e-12, np.asarray([3, 1, 7], dtype=np.int64)
    got = to_numpy(class_balanced_weights(asarray(counts), beta=beta, dtype=xp.float64))
    w = 1 / counts.astype(np.float64)  # the limit, exact to ~1e-11 here
    np.testing.assert_allclose(got, w * 3 / w.sum(), rtol=1e-10)


def test_class_balanced_weights_no_samples_and_errors(xp: ModuleType, asarray: Any) -> None:
    zeros = class_balanced_weights(asarray(np.zeros(3, dtype=np.int64)))
    assert (to_numpy(zeros) == 0).all()
    with pytest.raises(ValueError, match="`beta`"):
        class_balanced_weights(asarray(np.ones(3)), beta=1.5)
    with pytest.raises(ValueError, match="1-D"):
        class_balanced_weights(asarray(np.ones((2, 2))))
    with pytest.raises(TypeError, match="`counts`"):
        class_balanced_weights([1, 2, 3])  # type: ignore[arg-type]


def test_class_balanced_weights_refuse_negative_counts_on_host(
    xp: ModuleType, asarray: Any, backend: str
) -> None:
    if backend not in ("numpy", "array_api_strict", "torch"):
        pytest.skip("values are read only on eager host arrays")
    with pytest.raises(ValueError, match=r"`counts` must be non-negative; got -2\.0"):
        class_balanced_weights(asarray(np.asarray([3, -2, 1])))


# ----------------------------------------------------------------- normalizer, where

LOSS_CASES = [
    ("binary_cross_entropy", "binary", {}),
    ("sigmoid_focal_loss", "binary", {"gamma": 0.5}),
    ("asymmetric_loss", "binary", {}),
    ("cross_entropy", "labels", {"weight": [1.0, 2.0, 0.5, 1.0, 3.0]}),
    ("cross_entropy", "labels", {"ignore_index": 2, "label_smoothing": 0.1}),
    ("cross_entropy", "soft", {}),
    ("softmax_focal_loss", "labels", {"alpha": [0.1, 0.2, 0.3, 0.2, 0.2]}),
    ("softmax_focal_loss", "soft", {"label_smoothing": 0.2}),
]


def _case(kind: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    if kind == "binary":
        x, y = _binary_data("float64", soft=True)
        return x.reshape(8, 6), y.reshape(8, 6), (8, 6)
    x, labels, soft = _class_data("float64")
    return x, (labels if kind == "labels" else soft), (x.shape[0],)


def _kw(asarray: Any, options: dict[str, Any]) -> dict[str, Any]:
    kw = dict(options)
    for key in ("weight", "alpha"):
        if key in kw and not isinstance(kw[key], float):
            kw[key] = asarray(np.asarray(kw[key]))
    return kw


@pytest.mark.parametrize(("name", "kind", "options"), LOSS_CASES)
@pytest.mark.parametrize("normalizer", [7.0, "array"])
def test_normalizer_divides_the_sum(
    xp: ModuleType, asarray: Any, name: str, kind: str, options: dict[str, Any], normalizer: Any
) -> None:
    x, t, _ = _case(kind)
    n = asarray(np.asarray(3.5)) if normalizer == "array" else normalizer
    got = getattr(al, name)(asarray(x), asarray(t), normalizer=n, **_kw(asarray, options))
    want = getattr(ref, name)(x, t, normalizer=3.5 if normalizer == "array" else 7.0, **options)
    _close(got, want, xp, x, "float64")


@pytest.mark.parametrize(("name", "kind", "options"), LOSS_CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_where_masks_count_nowhere(
    xp: ModuleType, asarray: Any, name: str, kind: str, options: dict[str, Any], reduction: str
) -> None:
    x, t, shape = _case(kind)
    mask = _rng(name, kind).random(shape) < 0.6
    dirty = x.copy()
    dirty[~mask] = np.nan  # whatever a masked element holds reaches nothing
    got = getattr(al, name)(
        asarray(dirty),
        asarray(t),
        where=asarray(mask),
        reduction=reduction,
        **_kw(asarray, options),
    )
    want = getattr(ref, name)(x, t, where=mask, reduction=reduction, **options)
    _close(got, want, xp, x, "float64")


@pytest.mark.parametrize(("name", "kind", "options"), LOSS_CASES)
def test_where_all_masked(
    xp: ModuleType, asarray: Any, name: str, kind: str, options: dict[str, Any]
) -> None:
    x, t, shape = _case(kind)
    mask = asarray(np.zeros(shape, dtype=bool))
    kw = _kw(asarray, options)
    mean = to_numpy(getattr(al, name)(asarray(x), asarray(t), where=mask, **kw))
    total = to_numpy(getattr(al, name)(asarray(x), asarray(t), where=mask, reduction="sum", **kw))
    assert np.isnan(mean)
    assert total == 0.0


@pytest.mark.parametrize("library", ["torch", "jax"])
@pytest.mark.parametrize(("name", "kind", "options"), LOSS_CASES)
def test_masked_elements_have_exactly_zero_gradient(
    library: str, name: str, kind: str, options: dict[str, Any]
) -> None:
    x, t, shape = _case(kind)
    mask = _rng(name, kind, library).random(shape) < 0.5
    dirty = x.copy()
    dirty[~mask] = np.nan
    dirty[~mask & (np.arange(mask.size).reshape(shape) % 2 == 0)] = 1e30

    def f(a: Any, tt: Any) -> Any:
        ns = al.testing.load(library)
        w = ns.asarray(mask)
        kw = {
            k: ns.asarray(np.asarray(v)) if isinstance(v, list) else v for k, v in options.items()
        }
        return getattr(al, name)(a, tt, where=w, reduction="sum", **kw)

    grad = _grad(library, f, dirty, t)
    masked = ~mask if kind == "binary" else np.broadcast_to(~mask[:, None], x.shape)
    assert (grad[masked] == 0).all()
    assert np.isfinite(grad).all()


def test_where_combines_with_ignore_index(xp: ModuleType, asarray: Any) -> None:
    x, labels, _ = _class_data("float64")
    labels = labels.copy()
    labels[::4] = -100
    mask = np.arange(labels.size) % 3 != 0
    w = [1.0, 2.0, 0.5, 1.0, 3.0]
    got = cross_entropy(
        asarray(x),
        asarray(labels),
        ignore_index=-100,
        where=asarray(mask),
        weight=asarray(np.asarray(w)),
    )
    want = ref.cross_entropy(x, labels, ignore_index=-100, where=mask, weight=w)
    _close(got, want, xp, x, "float64")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sigmoid_focal_weight_and_pos_weight(xp: ModuleType, asarray: Any, reduction: str) -> None:
    x, y = _binary_data("float64", soft=True)
    x, y = x.reshape(8, 6), y.reshape(8, 6)
    w = _rng("w").random((8, 1))
    pw = _rng("pw").random(6) * 4
    got = sigmoid_focal_loss(
        asarray(x), asarray(y), weight=asarray(w), pos_weight=asarray(pw), reduction=reduction
    )
    want = ref.sigmoid_focal_loss(x, y, weight=w, pos_weight=pw, reduction=reduction)
    _close(got, want, xp, x, "float64")


# ------------------------------------------------------------------ prior smoothing

PRIOR = [0.4, 0.3, 0.15, 0.1, 0.05]


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
@pytest.mark.parametrize("targets", ["labels", "soft"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_prior_smoothing_softmax(
    xp: ModuleType, asarray: Any, name: str, targets: str, eps: float
) -> None:
    x, labels, soft = _class_data("float64")
    t = labels if targets == "labels" else soft
    options: dict[str, Any] = (
        {"weight": [1.0, 2.0, 0.5, 1.0, 3.0]} if name == "cross_entropy" else {}
    )
    for prior in (PRIOR, asarray(np.asarray(PRIOR))):
        for reduction in REDUCTIONS:
            got = getattr(al, name)(
                asarray(x), asarray(t), label_smoothing=eps, smoothing=prior,
                reduction=reduction, **_kw(asarray, options),
            )  # fmt: skip
            want = getattr(ref, name)(
                x, t, label_smoothing=eps, smoothing=PRIOR, reduction=reduction, **options
            )
            _close(got, want, xp, x, "float64")


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
def test_uniform_prior_is_uniform_smoothing(xp: ModuleType, asarray: Any, name: str) -> None:
    x, labels, _ = _class_data("float64")
    f = getattr(al, name)
    by_name = f(asarray(x), asarray(labels), label_smoothing=0.3, reduction="none")
    by_prior = f(
        asarray(x), asarray(labels), label_smoothing=0.3, smoothing=[0.2] * 5, reduction="none"
    )
    assert_close(by_prior, by_name, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "sigmoid_focal_loss", "asymmetric_loss"])
def test_prior_smoothing_binary(xp: ModuleType, asarray: Any, name: str) -> None:
    x, y = _binary_data("float64", soft=False)
    x, y = x.reshape(8, 6), y.reshape(8, 6)
    prior = _rng("prior").random(6)  # one per label
    got = getattr(al, name)(
        asarray(x), asarray(y), label_smoothing=0.2, smoothing=asarray(prior), reduction="none"
    )
    want = getattr(ref, name)(x, y, label_smoothing=0.2, smoothing=prior, reduction="none")
    _close(got, want, xp, x, "float64")


@pytest.mark.parametrize("axis", [0, -1])
def test_prior_smooth_labels(xp: ModuleType, asarray: Any, axis: int) -> None:
    labels = np.asarray([0, 4, 2, 1])
    got = smooth_labels(
        asarray(labels), 0.3, num_classes=5, smoothing=PRIOR, axis=axis, dtype=xp.float64
    )
    want = ref.smooth_labels(labels, 0.3, num_classes=5, smoothing=PRIOR, axis=axis)
    _close(got, want, xp, labels, "float64")


def test_prior_errors(xp: ModuleType, asarray: Any, backend: str) -> None:
    x, labels, _ = _class_data("float64")
    with pytest.raises(ValueError, match=r"`smoothing` must have shape \(5,\)"):
        cross_entropy(asarray(x), asarray(labels), label_smoothing=0.1, smoothing=[0.5, 0.5])
    if backend in ("numpy", "array_api_strict", "torch"):
        with pytest.raises(ValueError, match=r"must sum to 1 .* got sum 1\.1\."):
            cross_entropy(
                asarray(x),
                asarray(labels),
                label_smoothing=0.1,
                smoothing=[0.3, 0.3, 0.2, 0.2, 0.1],
            )
        with pytest.raises(ValueError, match="non-negative"):
            cross_entropy(
                asarray(x), asarray(labels), label_smoothing=0.1, smoothing=[1.2, -0.2, 0, 0, 0]
            )
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            binary_cross_entropy(asarray(x), asarray(x * 0), label_smoothing=0.1, smoothing=1.5)


# ------------------------------------------------------------- calibration error


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("n_bins", [1, 7, 15])
@pytest.mark.parametrize("from_logits", [True, False])
def test_calibration_error_multiclass(
    xp: ModuleType, asarray: Any, norm: str, n_bins: int, from_logits: bool
) -> None:
    x, labels, _ = _class_data("float64", n=200)
    inp = x if from_logits else ref.softmax(x, axis=-1)
    got = calibration_error(
        asarray(inp), asarray(labels), n_bins=n_bins, norm=norm, from_logits=from_logits
    )
    want = ref.calibration_error(inp, labels, n_bins=n_bins, norm=norm, from_logits=from_logits)
    _close(got, want, xp, x, "float64")


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("targets", ["float", "int", "bool"])
def test_calibration_error_binary(xp: ModuleType, asarray: Any, norm: str, targets: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (30, 4))
    y = rng.random((30, 4)) < ref.sigmoid(x + 0.5)
    t = y.astype({"float": np.float64, "int": np.int64, "bool": bool}[targets])
    got = calibration_error(asarray(x), asarray(t), norm=norm, task="binary")
    _close(got, ref.calibration_error(x, y, norm=norm, task="binary"), xp, x, "float64")


def test_calibration_error_class_axis_and_empty(xp: ModuleType, asarray: Any) -> None:
    x, labels, _ = _class_data("float64", n=40)
    got = calibration_error(asarray(np.ascontiguousarray(x.T)), asarray(labels), axis=0)
    _close(got, ref.calibration_error(x, labels), xp, x, "float64")
    empty = calibration_error(asarray(np.zeros((0, 3))), asarray(np.zeros(0, dtype=np.int64)))
    assert np.isnan(to_numpy(empty))


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("task", ["multiclass", "binary"])
def test_calibration_error_is_torchmetrics(norm: str, task: str) -> None:
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.classification")
    rng = np.random.default_rng(4)
    if task == "multiclass":
        x = rng.normal(0, 2, (500, 6))
        labels = rng.integers(0, 6, 500)
        p = torch.softmax(torch.asarray(x), -1)
        want = tm.multiclass_calibration_error(p, torch.asarray(labels), 6, n_bins=10, norm=norm)
        got = al.calibration_error(torch.asarray(x), torch.asarray(labels), n_bins=10, norm=norm)
    else:
        x = rng.normal(0, 2, 500)
        y = torch.asarray((rng.random(500) < 0.4).astype(np.int64))
        want = tm.binary_calibration_error(torch.sigmoid(torch.asarray(x)), y, n_bins=10, norm=norm)
        got = al.calibration_error(torch.asarray(x), y, n_bins=10, norm=norm, task="binary")
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)


def test_calibration_error_bad_input(xp: ModuleType, asarray: Any, backend: str) -> None:
    x, labels, _ = _class_data("float64")
    a, t = asarray(x), asarray(labels)
    for kwargs, err, pattern in [
        ({"n_bins": 0}, ValueError, "`n_bins` must be a positive int; got 0"),
        ({"n_bins": 2.5}, ValueError, "`n_bins`"),
        ({"norm": "l3"}, ValueError, "`norm` must be one of"),
        ({"task": "multilabel"}, ValueError, "`task` must be one of"),
    ]:
        with pytest.raises(err, match=pattern):
            calibration_error(a, t, **kwargs)
    with pytest.raises(TypeError, match="task='binary'"):
        calibration_error(a, asarray(x))
    if backend in ("numpy", "array_api_strict", "torch"):
        with pytest.raises(ValueError, match="`targets`"):
            calibration_error(a, asarray(labels + 5))


# ------------------------------------------------------------------- bad input

BAD = [
    (
        lambda xp, a, t: al.asymmetric_loss(a, t, gamma_neg=-1.0),
        ValueError,
        "`gamma_neg` must be >= 0; got -1.0",
    ),
    (
        lambda xp, a, t: al.asymmetric_loss(a, t, gamma_pos=float("nan")),
        ValueError,
        "`gamma_pos` must be finite",
    ),
    (
        lambda xp, a, t: al.asymmetric_loss(a, t, clip=1.0),
        ValueError,
        r"`clip` must be in \[0, 1\); got 1.0",
    ),
    (lambda xp, a, t: al.asymmetric_loss(a, t, clip="0.1"), TypeError, "`clip`"),
    (
        lambda xp, a, t: al.binary_cross_entropy(a, t, poly_epsilon=float("inf")),
        ValueError,
        "`poly_epsilon` must be finite; got inf",
    ),
    (lambda xp, a, t: al.sigmoid_focal_loss(a, t, poly_epsilon=True), TypeError, "`poly_epsilon`"),
    (
        lambda xp, a, t: al.sigmoid_focal_loss(a, t, normalizer=0.0),
        ValueError,
        "`normalizer` must be positive and finite; got 0.0",
    ),
    (lambda xp, a, t: al.sigmoid_focal_loss(a, t, normalizer=-2.0), ValueError, "`normalizer`"),
    (
        lambda xp, a, t: al.sigmoid_focal_loss(a, t, normalizer=2.0, reduction="sum"),
        ValueError,
        "`normalizer` divides the sum",
    ),
    (lambda xp, a, t: al.sigmoid_focal_loss(a, t, normalizer="n"), TypeError, "`normalizer`"),
    (
        lambda xp, a, t: al.sigmoid_focal_loss(a, t, where=[True]),
        TypeError,
        "`where` must be an array",
    ),
    (
        lambda xp, a, t: al.sigmoid_focal_loss(a, t, where=a),
        TypeError,
        "`where` must be a boolean mask",
    ),
    (
        lambda xp, a, t: al.sigmoid_focal_loss(a, t, where=xp.ones((3,), dtype=xp.bool)),
        ValueError,
        "`where`",
    ),
    (
        lambda xp, a, t: al.sigmoid_focal_loss(a, t, smoothing="prior"),
        ValueError,
        "`smoothing` must be one of",
    ),
]


@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_input_of_the_additions(xp: ModuleType, asarray: Any, case: int) -> None:
    f, err, pattern = BAD[case]
    a, t = asarray(np.zeros((4, 2))), asarray(np.ones((4, 2)))
    with pytest.raises(err, match=pattern):
        f(xp, a, t)


def test_every_loss_takes_the_02_keywords() -> None:
    """One signature rule for the four 0.1 losses and the asymmetric loss."""
    import inspect

    for name, keywords in itertools.product(
        [
            "binary_cross_entropy",
            "sigmoid_focal_loss",
            "cross_entropy",
            "softmax_focal_loss",
            "asymmetric_loss",
        ],
        [("where", None), ("normalizer", None)],
    ):
        assert inspect.signature(getattr(al, name)).parameters[keywords[0]].default is keywords[1]


# --------------------------------------------- half precision and the transforms

# (name, kind, options): one call of each addition
ADDITION_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("asymmetric_loss", "binary", {}),
    ("asymmetric_loss", "binary", {"gamma_pos": 0.5, "gamma_neg": 2.5, "clip": 0.1}),
    ("binary_cross_entropy", "binary", {"poly_epsilon": 1.0}),
    ("sigmoid_focal_loss", "binary", {"poly_epsilon": -1.0, "gamma": 0.5}),
    ("sigmoid_focal_loss", "binary", {"gamma": "flsd53"}),
    ("sigmoid_focal_loss", "binary", {"pos_weight": 2.0, "normalizer": 5.0}),
    ("cross_entropy", "labels", {"poly_epsilon": 2.0}),
    ("cross_entropy", "labels", {"label_smoothing": 0.1, "smoothing": PRIOR}),
    ("softmax_focal_loss", "soft", {"poly_epsilon": 1.0, "gamma": 0.5}),
    ("softmax_focal_loss", "labels", {"gamma": "flsd53", "where": "mask"}),
]


def _addition_inputs(
    kind: str, options: dict[str, Any], ns: Any, dtype: Any
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, Any]]:
    """(x, targets, options for arraylosses in ``ns``, options for the reference)."""
    x, t, shape = _case(kind)
    ours, theirs = dict(options), dict(options)
    if options.get("gamma") == "flsd53":
        ours["gamma"], theirs["gamma"] = al.flsd53_gamma, ref.flsd53_gamma
    if options.get("where") == "mask":
        mask = np.arange(int(np.prod(shape))).reshape(shape) % 3 != 0
        ours["where"], theirs["where"] = ns.asarray(mask), mask
    return x, t, ours, theirs


@pytest.mark.parametrize("library", ["torch", "jax"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", range(len(ADDITION_CALLS)))
def test_additions_in_half_precision(library: str, dtype: str, case: int) -> None:
    """Computed in a wider dtype, returned in the input's: within half-precision
    rounding of the float64 reference on the rounded inputs."""
    pytest.importorskip(library)
    import ml_dtypes

    name, kind, options = ADDITION_CALLS[case]
    ns = al.testing.load(library)
    x, t, ours, theirs = _addition_inputs(kind, options, ns, dtype)
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16
    x = np.clip(x, -60000, 60000).astype(np_dtype).astype(np.float64)
    target = t if kind == "labels" else t.astype(np_dtype).astype(np.float64)
    a = ns.asarray(x, dtype=getattr(ns, dtype))
    tt = ns.asarray(target) if kind == "labels" else ns.asarray(target, dtype=getattr(ns, dtype))
    # (a normalizer applies to the mean only)
    reduction = "mean" if "normalizer" in ours else "none"
    got = getattr(al, name)(a, tt, reduction=reduction, **ours)
    assert str(got.dtype).endswith(dtype)
    want = getattr(ref, name)(x, target, reduction=reduction, **theirs)
    got64 = to_numpy(got).astype(np.float64)
    np.testing.assert_allclose(got64, want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("case", range(len(ADDITION_CALLS)))
def test_additions_under_torch_transforms(case: int) -> None:
    """gradcheck in float64, ``torch.func.vmap`` of ``torch.func.grad`` equal to a
    loop of autograd, and ``torch.compile(fullgraph=True)`` equal to eager."""
    torch = pytest.importorskip("torch")
    name, kind, options = ADDITION_CALLS[case]
    x, t, ours, _ = _addition_inputs(kind, options, al.testing.load("torch"), "float64")
    f = getattr(al, name)
    tt = torch.asarray(t)
    reduction = {} if "normalizer" in ours else {"reduction": "sum"}
    xs = torch.asarray(x[:6])  # a small slice keeps gradcheck quick
    t6 = tt[:6]
    small = {k: (v[:6] if k == "where" else v) for k, v in ours.items()}

    def loss(a: Any, b: Any = t6) -> Any:
        return f(a, b, **reduction, **small)

    assert torch.autograd.gradcheck(loss, (xs.clone().requires_grad_(True),), eps=1e-6, atol=1e-6)
    batch = torch.stack([xs, 0.5 * xs, -xs])
    vmapped = torch.func.vmap(torch.func.grad(loss))(batch)
    looped = torch.stack([torch.func.grad(loss)(row) for row in batch])
    torch.testing.assert_close(vmapped, looped, rtol=1e-12, atol=1e-14)


@pytest.mark.filterwarnings(
    "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
)
@pytest.mark.parametrize("case", range(len(ADDITION_CALLS)))
def test_additions_compile_without_graph_breaks(case: int) -> None:
    torch = pytest.importorskip("torch")
    torch._dynamo.reset()
    name, kind, options = ADDITION_CALLS[case]
    x, t, ours, _ = _addition_inputs(kind, options, al.testing.load("torch"), "float64")
    f = getattr(al, name)
    tt = torch.asarray(t)
    compiled = torch.compile(lambda a, b: f(a, b, **ours), fullgraph=True, backend="aot_eager")
    xt = torch.asarray(x)
    torch.testing.assert_close(compiled(xt, tt), f(xt, tt, **ours), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", range(len(ADDITION_CALLS)))
def test_additions_under_jax_vmap_and_grad(case: int) -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    name, kind, options = ADDITION_CALLS[case]
    with jax.enable_x64(True):
        x, t, ours, theirs = _addition_inputs(kind, options, jnp, "float64")
        f = getattr(al, name)
        reduction = {} if "normalizer" in ours else {"reduction": "sum"}
        tt = jnp.asarray(t)

        def loss(a: Any) -> Any:
            return f(a, tt, **reduction, **ours)

        batch = jnp.stack([jnp.asarray(x), 0.5 * jnp.asarray(x)])
        vmapped = np.asarray(jax.vmap(jax.grad(loss))(batch))
        looped = np.stack([np.asarray(jax.grad(loss)(row)) for row in batch])
        np.testing.assert_allclose(vmapped, looped, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            float(jax.jit(loss)(jnp.asarray(x))),
            float(getattr(ref, name)(x, t, **reduction, **theirs)),
            rtol=1e-11,
        )
