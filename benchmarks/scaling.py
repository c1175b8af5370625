"""(f) Time against batch size: N x 80 logits, N = 1e2 .. 1e6, every backend.

The sigmoid focal loss (alpha 0.25, gamma 2, 1% positives, mean) against the peers of
case (a), and the cross-entropy of integer labels (mean) against
``F.cross_entropy``, optax's ``softmax_cross_entropy_with_integer_labels`` (both
sides under ``jax.jit``) and the direct NumPy composition of case (g): forward on
NumPy, PyTorch and ``jax.jit``, and forward+backward on PyTorch. Four decades of N
show whether a fast path loses anywhere (the ratio at every N; the target of issue
"Performance round 2" is at most 1) and whether the cost stays linear (the slope of
log(time) against log(N) over the top two decades, 1 = linear).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import arraylosses as al

from . import cross_entropy, sigmoid_focal
from ._harness import Settings, interleaved
from .segmentation import numpy_ce_direct

SIZES = (100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
QUICK_SIZES = (100, 1_000, 10_000)
CLASSES = 80
SIGMOID, CE = "sigmoid focal loss", "cross-entropy"


@dataclass
class Series:
    backend: str
    peer: str
    sizes: list[int] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)
    loss: str = SIGMOID
    measure: str = "forward"

    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.ours, self.theirs, strict=True)]

    def slope(self, which: str) -> float:
        """Least-squares slope of log time against log N over the top two decades."""
        times = self.ours if which == "ours" else self.theirs
        top = self.sizes[-1]
        pts = [
            (math.log(n), math.log(t))
            for n, t in zip(self.sizes, times, strict=True)
            if n * 100 >= top
        ]
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        num = sum((px - mx) * (py - my) for px, py in pts)
        den = sum((px - mx) ** 2 for px, _ in pts)
        return num / den


# (loss, backend, measure, peer), in the order of the tables
PLAN = (
    (SIGMOID, "numpy", "forward", "direct transcription"),
    (SIGMOID, "torch", "forward", "torchvision formula"),
    (SIGMOID, "torch", "forward+backward", "torchvision formula"),
    (SIGMOID, "jax.jit", "forward", "optax"),
    (CE, "numpy", "forward", "direct composition"),
    (CE, "torch", "forward", "F.cross_entropy"),
    (CE, "torch", "forward+backward", "F.cross_entropy"),
    (CE, "jax.jit", "forward", "optax"),
)


def callables(loss: str, backend: str, measure: str, n: int) -> tuple[Any, Any]:
    if loss == SIGMOID:
        x, y = sigmoid_focal.inputs(n, CLASSES)
        if backend == "numpy":
            return (lambda: sigmoid_focal.ours(x, y), lambda: sigmoid_focal.numpy_focal(x, y))
        if backend == "torch":
            return sigmoid_focal.torch_pair(x, y)[measure]
        return sigmoid_focal.jax_pair(x, y)[measure]
    x, t = cross_entropy.inputs(n, CLASSES)
    if backend == "numpy":
        return (lambda: al.cross_entropy(x, t), lambda: numpy_ce_direct(x, t, -1))
    if backend == "torch":
        return _torch_ce(x, t, measure)
    return _jax_ce(x, t)


def _torch_ce(x_np: np.ndarray, t_np: np.ndarray, measure: str) -> tuple[Any, Any]:
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(t_np)
    if measure == "forward":
        x = torch.from_numpy(x_np)
        return (lambda: al.cross_entropy(x, t), lambda: F.cross_entropy(x, t))
    leaf = torch.from_numpy(x_np).requires_grad_(True)

    def step(fn: Any) -> Any:
        def run() -> None:
            fn(leaf, t).backward()
            leaf.grad = None

        return run

    return step(al.cross_entropy), step(F.cross_entropy)


def _jax_ce(x_np: np.ndarray, t_np: np.ndarray) -> tuple[Any, Any]:
    import jax
    import optax

    x, t = jax.device_put(x_np), jax.device_put(t_np.astype(np.int32))
    ours_jit = jax.jit(lambda a, b: al.cross_entropy(a, b))
    optax_jit = jax.jit(
        lambda a, b: optax.losses.softmax_cross_entropy_with_integer_labels(a, b).mean()
    )
    return (
        lambda: ours_jit(x, t).block_until_ready(),
        lambda: optax_jit(x, t).block_until_ready(),
    )


def run(settings: Settings) -> list[Series]:
    sizes = QUICK_SIZES if settings.quick else SIZES
    out = []
    for loss, backend, measure, peer in PLAN:
        series = Series(backend, peer, loss=loss, measure=measure)
        for n in sizes:
            ours, theirs = interleaved(*callables(loss, backend, measure, n), settings)
            series.sizes.append(n)
            series.ours.append(ours)
            series.theirs.append(theirs)
            print(
                f"  scaling {loss}, {backend} {measure}, N={n:>9,d}: ours {ours:.3g} s, "
                f"{peer} {theirs:.3g} s ({ours / theirs:.2f}x)",
                flush=True,
            )
        out.append(series)
    return out
