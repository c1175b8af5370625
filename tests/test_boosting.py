"""``arraylosses.boosting``: exact derivatives and the XGBoost / LightGBM adapters.

The derivatives are checked against an independent reference (the per-element loss
transcribed from its formula in mpmath at 120 digits and differentiated numerically at
that precision) on every backend, from logits of 1e-3 up to 1e4, and against
``torch.func.hessian`` / ``jax.hessian`` of the package's own definitions. The
adapters are checked against the libraries' built-in objectives.
"""

from __future__ import annotations

import functools
import importlib.util
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import arraylosses as al
from arraylosses.boosting import (
    gradient_hessian,
    lightgbm_metric,
    lightgbm_objective,
    xgboost_metric,
    xgboost_objective,
)
from arraylosses.testing import to_numpy

mpmath = pytest.importorskip("mpmath", reason="mpmath gives the high-precision reference")
mp = mpmath.mp
mp.dps = 120

# ------------------------------------------------------ high-precision reference


def _mp_binary(name: str, x: Any, y: float, o: dict[str, Any]) -> Any:
    """The per-element binary loss from its formula, in mpmath."""
    eps = o.get("label_smoothing", 0.0)
    y = mpmath.mpf(y) * (1 - eps) + mpmath.mpf(eps) / 2
    p = 1 / (1 + mpmath.exp(-x))
    q = 1 / (1 + mpmath.exp(x))
    log_p, log_q = -mpmath.log1p(mpmath.exp(-x)), -mpmath.log1p(mpmath.exp(x))
    if name == "asymmetric_loss":
        clip = mpmath.mpf(o.get("clip", 0.05))
        p_m = max(p - clip, mpmath.mpf(0))
        # log(1 - p_m) = log(q + clip) where p > clip (1 - p rounds to 0 at 1e4)
        neg = p_m ** o.get("gamma_neg", 4.0) * mpmath.log(q + clip) if p_m > 0 else 0
        return -(y * q ** o.get("gamma_pos", 0.0) * log_p + (1 - y) * neg)
    w_pos = o.get("pos_weight", 1.0)
    bce = -(w_pos * y * log_p + (1 - y) * log_q)
    b = y * q + (1 - y) * p
    loss = bce + o.get("poly_epsilon", 0.0) * b
    if name == "sigmoid_focal_loss":
        alpha = o.get("alpha", 0.25)
        a = 1 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
        loss = a * b ** o.get("gamma", 2.0) * loss
    return loss


def _mp_softmax_row(name: str, z: list[Any], target: Any, o: dict[str, Any]) -> Any:
    """The loss of one row; ``target`` a class index or a distribution (a tuple)."""
    k = len(z)
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
    eps = o.get("label_smoothing", 0.0)
    gamma = o.get("gamma", 2.0) if name == "softmax_focal_loss" else 0.0
    poly = o.get("poly_epsilon", 0.0)
    dist = target if isinstance(target, tuple) else tuple(float(c == target) for c in range(k))
    total = mpmath.mpf(0)
    for c in range(k):
        q = (1 - eps) * mpmath.mpf(dist[c]) + mpmath.mpf(eps) / k
        log_p = z[c] - lse
        # 1 - p_c as the other classes' probabilities (1 - exp(-1e-4000) is 1 even here)
        u = mpmath.fsum(mpmath.exp(z[d] - lse) for d in range(k) if d != c)
        total += -q * u**gamma * (log_p - poly * u)
    return total


def _diff(f: Any, x: float) -> tuple[float, float]:
    x = mpmath.mpf(x)
    return float(mpmath.diff(f, x, 1)), float(mpmath.diff(f, x, 2))


@functools.cache
def _binary_reference(
    name: str, x: float, y: float, frozen: tuple[Any, ...]
) -> tuple[float, float]:
    o = dict(frozen)
    return _diff(lambda v: _mp_binary(name, v, y, o), x)


@functools.cache
def _softmax_reference(
    name: str, row: tuple[float, ...], label: Any, frozen: tuple[Any, ...]
) -> Any:
    o = dict(frozen)
    out = []
    for j in range(len(row)):
        z = [mpmath.mpf(v) for v in row]

        def f(v: Any, j: int = j, z: list[Any] = z) -> Any:
            return _mp_softmax_row(name, [v if c == j else z[c] for c in range(len(z))], label, o)

        out.append(_diff(f, row[j]))
    return out


LOGITS = (-1e4, -800.0, -100.0, -30.0, -2.5, -1e-3, 0.0, 1e-3, 0.7, 30.0, 100.0, 800.0, 1e4)
BINARY_CASES = [
    ("binary_cross_entropy", {}),
    ("binary_cross_entropy", {"pos_weight": 3.0, "poly_epsilon": 0.5, "label_smoothing": 0.1}),
    ("sigmoid_focal_loss", {"gamma": 0.0}),
    ("sigmoid_focal_loss", {"gamma": 0.01}),
    ("sigmoid_focal_loss", {"gamma": 0.5, "alpha": None}),
    ("sigmoid_focal_loss", {"gamma": 2.0}),
    ("sigmoid_focal_loss", {"gamma": 3.5, "label_smoothing": 0.2, "poly_epsilon": -1.0}),
    ("asymmetric_loss", {"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05}),
    ("asymmetric_loss", {"gamma_pos": 0.5, "gamma_neg": 0.3, "clip": 0.0}),
    ("asymmetric_loss", {"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.2}),
]


def _tolerance(dtype: str) -> tuple[float, float]:
    # (the reference's numerical differentiation at 120 digits is exact to about
    # 1e-100 for losses of 1e4: values below that compare as 0)
    return (1e-9, 1e-100) if dtype == "float64" else (2e-4, 1e-30)


def _check(got: np.ndarray, want: np.ndarray, dtype: str, what: str, scale: Any = None) -> None:
    rtol, atol = _tolerance(dtype)
    finite_max = float(np.finfo(dtype).max)
    # where the exact value is beyond (or below) what the dtype represents, the
    # result must be finite and within the dtype's smallest normal number of it
    tiny = float(np.finfo(dtype).smallest_normal) * 4
    want = np.clip(want, -finite_max, finite_max)
    bound = rtol * np.abs(want) + max(atol, tiny)
    if scale is not None:
        bound = bound + scale
    bad = ~(np.abs(got - want) <= bound)
    assert np.isfinite(got).all(), f"{what}: not finite at {np.flatnonzero(~np.isfinite(got))}"
    assert not bad.any(), f"{what}: got {got[bad]}, want {want[bad]}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "options"), BINARY_CASES, ids=lambda v: str(v))
def test_binary_derivatives_match_the_high_precision_reference(
    xp: ModuleType, asarray: Any, dtype: str, name: str, options: dict[str, Any]
) -> None:
    xs = np.array(LOGITS * 3)
    ys = np.repeat([1.0, 0.0, 0.3], len(LOGITS))
    if name == "asymmetric_loss":  # not differentiable at p == clip: stay off it
        away = np.abs(1 / (1 + np.exp(-np.clip(xs, -700, 700))) - options["clip"]) > 1e-3
        xs, ys = xs[away], ys[away]
    x_in = np.asarray(xs, dtype=dtype)
    grad, hess = gradient_hessian(name, asarray(x_in), asarray(ys, dtype), **options)
    frozen = tuple(sorted(options.items()))
    want = np.array(
        [_binary_reference(name, float(x), float(y), frozen) for x, y in zip(x_in, ys, strict=True)]
    )
    assert grad.dtype == getattr(xp, dtype)
    assert tuple(grad.shape) == xs.shape
    _check(to_numpy(grad).astype(float), want[:, 0], dtype, f"{name} gradient")
    _check(to_numpy(hess).astype(float), want[:, 1], dtype, f"{name} hessian")


SOFTMAX_CASES = [
    ("cross_entropy", {}),
    ("cross_entropy", {"label_smoothing": 0.1, "poly_epsilon": 1.0}),
    ("softmax_focal_loss", {"gamma": 0.0, "poly_epsilon": 0.5}),
    ("softmax_focal_loss", {"gamma": 0.01}),
    ("softmax_focal_loss", {"gamma": 0.5, "label_smoothing": 0.2}),
    ("softmax_focal_loss", {"gamma": 2.0}),
    ("softmax_focal_loss", {"gamma": 3.0, "poly_epsilon": -0.7}),
]


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "distribution"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "options"), SOFTMAX_CASES, ids=lambda v: str(v))
def test_softmax_derivatives_match_the_high_precision_reference(
    xp: ModuleType, asarray: Any, dtype: str, name: str, options: dict[str, Any], soft: bool
) -> None:
    rows, labels = [], []
    dists = ((0.6, 0.3, 0.1), (0.0, 0.25, 0.75), (0.2, 0.8, 0.0))
    for m in (1e-3, 1.0, 30.0, 40.0, 800.0, 1e4):
        for (row, label), dist in zip(
            (([m, 0.0, -m], 0), ([0.0, m, m / 2], 2), ([-m, -m, m], 1)), dists, strict=True
        ):
            rows.append(row)
            labels.append(dist if soft else label)
    x_in = np.asarray(rows, dtype=dtype)
    targets = asarray(np.array(labels), dtype if soft else "int64")
    grad, hess = gradient_hessian(name, asarray(x_in), targets, **options)
    frozen = tuple(sorted(options.items()))
    want = np.array(
        [
            _softmax_reference(name, tuple(float(v) for v in r), lab, frozen)
            for r, lab in zip(x_in, labels, strict=True)
        ]
    )
    # float32: each row's Hessian entry is a sum of terms of the size of its class's
    # probability p_j, which cancel to much less for a class of tiny p_j with target
    # mass (smoothing): float32 holds it to 1e-5 p_j
    z = x_in.astype(float)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scale = None if dtype == "float64" else 1e-5 * p
    _check(to_numpy(grad).astype(float), want[..., 0], dtype, f"{name} gradient")
    _check(to_numpy(hess).astype(float), want[..., 1], dtype, f"{name} hessian", scale)


# ------------------------------------------- against autodiff of the definitions

AUTODIFF_CASES = [
    ("binary_cross_entropy", {"weight": "per-element", "pos_weight": "per-column"}),
    ("sigmoid_focal_loss", {"gamma": "per-row", "alpha": 0.4, "label_smoothing": 0.1}),
    ("sigmoid_focal_loss", {"gamma": 0.7, "pos_weight": 2.0, "smoothing": "others",
                            "label_smoothing": 0.2, "poly_epsilon": 0.3}),
    ("asymmetric_loss", {"gamma_pos": 1.5, "gamma_neg": 2.5, "clip": 0.1}),
    ("cross_entropy", {"weight": "per-class", "label_smoothing": 0.2, "smoothing": "others"}),
    ("softmax_focal_loss", {"gamma": 0.4, "alpha": "per-class", "poly_epsilon": 0.5}),
    ("softmax_focal_loss", {"gamma": "per-element", "alpha": 0.3, "label_smoothing": 0.1,
                            "smoothing": "prior"}),
]  # fmt: skip


def _options(
    options: dict[str, Any], rng: np.random.Generator, shape: tuple[int, int]
) -> dict[str, Any]:
    n, k = shape
    values = {
        "per-element": lambda: rng.random(shape) * 2,
        "per-column": lambda: rng.random(k) * 3,
        "per-row": lambda: rng.random((n, 1)) * 3,
        "per-class": lambda: rng.random(k) * 2,
        "prior": lambda: rng.dirichlet(np.ones(k)),
    }
    return {
        key: values[v]() if isinstance(v, str) and v in values else v for key, v in options.items()
    }


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize(("name", "options"), AUTODIFF_CASES, ids=lambda v: str(v))
def test_derivatives_equal_autodiff_of_the_definition(
    backend: str, xp: ModuleType, asarray: Any, name: str, options: dict[str, Any], soft: bool
) -> None:
    if backend not in ("torch", "jax"):
        pytest.skip("automatic differentiation: the torch and jax sessions")
    rng = np.random.default_rng(5)
    shape = (6, 4)
    x = rng.normal(0, 4, shape)
    x[x == 0] = 0.5  # (the definitions' autodiff Hessian at exactly 0: see the contract)
    binary = name in ("binary_cross_entropy", "sigmoid_focal_loss", "asymmetric_loss")
    if binary:
        y = rng.random(shape) if soft else (rng.random(shape) < 0.4).astype(float)
    else:
        y = rng.dirichlet(np.ones(4), 6) if soft else rng.integers(0, 4, 6)
    opts = {
        k: (asarray(v) if isinstance(v, np.ndarray) else v)
        for k, v in _options(options, rng, shape).items()
    }
    if opts.get("smoothing") is not None and not isinstance(opts["smoothing"], str) and binary:
        opts["smoothing"] = asarray(rng.random(shape[1]))
    xa, ya = asarray(x), asarray(y)
    function = getattr(al, name)

    def total(z: Any) -> Any:
        return function(z, ya, reduction="sum", **opts)

    if backend == "torch":
        import torch

        # (reverse over reverse: torch.func.hessian's forward mode loads TorchScript)
        h_full = torch.func.jacrev(torch.func.jacrev(total))(xa)
        g_ref = torch.func.grad(total)(xa)
    else:
        import jax

        h_full = jax.hessian(total)(xa)
        g_ref = jax.grad(total)(xa)
    h_ref = np.diagonal(to_numpy(h_full).reshape(x.size, x.size)).reshape(shape)
    grad, hess = gradient_hessian(name, xa, ya, **opts)
    np.testing.assert_allclose(to_numpy(grad), to_numpy(g_ref), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(to_numpy(hess), h_ref, rtol=1e-9, atol=1e-12)


def test_gamma_zero_is_the_cross_entropy_and_focal_hessian_goes_negative(
    xp: ModuleType, asarray: Any
) -> None:
    x = np.array([-3.0, -1.0, 0.0, 2.0, 5.0])
    p = 1 / (1 + np.exp(-x))
    g, h = gradient_hessian(al.binary_cross_entropy, asarray(x), asarray(np.ones(5)))
    np.testing.assert_allclose(to_numpy(g), p - 1, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(h), p * (1 - p), rtol=1e-12)
    # confidently wrong with gamma = 2: a negative second derivative (not convex)
    _, h = gradient_hessian(
        al.sigmoid_focal_loss, asarray(np.array([4.0])), asarray(np.array([0.0]))
    )
    assert float(to_numpy(h)[0]) < 0


# ------------------------------------------------------------------ bad input


def test_derivatives_refuse_what_they_cannot_honour() -> None:
    x, y = np.zeros(3), np.ones(3)
    with pytest.raises(TypeError, match=r"one of arraylosses' losses.*'mse'"):
        gradient_hessian("mse", x, y)
    with pytest.raises(TypeError, match="one of arraylosses' losses"):
        gradient_hessian(np.mean, x, y)
    with pytest.raises(TypeError, match="takes no option `gamma`"):
        gradient_hessian("binary_cross_entropy", x, y, gamma=2.0)
    with pytest.raises(TypeError, match="`reduction` is not taken"):
        gradient_hessian("sigmoid_focal_loss", x, y, reduction="mean")
    with pytest.raises(TypeError, match="`where` is not taken"):
        gradient_hessian("sigmoid_focal_loss", x, y, where=x > 0)
    with pytest.raises(TypeError, match="`ignore_index` is not taken"):
        gradient_hessian("cross_entropy", np.zeros((3, 2)), np.zeros(3, dtype=int), ignore_index=-1)
    with pytest.raises(ValueError, match="`from_logits` must be True"):
        gradient_hessian("sigmoid_focal_loss", x, y, from_logits=False)
    with pytest.raises(TypeError, match="callable gamma"):
        gradient_hessian("sigmoid_focal_loss", x, y, gamma=al.flsd53_gamma)
    with pytest.raises(ValueError, match="`gamma` must be a finite float >= 0"):
        gradient_hessian("softmax_focal_loss", np.zeros((3, 2)), np.zeros(3, dtype=int), gamma=-1.0)
    with pytest.raises(ValueError, match="`min_hessian`"):
        xgboost_objective("cross_entropy", min_hessian=-1.0)
    with pytest.raises(TypeError, match="`axis` is fixed"):
        lightgbm_objective("cross_entropy", axis=0)


def test_adapters_refuse_a_booster_of_the_wrong_layout() -> None:
    objective = xgboost_objective("sigmoid_focal_loss")
    with pytest.raises(ValueError, match=r"binary loss.*num_class=3"):
        objective(np.zeros(4), np.zeros((4, 3)))
    objective = lightgbm_objective("softmax_focal_loss", alpha=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"multi-class loss.*shape \(4,\)"):
        objective(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"`alpha` has 2 entries but the booster has num_class=3"):
        objective(np.zeros(4), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"class indices 0..2; got values from 0.0 to 3.0"):
        lightgbm_objective("cross_entropy")(np.array([0.0, 3.0]), np.zeros((2, 3)))


def test_objective_floors_the_hessian_and_weights_both_derivatives() -> None:
    x = np.array([4.0, -1.0, 0.5])
    y = np.array([0.0, 0.0, 1.0])
    w = np.array([2.0, 0.5, 1.0])
    g, h = gradient_hessian("sigmoid_focal_loss", x, y)
    got_g, got_h = xgboost_objective("sigmoid_focal_loss", min_hessian=1e-3)(y, x, sample_weight=w)
    np.testing.assert_allclose(got_g, g * w, rtol=1e-12)
    np.testing.assert_allclose(got_h, np.maximum(h, 1e-3) * w, rtol=1e-12)
    assert h[0] < 0 < got_h[0]


# ------------------------------------------------------- the real libraries

needs_xgboost = pytest.mark.skipif(
    importlib.util.find_spec("xgboost") is None or importlib.util.find_spec("sklearn") is None,
    reason="xgboost and scikit-learn are installed in the boosting session",
)
needs_lightgbm = pytest.mark.skipif(
    importlib.util.find_spec("lightgbm") is None or importlib.util.find_spec("sklearn") is None,
    reason="lightgbm and scikit-learn are installed in the boosting session",
)


def _imbalanced(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=n, n_features=20, n_informative=6, weights=[0.99], flip_y=0.0, random_state=seed
    )


def _sigmoid(m: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-m))


@needs_xgboost
def test_xgboost_custom_bce_reproduces_binary_logistic() -> None:
    import xgboost as xgb

    x, y = _imbalanced()
    d = xgb.DMatrix(x, label=y)
    params = {"tree_method": "hist", "max_depth": 4, "eta": 0.3, "nthread": 1, "seed": 0}
    built_in = xgb.train({**params, "objective": "binary:logistic", "base_score": 0.5}, d, 50)
    objective = xgboost_objective(al.sigmoid_focal_loss, gamma=0.0, alpha=None, min_hessian=1e-16)
    custom = xgb.train(
        {**params, "base_score": 0.0, "disable_default_eval_metric": 1}, d, 50, obj=objective
    )
    np.testing.assert_allclose(
        _sigmoid(custom.predict(d, output_margin=True)), built_in.predict(d), atol=1e-6, rtol=0
    )


@needs_lightgbm
def test_lightgbm_custom_bce_reproduces_binary() -> None:
    import lightgbm as lgb

    x, y = _imbalanced()
    data = lgb.Dataset(x, label=y, free_raw_data=False)
    params = {"num_leaves": 15, "learning_rate": 0.1, "verbose": -1, "seed": 0, "num_threads": 1,
              "deterministic": True, "force_row_wise": True}  # fmt: skip
    built_in = lgb.train({**params, "objective": "binary", "boost_from_average": False}, data, 50)
    objective = lightgbm_objective("binary_cross_entropy", min_hessian=1e-16)
    custom = lgb.train({**params, "objective": objective}, data, 50)
    np.testing.assert_allclose(
        _sigmoid(custom.predict(x, raw_score=True)), built_in.predict(x), atol=1e-6, rtol=0
    )


@needs_xgboost
def test_xgboost_focal_objective_trains_on_one_percent_positives() -> None:
    import xgboost as xgb
    from sklearn.metrics import average_precision_score

    x, y = _imbalanced(6000, seed=1)
    train, test = slice(0, 4000), slice(4000, None)
    model = xgb.XGBClassifier(
        n_estimators=60, max_depth=3, learning_rate=0.2, tree_method="hist", n_jobs=1,
        objective=xgboost_objective(al.sigmoid_focal_loss, gamma=2.0, alpha=0.25),
        eval_metric=xgboost_metric(al.sigmoid_focal_loss, gamma=2.0, alpha=0.25),
    )  # fmt: skip
    model.fit(x[train], y[train], eval_set=[(x[test], y[test])], verbose=False)
    history = model.evals_result()["validation_0"]["sigmoid_focal_loss_loss"]
    margins = model.predict(x[test], output_margin=True)
    # the metric is the loss of the margins, evaluated independently
    want = float(
        al.sigmoid_focal_loss(margins.astype(np.float64), y[test].astype(np.float64), alpha=0.25)
    )
    assert history[-1] == pytest.approx(want, rel=1e-4)  # (XGBoost logs 5 digits)
    assert history[-1] < 0.5 * history[0]
    assert average_precision_score(y[test], margins) > 3 * y[test].mean()


@needs_lightgbm
def test_lightgbm_multiclass_focal_objective_and_metric() -> None:
    import lightgbm as lgb
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=1500, n_features=10, n_informative=5, n_classes=3, random_state=1
    )
    model = lgb.LGBMClassifier(
        n_estimators=30, objective=lightgbm_objective("softmax_focal_loss", gamma=1.0),
        verbose=-1, n_jobs=1, metric="None",
    )  # fmt: skip
    model.fit(
        x, y, eval_X=(x,), eval_y=(y,), eval_metric=lightgbm_metric("softmax_focal_loss", gamma=1.0)
    )
    history = model.evals_result_["valid_0"]["softmax_focal_loss_loss"]
    raw = model.predict(x, raw_score=True)
    assert raw.shape == (1500, 3)
    want = float(al.softmax_focal_loss(raw, y.astype(np.int64), gamma=1.0))
    assert history[-1] == pytest.approx(want, rel=1e-6)
    assert history[-1] < 0.3 * history[0]
    assert (raw.argmax(1) == y).mean() > 0.8


@needs_xgboost
def test_xgboost_multiclass_metric_equals_mlogloss() -> None:
    import xgboost as xgb
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=1500, n_features=10, n_informative=5, n_classes=3, random_state=1
    )
    d = xgb.DMatrix(x, label=y)
    result: dict[str, Any] = {}
    params = {"num_class": 3, "base_score": 0.0, "disable_default_eval_metric": 1, "nthread": 1}
    booster = xgb.train(
        params, d, 20, obj=xgboost_objective(al.cross_entropy),
        custom_metric=xgboost_metric(al.cross_entropy), evals=[(d, "train")],
        evals_result=result, verbose_eval=False,
    )  # fmt: skip
    margins = booster.predict(d, output_margin=True)
    probs = np.exp(margins - margins.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    mlogloss = -np.mean(np.log(probs[np.arange(len(y)), y]))
    assert result["train"]["cross_entropy_loss"][-1] == pytest.approx(mlogloss, rel=1e-5)


@needs_xgboost
@needs_lightgbm
def test_multiclass_objective_is_the_built_ins_but_for_their_hessian_scale() -> None:
    """XGBoost's multi:softprob passes 2 p (1 - p) as the Hessian and LightGBM's
    multiclass K / (K - 1) p (1 - p): with our exact diagonal scaled the same way,
    the custom cross-entropy objective grows the built-ins' trees."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=1500, n_features=10, n_informative=5, n_classes=3, random_state=1
    )
    d = xgb.DMatrix(x, label=y)
    objective = xgboost_objective(al.cross_entropy, min_hessian=0.0)

    def times_two(margins: np.ndarray, data: Any) -> tuple[np.ndarray, np.ndarray]:
        g, h = objective(margins, data)
        return g, 2 * h

    params = {
        "tree_method": "hist",
        "max_depth": 4,
        "eta": 0.3,
        "nthread": 1,
        "seed": 0,
        "num_class": 3,
    }
    # (base_score 0.5 and 0 both start every class at the same margin)
    built_in = xgb.train({**params, "objective": "multi:softprob", "base_score": 0.5}, d, 30)
    custom = xgb.train(
        {**params, "base_score": 0.0, "disable_default_eval_metric": 1}, d, 30, obj=times_two
    )
    margins = custom.predict(d, output_margin=True)
    probs = np.exp(margins - margins.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, built_in.predict(d), atol=1e-6, rtol=0)

    data = lgb.Dataset(x, label=y, free_raw_data=False)
    lgb_objective = lightgbm_objective("cross_entropy", min_hessian=0.0)

    def times_k(margins: np.ndarray, data: Any) -> tuple[np.ndarray, np.ndarray]:
        g, h = lgb_objective(margins, data)
        return g, 1.5 * h  # K / (K - 1), K = 3

    lgb_params = {"num_leaves": 15, "learning_rate": 0.1, "verbose": -1, "seed": 0,
                  "num_threads": 1, "deterministic": True, "force_row_wise": True,
                  "num_class": 3}  # fmt: skip
    lgb_built_in = lgb.train(
        {**lgb_params, "objective": "multiclass", "boost_from_average": False}, data, 30
    )
    lgb_custom = lgb.train({**lgb_params, "objective": times_k}, data, 30)
    np.testing.assert_allclose(
        lgb_custom.predict(x, raw_score=True),
        lgb_built_in.predict(x, raw_score=True),
        atol=1e-6,
        rtol=0,
    )


@needs_xgboost
def test_xgboost_multi_label_bce_reproduces_binary_logistic() -> None:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 6))
    labels = np.stack([(x[:, i] + rng.normal(0, 0.5, 2000)) > 1 for i in range(3)], 1).astype(float)
    d = xgb.DMatrix(x, label=labels)
    params = {"tree_method": "hist", "max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 0}
    built_in = xgb.train({**params, "objective": "binary:logistic", "base_score": 0.5}, d, 30)
    objective = xgboost_objective(al.binary_cross_entropy, min_hessian=1e-16)
    custom = xgb.train(
        {**params, "base_score": 0.0, "disable_default_eval_metric": 1}, d, 30, obj=objective
    )
    margins = custom.predict(d, output_margin=True)
    assert margins.shape == (2000, 3)
    np.testing.assert_allclose(_sigmoid(margins), built_in.predict(d), atol=1e-6, rtol=0)


def test_multi_label_labels_may_come_flattened() -> None:
    margins = np.array([[0.5, -1.0], [2.0, 0.0]])
    labels = np.array([[1.0, 0.0], [0.0, 1.0]])
    want = gradient_hessian("sigmoid_focal_loss", margins, labels)
    got = xgboost_objective("sigmoid_focal_loss", min_hessian=-0.0)(labels.reshape(-1), margins)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], np.maximum(want[1], 0.0), rtol=1e-12)
