"""The mean focal loss over 10^8 predictions, out of core, with Dask.

10^8 float32 logits and their targets take 800 MB; here they never exist at once.
Both are Dask arrays of 10^6-element chunks, each generated on demand from its own
seeded random stream, and arraylosses.sigmoid_focal_loss(..., reduction="mean") only
builds a lazy graph on them: nothing is generated or computed until .compute(), and
then the chunks stream through a few threads while memory stays near a few chunks'
worth.

The result is checked against a plain NumPy loop over the same chunks (regenerated
from the same seeds, one at a time), accumulating in float64 with the focal loss
written out by hand. The per-chunk means of both are plotted to
dask_out_of_core.png, with the wall time and peak memory in the title.

    python examples/dask_out_of_core.py
    ARRAYLOSSES_EXAMPLES_QUICK=1 python examples/dask_out_of_core.py   # 10^6 predictions
"""

from __future__ import annotations

import os
import time

import matplotlib

matplotlib.use("Agg")

import dask
import dask.array as da
import matplotlib.pyplot as plt
import numpy as np

import arraylosses as al

QUICK = os.environ.get("ARRAYLOSSES_EXAMPLES_QUICK", "") not in ("", "0")
TOTAL = 10**8 if not QUICK else 10**6
CHUNK = 10**6 if not QUICK else 10**5
SEED = 2017
ALPHA, GAMMA = 0.25, 2.0


def peak_memory_mb() -> float | None:
    """Peak resident memory of this process so far (Linux/macOS), in MB."""
    try:
        import resource
        import sys
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def make_chunk(index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk ``index``: targets (1 in 10 positive) and logits that lean towards them."""
    rng = np.random.default_rng((SEED, index))
    targets = (rng.random(size, dtype=np.float32) < 0.1).astype(np.float32)
    logits = rng.standard_normal(size, dtype=np.float32) * 2.0 + 3.0 * targets - 2.0
    return logits, targets


def lazy_inputs() -> tuple[da.Array, da.Array]:
    """Dask arrays whose chunk i is make_chunk(i): built lazily, chunk by chunk."""
    chunks = ((CHUNK,) * (TOTAL // CHUNK),)

    def block_logits(block_id: tuple[int, ...]) -> np.ndarray:
        return make_chunk(block_id[0], CHUNK)[0]

    def block_targets(block_id: tuple[int, ...]) -> np.ndarray:
        return make_chunk(block_id[0], CHUNK)[1]

    logits = da.map_blocks(block_logits, chunks=chunks, dtype=np.float32, name="logits")
    targets = da.map_blocks(block_targets, chunks=chunks, dtype=np.float32, name="targets")
    return logits, targets


def numpy_chunk_losses(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The sigmoid focal loss of Lin et al. (2017), written out in float64 NumPy."""
    x = logits.astype(np.float64)
    y = targets.astype(np.float64)
    p = 1.0 / (1.0 + np.exp(-x))
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = ALPHA * y + (1 - ALPHA) * (1 - y)
    ce = np.logaddexp(0.0, -x) * y + np.logaddexp(0.0, x) * (1 - y)
    return alpha_t * (1 - p_t) ** GAMMA * ce


def main() -> None:
    n_chunks = TOTAL // CHUNK
    print(
        f"{TOTAL:.0e} predictions in {n_chunks} chunks of {CHUNK:.0e} "
        f"({2 * 4 * TOTAL / 2**20:.0f} MB of float32 inputs if held at once)"
    )
    logits, targets = lazy_inputs()

    # Lazy: these lines build graphs; nothing is generated or computed yet.
    mean_loss = al.sigmoid_focal_loss(logits, targets, alpha=ALPHA, gamma=GAMMA)
    per_element = al.sigmoid_focal_loss(logits, targets, alpha=ALPHA, gamma=GAMMA, reduction="none")
    chunk_means = per_element.map_blocks(
        lambda b: np.mean(b, dtype=np.float64, keepdims=True),
        chunks=((1,) * n_chunks,),
        dtype=np.float64,
    )
    assert isinstance(mean_loss, da.Array)

    memory_before = peak_memory_mb()
    start = time.perf_counter()
    # One pass: both results share the generated chunks.
    dask_mean, dask_chunk_means = dask.compute(mean_loss, chunk_means)
    dask_seconds = time.perf_counter() - start
    memory_peak = peak_memory_mb()
    dask_mean = float(dask_mean)
    print(f"Dask:  mean focal loss {dask_mean:.8f} in {dask_seconds:.1f} s")
    if memory_peak is not None and memory_before is not None:
        print(
            f"       peak resident memory {memory_peak:.0f} MB (before computing: {memory_before:.0f} MB)"
        )

    start = time.perf_counter()
    total = 0.0
    numpy_chunk_means = np.empty(n_chunks)
    for i in range(n_chunks):
        chunk_loss = numpy_chunk_losses(*make_chunk(i, CHUNK))
        numpy_chunk_means[i] = chunk_loss.mean()
        total += float(chunk_loss.sum())
    numpy_mean = total / TOTAL
    numpy_seconds = time.perf_counter() - start
    print(
        f"NumPy: mean focal loss {numpy_mean:.8f} in {numpy_seconds:.1f} s (chunk by chunk, float64)"
    )

    relative = abs(dask_mean - numpy_mean) / numpy_mean
    print(f"relative difference {relative:.1e} (float32 on Dask, float64 in the NumPy loop)")
    assert relative < 1e-5, relative
    assert np.allclose(dask_chunk_means, numpy_chunk_means, rtol=1e-5)

    fig, ax = plt.subplots(figsize=(7.2, 4.0), layout="constrained")
    ax.plot(numpy_chunk_means, "o", color="tab:blue", ms=6, label="NumPy loop (float64)")
    ax.plot(dask_chunk_means, "x", color="tab:orange", ms=5, label="arraylosses on Dask (float32)")
    ax.axhline(dask_mean, color="0.3", lw=1, ls="--", label=f"overall mean {dask_mean:.6f}")
    memory = "" if memory_peak is None else f", peak memory {memory_peak:.0f} MB"
    ax.set(xlabel="chunk", ylabel="mean focal loss in the chunk")
    # two lines, so that the title fits the figure at any number of predictions
    ax.set_title(
        f"{TOTAL:,} predictions in {n_chunks} chunks\n{dask_seconds:.1f} s on Dask{memory}",
        fontsize=10,
    )
    fig.legend(frameon=False, loc="outside lower center", ncols=3, fontsize="small")
    fig.savefig("dask_out_of_core.png", dpi=130)
    print("wrote dask_out_of_core.png")


if __name__ == "__main__":
    main()
