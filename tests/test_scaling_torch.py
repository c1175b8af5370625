"""A DistributedDataParallel training step with a focal loss, two CPU processes.

``torch.multiprocessing`` starts two ranks that join a gloo process group (through a
file in a temporary directory, so no port is needed). Each wraps the same seeded model
in ``DistributedDataParallel``, computes ``arraylosses.torch.SigmoidFocalLoss`` (and
the softmax focal loss) on its half of the batch, and backpropagates; DDP averages
the gradients over the ranks. With equal halves and the ``"mean"`` reduction that
average is the gradient of the full-batch loss, which the parent process computes in
one process and compares.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is installed in the torch and distributed sessions"
)
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("this PyTorch build has no gloo backend", allow_module_level=True)

N, FEATURES, CLASSES = 32, 6, 4


def _model(kind: str) -> Any:
    torch.manual_seed(0)
    out = 1 if kind == "sigmoid" else CLASSES
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 8), torch.nn.Tanh(), torch.nn.Linear(8, out)
    ).double()


def _data(kind: str) -> tuple[Any, Any]:
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(N, FEATURES)))
    if kind == "sigmoid":
        return x, torch.from_numpy((rng.random(N) < 0.25).astype(np.float64))
    return x, torch.from_numpy(rng.integers(0, CLASSES, N))


def _criterion(kind: str) -> Any:
    from arraylosses.torch import SigmoidFocalLoss, SoftmaxFocalLoss

    if kind == "sigmoid":
        return SigmoidFocalLoss(alpha=0.25, gamma=2.0)
    return SoftmaxFocalLoss(gamma=2.0, alpha=[1.0, 2.0, 0.5, 1.0])


def _loss(kind: str, model: Any, x: Any, y: Any) -> Any:
    out = model(x)
    return _criterion(kind)(out.squeeze(-1) if kind == "sigmoid" else out, y)


def _rank(rank: int, world: int, init_file: str, out_dir: str, kind: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = torch.nn.parallel.DistributedDataParallel(_model(kind))
        x, y = _data(kind)
        shard = slice(rank * N // world, (rank + 1) * N // world)
        _loss(kind, model, x[shard], y[shard]).backward()
        grads = [p.grad.detach().numpy() for p in model.parameters()]
        np.savez(Path(out_dir) / f"rank{rank}.npz", *grads)
        # both ranks done before either tears gloo down (a rank that exits while the
        # other's gloo threads still talk to it aborts: "terminate called ...")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    # Leave without the interpreter's teardown: gloo's threads met in static
    # destructors at exit have aborted a rank whose results were already saved
    # ("terminate called without an active exception", SIGABRT).
    os._exit(0)


@pytest.mark.parametrize("kind", ["sigmoid", "softmax"])
def test_ddp_averaged_gradient_equals_the_full_batch_gradient(tmp_path: Path, kind: str) -> None:
    import torch.multiprocessing as mp

    # the spawned ranks import this module by name from the tests directory
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(tmp_path), kind), nprocs=2, join=True)
    finally:
        sys.path.remove(str(Path(__file__).parent))
    model = _model(kind)
    x, y = _data(kind)
    _loss(kind, model, x, y).backward()
    want = [p.grad.numpy() for p in model.parameters()]
    for rank in range(2):
        with np.load(tmp_path / f"rank{rank}.npz") as saved:
            got = [saved[f"arr_{i}"] for i in range(len(want))]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
