"""Long-tailed classification: cross-entropy, class-balanced focal loss and Poly-1.

Ten classes whose training counts fall geometrically from the head to the tail with
an imbalance ratio of 100 (the largest class has 100 times the examples of the
smallest), Gaussian clusters in 16 dimensions that overlap. The same small network,
initialisation and data are trained three times with arraylosses on torch tensors:

- cross-entropy;
- the class-balanced focal loss of Cui et al. 2019: ``softmax_focal_loss`` with
  ``alpha=class_balanced_weights(counts, beta=0.999)`` and gamma 2;
- Poly-1 (Leng et al. 2022): ``cross_entropy(..., poly_epsilon=1)``.

It reports, on a balanced held-out set, the recall of every class, their mean
(balanced accuracy) and the expected calibration error (``calibration_error``,
15 bins), and draws the per-class recalls into long_tailed.png. Whatever the numbers
say is printed as it is: on this problem re-weighting buys tail recall at the price
of head recall, and each loss changes calibration its own way.

    python examples/long_tailed.py
    ARRAYLOSSES_EXAMPLES_QUICK=1 python examples/long_tailed.py   # a few seconds
"""

from __future__ import annotations

import os
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch

import arraylosses as al

QUICK = os.environ.get("ARRAYLOSSES_EXAMPLES_QUICK", "") not in ("", "0")
K, DIM, RATIO = 10, 16, 100.0
HEAD = 2_000 if not QUICK else 400  # training examples of the largest class
TEST_PER_CLASS = 500 if not QUICK else 100
EPOCHS = 30 if not QUICK else 4
BATCH = 256


def class_counts() -> np.ndarray:
    """n_c = HEAD * RATIO^(-c / (K - 1)): from HEAD down to HEAD / RATIO."""
    return np.maximum(1, np.round(HEAD * RATIO ** (-np.arange(K) / (K - 1)))).astype(np.int64)


def make_data(
    counts: np.ndarray, centres: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([centres[c] + rng.normal(0, 1, (int(n), DIM)) for c, n in enumerate(counts)])
    y = np.concatenate([np.full(int(n), c) for c, n in enumerate(counts)])
    return x.astype(np.float32), y.astype(np.int64)


def train(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
          y: torch.Tensor, seed: int) -> torch.nn.Module:  # fmt: skip
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(DIM, 64), torch.nn.ReLU(), torch.nn.Linear(64, K))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
    return net


def main() -> None:
    counts = class_counts()
    centres = np.random.default_rng(0).normal(0.0, 1.1, (K, DIM))
    x_np, y_np = make_data(counts, centres, np.random.default_rng(1))
    test_x_np, test_y_np = make_data(np.full(K, TEST_PER_CLASS), centres, np.random.default_rng(2))
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    test_x, test_y = torch.from_numpy(test_x_np), torch.from_numpy(test_y_np)
    weights = al.class_balanced_weights(torch.from_numpy(counts), beta=0.999, dtype=torch.float32)
    print(f"training counts per class: {counts.tolist()} (imbalance ratio {RATIO:g})")
    print(f"class-balanced weights (beta 0.999): {[round(float(w), 3) for w in weights]}")

    losses = {
        "cross-entropy": lambda z, t: al.cross_entropy(z, t),
        "class-balanced focal": lambda z, t: al.softmax_focal_loss(z, t, alpha=weights, gamma=2.0),
        "Poly-1 (eps = 1)": lambda z, t: al.cross_entropy(z, t, poly_epsilon=1.0),
    }
    recalls = {}
    for name, fn in losses.items():
        net = train(fn, x, y, seed=0)
        with torch.no_grad():
            logits = net(test_x)
        predicted = logits.argmax(-1)
        recall = np.array([(predicted[test_y == c] == c).float().mean().item() for c in range(K)])
        ece = float(al.calibration_error(logits, test_y, n_bins=15))
        recalls[name] = recall
        print(
            f"{name}: balanced accuracy = {recall.mean():.3f}, head recall (classes 0-2) = "
            f"{recall[:3].mean():.3f}, tail recall (classes 7-9) = {recall[7:].mean():.3f}, "
            f"ECE = {ece:.3f}"
        )

    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.27
    for i, (name, recall) in enumerate(recalls.items()):
        ax.bar(np.arange(K) + (i - 1) * width, recall, width, label=name)
    ax.set_xticks(np.arange(K), [f"{c}\n(n={n})" for c, n in enumerate(counts)])
    ax.set_xlabel("class (training examples)")
    ax.set_ylabel("recall on a balanced test set")
    ax.set_ylim(0, 1)
    ax.set_title(f"Long-tailed 10-class problem, imbalance ratio {RATIO:g}")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig("long_tailed.png", dpi=120)
    print("wrote long_tailed.png")


if __name__ == "__main__":
    main()
