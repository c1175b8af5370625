"""(a) Sigmoid focal loss at RetinaNet scale against torchvision, NumPy and optax.

Logits (120000, 80) float32 (anchors x classes of one COCO image pyramid), 1% positive
targets, alpha 0.25, gamma 2, mean. The peers:

- PyTorch: torchvision's ``sigmoid_focal_loss``, written out line by line as
  torchvision computes it (so torchvision need not be installed), then ``.mean()``;
- NumPy: the direct transcription of the same formula;
- JAX: ``optax.losses.sigmoid_focal_loss`` then ``.mean()``, both sides under
  ``jax.jit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import arraylosses as al

from ._harness import Row, Settings, interleaved

ALPHA, GAMMA = 0.25, 2.0
CASE = "sigmoid focal (a)"


def inputs(n: int, c: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c), dtype=np.float32)
    y = (rng.random((n, c)) < 0.01).astype(np.float32)
    return x, y


def torchvision_focal(x: Any, y: Any, alpha: float = ALPHA, gamma: float = GAMMA) -> Any:
    """torchvision.ops.sigmoid_focal_loss, as torchvision computes it, then the mean."""
    import torch
    import torch.nn.functional as F

    p = torch.sigmoid(x)
    ce_loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce_loss * ((1 - p_t) ** gamma)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    loss = alpha_t * loss
    return loss.mean()


def numpy_focal(x: np.ndarray, y: np.ndarray, alpha: float = ALPHA, gamma: float = GAMMA) -> Any:
    """The same formula transcribed directly into NumPy (stable BCE-with-logits)."""
    p = 1 / (1 + np.exp(-x))
    ce_loss = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce_loss * ((1 - p_t) ** gamma)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return (alpha_t * loss).mean()


def ours(x: Any, y: Any) -> Any:
    return al.sigmoid_focal_loss(x, y, alpha=ALPHA, gamma=GAMMA)


def torch_pair(x_np: np.ndarray, y_np: np.ndarray) -> dict[str, tuple[Any, Any]]:
    """Callables for forward and forward+backward, ours and torchvision's."""
    import torch

    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    leaf = x.clone().requires_grad_(True)

    def backward(fn: Any) -> Any:
        def step() -> None:
            fn(leaf, y).backward()
            leaf.grad = None

        return step

    return {
        "forward": (lambda: ours(x, y), lambda: torchvision_focal(x, y)),
        "forward+backward": (backward(ours), backward(torchvision_focal)),
    }


def jax_pair(x_np: np.ndarray, y_np: np.ndarray) -> dict[str, tuple[Any, Any]]:
    import jax
    import optax

    x, y = jax.device_put(x_np), jax.device_put(y_np)

    def optax_focal(a: Any, b: Any) -> Any:
        return optax.losses.sigmoid_focal_loss(a, b, alpha=ALPHA, gamma=GAMMA).mean()

    ours_jit, optax_jit = jax.jit(ours), jax.jit(optax_focal)
    ours_grad, optax_grad = jax.jit(jax.grad(ours)), jax.jit(jax.grad(optax_focal))
    return {
        "forward": (
            lambda: ours_jit(x, y).block_until_ready(),
            lambda: optax_jit(x, y).block_until_ready(),
        ),
        "forward+backward": (
            lambda: ours_grad(x, y).block_until_ready(),
            lambda: optax_grad(x, y).block_until_ready(),
        ),
    }


def run(settings: Settings) -> list[Row]:
    x, y = inputs(settings.size(120_000, 2_000))
    rows = []
    for measure, (a, b) in torch_pair(x, y).items():
        target = {"forward": 0.67, "forward+backward": 0.8}[measure]
        t_ours, t_peer = interleaved(a, b, settings)
        rows.append(Row(CASE, "torch", measure, "torchvision formula", t_ours, t_peer, target))
    t_ours, t_peer = interleaved(lambda: ours(x, y), lambda: numpy_focal(x, y), settings)
    rows.append(Row(CASE, "numpy", "forward", "direct transcription", t_ours, t_peer, 0.67))
    for measure, (a, b) in jax_pair(x, y).items():
        target = 1.0 if measure == "forward" else None
        t_ours, t_peer = interleaved(a, b, settings)
        rows.append(Row(CASE, "jax.jit", measure, "optax", t_ours, t_peer, target))
    return rows
