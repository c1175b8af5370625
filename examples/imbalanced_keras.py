"""Focal loss versus cross-entropy on a 1:100 imbalanced problem, with Keras 3.

The Keras twin of imbalanced_torch.py: the same data (a rare class, 1 in 100, with a
minority of hard negatives overlapping it) and the same small MLP, built with
``keras.Sequential`` and trained by ``model.fit`` twice, with
``model.compile(loss=...)`` given ``arraylosses.keras.BinaryCrossEntropy()`` and
``arraylosses.keras.SigmoidFocalLoss(alpha=0.25, gamma=2.0)``. The model ends in a
plain ``Dense(1)`` (logits; the losses' default ``from_logits=True``) whose bias
starts at the prior of Lin et al. 2017. Keras applies its own reduction to the
per-sample losses, as it does for its built-in losses.

Runs on the Keras backend that ``KERAS_BACKEND`` names (JAX when unset; PyTorch
works the same). Reports the rare-class recall at threshold 0.5 and the average
precision on held-out data, and writes the precision-recall curves to
imbalanced_keras_pr.png.

    python examples/imbalanced_keras.py
    ARRAYLOSSES_EXAMPLES_QUICK=1 python examples/imbalanced_keras.py   # a few seconds
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
from _common import BATCH, EPOCHS, FEATURES, N_TEST, N_TRAIN, PRIOR_BIAS, make_data, pr_figure

from arraylosses.keras import BinaryCrossEntropy, SigmoidFocalLoss


def build(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.layers.Input((FEATURES,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(PRIOR_BIAS)),
    ])  # fmt: skip


def main() -> None:
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(N_TRAIN, rng)
    x_test, y_test = make_data(N_TEST, rng)
    print(
        f"Keras {keras.__version__} on {keras.backend.backend()}; train: {len(y_train)} "
        f"examples, {int(y_train.sum())} rare; test: {len(y_test)}, {int(y_test.sum())} rare"
    )
    runs = []
    for loss_name, loss in (
        ("cross-entropy", BinaryCrossEntropy()),
        ("focal loss", SigmoidFocalLoss(alpha=0.25, gamma=2.0)),
    ):
        model = build(seed=1)
        model.compile(loss=loss, optimizer=keras.optimizers.Adam(3e-3))
        history = model.fit(
            x_train, y_train[:, None], epochs=EPOCHS, batch_size=BATCH, verbose=0
        ).history["loss"]
        print(f"{loss_name:>13}: training loss {history[0]:.4f} -> {history[-1]:.4f}")
        logits = np.asarray(model.predict(x_test, batch_size=4096, verbose=0))[:, 0]
        runs.append((loss_name, 1 / (1 + np.exp(-logits.astype(np.float64)))))
    pr_figure(
        runs, y_test, f"1:100 imbalanced, Keras fit ({keras.backend.backend()}): precision-recall",
        "imbalanced_keras_pr.png",
    )  # fmt: skip


if __name__ == "__main__":
    main()
