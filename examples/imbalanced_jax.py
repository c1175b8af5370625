"""Focal loss versus cross-entropy on a 1:100 imbalanced problem, in JAX.

The JAX twin of imbalanced_torch.py: the same synthetic data (a rare class, 1 in 100,
with a minority of hard negatives overlapping it), a small MLP written with plain
jax.numpy, trained with optax's Adam. The loss is arraylosses' binary_cross_entropy
or sigmoid_focal_loss (alpha = 0.25, gamma = 2) called inside a jax.jit-compiled
training step and differentiated by jax.grad, unchanged from the PyTorch version.

Reports the rare-class recall at threshold 0.5 and the average precision on held-out
data, and writes the precision-recall curves to imbalanced_jax_pr.png.

    python examples/imbalanced_jax.py
    ARRAYLOSSES_EXAMPLES_QUICK=1 python examples/imbalanced_jax.py   # a few seconds
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import (
    BATCH,
    EPOCHS,
    FEATURES,
    N_TEST,
    N_TRAIN,
    PRIOR_BIAS,
    make_data,
    pr_figure,
    progress,
)

import arraylosses as al

Params = list[tuple[jax.Array, jax.Array]]


def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> Params:
    """He-uniform weights, zero biases; the last bias gets the prior initialisation."""
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, sub = jax.random.split(key)
        bound = math.sqrt(6.0 / fan_in)
        params.append(
            (
                jax.random.uniform(sub, (fan_in, fan_out), minval=-bound, maxval=bound),
                jnp.zeros(fan_out),
            )
        )
    w, _ = params[-1]
    params[-1] = (w, jnp.full(sizes[-1], PRIOR_BIAS))
    return params


def forward(params: Params, x: jax.Array) -> jax.Array:
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return (x @ w + b)[:, 0]


def train(loss_name: str, x: np.ndarray, y: np.ndarray, seed: int) -> Params:
    def loss_fn(params: Params, xb: jax.Array, yb: jax.Array) -> jax.Array:
        logits = forward(params, xb)
        if loss_name == "cross-entropy":
            return al.binary_cross_entropy(logits, yb)
        return al.sigmoid_focal_loss(logits, yb, alpha=0.25, gamma=2.0)

    optimiser = optax.adam(3e-3)

    @jax.jit
    def step(params: Params, state: Any, xb: jax.Array, yb: jax.Array) -> tuple[Params, Any]:
        grads = jax.grad(loss_fn)(params, xb, yb)
        updates, state = optimiser.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = init_mlp(jax.random.key(seed), (FEATURES, 32, 32, 1))
    state = optimiser.init(params)
    rng = np.random.default_rng(seed)
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    # Full batches only (the ragged remainder of each epoch is dropped): one shape,
    # so the step is compiled once.
    per_epoch = len(x) // BATCH
    batches = [
        batch
        for _ in range(EPOCHS)
        for batch in rng.permutation(len(x))[: per_epoch * BATCH].reshape(per_epoch, BATCH)
    ]
    for idx in progress(batches, len(batches), f"training with {loss_name}"):
        params, state = step(params, state, xj[idx], yj[idx])
    return params


def main() -> None:
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(N_TRAIN, rng)
    x_test, y_test = make_data(N_TEST, rng)
    print(
        f"JAX {jax.__version__} on {jax.devices()[0].platform}; train: {len(y_train)} "
        f"examples, {int(y_train.sum())} rare; test: {len(y_test)}, {int(y_test.sum())} rare"
    )
    runs = []
    for loss_name in ("cross-entropy", "focal loss"):
        params = train(loss_name, x_train, y_train, seed=1)
        runs.append((loss_name, np.asarray(jax.nn.sigmoid(forward(params, jnp.asarray(x_test))))))
    pr_figure(
        runs, y_test, "1:100 imbalanced, JAX + optax: precision-recall on held-out data",
        "imbalanced_jax_pr.png",
    )  # fmt: skip


if __name__ == "__main__":
    main()
