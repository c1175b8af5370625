"""Focal loss against the probability of the true class (Lin et al. 2017, Figure 1).

For a positive example (y = 1) with predicted probability p, the probability of the
true class is p_t = p, and the focal loss is -(1 - p_t)^gamma * log(p_t). Raising
gamma flattens the curve where p_t is large: examples the model already gets right
(say p_t > 0.6) stop contributing much, and training attends to the hard ones.

The curves are computed by arraylosses itself (on NumPy), from the logits that give
each p_t. Writes focal_curves.png into the current directory.

    python examples/focal_curves.py
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display needed

import matplotlib.pyplot as plt
import numpy as np

import arraylosses as al

GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)


def focal_curve(p_t: np.ndarray, gamma: float) -> np.ndarray:
    """Per-example focal loss of positives predicted with probability ``p_t``."""
    logits = np.log(p_t) - np.log1p(-p_t)  # sigmoid(logits) == p_t
    targets = np.ones_like(p_t)
    return al.sigmoid_focal_loss(logits, targets, alpha=None, gamma=gamma, reduction="none")


def main() -> None:
    p_t = np.linspace(0.001, 0.999, 999)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(GAMMAS)))
    for gamma, color in zip(GAMMAS, colors, strict=True):
        loss = focal_curve(p_t, gamma)
        label = "γ = 0 (cross-entropy)" if gamma == 0 else f"γ = {gamma:g}"
        ax.plot(p_t, loss, color=color, lw=2, label=label)
        i = np.searchsorted(p_t, 0.8)
        print(
            f"gamma={gamma:<4g} loss at p_t=0.8: {loss[i]:.5f}  ({loss[i] / -np.log(p_t[i]):.4f} x CE)"
        )
    ax.axvspan(0.6, 1.0, color="0.92", zorder=0)
    ax.text(0.8, 3.6, "well-classified\nexamples", ha="center", va="center", color="0.35")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 5),
        xlabel="probability of the ground-truth class, $p_t$",
        ylabel="loss",
        title="Focal loss $-(1-p_t)^\\gamma \\log p_t$, computed with arraylosses",
    )
    ax.legend(frameon=False, loc="upper center")
    fig.savefig("focal_curves.png", dpi=130)
    print("wrote focal_curves.png")


if __name__ == "__main__":
    main()
