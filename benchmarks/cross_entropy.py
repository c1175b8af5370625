"""(b) Label-smoothed cross-entropy, and (d) the call overhead on a tiny batch.

(b) Logits (4096, 1000) float32 (an ImageNet batch), integer labels, label smoothing
0.1, mean: against ``torch.nn.functional.cross_entropy(label_smoothing=0.1)`` and
against optax's ``softmax_cross_entropy(logits, optax.smooth_labels(one_hot, 0.1))
.mean()`` under ``jax.jit`` (ours jitted too).

Probability targets, same logits (a softmax of random scores), forward+backward on
PyTorch: the cross-entropy against ``F.cross_entropy`` of the same targets, and the
softmax focal loss (gamma 2) against its direct composition ``-(q (1 - p)**2 log
p).sum(1).mean()`` from ``F.log_softmax`` (no target: what soft labels, mixup or
distillation cost).

(d) Logits (8, 10), default options: one call of ours against one call of
``F.cross_entropy``, eager, so the ratio is the price of validation and dispatch; and
the same against optax's ``softmax_cross_entropy_with_integer_labels(...).mean()``,
both jitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import arraylosses as al

from ._harness import Row, Settings, interleaved

EPS = 0.1


def inputs(n: int, c: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c), dtype=np.float32), rng.integers(0, c, n)


def smoothed(x_np: np.ndarray, t_np: np.ndarray, settings: Settings) -> list[Row]:
    import jax
    import optax
    import torch
    import torch.nn.functional as F

    case = "cross-entropy, smoothing 0.1 (b)"
    rows = []
    x, t = torch.from_numpy(x_np), torch.from_numpy(t_np)
    leaf = x.clone().requires_grad_(True)

    def step(fn: Any) -> Any:
        def run() -> None:
            fn().backward()
            leaf.grad = None

        return run

    t_ours, t_peer = interleaved(
        lambda: al.cross_entropy(x, t, label_smoothing=EPS),
        lambda: F.cross_entropy(x, t, label_smoothing=EPS),
        settings,
    )
    rows.append(Row(case, "torch", "forward", "F.cross_entropy", t_ours, t_peer, 1.1))
    t_ours, t_peer = interleaved(
        step(lambda: al.cross_entropy(leaf, t, label_smoothing=EPS)),
        step(lambda: F.cross_entropy(leaf, t, label_smoothing=EPS)),
        settings,
    )
    rows.append(Row(case, "torch", "forward+backward", "F.cross_entropy", t_ours, t_peer))

    xj, tj = jax.device_put(x_np), jax.device_put(t_np.astype(np.int32))
    k = x_np.shape[1]

    def optax_ce(a: Any, b: Any) -> Any:
        labels = optax.smooth_labels(jax.nn.one_hot(b, k), EPS)
        return optax.softmax_cross_entropy(a, labels).mean()

    def ours_ce(a: Any, b: Any) -> Any:
        return al.cross_entropy(a, b, label_smoothing=EPS)

    ours_jit, optax_jit = jax.jit(ours_ce), jax.jit(optax_ce)
    t_ours, t_peer = interleaved(
        lambda: ours_jit(xj, tj).block_until_ready(),
        lambda: optax_jit(xj, tj).block_until_ready(),
        settings,
    )
    rows.append(Row(case, "jax.jit", "forward", "optax", t_ours, t_peer, 1.1))
    ours_grad, optax_grad = jax.jit(jax.grad(ours_ce)), jax.jit(jax.grad(optax_ce))
    t_ours, t_peer = interleaved(
        lambda: ours_grad(xj, tj).block_until_ready(),
        lambda: optax_grad(xj, tj).block_until_ready(),
        settings,
    )
    rows.append(Row(case, "jax.jit", "forward+backward", "optax", t_ours, t_peer))
    return rows


def soft_targets(x_np: np.ndarray, settings: Settings) -> list[Row]:
    import torch
    import torch.nn.functional as F

    case = "probability targets (b)"
    x = torch.from_numpy(x_np).requires_grad_(True)
    scores = 2.0 * np.random.default_rng(3).standard_normal(x_np.shape, dtype=np.float32)
    q = torch.softmax(torch.from_numpy(scores), dim=1)

    def step(fn: Any) -> Any:
        def run() -> None:
            fn().backward()
            x.grad = None

        return run

    def direct_focal() -> Any:
        log_p = F.log_softmax(x, dim=1)
        return -(q * (1 - log_p.exp()) ** 2 * log_p).sum(dim=1).mean()

    rows = []
    t_ours, t_peer = interleaved(
        step(lambda: al.cross_entropy(x, q)), step(lambda: F.cross_entropy(x, q)), settings
    )
    rows.append(Row(f"cross-entropy, {case}", "torch", "forward+backward", "F.cross_entropy",
                    t_ours, t_peer))  # fmt: skip
    t_ours, t_peer = interleaved(
        step(lambda: al.softmax_focal_loss(x, q)), step(direct_focal), settings
    )
    rows.append(Row(f"softmax focal, {case}", "torch", "forward+backward",
                    "direct composition", t_ours, t_peer))  # fmt: skip
    return rows


def tiny(settings: Settings) -> list[Row]:
    import jax
    import optax
    import torch
    import torch.nn.functional as F

    case = "call overhead, (8, 10) (d)"
    x_np, t_np = inputs(8, 10, seed=2)
    x, t = torch.from_numpy(x_np), torch.from_numpy(t_np)
    rows = []
    t_ours, t_peer = interleaved(
        lambda: al.cross_entropy(x, t), lambda: F.cross_entropy(x, t), settings
    )
    rows.append(Row(case, "torch", "per call", "F.cross_entropy", t_ours, t_peer, 2.5))
    xj, tj = jax.device_put(x_np), jax.device_put(t_np.astype(np.int32))
    ours_jit = jax.jit(lambda a, b: al.cross_entropy(a, b))
    optax_jit = jax.jit(
        lambda a, b: optax.losses.softmax_cross_entropy_with_integer_labels(a, b).mean()
    )
    t_ours, t_peer = interleaved(
        lambda: ours_jit(xj, tj).block_until_ready(),
        lambda: optax_jit(xj, tj).block_until_ready(),
        settings,
    )
    rows.append(Row(case, "jax.jit", "per call", "optax", t_ours, t_peer))
    return rows


def run(settings: Settings) -> list[Row]:
    x, t = inputs(settings.size(4096, 256), 1000)
    return smoothed(x, t, settings) + soft_targets(x, settings) + tiny(settings)
