"""What the examples share: the quick flag, a progress bar, the 1:100 data set and
its precision-recall figure.

Not an example itself. Each script imports it from its own folder (``python
examples/NAME.py`` puts ``examples/`` on the path), so the imbalanced problem is
defined once for the PyTorch, JAX and Keras versions.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np

QUICK = os.environ.get("ARRAYLOSSES_EXAMPLES_QUICK", "") not in ("", "0")
T = TypeVar("T")

# the 1:100 problem of the imbalanced_* examples
N_TRAIN, N_TEST = (20_000, 20_000) if not QUICK else (4_000, 4_000)
EPOCHS = 10 if not QUICK else 2
BATCH = 512
FEATURES = 8
RARE_FRACTION = 0.01
PRIOR_BIAS = -math.log((1 - RARE_FRACTION) / RARE_FRACTION)  # sigmoid(bias) = 1 %


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


def pr_figure(
    runs: Sequence[tuple[str, np.ndarray]],
    labels: np.ndarray,
    title: str,
    path: str,
    threshold: float | None = 0.5,
) -> None:
    """Print each run's rare-class recall at ``threshold`` (probability scores) and
    average precision, and draw the precision-recall curves into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    ax.axhline(labels.mean(), color="0.6", ls=":", label=f"chance ({labels.mean():.3f})")
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for (name, scores), color in zip(runs, colors, strict=False):
        precision, recall, ap = precision_recall(scores, labels)
        text = f"{name}: AP {ap:.3f}"
        line = f"{name:>13}: "
        if threshold is not None:
            predicted = scores >= threshold
            rare_recall = predicted[labels == 1].mean()
            line += f"recall of the rare class at {threshold} = {rare_recall:.3f}, "
            text += f", recall@{threshold} {rare_recall:.2f}"
            k = int(predicted.sum())  # the operating point of the threshold
            if k:
                ax.plot(recall[k - 1], precision[k - 1], "o", color=color, ms=7, mec="k")
        print(line + f"average precision = {ap:.3f}")
        ax.step(recall, precision, where="post", color=color, lw=2, label=text)
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall (rare class)", ylabel="precision")
    ax.set_title(title, fontsize=10)
    if threshold is not None:
        ax.plot([], [], "o", color="w", mec="k", label=f"threshold {threshold}")
    ax.legend(frameon=False, loc="lower left")
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")
