"""(c) Softmax focal loss, (4096, 1000) float32, gamma 2, integer labels, mean.

Against the formula composed directly in each library, as one would write it by hand:
``-(one_hot(labels) * (1 - p) ** gamma * log_softmax(x)).sum(-1).mean()`` with
``p = exp(log_softmax(x))`` (NumPy eager, PyTorch eager, JAX under ``jax.jit``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import arraylosses as al

from ._harness import Row, Settings, interleaved

GAMMA = 2.0
CASE = "softmax focal (c)"


def numpy_direct(x: np.ndarray, t: np.ndarray, gamma: float = GAMMA) -> Any:
    shifted = x - x.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    one_hot = np.eye(x.shape[-1], dtype=x.dtype)[t]
    return -(one_hot * (1 - np.exp(log_p)) ** gamma * log_p).sum(axis=-1).mean()


def torch_direct(x: Any, t: Any, gamma: float = GAMMA) -> Any:
    import torch.nn.functional as F

    log_p = F.log_softmax(x, dim=-1)
    one_hot = F.one_hot(t, x.shape[-1]).to(x.dtype)
    return -(one_hot * (1 - log_p.exp()) ** gamma * log_p).sum(dim=-1).mean()


def jax_direct(x: Any, t: Any, gamma: float = GAMMA) -> Any:
    import jax

    log_p = jax.nn.log_softmax(x, axis=-1)
    one_hot = jax.nn.one_hot(t, x.shape[-1], dtype=x.dtype)
    return -(one_hot * (1 - jax.numpy.exp(log_p)) ** gamma * log_p).sum(axis=-1).mean()


def ours(x: Any, t: Any) -> Any:
    return al.softmax_focal_loss(x, t, gamma=GAMMA)


def run(settings: Settings) -> list[Row]:
    import jax
    import torch

    rng = np.random.default_rng(3)
    n = settings.size(4096, 256)
    x = rng.standard_normal((n, 1000), dtype=np.float32)
    t = rng.integers(0, 1000, n)
    rows = []
    t_ours, t_peer = interleaved(lambda: ours(x, t), lambda: numpy_direct(x, t), settings)
    rows.append(Row(CASE, "numpy", "forward", "direct composition", t_ours, t_peer))
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    t_ours, t_peer = interleaved(lambda: ours(xt, tt), lambda: torch_direct(xt, tt), settings)
    rows.append(Row(CASE, "torch", "forward", "direct composition", t_ours, t_peer))
    xj, tj = jax.device_put(x), jax.device_put(t.astype(np.int32))
    ours_jit, direct_jit = jax.jit(ours), jax.jit(jax_direct)
    t_ours, t_peer = interleaved(
        lambda: ours_jit(xj, tj).block_until_ready(),
        lambda: direct_jit(xj, tj).block_until_ready(),
        settings,
    )
    rows.append(Row(CASE, "jax.jit", "forward", "direct composition", t_ours, t_peer))
    return rows
