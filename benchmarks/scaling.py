"""(f) Time against batch size: sigmoid focal loss on N x 80 logits, N = 1e2 .. 1e6.

Forward, mean, 1% positives, on each backend against its peer of case (a). Four
decades of N show whether the cost stays linear: the slope of log(time) against
log(N) over the top two decades is reported (1 = linear), and plotted in
``scaling.png``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import sigmoid_focal
from ._harness import Settings, interleaved

SIZES = (100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
QUICK_SIZES = (100, 1_000, 10_000)


@dataclass
class Series:
    backend: str
    peer: str
    sizes: list[int] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)

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


def callables(backend: str, n: int) -> tuple[Any, Any]:
    x, y = sigmoid_focal.inputs(n)
    if backend == "numpy":
        return (lambda: sigmoid_focal.ours(x, y), lambda: sigmoid_focal.numpy_focal(x, y))
    if backend == "torch":
        return sigmoid_focal.torch_pair(x, y)["forward"]
    return sigmoid_focal.jax_pair(x, y)["forward"]


PEERS = {"numpy": "direct transcription", "torch": "torchvision formula", "jax.jit": "optax"}


def run(settings: Settings) -> list[Series]:
    sizes = QUICK_SIZES if settings.quick else SIZES
    out = []
    for backend, peer in PEERS.items():
        series = Series(backend, peer)
        for n in sizes:
            ours, theirs = interleaved(*callables(backend, n), settings)
            series.sizes.append(n)
            series.ours.append(ours)
            series.theirs.append(theirs)
            print(f"  scaling {backend:8s} N={n:>9,d}: ours {ours:.3g} s, {peer} {theirs:.3g} s")
        out.append(series)
    return out
