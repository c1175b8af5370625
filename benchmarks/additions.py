"""(f) The 0.2 additions against their peers, on RetinaNet-sized inputs.

- Asymmetric loss, (120 000, 80) float32 logits, 0/1 targets, timm's defaults
  (gamma_neg 4, gamma_pos 0, clip 0.05), mean: against timm's
  ``AsymmetricLossMultiLabel`` formula transcribed in PyTorch (timm's wheel needs
  another torch), forward and forward+backward.
- Binary cross-entropy on the same inputs, mean: against PyTorch's fused
  ``F.binary_cross_entropy_with_logits``, forward and forward+backward (no target:
  ours keeps both tails accurate, which the fused kernel rounds away).
- Poly-1 cross-entropy, (4096, 1000) float32, integer labels, epsilon 1: against
  ``optax.losses.poly_loss_cross_entropy`` (one-hot labels) under ``jax.jit``,
  forward and forward+backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import arraylosses as al

from ._harness import Row, Settings, interleaved

ASL = "asymmetric loss (f)"
BCE = "binary cross-entropy (f)"
POLY = "Poly-1 cross-entropy (f)"


def timm_asymmetric(x: Any, y: Any, gamma_neg: float = 4.0, gamma_pos: float = 0.0,
                    clip: float = 0.05, eps: float = 1e-8) -> Any:  # fmt: skip
    """timm's AsymmetricLossMultiLabel.forward (its formula), as a mean."""
    import torch

    xs_pos = torch.sigmoid(x)
    xs_neg = (1 - xs_pos + clip).clamp(max=1)
    los_pos = y * torch.log(xs_pos.clamp(min=eps))
    los_neg = (1 - y) * torch.log(xs_neg.clamp(min=eps))
    loss = los_pos + los_neg
    pt = xs_pos * y + xs_neg * (1 - y)
    gamma = gamma_pos * y + gamma_neg * (1 - y)
    loss = loss * torch.pow(1 - pt, gamma)
    return -loss.mean()


def ours_asymmetric(x: Any, y: Any) -> Any:
    return al.asymmetric_loss(x, y)


def run(settings: Settings) -> list[Row]:
    import jax
    import optax
    import torch

    rng = np.random.default_rng(11)
    n = settings.size(120_000, 2_000)
    x_np = rng.normal(0.0, 3.0, (n, 80)).astype(np.float32)
    y_np = (rng.random((n, 80)) < 0.02).astype(np.float32)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    leaf = x.clone().requires_grad_(True)

    def backward(fn: Any) -> Any:
        def step() -> None:
            fn(leaf, y).backward()
            leaf.grad = None

        return step

    rows = []
    pairs = {
        "forward": (lambda: ours_asymmetric(x, y), lambda: timm_asymmetric(x, y)),
        "forward+backward": (backward(ours_asymmetric), backward(timm_asymmetric)),
    }
    for measure, (a, b) in pairs.items():
        t_ours, t_peer = interleaved(a, b, settings)
        rows.append(Row(ASL, "torch", measure, "timm formula", t_ours, t_peer, 1.0))
    import torch.nn.functional as F

    bce_pairs = {
        "forward": (
            lambda: al.binary_cross_entropy(x, y),
            lambda: F.binary_cross_entropy_with_logits(x, y),
        ),
        "forward+backward": (
            backward(al.binary_cross_entropy),
            backward(F.binary_cross_entropy_with_logits),
        ),
    }
    for measure, (a, b) in bce_pairs.items():
        t_ours, t_peer = interleaved(a, b, settings)
        rows.append(
            Row(BCE, "torch", measure, "F.binary_cross_entropy_with_logits", t_ours, t_peer)
        )

    m = settings.size(4096, 256)
    logits = jax.device_put(rng.standard_normal((m, 1000), dtype=np.float32))
    labels = jax.device_put(rng.integers(0, 1000, m).astype(np.int32))

    def ours_poly(a: Any, t: Any) -> Any:
        return al.cross_entropy(a, t, poly_epsilon=1.0)

    def optax_poly(a: Any, t: Any) -> Any:
        one_hot = jax.nn.one_hot(t, a.shape[-1], dtype=a.dtype)
        return optax.losses.poly_loss_cross_entropy(a, one_hot, epsilon=1.0).mean()

    compiled = {
        "forward": (jax.jit(ours_poly), jax.jit(optax_poly)),
        "forward+backward": (jax.jit(jax.grad(ours_poly)), jax.jit(jax.grad(optax_poly))),
    }
    for measure, (f_ours, f_peer) in compiled.items():
        t_ours, t_peer = interleaved(
            lambda f=f_ours: f(logits, labels).block_until_ready(),
            lambda f=f_peer: f(logits, labels).block_until_ready(),
            settings,
        )
        rows.append(Row(POLY, "jax.jit", measure, "optax", t_ours, t_peer, 1.0))
    return rows
