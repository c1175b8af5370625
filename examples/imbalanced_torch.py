"""Focal loss versus cross-entropy on a 1:100 imbalanced problem, in PyTorch.

A small MLP learns to find a rare class (1 example in 100). Most of the common class
is easy to tell apart; about one common example in ten overlaps the rare class (the
"hard negatives"), which is the situation the focal loss was designed for. The same
network, initialisation and data are trained twice, with the ``torch.nn.Module``
losses of ``arraylosses.torch``: ``BCEWithLogitsLoss()`` and
``SigmoidFocalLoss(alpha=0.25, gamma=2.0)`` (the RetinaNet setting), each a
``criterion`` called on the model's logits and backpropagated by autograd. The
final-layer bias starts at -log((1 - pi) / pi) with pi = 0.01, the prior
initialisation of Lin et al. 2017, so the first steps are not spent learning the
class frequency.

On a held-out set it reports the recall of the rare class at threshold 0.5 and the
average precision (area under the precision-recall curve, threshold-free), and draws
both precision-recall curves into imbalanced_torch_pr.png.

    python examples/imbalanced_torch.py
    ARRAYLOSSES_EXAMPLES_QUICK=1 python examples/imbalanced_torch.py   # a few seconds
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
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

from arraylosses.torch import BCEWithLogitsLoss, SigmoidFocalLoss

CRITERIA = {
    "cross-entropy": BCEWithLogitsLoss(),
    "focal loss": SigmoidFocalLoss(alpha=0.25, gamma=2.0),
}


def train(loss_name: str, x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 1),
    )
    with torch.no_grad():  # prior initialisation: sigmoid(bias) = 1 %
        model[-1].bias.fill_(PRIOR_BIAS)
    criterion = CRITERIA[loss_name]
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    steps = EPOCHS * math.ceil(len(x) / BATCH)

    def batches() -> Iterator[torch.Tensor]:
        for _ in range(EPOCHS):
            perm = torch.randperm(len(x), generator=generator)
            yield from perm.split(BATCH)

    for index in progress(batches(), steps, f"training with {loss_name}"):
        loss = criterion(model(x[index]).squeeze(-1), y[index])
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
    runs = []
    for loss_name in CRITERIA:
        model = train(loss_name, xt, yt, seed=1)
        with torch.no_grad():
            scores = torch.sigmoid(model(torch.from_numpy(x_test)).squeeze(-1)).numpy()
        runs.append((loss_name, scores))
    pr_figure(
        runs, y_test, "1:100 imbalanced, PyTorch nn.Module losses: precision-recall, held out",
        "imbalanced_torch_pr.png",
    )  # fmt: skip


if __name__ == "__main__":
    main()
