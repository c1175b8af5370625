"""Focal loss versus cross-entropy on a 1:100 imbalanced problem, in PyTorch.

A small MLP learns to find a rare class (1 example in 100). Most of the common class
is easy to tell apart; about one common example in ten overlaps the rare class (the
"hard negatives"), which is the situation the focal loss was designed for. The same network, initialisation and data are trained twice:
once with binary cross-entropy and once with the sigmoid focal loss (alpha = 0.25,
gamma = 2, the RetinaNet setting), both through arraylosses on torch tensors with
autograd. The final-layer bias starts at -log((1 - pi) / pi) with pi = 0.01, the
prior initialisation of Lin et al. 2017, so the first steps are not spent learning
the class frequency.

On a held-out set it reports the recall of the rare class at threshold 0.5 and the
average precision (area under the precision-recall curve, threshold-free), and draws
both precision-recall curves into imbalanced_torch_pr.png.

    python examples/imbalanced_torch.py
    ARRAYLOSSES_EXAMPLES_QUICK=1 python examples/imbalanced_torch.py   # a few seconds
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch

import arraylosses as al

QUICK = os.environ.get("ARRAYLOSSES_EXAMPLES_QUICK", "") not in ("", "0")
N_TRAIN, N_TEST = (20_000, 20_000) if not QUICK else (4_000, 4_000)
EPOCHS = 10 if not QUICK else 2
BATCH = 512
FEATURES = 8
RARE_FRACTION = 0.01
T = TypeVar("T")


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


def train(loss_name: str, x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 1),
    )
    with torch.no_grad():  # prior initialisation: sigmoid(bias) = RARE_FRACTION
        model[-1].bias.fill_(-math.log((1 - RARE_FRACTION) / RARE_FRACTION))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    steps = EPOCHS * math.ceil(len(x) / BATCH)

    def batches() -> Iterator[torch.Tensor]:
        for _ in range(EPOCHS):
            perm = torch.randperm(len(x), generator=generator)
            yield from perm.split(BATCH)

    for index in progress(batches(), steps, f"training with {loss_name}"):
        logits = model(x[index]).squeeze(-1)
        if loss_name == "cross-entropy":
            loss = al.binary_cross_entropy(logits, y[index])
        else:
            loss = al.sigmoid_focal_loss(logits, y[index], alpha=0.25, gamma=2.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model


def main() -> None:
    torch.set_num_threads(1)  # tiny matrices: more threads only add overhead
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(N_TRAIN, rng)
    x_test, y_test = make_data(N_TEST, rng)
    print(
        f"train: {len(y_train)} examples, {int(y_train.sum())} rare; "
        f"test: {len(y_test)} examples, {int(y_test.sum())} rare"
    )
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)

    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    ax.axhline(y_test.mean(), color="0.6", ls=":", label=f"chance ({y_test.mean():.3f})")
    for loss_name, color in (("cross-entropy", "tab:blue"), ("focal loss", "tab:orange")):
        model = train(loss_name, xt, yt, seed=1)
        with torch.no_grad():
            scores = torch.sigmoid(model(torch.from_numpy(x_test)).squeeze(-1)).numpy()
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
        title="1:100 imbalanced, PyTorch: precision-recall on held-out data",
    )
    ax.plot([], [], "o", color="w", mec="k", label="threshold 0.5")
    ax.legend(frameon=False, loc="lower left")
    fig.savefig("imbalanced_torch_pr.png", dpi=130)
    print("wrote imbalanced_torch_pr.png")


if __name__ == "__main__":
    main()
