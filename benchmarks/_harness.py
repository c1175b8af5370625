"""Interleaved timing and the rows of the results table."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

# At least five timed repeats after the warm-up.
REPEATS = 7
WARMUP = 2


@dataclass
class Settings:
    """What a run measures: full sizes, or a quick smoke run (``--quick``)."""

    quick: bool = False
    repeats: int = REPEATS

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass
class Row:
    """One comparison: arraylosses against one peer on the same inputs."""

    case: str
    backend: str
    measure: str
    peer: str
    ours: float  # seconds per call
    theirs: float
    target: float | None = None  # the target bound, if any (benchmarks/__init__.py)
    unit: str = "s"  # "s": times per call; otherwise a label for plain numbers
    target_on: str = "ratio"  # "ratio": bound on ours / theirs; "ours": on ours itself

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs

    @property
    def target_text(self) -> str:
        if self.target is None:
            return ""
        what = "≤ {:g}×" if self.target_on == "ratio" else "ours ≤ {:g}× input"
        return what.format(self.target)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        value = self.ratio if self.target_on == "ratio" else self.ours
        return value <= self.target

    @property
    def verdict(self) -> str:
        return {None: "", True: "met", False: "NOT met"}[self.met]

    def show(self, value: float) -> str:
        return fmt_time(value) if self.unit == "s" else f"{value:.2f}{self.unit}"


def _calls_per_repeat(fn: Callable[[], object], budget: float = 0.05) -> int:
    """How many calls make one timed repeat last about ``budget`` seconds."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, min(20000, int(budget / max(once, 1e-7))))


def _time(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def interleaved(
    ours: Callable[[], object],
    theirs: Callable[[], object],
    settings: Settings,
) -> tuple[float, float]:
    """Minimum seconds per call of each, over interleaved repeats after a warm-up.

    Each callable must finish its work before returning (``block_until_ready`` on
    JAX). Tiny calls are repeated within a timed repeat so the clock resolves them;
    the sides take turns going first.
    """
    for _ in range(WARMUP):
        ours()
        theirs()
    # One count for both sides, and alternating order: two sides that allocate alike
    # then meet the allocator (heap or fresh mmap) in the same states.
    number = min(_calls_per_repeat(ours), _calls_per_repeat(theirs))
    best_ours = best_theirs = float("inf")
    repeats = settings.repeats if number == 1 else 3 * settings.repeats
    gc.collect()
    gc.disable()  # a collection inside one side's repeat is noise, not its cost
    try:
        for i in range(repeats):
            if i % 2:
                best_theirs = min(best_theirs, _time(theirs, number))
                best_ours = min(best_ours, _time(ours, number))
            else:
                best_ours = min(best_ours, _time(ours, number))
                best_theirs = min(best_theirs, _time(theirs, number))
    finally:
        gc.enable()
    return best_ours, best_theirs


def fmt_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"
