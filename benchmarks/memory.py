"""(e) Peak extra memory of the NumPy sigmoid focal loss, relative to the input bytes.

``tracemalloc`` records NumPy's allocations; the peak above what was allocated before
the call, divided by the bytes of the logits, is the memory a call costs. Measured on
the RetinaNet-scale inputs of case (a), for ours and for the direct transcription.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

from . import sigmoid_focal
from ._harness import Row, Settings


def peak_bytes(fn: Callable[[], Any]) -> int:
    fn()  # warm-up: first-call allocations (caches, imports) are not the loss's
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


def run(settings: Settings) -> list[Row]:
    x, y = sigmoid_focal.inputs(settings.size(120_000, 2_000))
    ours = peak_bytes(lambda: sigmoid_focal.ours(x, y)) / x.nbytes
    theirs = peak_bytes(lambda: sigmoid_focal.numpy_focal(x, y)) / x.nbytes
    return [
        Row(
            "peak extra memory (e)",
            "numpy",
            "peak / input bytes",
            "direct transcription",
            ours,
            theirs,
            target=3.0,
            unit="× input",
            target_on="ours",
        )
    ]
