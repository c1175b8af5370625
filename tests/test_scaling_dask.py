"""Every loss on a real ``dask.distributed`` cluster with worker processes.

Two single-threaded worker processes (``LocalCluster(processes=True)``), so every
task graph is pickled and shipped to another interpreter. The inputs are generated on
the workers (``dask.array.random``), the losses build graphs without submitting a
task, reduced losses bring one 0-d result back to the client, values equal the float64
references, out-of-range labels give NaN (the lazy policy), and an exception raised in
a worker reaches the caller as itself. Runs where ``distributed`` is installed (the
``distributed`` nox session).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is installed in the distributed session"
)
da = pytest.importorskip("dask.array")

import arraylosses as al  # noqa: E402
from arraylosses.testing import reference as ref  # noqa: E402

N, K, CHUNK = 6000, 5, 1500


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _scheduler_tasks(client: Any) -> int:
    return int(client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)))


def _settle(client: Any) -> None:
    """Wait until the scheduler has forgotten the previous test's tasks."""
    deadline = time.monotonic() + 10
    while _scheduler_tasks(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _scheduler_tasks(client) == 0


def _inputs(name: str) -> tuple[Any, Any, dict[str, Any]]:
    """Logits and targets generated lazily on the workers, and the loss's options."""
    rng = da.random.default_rng(3)
    if name in ("cross_entropy", "softmax_focal_loss"):
        x = rng.normal(0, 3, size=(N, K), chunks=(CHUNK, K))
        y = rng.integers(0, K, size=N, chunks=CHUNK)
        options = {"label_smoothing": 0.1}
        if name == "softmax_focal_loss":
            options |= {"alpha": [1.0, 2.0, 0.5, 1.0, 3.0], "gamma": 1.5}
        return x, y, options
    x = rng.normal(0, 3, size=(N, K), chunks=(CHUNK, K))
    y = (rng.random((N, K), chunks=(CHUNK, K)) < 0.2).astype("float64")
    options = {"alpha": 0.25, "gamma": 2.0} if name == "sigmoid_focal_loss" else {}
    if name == "asymmetric_loss":
        options = {"gamma_neg": 4.0, "clip": 0.05}
    return x, y, options


LOSSES = ["binary_cross_entropy", "sigmoid_focal_loss", "asymmetric_loss", "cross_entropy",
          "softmax_focal_loss"]  # fmt: skip


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", LOSSES)
def test_losses_on_worker_processes_equal_the_references(
    client: Any, name: str, reduction: str
) -> None:
    _settle(client)
    x, y, options = _inputs(name)
    loss = getattr(al, name)(x, y, reduction=reduction, **options)
    assert isinstance(loss, da.Array)
    assert _scheduler_tasks(client) == 0, "the loss submitted work before compute()"
    # the graph holds no data of the client's: it pickles small
    assert len(pickle.dumps(dict(loss.__dask_graph__()))) < 200_000
    future = client.compute(loss)
    got = future.result()
    x_np, y_np = client.compute([x, y], sync=True)
    want = getattr(ref, name)(np.asarray(x_np), np.asarray(y_np), reduction=reduction, **options)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    if reduction != "none":  # one 0-d array comes back, no chunk of the inputs
        assert np.ndim(got) == 0
        nbytes = client.run_on_scheduler(
            lambda dask_scheduler, key=future.key: dask_scheduler.tasks[key].nbytes
        )
        assert nbytes <= 1024
    del future


def test_out_of_range_labels_give_nan_on_the_cluster(client: Any) -> None:
    x = da.from_array(np.zeros((8, 3)), chunks=(4, 3))
    labels = da.from_array(np.array([0, 1, 2, 7, 0, 1, -3, 2]), chunks=4)
    per = al.cross_entropy(x, labels, reduction="none").compute()
    assert np.isnan(per[[3, 6]]).all()
    np.testing.assert_allclose(np.delete(per, [3, 6]), np.log(3.0), rtol=1e-12)
    assert np.isnan(float(al.softmax_focal_loss(x, labels).compute()))


class ChunkError(RuntimeError):
    pass


def _fail(block: np.ndarray) -> np.ndarray:
    if block[0, 0] > 1e8:
        raise ChunkError(f"bad chunk starting with {block[0, 0]}")
    return block


def test_a_failing_worker_task_surfaces_as_the_original_exception(client: Any) -> None:
    values = np.zeros((8, 4))
    values[4, 0] = 1e9
    x = da.from_array(values, chunks=(4, 4)).map_blocks(_fail, dtype=float)
    loss = al.sigmoid_focal_loss(x, da.zeros_like(x))
    with pytest.raises(ChunkError, match=r"bad chunk starting with 1000000000\.0"):
        client.compute(loss).result()
