"""``smoothing="others"`` against fairseq's label-smoothed NLL loss, on every backend.

fairseq is a training framework, not something to install for a test, so its published
formula is the oracle, written out below from
``fairseq/criterions/label_smoothed_cross_entropy.py`` (fairseq >= 0.10) and evaluated
in float64 NumPy on the same (rounded) inputs. Its target distribution is implied by its
two coefficients: ``eps_i = eps / (K - 1)`` on every class (the ``smooth_loss`` term)
plus ``1 - eps - eps_i`` on the true class (the ``nll_loss`` term), i.e. the true class
keeps exactly ``1 - eps`` and every other class gets ``eps / (K - 1)`` -- docs/contract.md's
``"others"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from parity_helpers import (
    SEEDS,
    assert_matches_peer,
    assert_result_dtype,
    draw_dtype,
    draw_epsilon,
    draw_reduction,
    dtype_name,
    rng_for,
    to_numpy,
)

import arraylosses as al

# Shapes come from short lists: JAX compiles every operation once per shape and dtype.
NUM_CLASSES = [2, 5]
BATCHES = [(), (2, 3)]

RTOL = {"float32": 1e-5, "float64": 1e-13}
ATOL_PER_LOGIT = {"float32": 2e-6, "float64": 1e-14}


def fairseq_label_smoothed_nll_loss(
    lprobs: np.ndarray,
    target: np.ndarray,
    epsilon: float,
    ignore_index: int | None = None,
    reduce: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """fairseq's ``label_smoothed_nll_loss``, line for line in NumPy (classes last)::

        if target.dim() == lprobs.dim() - 1:
            target = target.unsqueeze(-1)
        nll_loss = -lprobs.gather(dim=-1, index=target)
        smooth_loss = -lprobs.sum(dim=-1, keepdim=True)
        if ignore_index is not None:
            pad_mask = target.eq(ignore_index)
            nll_loss.masked_fill_(pad_mask, 0.0)
            smooth_loss.masked_fill_(pad_mask, 0.0)
        else:
            nll_loss = nll_loss.squeeze(-1)
            smooth_loss = smooth_loss.squeeze(-1)
        if reduce:
            nll_loss = nll_loss.sum()
            smooth_loss = smooth_loss.sum()
        eps_i = epsilon / (lprobs.size(-1) - 1)
        loss = (1.0 - epsilon - eps_i) * nll_loss + eps_i * smooth_loss
        return loss, nll_loss

    (fairseq's padding index is a real vocabulary entry; here an ignored label may lie
    outside ``[0, K)``, so it is gathered as class 0 -- its value is masked anyway.)
    """
    target = target[..., None]
    pad_mask = target == ignore_index if ignore_index is not None else None
    gather_at = np.where(pad_mask, 0, target) if pad_mask is not None else target
    nll_loss = -np.take_along_axis(lprobs, gather_at, axis=-1)
    smooth_loss = -lprobs.sum(axis=-1, keepdims=True)
    if pad_mask is not None:
        nll_loss = np.where(pad_mask, 0.0, nll_loss)
        smooth_loss = np.where(pad_mask, 0.0, smooth_loss)
    nll_loss = nll_loss[..., 0]
    smooth_loss = smooth_loss[..., 0]
    if reduce:
        nll_loss = nll_loss.sum()
        smooth_loss = smooth_loss.sum()
    eps_i = epsilon / (lprobs.shape[-1] - 1)
    loss = (1.0 - epsilon - eps_i) * nll_loss + eps_i * smooth_loss
    return loss, nll_loss


def fairseq_target_distribution(labels: np.ndarray, num_classes: int, epsilon: float):
    """The distribution fairseq's loss is the cross-entropy against (classes last)."""
    eps_i = epsilon / (num_classes - 1)
    return eps_i + (1.0 - epsilon - eps_i) * np.eye(num_classes)[labels]


def log_softmax64(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def draw_layout(rng: np.random.Generator) -> tuple[int, tuple[int, ...], int, int]:
    """(K, batch shape, class position in arraylosses' layout, ``axis`` argument)."""
    num_classes = int(rng.choice(NUM_CLASSES))
    batch = BATCHES[int(rng.integers(len(BATCHES)))]
    ndim = len(batch) + 1
    pos = int(rng.integers(0, ndim))
    return num_classes, batch, pos, pos if rng.random() < 0.5 else pos - ndim


@pytest.mark.parametrize("seed", SEEDS)
def test_smooth_labels_others_matches_fairseq(xp, asarray, seed):
    """smooth_labels(smoothing="others") == fairseq's implied target distribution, from
    integer labels (default or explicit dtype) and from float one-hot rows."""
    rng = rng_for(seed, "smooth_labels/fairseq")
    num_classes, batch, pos, axis = draw_layout(rng)
    eps = draw_epsilon(rng)
    labels = rng.integers(0, num_classes, size=batch)
    kind = "int" if rng.random() < 0.6 else "one-hot"
    dtype = draw_dtype(rng)
    config = {"seed": seed, "classes": num_classes, "batch": batch, "axis": axis,
              "kind": kind, "epsilon": eps, "dtype": dtype}  # fmt: skip
    if kind == "int":
        target = asarray(labels, str(rng.choice(["int32", "int64"])))
        if rng.random() < 0.5:
            expected_dtype = dtype_name(xp.asarray(0.0))  # the namespace's default float
            got = al.smooth_labels(
                target, eps, num_classes=num_classes, axis=axis, smoothing="others"
            )
        else:
            expected_dtype = dtype
            got = al.smooth_labels(
                target, eps, num_classes=num_classes, axis=axis, smoothing="others",
                dtype=getattr(xp, dtype),
            )  # fmt: skip
    else:
        expected_dtype = dtype
        one_hot = asarray(np.moveaxis(np.eye(num_classes)[labels], -1, pos), dtype)
        got = al.smooth_labels(one_hot, eps, axis=axis, smoothing="others")
    assert dtype_name(got) == expected_dtype, f"{config}: dtype {got.dtype}, not {expected_dtype}"
    expected = np.moveaxis(fairseq_target_distribution(labels, num_classes, eps), -1, pos)
    assert_matches_peer(
        got,
        expected,
        peer="fairseq label_smoothed_nll_loss formula",
        function="smooth_labels",
        dtype=expected_dtype,
        config=config,
        rtol=RTOL[expected_dtype],
        atol=ATOL_PER_LOGIT[expected_dtype],
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_others_matches_fairseq(xp, asarray, seed):
    """cross_entropy(smoothing="others") == fairseq's label_smoothed_nll_loss (``none``:
    reduce=False; ``sum``: reduce=True; ``mean``: reduce=True divided by the number of
    non-padding tokens, fairseq's per-token normalisation), with ``ignore_index`` as
    fairseq's padding index; softmax_focal_loss(gamma=0.0) is checked on the same
    configuration."""
    rng = rng_for(seed, "cross_entropy/fairseq")
    num_classes, batch, pos, axis = draw_layout(rng)
    dtype = draw_dtype(rng)
    scale = float(rng.choice([0.1, 1.0, 5.0, 30.0]))
    x_np = rng.normal(size=(*batch, num_classes)) * scale
    x_np = x_np.astype(dtype).astype(np.float64)  # the oracle sees the rounded logits
    eps, reduction = draw_epsilon(rng), draw_reduction(rng)
    kind = "index" if rng.random() < 0.8 else "one-hot"
    ignore = None
    if kind == "index" and rng.random() < 0.5:
        ignore = int(rng.choice([-100, int(rng.integers(0, num_classes))]))
    labels = rng.integers(0, num_classes, size=batch)
    if ignore is not None and rng.random() < 0.3:
        labels = np.where(rng.random(batch) < 0.4, ignore, labels)
    config = {"seed": seed, "classes": num_classes, "batch": batch, "axis": axis,
              "dtype": dtype, "scale": scale, "targets": kind, "ignore_index": ignore,
              "label_smoothing": eps, "reduction": reduction}  # fmt: skip
    lprobs = log_softmax64(x_np)
    loss, _ = fairseq_label_smoothed_nll_loss(
        lprobs, labels, eps, ignore_index=ignore, reduce=reduction != "none"
    )
    if reduction == "mean":
        n_tokens = int(labels.size if ignore is None else (labels != ignore).sum())
        loss = loss / n_tokens if n_tokens else np.float64("nan")
    x = asarray(np.moveaxis(x_np, -1, pos), dtype)
    if kind == "index":
        target = asarray(labels, "int64")
    else:
        target = asarray(np.moveaxis(np.eye(num_classes)[labels], -1, pos), dtype)
    options: dict[str, Any] = {"axis": axis, "ignore_index": ignore, "label_smoothing": eps,
                               "smoothing": "others", "reduction": reduction}  # fmt: skip
    magnitude = 1.0 + float(np.abs(x_np).max())
    count = max(labels.size, 1) if reduction == "sum" else 1
    tol = {"rtol": RTOL[dtype], "atol": ATOL_PER_LOGIT[dtype] * magnitude * count}
    for name, got in [
        ("cross_entropy", al.cross_entropy(x, target, **options)),
        ("softmax_focal_loss", al.softmax_focal_loss(x, target, gamma=0.0, **options)),
    ]:
        assert_result_dtype(got, x, f"{name} {config}")
        assert to_numpy(got).shape == np.shape(loss), f"{name} {config}: shape"
        assert_matches_peer(
            got,
            loss,
            peer="fairseq label_smoothed_nll_loss formula",
            function=name,
            dtype=dtype,
            config=config,
            **tol,
        )
