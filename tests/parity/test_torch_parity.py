"""arraylosses against PyTorch's losses and torchvision's published focal-loss formula.

Each test draws one configuration per seed (options, shapes, dtype float32/float64)
and compares with the peer computed on the same inputs. These run only in the torch
session (``PEER_BACKEND``); the arrays handed to arraylosses are torch tensors on the
test device, so the comparison is exactly what a PyTorch user sees when swapping the
peer for arraylosses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import arraylosses as al

torch = pytest.importorskip("torch", reason="the PyTorch peers need torch")
F = torch.nn.functional

from parity_helpers import (  # noqa: E402
    SEEDS,
    assert_matches_peer,
    assert_result_dtype,
    broadcastable_shape,
    draw_dtype,
    draw_epsilon,
    draw_reduction,
    rng_for,
)

PEER_BACKEND = "torch"

# Per-element tolerances: rtol on the value, atol per unit of logit magnitude (the
# losses are differences like logsumexp(x) - x_y, whose rounding error scales with |x|).
RTOL = {"float32": 2e-6, "float64": 1e-13}
ATOL_PER_LOGIT = {"float32": 1e-6, "float64": 1e-14}


def tolerances(dtype: str, x: np.ndarray, reduction: str) -> tuple[float, float]:
    """(rtol, atol) for one comparison; a sum accumulates one atol per element."""
    magnitude = 1.0 + (float(np.abs(x).max()) if x.size else 0.0)
    count = max(int(x.size), 1) if reduction == "sum" else 1
    return RTOL[dtype], ATOL_PER_LOGIT[dtype] * magnitude * count


def softmax_np(x: np.ndarray, axis: int) -> np.ndarray:
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def draw_softmax_layout(rng: np.random.Generator) -> tuple[tuple[int, ...], int, int, int]:
    """A shape in PyTorch's layout, its class dim, arraylosses' class position and ``axis``.

    PyTorch takes ``(C,)`` or ``(N, C, d1, ...)``; arraylosses gets the same data with
    the class dim moved to a random position ``pos`` and ``axis`` given as ``pos`` or
    ``pos - ndim``.
    """
    num_classes = 1 if rng.random() < 0.05 else int(rng.integers(2, 9))
    if rng.random() < 0.05:
        shape: tuple[int, ...] = (num_classes,)
    else:
        n = 0 if rng.random() < 0.03 else int(rng.integers(1, 7))
        spatial = tuple(int(rng.integers(1, 5)) for _ in range(int(rng.choice([0, 0, 1, 2]))))
        shape = (n, num_classes, *spatial)
    class_dim = 0 if len(shape) == 1 else 1
    pos = int(rng.integers(0, len(shape)))
    axis = pos if rng.random() < 0.5 else pos - len(shape)
    return shape, class_dim, pos, axis


def draw_ignore_index(rng: np.random.Generator, num_classes: int) -> int | None:
    """None, PyTorch's -100, -1, 255, or a class inside [0, C)."""
    u = rng.random()
    if u < 0.4:
        return None
    return int(rng.choice([-100, -1, 255, int(rng.integers(0, num_classes))]))


def draw_labels(
    rng: np.random.Generator, shape: tuple[int, ...], num_classes: int, ignore: int | None
) -> np.ndarray:
    labels = rng.integers(0, num_classes, size=shape)
    if ignore is not None:
        if rng.random() < 0.05:
            labels[...] = ignore
        else:
            labels[rng.random(shape) < 0.3] = ignore
    return labels


def draw_distribution(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """A soft distribution (70 %) or a one-hot along ``axis``."""
    if rng.random() < 0.7:
        return softmax_np(rng.normal(size=shape) * 2.0, axis)
    hot = rng.integers(0, shape[axis], size=shape[:axis] + shape[axis + 1 :])
    return np.moveaxis(np.eye(shape[axis])[hot], -1, axis)


def draw_class_vector(rng: np.random.Generator, num_classes: int, low: float, high: float):
    v = rng.uniform(low, high, size=num_classes)
    if num_classes > 1 and rng.random() < 0.2:
        v[int(rng.integers(0, num_classes))] = 0.0
    return v


def tensor(value: Any, dtype: str, device: Any) -> Any:
    return torch.tensor(np.asarray(value), dtype=getattr(torch, dtype), device=device)


def draw_softmax_case(rng: np.random.Generator, device: Any, asarray: Any) -> dict[str, Any]:
    """Inputs shared by the softmax tests, for PyTorch (``t_*``) and arraylosses."""
    dtype = draw_dtype(rng)
    shape, class_dim, pos, axis = draw_softmax_layout(rng)
    num_classes = shape[class_dim]
    scale = float(rng.choice([0.1, 1.0, 5.0, 30.0]))
    x = rng.normal(size=shape) * scale
    kind = "index" if rng.random() < 0.7 else "prob"
    case: dict[str, Any] = {
        "dtype": dtype,
        "torch_shape": shape,
        "axis": axis,
        "kind": kind,
        "scale": scale,
        "label_smoothing": draw_epsilon(rng),
        "reduction": draw_reduction(rng),
        "ignore_index": None,
    }
    if kind == "index":
        ignore = draw_ignore_index(rng, num_classes)
        labels = draw_labels(rng, shape[:class_dim] + shape[class_dim + 1 :], num_classes, ignore)
        label_dtype = "int64" if rng.random() < 0.7 else "int32"
        case.update(ignore_index=ignore, label_dtype=label_dtype)
        case["t_target"] = torch.tensor(labels, dtype=torch.int64, device=device)
        case["target"] = asarray(labels, label_dtype)
        case["n_kept"] = int(labels.size if ignore is None else (labels != ignore).sum())
    else:
        q = draw_distribution(rng, shape, class_dim)
        case["t_target"] = tensor(q, dtype, device)
        case["target"] = asarray(np.moveaxis(q, class_dim, pos), dtype)
        case["n_kept"] = int(q.size // num_classes)
    case["x_np"] = x
    case["t_x"] = tensor(x, dtype, device)
    case["x"] = asarray(np.moveaxis(x, class_dim, pos), dtype)
    case["num_classes"] = num_classes
    return case


def describe(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if not k.startswith(("t_", "x", "target", "n_"))}


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_matches_torch(xp, device, asarray, seed):
    """cross_entropy == F.cross_entropy: weights, ignore_index, smoothing, prob targets."""
    rng = rng_for(seed, "cross_entropy/torch")
    case = draw_softmax_case(rng, device, asarray)
    dtype, num_classes = case["dtype"], case["num_classes"]
    weight = None if rng.random() < 0.5 else draw_class_vector(rng, num_classes, 0.1, 3.0)
    weight_as = "list" if weight is not None and rng.random() < 0.3 else "array"
    from_logits = rng.random() >= 0.2
    case.update(weight=None if weight is None else weight_as, from_logits=from_logits)
    t_input, x = case["t_x"], case["x"]
    if not from_logits:
        # probabilities in; PyTorch gets their log (log_softmax of log p is log p)
        class_dim = 0 if t_input.ndim == 1 else 1
        probs = torch.softmax(t_input, dim=class_dim)
        x = torch.movedim(probs, class_dim, case["axis"] % probs.ndim).contiguous()
        # docs/contract.md clamps log-probabilities at -100 (as F.binary_cross_entropy does)
        t_input = torch.clamp(torch.log(probs), min=-100.0)
    w_ours = None
    t_weight = None
    if weight is not None:
        t_weight = tensor(weight, dtype, device)
        w_ours = [float(v) for v in weight] if weight_as == "list" else asarray(weight, dtype)
    expected = F.cross_entropy(
        t_input,
        case["t_target"],
        weight=t_weight,
        ignore_index=-100 if case["ignore_index"] is None else case["ignore_index"],
        reduction=case["reduction"],
        label_smoothing=case["label_smoothing"],
    )
    got = al.cross_entropy(
        x,
        case["target"],
        axis=case["axis"],
        weight=w_ours,
        ignore_index=case["ignore_index"],
        label_smoothing=case["label_smoothing"],
        from_logits=from_logits,
        reduction=case["reduction"],
    )
    config = {"seed": seed, **describe(case)}
    assert_result_dtype(got, x, f"cross_entropy {config}")
    rtol, atol = tolerances(dtype, case["x_np"], case["reduction"])
    if weight is not None:
        atol *= 3.0  # the largest weight
    assert_matches_peer(
        got,
        expected,
        peer="torch.nn.functional.cross_entropy",
        function="cross_entropy",
        dtype=dtype,
        config=config,
        rtol=rtol,
        atol=atol,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_focal_gamma0_matches_torch_cross_entropy(xp, device, asarray, seed):
    """softmax_focal_loss(gamma=0) == F.cross_entropy; per-class alpha == F's weight.

    A float alpha scales the loss; a per-class alpha is ``weight`` elementwise but,
    unlike ``weight``, never changes the ``"mean"`` denominator (docs/contract.md), so with
    integer targets the peer's mean is its weighted sum over the non-ignored count.
    """
    rng = rng_for(seed, "softmax_focal_loss/torch")
    case = draw_softmax_case(rng, device, asarray)
    dtype, num_classes, reduction = case["dtype"], case["num_classes"], case["reduction"]
    u = rng.random()
    alpha_kind = "none" if u < 0.4 else ("float" if u < 0.7 else "per-class")
    gamma_kind = str(rng.choice(["int 0", "float 0.0", "zero array"]))
    case.update(alpha=alpha_kind, gamma=gamma_kind)
    x = case["x"]
    if gamma_kind == "int 0":
        gamma: Any = 0
    elif gamma_kind == "float 0.0":
        gamma = 0.0
    else:
        gamma = asarray(np.zeros(broadcastable_shape(rng, tuple(x.shape))), dtype)
    ignore = case["ignore_index"]
    common = {
        "ignore_index": -100 if ignore is None else ignore,
        "label_smoothing": case["label_smoothing"],
    }
    t_x, t_target = case["t_x"], case["t_target"]
    if alpha_kind == "none":
        alpha: Any = None
        expected = F.cross_entropy(t_x, t_target, reduction=reduction, **common)
    elif alpha_kind == "float":
        alpha = float(rng.uniform(0.0, 1.0))
        case["alpha"] = alpha
        expected = alpha * F.cross_entropy(t_x, t_target, reduction=reduction, **common)
    else:
        vec = draw_class_vector(rng, num_classes, 0.0, 1.0)
        alpha = asarray(vec, dtype) if rng.random() < 0.7 else [float(v) for v in vec]
        t_w = tensor(vec, dtype, device)
        if reduction == "mean" and case["kind"] == "index":
            total = F.cross_entropy(t_x, t_target, weight=t_w, reduction="sum", **common)
            expected = total / case["n_kept"] if case["n_kept"] else total * float("nan")
        else:
            expected = F.cross_entropy(t_x, t_target, weight=t_w, reduction=reduction, **common)
    got = al.softmax_focal_loss(
        x,
        case["target"],
        alpha=alpha,
        gamma=gamma,
        axis=case["axis"],
        ignore_index=ignore,
        label_smoothing=case["label_smoothing"],
        reduction=reduction,
    )
    config = {"seed": seed, **describe(case)}
    assert_result_dtype(got, x, f"softmax_focal_loss {config}")
    rtol, atol = tolerances(dtype, case["x_np"], reduction)
    assert_matches_peer(
        got,
        expected,
        peer="torch.nn.functional.cross_entropy (gamma=0)",
        function="softmax_focal_loss",
        dtype=dtype,
        config=config,
        rtol=rtol,
        atol=atol,
    )


# ---------------------------------------------------------------- binary losses


def draw_binary_case(rng: np.random.Generator, *, probabilities: bool) -> dict[str, Any]:
    """Shape, logits (or probabilities), targets and smoothing for a binary loss."""
    dtype = draw_dtype(rng)
    ndim = int(rng.choice([0, 1, 1, 2, 2, 3, 4]))
    shape = tuple(0 if rng.random() < 0.02 else int(rng.integers(1, 6)) for _ in range(ndim))
    scale = float(rng.choice([0.1, 1.0, 5.0, 30.0, 100.0]))
    x = rng.normal(size=shape) * scale
    target_shape = shape if rng.random() < 0.8 else broadcastable_shape(rng, shape)
    target_kind = str(rng.choice(["soft", "hard float", "bool", "int64", "int32"]))
    if target_kind == "soft":
        y = rng.uniform(0.0, 1.0, size=target_shape)
    else:
        y = (rng.random(target_shape) < 0.5).astype(np.float64)
    case: dict[str, Any] = {
        "dtype": dtype,
        "shape": shape,
        "target_shape": target_shape,
        "target_kind": target_kind,
        "scale": scale,
        "label_smoothing": draw_epsilon(rng),
        "smoothing": "uniform" if rng.random() < 0.6 else "others",
        "reduction": draw_reduction(rng),
    }
    if probabilities:
        p = np.asarray(0.5 + 0.5 * np.tanh(0.5 * x))  # sigmoid without overflow
        if rng.random() < 0.3:  # exact 0 and 1: PyTorch clamps the log at -100
            p[rng.random(shape) < 0.15] = 0.0
            p[rng.random(shape) < 0.15] = 1.0
        x = p
    case["x_np"], case["y_np"] = x, y
    return case


def smoothed(y: np.ndarray, eps: float, smoothing: str) -> np.ndarray:
    """The binary smoothing of docs/contract.md (K = 2), applied to the peer's targets."""
    if smoothing == "uniform":
        return y * (1.0 - eps) + eps / 2.0
    return y * (1.0 - eps) + (1.0 - y) * eps


def our_targets(case: dict[str, Any], asarray: Any) -> Any:
    kind, y = case["target_kind"], case["y_np"]
    if kind in ("soft", "hard float"):
        return asarray(y, case["dtype"])
    return asarray(y.astype(bool) if kind == "bool" else y.astype(np.int64), kind)


def draw_broadcast_param(
    rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float, p_none: float
) -> tuple[str, np.ndarray | float | None]:
    u = rng.random()
    if u < p_none:
        return "none", None
    if u < p_none + 0.15:
        return "float", float(rng.uniform(low, high))
    return "array", rng.uniform(low, high, size=broadcastable_shape(rng, shape))


def as_ours(kind: str, value: Any, dtype: str, asarray: Any) -> Any:
    return asarray(value, dtype) if kind == "array" else value


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_cross_entropy_matches_torch_with_logits(xp, device, asarray, seed):
    """binary_cross_entropy == F.binary_cross_entropy_with_logits (weight, pos_weight,
    soft / bool / integer targets, broadcast targets); smoothing feeds the peer the
    targets smoothed by the formula of docs/contract.md."""
    rng = rng_for(seed, "binary_cross_entropy/torch-logits")
    case = draw_binary_case(rng, probabilities=False)
    dtype, shape = case["dtype"], case["shape"]
    w_kind, w = draw_broadcast_param(rng, shape, 0.0, 2.0, 0.5)
    pw_kind, pw = draw_broadcast_param(rng, shape, 0.1, 5.0, 0.5)
    case.update(weight=w_kind, pos_weight=pw_kind)
    y_peer = np.broadcast_to(
        smoothed(case["y_np"], case["label_smoothing"], case["smoothing"]), shape
    )
    expected = F.binary_cross_entropy_with_logits(
        tensor(case["x_np"], dtype, device),
        tensor(y_peer, dtype, device),
        weight=None if w is None else tensor(w, dtype, device),
        pos_weight=None if pw is None else tensor(pw, dtype, device),
        reduction=case["reduction"],
    )
    x = asarray(case["x_np"], dtype)
    got = al.binary_cross_entropy(
        x,
        our_targets(case, asarray),
        weight=as_ours(w_kind, w, dtype, asarray),
        pos_weight=as_ours(pw_kind, pw, dtype, asarray),
        label_smoothing=case["label_smoothing"],
        smoothing=case["smoothing"],
        reduction=case["reduction"],
    )
    config = {"seed": seed, **describe(case)}
    assert_result_dtype(got, x, f"binary_cross_entropy {config}")
    rtol, atol = tolerances(dtype, case["x_np"], case["reduction"])
    assert_matches_peer(
        got,
        expected,
        peer="torch.nn.functional.binary_cross_entropy_with_logits",
        function="binary_cross_entropy",
        dtype=dtype,
        config=config,
        rtol=rtol,
        atol=atol * 10.0,  # weight * pos_weight up to 2 * 5
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_cross_entropy_matches_torch_on_probabilities(xp, device, asarray, seed):
    """binary_cross_entropy(from_logits=False) == F.binary_cross_entropy, including
    probabilities of exactly 0 and 1 (log clamped at -100 in both)."""
    rng = rng_for(seed, "binary_cross_entropy/torch-probs")
    case = draw_binary_case(rng, probabilities=True)
    dtype, shape = case["dtype"], case["shape"]
    w_kind, w = draw_broadcast_param(rng, shape, 0.0, 2.0, 0.5)
    case.update(weight=w_kind)
    y_peer = np.broadcast_to(
        smoothed(case["y_np"], case["label_smoothing"], case["smoothing"]), shape
    )
    t_p = tensor(case["x_np"], dtype, device)
    expected = F.binary_cross_entropy(
        t_p,
        tensor(y_peer, dtype, device),
        weight=None if w is None else tensor(w, dtype, device),
        reduction=case["reduction"],
    )
    # the same rounded probabilities for both
    p = xp.asarray(t_p, copy=True)
    got = al.binary_cross_entropy(
        p,
        our_targets(case, asarray),
        weight=as_ours(w_kind, w, dtype, asarray),
        label_smoothing=case["label_smoothing"],
        smoothing=case["smoothing"],
        from_logits=False,
        reduction=case["reduction"],
    )
    config = {"seed": seed, **describe(case)}
    assert_result_dtype(got, p, f"binary_cross_entropy {config}")
    # log(p) near 0 and 1 is ill-conditioned in the peer's dtype as in ours: scale by
    # the largest |log| (<= 100).
    rtol, atol = tolerances(dtype, np.full(max(len(shape), 1), 100.0), "mean")
    if case["reduction"] == "sum":
        atol *= max(int(np.prod(shape)), 1)
    assert_matches_peer(
        got,
        expected,
        peer="torch.nn.functional.binary_cross_entropy",
        function="binary_cross_entropy",
        dtype=dtype,
        config=config,
        rtol=rtol,
        atol=atol * 2.0,
    )


def torchvision_sigmoid_focal_loss(
    inputs: Any, targets: Any, alpha: float, gamma: Any, reduction: str, from_logits: bool
) -> Any:
    """torchvision.ops.sigmoid_focal_loss, written out from its published source.

    torchvision cannot be installed here, so this is its documented computation
    (torchvision/ops/focal_loss.py), line for line::

        p = torch.sigmoid(inputs)
        ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
        p_t = p * targets + (1 - p) * (1 - targets)
        loss = ce_loss * ((1 - p_t) ** gamma)
        if alpha >= 0:
            alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
            loss = alpha_t * loss
        # then "none" / "mean" / "sum"

    ``alpha = -1`` disables the weighting (arraylosses' ``alpha=None``). With
    ``from_logits=False`` ``inputs`` are probabilities: ``p = inputs`` and the
    cross-entropy is ``F.binary_cross_entropy`` (the same formula, fed p).
    """
    if from_logits:
        p = torch.sigmoid(inputs)
        ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    else:
        p = inputs
        ce_loss = F.binary_cross_entropy(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_focal_loss_matches_torchvision_formula(xp, device, asarray, seed):
    """sigmoid_focal_loss == torchvision's sigmoid_focal_loss formula (see the oracle's
    docstring), for alpha None/float, scalar and per-element gamma, soft and hard
    targets, smoothing (the oracle gets the smoothed targets of docs/contract.md) and probabilities.

    The oracle runs in float64 on the same (rounded) inputs: its ``1 - p_t`` cancels
    catastrophically in float32, which would measure torchvision's rounding, not ours.
    """
    rng = rng_for(seed, "sigmoid_focal_loss/torchvision")
    from_logits = rng.random() >= 0.2
    case = draw_binary_case(rng, probabilities=not from_logits)
    dtype, shape = case["dtype"], case["shape"]
    alpha = None if rng.random() < 0.35 else float(rng.choice([0.25, rng.uniform(0, 1)]))
    u = rng.random()
    if u < 0.75:
        gamma: Any = float(rng.choice([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0]))
        if rng.random() < 0.2:
            gamma = float(rng.uniform(0.0, 4.0))
        gamma_np: Any = gamma
    else:
        gamma_np = rng.choice([0.0, 0.5, 1.0, 2.0], size=broadcastable_shape(rng, shape))
        gamma = asarray(gamma_np, dtype)
    case.update(
        alpha=alpha, gamma=gamma if isinstance(gamma, float) else "array", from_logits=from_logits
    )
    x = asarray(case["x_np"], dtype)
    # the oracle gets exactly the rounded inputs, in float64
    x64 = torch.tensor(np.asarray(case["x_np"], dtype=dtype), dtype=torch.float64)
    y64 = torch.tensor(
        np.broadcast_to(smoothed(case["y_np"], case["label_smoothing"], case["smoothing"]), shape)
        .astype(dtype)
        .astype(np.float64)
    )
    g64 = gamma if isinstance(gamma, float) else torch.tensor(gamma_np, dtype=torch.float64)
    expected = torchvision_sigmoid_focal_loss(
        x64, y64, -1.0 if alpha is None else alpha, g64, case["reduction"], from_logits
    )
    got = al.sigmoid_focal_loss(
        x,
        our_targets(case, asarray),
        alpha=alpha,
        gamma=gamma,
        label_smoothing=case["label_smoothing"],
        smoothing=case["smoothing"],
        from_logits=from_logits,
        reduction=case["reduction"],
    )
    config = {"seed": seed, **describe(case)}
    assert_result_dtype(got, x, f"sigmoid_focal_loss {config}")
    magnitude = case["x_np"] if from_logits else np.full(max(len(shape), 1), 100.0)
    rtol, atol = tolerances(dtype, np.asarray(magnitude), case["reduction"])
    if case["reduction"] == "sum" and not from_logits:
        atol *= max(int(np.prod(shape)), 1)
    assert_matches_peer(
        got,
        expected,
        peer="torchvision sigmoid_focal_loss formula",
        function="sigmoid_focal_loss",
        dtype=dtype,
        config=config,
        rtol=rtol,
        atol=atol * 2.0,
    )
