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
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import arraylosses as al

QUICK = os.environ.get("ARRAYLOSSES_EXAMPLES_QUICK", "") not in ("", "0")
N_TRAIN, N_TEST = (20_000, 20_000) if not QUICK else (4_000, 4_000)
EPOCHS = 10 if not QUICK else 2
BATCH = 512
FEATURES = 8
RARE_FRACTION = 0.01
T = TypeVar("T")
Params = list[tuple[jax.Array, jax.Array]]


def progress(items: Iterable[T], total: int, desc: str) -> Iterator[T]:
    """tqdm if it is installed, otherwise a one-line bar of our own."""
    try:
        from tqdm import tqdm
    except ImportError:
        for i, item in enumerate(items, 1):
            filled = 30 * i // total
            sys.stderr.write(f"\r{desc}: [{'#' * filled}{'.' * (30 - filled)}] {i}/{total}")
            sys.stderr.flush()
            yield item
        sys.stderr.write("\n")
    else:
        yield from tqdm(items, total=total, desc=desc, mininterval=0.5)


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features: the rare class is shifted 2.5 standard deviations along a
    fixed direction and spread wider; nine in ten common examples are shifted 2 the
    other way (easy), the rest stay at the origin, overlapping the rare class."""
    y = (rng.random(n) < RARE_FRACTION).astype(np.float32)
    x = rng.normal(size=(n, FEATURES))
    direction = np.zeros(FEATURES)
    direction[: FEATURES // 2] = 1.0 / math.sqrt(FEATURES // 2)
    rare = y == 1
    x[rare] = 1.3 * x[rare] + 2.5 * direction
    easy = ~rare & (rng.random(n) < 0.9)
    x[easy] -= 2.0 * direction
    return x.astype(np.float32), y


def precision_recall(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Precision and recall at every threshold, and the average precision
    (mean of the precision at the rank of each positive)."""
    order = np.argsort(-scores, kind="stable")
    hits = labels[order] == 1
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / hits.sum()
    return precision, recall, float(np.sum(precision[hits]) / hits.sum())


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
    params[-1] = (w, jnp.full(sizes[-1], -math.log((1 - RARE_FRACTION) / RARE_FRACTION)))
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

    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    ax.axhline(y_test.mean(), color="0.6", ls=":", label=f"chance ({y_test.mean():.3f})")
    for loss_name, color in (("cross-entropy", "tab:blue"), ("focal loss", "tab:orange")):
        params = train(loss_name, x_train, y_train, seed=1)
        scores = np.asarray(jax.nn.sigmoid(forward(params, jnp.asarray(x_test))))
        precision, recall, ap = precision_recall(scores, y_test)
        predicted = scores >= 0.5
        rare_recall = predicted[y_test == 1].mean()
        print(
            f"{loss_name:>13}: recall of the rare class at 0.5 = {rare_recall:.3f}, "
            f"average precision = {ap:.3f}"
        )
        label = f"{loss_name}: AP {ap:.3f}, recall@0.5 {rare_recall:.2f}"
        ax.step(recall, precision, where="post", color=color, lw=2, label=label)
        k = int(predicted.sum())  # the operating point of threshold 0.5
        if k:
            ax.plot(recall[k - 1], precision[k - 1], "o", color=color, ms=7, mec="k")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="recall (rare class)",
        ylabel="precision",
        title="1:100 imbalanced, JAX + optax: precision-recall on held-out data",
    )
    ax.plot([], [], "o", color="w", mec="k", label="threshold 0.5")
    ax.legend(frameon=False, loc="lower left")
    fig.savefig("imbalanced_jax_pr.png", dpi=130)
    print("wrote imbalanced_jax_pr.png")


if __name__ == "__main__":
    main()
