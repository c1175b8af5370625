"""arraylosses against Keras 3 (JAX backend): binary cross-entropy, binary focal and
categorical focal cross-entropy.

Keras reduces differently, so the peer's own output is reduced here the way docs/contract.md
describes: ``binary_crossentropy`` and ``binary_focal_crossentropy`` take the mean
over the last axis (compared with the last-axis mean of our ``"none"`` output, or
with ``mean``/``sum`` over everything), ``categorical_focal_crossentropy`` sums over
the class axis (our ``"none"``). Keras smooths binary labels towards 0.5 and
categorical labels with ``eps / K`` where K is the size of the *last* axis: that is
our ``smoothing="uniform"``, so configurations with smoothing keep the classes last.
Keras clips probabilities to ``[1e-7, 1 - 1e-7]`` in the focal losses, so their
logits stay moderate, and Keras's ``ops.mean`` accumulates in float32 even for float64
inputs, so the float64 comparisons of the two binary losses are at float32 resolution.
Runs only in the jax session.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import arraylosses as al

os.environ["KERAS_BACKEND"] = "jax"  # before Keras is first imported

jax = pytest.importorskip("jax", reason="the Keras peers run on Keras's JAX backend")
keras = pytest.importorskip("keras", reason="the Keras peers need keras")
jnp = jax.numpy

if keras.backend.backend() != "jax":  # Keras was imported earlier with another backend
    pytest.skip(
        f"Keras runs on {keras.backend.backend()!r}, not JAX: set KERAS_BACKEND=jax",
        allow_module_level=True,
    )

from parity_helpers import (  # noqa: E402
    SEEDS,
    assert_matches_peer,
    assert_result_dtype,
    draw_dtype,
    draw_epsilon,
    draw_reduction,
    rng_for,
)

PEER_BACKEND = "jax"

# JAX compiles every operation once per shape and dtype (~50 ms for a loss), so the
# configurations draw shapes from a short list and vary everything else. (No axis of
# size 1 last: Keras warns that it expects more than one class there.)
SHAPES = [(7,), (3, 4), (2, 3, 2)]
BATCHES = [(4,), (2, 3)]


def binary_inputs(rng: np.random.Generator, scale: float) -> tuple[Any, ...]:
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    x_np = rng.normal(size=shape) * scale
    soft = rng.random() < 0.5
    y_np = rng.uniform(0, 1, size=shape) if soft else (rng.random(shape) < 0.5) * 1.0
    return shape, x_np, y_np, soft


def compare_last_axis_mean(got: Any, keras_loss: Any, reduction: str, last: int) -> Any:
    """Keras's per-row mean over the last axis, reduced to ``reduction`` of ours."""
    if reduction == "none":
        return jnp.mean(got, axis=-1), keras_loss
    if reduction == "mean":
        return got, jnp.mean(keras_loss)
    return got, jnp.sum(keras_loss) * last


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_cross_entropy_matches_keras(xp, asarray, seed):
    """binary_cross_entropy == keras.losses.binary_crossentropy(from_logits=True,
    label_smoothing=eps): soft and hard targets, logits up to a few hundred."""
    rng = rng_for(seed, "binary_cross_entropy/keras")
    dtype = draw_dtype(rng)
    scale = float(rng.choice([0.1, 1.0, 5.0, 30.0, 100.0]))
    shape, x_np, y_np, soft = binary_inputs(rng, scale)
    eps, reduction = draw_epsilon(rng), draw_reduction(rng)
    config = {"seed": seed, "dtype": dtype, "shape": shape, "scale": scale, "soft": soft,
              "label_smoothing": eps, "reduction": reduction}  # fmt: skip
    x, y = asarray(x_np, dtype), asarray(y_np, dtype)
    peer = keras.losses.binary_crossentropy(y, x, from_logits=True, label_smoothing=eps)
    got = al.binary_cross_entropy(x, y, label_smoothing=eps, reduction=reduction)
    assert_result_dtype(got, x, f"binary_cross_entropy {config}")
    got, expected = compare_last_axis_mean(got, peer, reduction, shape[-1])
    # Keras's mean accumulates in float32 even for float64 input (its result_type of
    # float64 and "float32" is float32): float64 agrees to float32 resolution only.
    tol = {"float32": (1e-5, 2e-6), "float64": (5e-7, 1e-14)}[dtype]
    count = x_np.size if reduction == "sum" else 1
    assert_matches_peer(
        got,
        expected,
        peer="keras.losses.binary_crossentropy",
        function="binary_cross_entropy",
        dtype=dtype,
        config=config,
        rtol=tol[0],
        atol=tol[1] * (1 + float(np.abs(x_np).max())) * count,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_focal_loss_matches_keras(xp, asarray, seed):
    """sigmoid_focal_loss == keras.losses.binary_focal_crossentropy(apply_class_balancing=
    alpha is not None, alpha, gamma, from_logits=True, label_smoothing=eps).

    |logits| <= 8 keeps Keras's 1e-7 clip inactive; in float32 Keras's log(1 - p) from
    a rounded probability loses up to ~2e-4 there, hence the float32 tolerance.
    """
    rng = rng_for(seed, "sigmoid_focal_loss/keras")
    dtype = draw_dtype(rng)
    scale = float(rng.choice([0.1, 1.0, 3.0]))
    shape, x_np, y_np, soft = binary_inputs(rng, scale)
    x_np = np.clip(x_np, -8.0, 8.0)
    alpha = None if rng.random() < 0.4 else float(rng.choice([0.25, rng.uniform(0.0, 1.0)]))
    gamma = float(rng.choice([0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, rng.uniform(0, 4)]))
    eps, reduction = draw_epsilon(rng), draw_reduction(rng)
    config = {"seed": seed, "dtype": dtype, "shape": shape, "scale": scale, "soft": soft,
              "alpha": alpha, "gamma": gamma, "label_smoothing": eps,
              "reduction": reduction}  # fmt: skip
    x, y = asarray(x_np, dtype), asarray(y_np, dtype)
    peer = keras.losses.binary_focal_crossentropy(
        y,
        x,
        apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else alpha,
        gamma=gamma,
        from_logits=True,
        label_smoothing=eps,
    )
    got = al.sigmoid_focal_loss(
        x, y, alpha=alpha, gamma=gamma, label_smoothing=eps, reduction=reduction
    )
    assert_result_dtype(got, x, f"sigmoid_focal_loss {config}")
    got, expected = compare_last_axis_mean(got, peer, reduction, shape[-1])
    # float64: Keras's mean is accumulated in float32 (see the BCE test)
    rtol, atol = {"float32": (2e-4, 2e-5), "float64": (5e-7, 1e-12)}[dtype]
    assert_matches_peer(
        got,
        expected,
        peer="keras.losses.binary_focal_crossentropy",
        function="sigmoid_focal_loss",
        dtype=dtype,
        config=config,
        rtol=rtol,
        atol=atol * (x_np.size if reduction == "sum" else 1),
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_focal_loss_matches_keras(xp, asarray, seed):
    """softmax_focal_loss == keras.losses.categorical_focal_crossentropy(alpha, gamma,
    from_logits=True, label_smoothing=eps, axis) for a float alpha (None is Keras's
    alpha=1) and, with the classes last, a per-class alpha; integer targets are given
    to Keras one-hot. |logits| <= 4 keeps Keras's 1e-7 clip inactive."""
    rng = rng_for(seed, "softmax_focal_loss/keras")
    dtype = draw_dtype(rng)
    num_classes = int(rng.choice([2, 5]))
    batch = BATCHES[int(rng.integers(len(BATCHES)))]
    ndim = len(batch) + 1
    eps = draw_epsilon(rng)
    u = rng.random()
    alpha_kind = "none" if u < 0.3 else ("float" if u < 0.7 else "per-class")
    # Keras smooths with K = size of the last axis and broadcasts per-class alpha along
    # it: with either, the classes must be last.
    pos = ndim - 1 if eps > 0 or alpha_kind == "per-class" else int(rng.integers(0, ndim))
    axis = pos if rng.random() < 0.5 else pos - ndim
    shape = list(batch)
    shape.insert(pos, num_classes)
    x_np = rng.uniform(-4.0, 4.0, size=shape)
    gamma = float(rng.choice([0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, rng.uniform(0, 4)]))
    kind = str(rng.choice(["index", "one-hot", "soft"]))
    reduction = draw_reduction(rng)
    config = {"seed": seed, "dtype": dtype, "shape": tuple(shape), "axis": axis,
              "targets": kind, "alpha": alpha_kind, "gamma": gamma, "label_smoothing": eps,
              "reduction": reduction}  # fmt: skip
    x = asarray(x_np, dtype)
    labels = rng.integers(0, num_classes, size=batch)
    if kind == "soft":
        z = np.exp(rng.normal(size=(*batch, num_classes)))
        q = np.moveaxis(z / z.sum(axis=-1, keepdims=True), -1, pos)
    else:
        q = np.moveaxis(np.eye(num_classes)[labels], -1, pos)
    target = asarray(labels, "int64") if kind == "index" else asarray(q, dtype)
    if alpha_kind == "none":
        alpha: Any = None
        keras_alpha: Any = 1.0
    elif alpha_kind == "float":
        alpha = keras_alpha = float(rng.uniform(0.0, 1.0))
        config["alpha"] = alpha
    else:
        vec = rng.uniform(0.0, 1.0, size=num_classes)
        alpha = asarray(vec, dtype)
        keras_alpha = [float(v) for v in vec]
    peer = keras.losses.categorical_focal_crossentropy(
        asarray(q, dtype),
        x,
        alpha=keras_alpha,
        gamma=gamma,
        from_logits=True,
        label_smoothing=eps,
        axis=axis,
    )
    if reduction == "mean":
        peer = jnp.mean(peer)
    elif reduction == "sum":
        peer = jnp.sum(peer)
    got = al.softmax_focal_loss(
        x, target, alpha=alpha, gamma=gamma, axis=axis, label_smoothing=eps, reduction=reduction
    )
    assert_result_dtype(got, x, f"softmax_focal_loss {config}")
    rtol, atol = {"float32": (2e-5, 2e-6), "float64": (1e-9, 1e-12)}[dtype]
    count = int(np.prod(batch)) if reduction == "sum" else 1
    assert_matches_peer(
        got,
        peer,
        peer="keras.losses.categorical_focal_crossentropy",
        function="softmax_focal_loss",
        dtype=dtype,
        config=config,
        rtol=rtol,
        atol=atol * count,
    )
