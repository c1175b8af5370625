"""10^9 predictions scored on a Dask cluster, against one NumPy process.

A ``dask.distributed.LocalCluster`` with two single-threaded worker processes (one per
core of a two-core machine; on a real cluster, point ``Client`` at its scheduler
instead). The logits and targets of 10^9 predictions (7.5 GB of float32 if held at
once) are generated on the workers, chunk by chunk, from seeded streams: the client
never holds one. ``arraylosses.sigmoid_focal_loss`` builds the graph (one partial sum
per chunk, on the worker that made it), ``client.compute`` runs it while
``dask.distributed.progress`` draws a bar, and one float comes back.

The same chunks are then generated and scored in a single process, one after the
other (plain NumPy and ``arraylosses`` on NumPy arrays; the client process, while the
cluster idles): the best of two interleaved runs of each is printed as throughput, with the peak resident memory of each worker, and drawn into
dask_cluster.png.

    python examples/dask_cluster.py
    ARRAYLOSSES_EXAMPLES_QUICK=1 python examples/dask_cluster.py   # 10^7, seconds
"""

from __future__ import annotations

import resource
import time

import dask
import dask.array as da
import numpy as np
from _common import QUICK
from distributed import Client, LocalCluster, progress

import arraylosses as al

TOTAL = 10**9 if not QUICK else 10**7
CHUNK = 10**7 if not QUICK else 10**6
ALPHA, GAMMA, POSITIVE = 0.25, 2.0, 0.01
REPEATS = 2  # each side timed twice, interleaved (a shared machine is noisy)


def chunk(index: int) -> tuple[np.ndarray, np.ndarray]:
    """The logits and targets of one chunk, from its own seeded stream."""
    rng = np.random.default_rng([2017, index])
    targets = (rng.random(CHUNK, dtype=np.float32) < POSITIVE).astype(np.float32)
    logits = rng.standard_normal(CHUNK, dtype=np.float32)
    logits *= 2.0  # 2 N(0, 1) - 4, plus 3 for the positives: in place, few passes
    logits -= 4.0
    logits += 3.0 * targets
    return logits, targets


def lazy_inputs(n_chunks: int) -> tuple[da.Array, da.Array]:
    """Both arrays as Dask arrays whose chunks are made on the workers."""
    pairs = [dask.delayed(chunk, nout=2)(i) for i in range(n_chunks)]
    logits = da.concatenate([da.from_delayed(p[0], (CHUNK,), np.float32) for p in pairs]).rechunk(
        CHUNK
    )
    targets = da.concatenate([da.from_delayed(p[1], (CHUNK,), np.float32) for p in pairs]).rechunk(
        CHUNK
    )
    return logits, targets


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    # Dask's nannies start each worker with MALLOC_TRIM_THRESHOLD_=65536 (against
    # memory fragmentation in long-lived workers). Setting it turns glibc's dynamic
    # mmap threshold off, so that every 40 MB chunk lands on fresh pages; for a stream
    # of equal chunks glibc's default reuses them (10 % of the cluster's time here).
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    dask.config.set({"distributed.nanny.pre-spawn-environ": environ})
    n_chunks = TOTAL // CHUNK
    print(f"{TOTAL:.0e} predictions in {n_chunks} chunks of {CHUNK:.0e}, generated on the workers")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        logits, targets = lazy_inputs(n_chunks)
        loss = al.sigmoid_focal_loss(logits, targets, alpha=ALPHA, gamma=GAMMA)  # a graph
        cluster_times, stream_times = [], []
        for repeat in range(REPEATS):  # interleaved; the best of each is reported
            start = time.perf_counter()
            future = client.compute(loss)
            progress(future)
            cluster_mean = float(future.result())
            cluster_times.append(time.perf_counter() - start)
            del future
            print()
            start = time.perf_counter()
            total = 0.0
            for i in range(n_chunks):
                x, y = chunk(i)
                total += float(
                    al.sigmoid_focal_loss(x, y, alpha=ALPHA, gamma=GAMMA, reduction="sum")
                )
            stream_mean = total / TOTAL
            stream_times.append(time.perf_counter() - start)
            print(
                f"run {repeat + 1}: cluster {cluster_times[-1]:.1f} s, "
                f"one process {stream_times[-1]:.1f} s"
            )
        worker_peaks = list(client.run(peak_rss_mb).values())
    cluster_seconds, stream_seconds = min(cluster_times), min(stream_times)

    cluster_rate, stream_rate = TOTAL / cluster_seconds, TOTAL / stream_seconds
    print(
        f"cluster (2 worker processes, 1 thread each): {cluster_seconds:.1f} s, "
        f"{cluster_rate / 1e6:.1f} M predictions/s"
    )
    print(
        f"one process, chunk after chunk: {stream_seconds:.1f} s, "
        f"{stream_rate / 1e6:.1f} M predictions/s"
    )
    print(f"speed-up of the cluster: {cluster_rate / stream_rate:.2f}x")
    print(f"peak resident memory per worker: {', '.join(f'{p:.0f} MB' for p in worker_peaks)}")
    print(f"mean focal loss: cluster {cluster_mean:.8f}, one process {stream_mean:.8f}")
    assert abs(cluster_mean - stream_mean) <= 1e-5 * stream_mean

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2), layout="constrained")
    labels = ["one NumPy process", "Dask cluster\n(2 workers x 1 thread)"]
    rates = [stream_rate / 1e6, cluster_rate / 1e6]
    ax.barh(labels, rates, color=["tab:blue", "tab:orange"])
    for y, rate in enumerate(rates):
        ax.text(rate, y, f" {rate:.0f} M/s", va="center")
    ax.set_xlim(0, 1.25 * max(rates))
    ax.set_xlabel("focal-loss predictions scored per second (generation included)")
    ax.set_title(
        f"{TOTAL:,} predictions, mean focal loss {cluster_mean:.6f}\n"
        f"speed-up {cluster_rate / stream_rate:.2f}x; peak {max(worker_peaks):.0f} MB per worker",
        fontsize=10,
    )
    fig.savefig("dask_cluster.png", dpi=130)
    print("wrote dask_cluster.png")


if __name__ == "__main__":
    main()
