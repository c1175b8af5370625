"""(g) Softmax losses at segmentation shapes, forward and forward+backward.

Softmax focal loss (gamma 2, integer labels, mean) on PyTorch eager at
(4, 19, 256, 256) with ``axis=1`` (19 classes, as Cityscapes), channel-last
(4, 256, 256, 19) with ``axis=-1``, and (4096, 1000), plain, with label smoothing 0.1
and with per-class alpha, against the direct composition one writes by hand:
``F.log_softmax`` -> ``gather`` -> ``-(1 - p)**gamma * log p`` (-> ``alpha[label]``,
+ the smoothing term) -> mean. Cross-entropy at the same segmentation shapes:
forward+backward on PyTorch against ``F.cross_entropy``, and forward on NumPy and
under ``jax.jit`` against the direct composition (max shift, ``log(sum(exp))``,
``take_along_axis``). ``F.log_softmax`` alone against the direct composition is the
floor of any eager forward pass, and ``torch.compile`` of the direct composition
against the same composition eager shows what a fused kernel of the arithmetic gains
(neither has a target). The peak extra memory of the softmax focal loss's
forward+backward at (8, 19, 256, 256) against ``F.cross_entropy``'s, each in a fresh
process (peak resident set size above what the process held just before
the call, over the logits' bytes; the gradient included). Targets: issue
"Performance round 2".
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import arraylosses as al

from ._harness import Row, Settings, interleaved

GAMMA = 2.0
EPS = 0.1
CASE = "segmentation (g)"
SHAPES = {
    "(4, 19, 256, 256), axis=1": ((4, 19, 256, 256), 1),
    "(4, 256, 256, 19), axis=-1": ((4, 256, 256, 19), -1),
    "(4096, 1000)": ((4096, 1000), -1),
}
QUICK_SHAPES = {
    "(2, 19, 64, 64), axis=1": ((2, 19, 64, 64), 1),
    "(2, 64, 64, 19), axis=-1": ((2, 64, 64, 19), -1),
    "(256, 1000)": ((256, 1000), -1),
}


def torch_direct(x: Any, t: Any, axis: int, variant: str, alpha: Any) -> Any:
    """The composition by hand: log_softmax, gather, the focal term, the mean."""
    import torch.nn.functional as F

    log_p = F.log_softmax(x, dim=axis)
    picked = log_p.gather(axis, t.unsqueeze(axis)).squeeze(axis)
    loss = -((1 - picked.exp()) ** GAMMA) * picked
    if variant == "alpha":
        loss = alpha[t] * loss
    if variant == "smoothing":  # q' = (1 - eps) onehot + eps / K
        k = x.shape[axis]
        every = -(((1 - log_p.exp()) ** GAMMA) * log_p).sum(dim=axis)
        loss = (1 - EPS) * loss + (EPS / k) * every
    return loss.mean()


def ours(x: Any, t: Any, axis: int, variant: str, alpha: Any) -> Any:
    options: dict[str, Any] = {}
    if variant == "alpha":
        options["alpha"] = alpha
    if variant == "smoothing":
        options["label_smoothing"] = EPS
    return al.softmax_focal_loss(x, t, gamma=GAMMA, axis=axis, **options)


def _backward(f: Callable[[], Any], x: Any) -> Callable[[], None]:
    def run() -> None:
        x.grad = None
        f().backward()

    return run


def numpy_ce_direct(x: np.ndarray, t: np.ndarray, axis: int) -> Any:
    shifted = x - x.max(axis=axis, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    picked = np.take_along_axis(shifted, np.expand_dims(t, axis), axis=axis)
    return (lse - picked).mean()


def jax_ce_direct(x: Any, t: Any, axis: int) -> Any:
    import jax
    import jax.numpy as jnp

    log_p = jax.nn.log_softmax(x, axis=axis)
    return -jnp.take_along_axis(log_p, jnp.expand_dims(t, axis), axis=axis).mean()


def run(settings: Settings) -> list[Row]:
    rows = []
    rng = np.random.default_rng(19)
    shapes = QUICK_SHAPES if settings.quick else SHAPES
    for label, (shape, axis) in shapes.items():
        rows += _shape_rows(settings, rng, label, shape, axis)
    shape = (2, 19, 64, 64) if settings.quick else (8, 19, 256, 256)
    ours, theirs = (_peak_extra(side, shape) for side in ("ours", "F.cross_entropy"))
    rows.append(Row(f"peak extra memory, softmax focal {shape} {CASE}", "torch",
                    "forward+backward, peak / input bytes", "F.cross_entropy", ours, theirs,
                    target=0.8, unit="× input"))  # fmt: skip
    return rows


# One fresh process per side (Linux): the peak resident set size (VmHWM) is reset just
# before the call (/proc/self/clear_refs), so whatever the interpreter and torch held
# or freed before does not hide the call's own peak.
_MEMORY_SCRIPT = """
import sys
import torch
import torch.nn.functional as F
import arraylosses as al
side, shape = sys.argv[1], tuple(int(n) for n in sys.argv[2].split(","))
torch.manual_seed(0)
x = torch.randn(shape, requires_grad=True)
t = torch.randint(0, shape[1], (shape[0], *shape[2:]))
small = torch.randn(2, shape[1], 2, requires_grad=True)  # first-call costs, not the loss's
al.softmax_focal_loss(small, t[:2, :2, 0], axis=1).backward()
F.cross_entropy(small, t[:2, :2, 0]).backward()
def rss(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))
with open("/proc/self/clear_refs", "w") as refs:  # the peak (VmHWM) restarts from now
    refs.write("5")
before = rss("VmRSS:")
loss = al.softmax_focal_loss(x, t, axis=1) if side == "ours" else F.cross_entropy(x, t)
loss.backward()
print((rss("VmHWM:") - before) * 1024 / (x.numel() * x.element_size()))
"""


def _peak_extra(side: str, shape: tuple[int, ...]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, side, ",".join(map(str, shape))],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def _shape_rows(
    settings: Settings, rng: np.random.Generator, label: str, shape: tuple[int, ...], axis: int
) -> list[Row]:
    import jax
    import torch
    import torch.nn.functional as F

    rows = []
    k = shape[axis]
    x_np = rng.standard_normal(shape, dtype=np.float32)
    t_np = rng.integers(0, k, tuple(n for i, n in enumerate(shape) if i != axis % len(shape)))
    alpha = torch.from_numpy(rng.random(k, dtype=np.float32) + 0.5)
    x = torch.from_numpy(x_np).requires_grad_()
    t = torch.from_numpy(t_np)
    # the floor of any eager forward: F.log_softmax alone (one exponential per logit,
    # one full-size output), against the whole direct composition
    with torch.no_grad():
        t_floor, t_peer = interleaved(
            functools.partial(F.log_softmax, x, dim=axis),
            functools.partial(torch_direct, x, t, axis, "plain", alpha),
            settings,
        )
    rows.append(Row(f"F.log_softmax alone {label} {CASE}", "torch", "forward",
                    "direct composition", t_floor, t_peer))  # fmt: skip
    rows += _compiled_rows(settings, label, x, t, axis, alpha)
    for variant in ("plain", "smoothing", "alpha"):
        name = f"softmax focal {label}" + ("" if variant == "plain" else f", {variant}")
        mine = functools.partial(ours, x, t, axis, variant, alpha)
        theirs = functools.partial(torch_direct, x, t, axis, variant, alpha)
        with torch.no_grad():
            t_ours, t_peer = interleaved(mine, theirs, settings)
        rows.append(Row(f"{name} {CASE}", "torch", "forward", "direct composition",
                        t_ours, t_peer, target=0.7))  # fmt: skip
        t_ours, t_peer = interleaved(_backward(mine, x), _backward(theirs, x), settings)
        rows.append(Row(f"{name} {CASE}", "torch", "forward+backward",
                        "direct composition", t_ours, t_peer, target=0.7))  # fmt: skip
    if len(shape) == 2:
        return rows
    # cross-entropy at the segmentation layouts
    ce_name = f"cross-entropy {label} {CASE}"
    t_ours, t_peer = interleaved(
        _backward(functools.partial(al.cross_entropy, x, t, axis=axis), x),
        _backward(functools.partial(F.cross_entropy, torch.movedim(x, axis, 1), t), x),
        settings,
    )
    rows.append(Row(ce_name, "torch", "forward+backward", "F.cross_entropy", t_ours,
                    t_peer, target=1.0))  # fmt: skip
    t_ours, t_peer = interleaved(
        functools.partial(al.cross_entropy, x_np, t_np, axis=axis),
        functools.partial(numpy_ce_direct, x_np, t_np, axis),
        settings,
    )
    rows.append(Row(ce_name, "numpy", "forward", "direct composition", t_ours, t_peer,
                    target=0.8))  # fmt: skip
    xj, tj = jax.device_put(x_np), jax.device_put(t_np.astype(np.int32))
    ours_jit = jax.jit(functools.partial(_jax_ours, axis=axis))
    direct_jit = jax.jit(functools.partial(jax_ce_direct, axis=axis))
    t_ours, t_peer = interleaved(
        lambda: ours_jit(xj, tj).block_until_ready(),
        lambda: direct_jit(xj, tj).block_until_ready(),
        settings,
    )
    rows.append(Row(ce_name, "jax.jit", "forward", "direct composition", t_ours, t_peer,
                    target=0.8))  # fmt: skip
    return rows


def _compiled_rows(
    settings: Settings, label: str, x: Any, t: Any, axis: int, alpha: Any
) -> list[Row]:
    """The direct composition fused by ``torch.compile`` (Inductor's C++ kernels)
    against the same composition eager: what a fused kernel of the same arithmetic
    gains, forward and forward+backward (no target; reference for the eager rows)."""
    import torch

    direct = functools.partial(torch_direct, t=t, axis=axis, variant="plain", alpha=alpha)
    fused = torch.compile(direct, dynamic=False)
    try:  # the first calls compile (a C++ compiler is needed); warm both grad modes
        with torch.no_grad():
            fused(x)
        fused(x).backward()
    except Exception as error:  # whatever stops the compiler: no reference rows, said so
        print(f"  torch.compile reference rows skipped ({label}): {error!r:.200}")
        return []
    name = f"torch.compile(direct composition) {label} {CASE}"
    fused_x, eager_x = functools.partial(fused, x), functools.partial(direct, x)
    with torch.no_grad():
        t_fused, t_eager = interleaved(fused_x, eager_x, settings)
    rows = [Row(name, "torch", "forward", "direct composition", t_fused, t_eager)]
    t_fused, t_eager = interleaved(_backward(fused_x, x), _backward(eager_x, x), settings)
    rows.append(Row(name, "torch", "forward+backward", "direct composition", t_fused, t_eager))
    return rows


def _jax_ours(x: Any, t: Any, axis: int) -> Any:
    return al.cross_entropy(x, t, axis=axis)
