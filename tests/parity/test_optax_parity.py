"""arraylosses against optax: ``sigmoid_focal_loss`` and ``smooth_labels``.

Runs only in the jax session (``PEER_BACKEND``): the arrays are JAX arrays and optax
computes on the very same arrays, in the same dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import arraylosses as al

jax = pytest.importorskip("jax", reason="the optax peers need jax")
optax = pytest.importorskip("optax", reason="the optax peers need optax")
jnp = jax.numpy

from parity_helpers import (  # noqa: E402
    SEEDS,
    assert_matches_peer,
    assert_result_dtype,
    broadcastable_shape,
    draw_dtype,
    draw_epsilon,
    draw_reduction,
    dtype_name,
    rng_for,
)

PEER_BACKEND = "jax"

# JAX compiles every operation once per shape and dtype (~50 ms for a loss), so the
# configurations draw shapes from a short list and vary everything else.
BINARY_SHAPES = [(), (7,), (3, 4), (2, 3, 2)]
BATCHES = [(), (4,), (2, 3)]

RTOL = {"float32": 1e-5, "float64": 1e-12}
ATOL_PER_LOGIT = {"float32": 2e-6, "float64": 1e-14}


def reduce_peer(loss: Any, reduction: str) -> Any:
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_focal_loss_matches_optax(xp, asarray, seed):
    """sigmoid_focal_loss == optax.losses.sigmoid_focal_loss elementwise: soft and hard
    targets, alpha None / float, scalar or per-element gamma; with smoothing optax gets
    the smoothed targets of docs/contract.md y'."""
    rng = rng_for(seed, "sigmoid_focal_loss/optax")
    dtype = draw_dtype(rng)
    shape = BINARY_SHAPES[int(rng.integers(len(BINARY_SHAPES)))]
    scale = float(rng.choice([0.1, 1.0, 5.0, 30.0, 100.0]))
    x_np = rng.normal(size=shape) * scale
    target_kind = str(rng.choice(["soft", "hard float", "bool", "int32"]))
    y_np = (
        rng.uniform(0.0, 1.0, size=shape)
        if target_kind == "soft"
        else (rng.random(shape) < 0.5).astype(np.float64)
    )
    alpha = None if rng.random() < 0.4 else float(rng.choice([0.25, rng.uniform(0.0, 1.0)]))
    if rng.random() < 0.8:
        gamma: Any = float(rng.choice([0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, rng.uniform(0, 4)]))
        gamma_peer: Any = gamma
    else:
        g = rng.choice([0.0, 0.5, 2.0], size=broadcastable_shape(rng, shape))
        gamma = gamma_peer = asarray(g, dtype)
    eps = draw_epsilon(rng)
    smoothing = "uniform" if rng.random() < 0.6 else "others"
    reduction = draw_reduction(rng)
    config = {
        "seed": seed, "dtype": dtype, "shape": shape, "scale": scale, "targets": target_kind,
        "alpha": alpha, "gamma": gamma if isinstance(gamma, float) else "array",
        "label_smoothing": eps, "smoothing": smoothing, "reduction": reduction,
    }  # fmt: skip
    x = asarray(x_np, dtype)
    if target_kind in ("soft", "hard float"):
        y = asarray(y_np, dtype)
    else:
        y = asarray(y_np.astype(bool) if target_kind == "bool" else y_np.astype(np.int32))
    y_peer = y_np * (1 - eps) + (eps / 2 if smoothing == "uniform" else (1 - y_np) * eps)
    expected = reduce_peer(
        optax.losses.sigmoid_focal_loss(x, asarray(y_peer, dtype), alpha=alpha, gamma=gamma_peer),
        reduction,
    )
    got = al.sigmoid_focal_loss(
        x, y, alpha=alpha, gamma=gamma, label_smoothing=eps, smoothing=smoothing,
        reduction=reduction,
    )  # fmt: skip
    assert_result_dtype(got, x, f"sigmoid_focal_loss {config}")
    magnitude = 1.0 + float(np.abs(x_np).max()) if x_np.size else 1.0
    count = max(x_np.size, 1) if reduction == "sum" else 1
    assert_matches_peer(
        got,
        expected,
        peer="optax.losses.sigmoid_focal_loss",
        function="sigmoid_focal_loss",
        dtype=dtype,
        config=config,
        rtol=RTOL[dtype],
        atol=ATOL_PER_LOGIT[dtype] * magnitude * count,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_smooth_labels_matches_optax(xp, asarray, seed):
    """smooth_labels(smoothing="uniform") == optax.smooth_labels on one-hot, soft and
    integer targets (optax gets jax.nn.one_hot of the labels), along any axis."""
    rng = rng_for(seed, "smooth_labels/optax")
    dtype = draw_dtype(rng)
    num_classes = int(rng.choice([1, 2, 5]))
    batch = BATCHES[int(rng.integers(len(BATCHES)))]
    ndim = len(batch) + 1
    pos = int(rng.integers(0, ndim))
    axis = pos if rng.random() < 0.5 else pos - ndim
    kind = str(rng.choice(["int", "one-hot", "soft"]))
    eps = draw_epsilon(rng)
    explicit = rng.random() < 0.5
    config = {
        "seed": seed, "dtype": dtype, "classes": num_classes, "batch": batch, "axis": axis,
        "kind": kind, "epsilon": eps, "smoothing": "uniform" if explicit else "(default)",
    }  # fmt: skip
    kwargs: dict[str, Any] = {"smoothing": "uniform"} if explicit else {}
    labels = rng.integers(0, num_classes, size=batch)
    if kind == "int":
        target = asarray(labels, str(rng.choice(["int32", "int64"])))
        out_dtype = jnp.zeros(()).dtype  # the namespace's default float (x64 enabled)
        if rng.random() < 0.3:
            kwargs["dtype"] = out_dtype = getattr(jnp, dtype)
        config["dtype_arg"] = "dtype" in kwargs
        one_hot = jax.nn.one_hot(target, num_classes, axis=axis, dtype=out_dtype)
        got = al.smooth_labels(target, eps, num_classes=num_classes, axis=axis, **kwargs)
    else:
        if kind == "one-hot":
            q = np.eye(num_classes)[labels]
        else:
            z = np.exp(rng.normal(size=(*batch, num_classes)))
            q = z / z.sum(axis=-1, keepdims=True)
        one_hot = asarray(np.moveaxis(q, -1, pos), dtype)
        out_dtype = one_hot.dtype
        got = al.smooth_labels(one_hot, eps, axis=axis, **kwargs)
    expected = optax.smooth_labels(one_hot, eps, axis=axis)
    assert dtype_name(got) == dtype_name(jnp.zeros((), dtype=out_dtype)), (
        f"smooth_labels {config}: dtype {got.dtype}, expected {out_dtype}"
    )
    name = dtype_name(got)
    assert_matches_peer(
        got,
        expected,
        peer="optax.smooth_labels",
        function="smooth_labels",
        dtype=name,
        config=config,
        rtol=RTOL[name],
        atol=ATOL_PER_LOGIT[name],
    )
