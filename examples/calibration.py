"""Label smoothing and calibration: no smoothing, "uniform" and "others".

An over-parameterised MLP trained to zero training error on a small, noisy 5-class
problem becomes over-confident: its predicted probabilities are higher than its
accuracy. Label smoothing (Szegedy et al. 2016) replaces the one-hot target by a
softened one, which caps how confident the network is pushed to be. arraylosses
offers both conventions found in the wild, with eps the smoothing strength and K the
number of classes:

    "uniform" (PyTorch, optax, Keras):  q' = (1 - eps) q + eps / K
    "others"  (fairseq):                q' = (1 - eps) q + eps (1 - q) / (K - 1)

The same network is trained three times with arraylosses.cross_entropy on torch
tensors (no smoothing, each convention with eps = 0.1) and evaluated on held-out
data by the expected calibration error (ECE, 15 equal-width confidence bins) and a
reliability diagram, written to calibration.png.

    python examples/calibration.py
    ARRAYLOSSES_EXAMPLES_QUICK=1 python examples/calibration.py   # a few seconds
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from _common import QUICK, progress

import arraylosses as al

CLASSES, FEATURES = 5, 10
N_TRAIN, N_TEST = 1_500, 10_000
EPOCHS = 120 if not QUICK else 10
BATCH = 128
EPSILON = 0.1
BINS = 15
SETTINGS = (
    ("no smoothing", 0.0, "uniform"),
    (f'"uniform", eps = {EPSILON}', EPSILON, "uniform"),
    (f'"others", eps = {EPSILON}', EPSILON, "others"),
)


def make_data(n: int, means: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance Gaussian clouds around each class mean (they overlap)."""
    labels = rng.integers(0, CLASSES, n)
    x = means[labels] + rng.normal(size=(n, FEATURES))
    return x.astype(np.float32), labels


def calibration_bins(
    probs: np.ndarray, labels: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """ECE and, per confidence bin, the accuracy, mean confidence and share of examples.

    ECE = sum over bins b of (n_b / n) * |accuracy_b - confidence_b|, with the
    confidence of a prediction being its largest probability.
    """
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.minimum((confidence * BINS).astype(int), BINS - 1)
    count = np.bincount(which, minlength=BINS)
    filled = np.maximum(count, 1)
    accuracy = np.bincount(which, weights=correct, minlength=BINS) / filled
    mean_conf = np.bincount(which, weights=confidence, minlength=BINS) / filled
    share = count / len(labels)
    return float(np.sum(share * np.abs(accuracy - mean_conf))), accuracy, mean_conf, share


def train(
    name: str, eps: float, smoothing: str, x: torch.Tensor, y: torch.Tensor
) -> torch.nn.Module:
    torch.manual_seed(0)  # the same initialisation and batches for every setting
    model = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, CLASSES),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    batches = [
        b for _ in range(EPOCHS) for b in torch.randperm(len(x), generator=generator).split(BATCH)
    ]
    for index in progress(batches, len(batches), f"training, {name}"):
        loss = al.cross_entropy(model(x[index]), y[index], label_smoothing=eps, smoothing=smoothing)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    means = rng.normal(scale=1.2, size=(CLASSES, FEATURES))
    x_train, y_train = make_data(N_TRAIN, means, rng)
    x_test, y_test = make_data(N_TEST, means, rng)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)

    fig, axes = plt.subplots(1, len(SETTINGS), figsize=(11, 3.9), sharey=True, layout="constrained")
    centers = (np.arange(BINS) + 0.5) / BINS
    for ax, (name, eps, smoothing) in zip(axes, SETTINGS, strict=True):
        model = train(name, eps, smoothing, xt, yt)
        with torch.no_grad():
            probs = torch.softmax(model(torch.from_numpy(x_test)), dim=-1).numpy()
            train_acc = (model(xt).argmax(-1) == yt).float().mean().item()
        ece, accuracy, mean_conf, share = calibration_bins(probs, y_test)
        test_acc = float(np.mean(probs.argmax(axis=1) == y_test))
        print(
            f"{name:>22}: train accuracy {train_acc:.3f}, test accuracy {test_acc:.3f}, "
            f"mean confidence {probs.max(axis=1).mean():.3f}, ECE {ece:.3f}"
        )
        used = share > 0
        ax.bar(
            centers[used],
            accuracy[used],
            width=1 / BINS,
            color="tab:blue",
            alpha=0.75,
            edgecolor="k",
            lw=0.5,
            label="accuracy",
        )
        ax.bar(
            centers[used],
            mean_conf[used] - accuracy[used],
            bottom=accuracy[used],
            width=1 / BINS,
            color="none",
            hatch="///",
            edgecolor="tab:red",
            lw=0.8,
            label="gap to confidence",
        )
        ax.plot([0, 1], [0, 1], color="0.3", ls="--", lw=1)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (largest probability)", title=name)
        ax.text(
            0.04,
            0.93,
            f"ECE {ece:.3f}\ntest accuracy {test_acc:.2f}",
            va="top",
            bbox={"facecolor": "w", "edgecolor": "0.7"},
        )
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", bbox_to_anchor=(0.0, 0.8), frameon=False)
    fig.suptitle("Reliability on held-out data: cross-entropy with and without label smoothing")
    fig.savefig("calibration.png", dpi=130)
    print("wrote calibration.png")


if __name__ == "__main__":
    main()
