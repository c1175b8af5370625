"""Device propagation: results live on the inputs' device and nothing moves.

- array-api-strict's ``Device("device1")``: a second device that refuses to mix with the
  default one, so any array the package creates on the wrong device (a per-class
  weight built from a Python list, a constant, a one-hot matrix) raises. Values are
  checked against the float64 reference.
- PyTorch's ``meta`` device: tensors with a shape and dtype but no data. Every
  function must return a meta tensor of the right shape and dtype, and never read a
  value (a read raises on meta), forward and backward.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from array_api_extra.testing import assert_close, assert_equal

import arraylosses as al
from arraylosses.testing import reference as ref

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")
C = 4


def only(backend: str, reason: str) -> Any:
    def decorate(fn: Any) -> Any:
        for b in ALL_BACKENDS:
            if b != backend:
                fn = pytest.mark.skip_xp_backend(b, reason=reason)(fn)
        return fn

    return decorate


only_strict = only("array_api_strict", "array-api-strict Device('device1'): strict session only")
only_torch = only("torch", "torch meta device: torch session only")

rng = np.random.default_rng(zlib.crc32(b"devices"))
LOGITS = 2.0 * rng.normal(size=(3, C, 5))  # (N, C, d) with the class axis at 1
LABELS = rng.integers(0, C, size=(3, 5))
LABELS_IGNORED = np.where(rng.uniform(size=(3, 5)) < 0.3, -100, LABELS)
SOFT = np.moveaxis(rng.dirichlet(np.ones(C), size=(3, 5)), -1, 1)
BINARY = (rng.uniform(size=(3, C, 5)) < 0.5).astype(np.float64)
WEIGHT = [0.5, 1.0, 2.0, 1.5]  # a Python sequence: the package must build it on device
ALPHA = [0.1, 0.4, 0.7, 1.0]
ROW = rng.uniform(0.5, 2.0, size=(1, 1, 5))

# name -> (function, targets, options); "ROW" options become arrays on the device
CALLS: dict[str, tuple[str, np.ndarray, dict[str, Any]]] = {
    "bce": ("binary_cross_entropy", BINARY, {"weight": "ROW", "pos_weight": "ROW"}),
    "bce_smooth_probs": (
        "binary_cross_entropy",
        BINARY,
        {"label_smoothing": 0.1, "smoothing": "others", "from_logits": False},
    ),
    "sigmoid_focal": ("sigmoid_focal_loss", BINARY, {"gamma": 0.5, "label_smoothing": 0.2}),
    "sigmoid_focal_gamma_array": ("sigmoid_focal_loss", BINARY, {"gamma": "ROW", "alpha": None}),
    "ce_int": (
        "cross_entropy",
        LABELS_IGNORED,
        {"axis": 1, "weight": WEIGHT, "ignore_index": -100, "label_smoothing": 0.1},
    ),
    "ce_soft": ("cross_entropy", SOFT, {"axis": 1, "weight": WEIGHT, "smoothing": "others"}),
    "ce_probs": ("cross_entropy", LABELS, {"axis": 1, "from_logits": False}),
    "softmax_focal_int": (
        "softmax_focal_loss",
        LABELS_IGNORED,
        {"axis": 1, "alpha": ALPHA, "ignore_index": -100, "label_smoothing": 0.1},
    ),
    "softmax_focal_soft": ("softmax_focal_loss", SOFT, {"axis": 1, "alpha": 0.25, "gamma": 0.5}),
}


def inputs_for(name: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    fname, targets, options = CALLS[name]
    logits = LOGITS
    if options.get("from_logits") is False:
        logits = (
            ref.sigmoid(LOGITS)
            if fname.startswith(("binary", "sigmoid"))
            else ref.softmax(LOGITS, 1)
        )
    options = {k: (ROW if v == "ROW" else v) for k, v in options.items()}
    return logits, targets, options


def out_shape(fname: str) -> tuple[int, ...]:
    return (3, C, 5) if fname in ("binary_cross_entropy", "sigmoid_focal_loss") else (3, 5)


# ------------------------------------------------------------------ array-api-strict


@only_strict
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", list(CALLS))
def test_strict_device1_losses(xp, name, reduction):
    dev = xp.Device("device1")
    fname = CALLS[name][0]
    logits, targets, options = inputs_for(name)

    def on(a: Any) -> Any:
        return xp.asarray(a, device=dev) if isinstance(a, np.ndarray) else a

    got = getattr(al, fname)(
        on(logits), on(targets), reduction=reduction, **{k: on(v) for k, v in options.items()}
    )
    assert got.device == dev
    want = getattr(ref, fname)(logits, targets, reduction=reduction, **options)
    assert_close(got, xp.asarray(want, dtype=xp.float64, device=dev), rtol=1e-12, atol=1e-14)


@only_strict
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_strict_device1_float32_and_float64(xp, dtype):
    dev = xp.Device("device1")
    dt = getattr(xp, dtype)
    x = xp.asarray(LOGITS, dtype=dt, device=dev)
    t = xp.asarray(LABELS_IGNORED, device=dev)
    got = al.softmax_focal_loss(x, t, axis=1, alpha=ALPHA, ignore_index=-100)
    want = ref.softmax_focal_loss(
        np.asarray(LOGITS, dtype=dtype), LABELS_IGNORED, axis=1, alpha=ALPHA, ignore_index=-100
    )
    assert_close(
        got, xp.asarray(want, dtype=dt, device=dev), rtol=1e-5 if dtype == "float32" else 1e-12
    )


@only_strict
def test_strict_device1_one_hot_and_smooth_labels(xp):
    dev = xp.Device("device1")
    labels = xp.asarray(LABELS, device=dev)
    got = al.one_hot(labels, C, axis=1)
    assert got.device == dev
    assert_equal(got, xp.asarray(ref.one_hot(LABELS, C, axis=1), dtype=xp.float64, device=dev))
    got = al.smooth_labels(labels, 0.2, num_classes=C, axis=1, smoothing="others")
    assert got.device == dev
    want = ref.smooth_labels(LABELS, 0.2, num_classes=C, axis=1, smoothing="others")
    assert_close(got, xp.asarray(want, device=dev), rtol=1e-12)
    soft = xp.asarray(SOFT, dtype=xp.float32, device=dev)
    got = al.smooth_labels(soft, 0.3, axis=1)
    want = ref.smooth_labels(np.asarray(SOFT, dtype=np.float32), 0.3, axis=1)
    assert_close(got, xp.asarray(want, dtype=xp.float32, device=dev), rtol=1e-6)


# ---------------------------------------------------------------------- torch meta


def meta(a: Any) -> Any:
    import torch

    if not isinstance(a, np.ndarray):
        return a
    dtype = torch.float64 if a.dtype.kind == "f" else torch.int64
    # torch.empty on meta: a shape and dtype, no values at all
    return torch.empty(a.shape, dtype=dtype, device="meta")


@only_torch
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", list(CALLS))
def test_torch_meta_losses(xp, name, reduction):
    import torch

    fname = CALLS[name][0]
    logits, targets, options = inputs_for(name)
    x = meta(logits).requires_grad_(True)
    got = getattr(al, fname)(
        x, meta(targets), reduction=reduction, **{k: meta(v) for k, v in options.items()}
    )
    assert got.device.type == "meta"
    assert got.dtype == torch.float64
    assert tuple(got.shape) == (out_shape(fname) if reduction == "none" else ())
    # backward stays on meta too
    (grad,) = torch.autograd.grad(got.sum(), x)
    assert grad.device.type == "meta"
    assert grad.shape == x.shape
    assert grad.dtype == x.dtype


@only_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_torch_meta_dtypes(xp, dtype):
    import torch

    dt = getattr(torch, dtype)
    x = torch.empty(6, C, dtype=dt, device="meta")
    t = torch.empty(6, dtype=torch.int64, device="meta")
    y = torch.empty(6, C, dtype=dt, device="meta")
    for got, shape in (
        (al.cross_entropy(x, t, weight=WEIGHT, label_smoothing=0.1), ()),
        (al.softmax_focal_loss(x, t, alpha=ALPHA, reduction="none"), (6,)),
        (al.binary_cross_entropy(x, y, reduction="none"), (6, C)),
        (al.sigmoid_focal_loss(x, y, gamma=0.5), ()),
        (al.smooth_labels(y, 0.1), (6, C)),
    ):
        assert got.device.type == "meta"
        assert got.dtype == dt
        assert tuple(got.shape) == shape


@only_torch
def test_torch_meta_one_hot_and_smooth_labels(xp):
    import torch

    t = torch.empty(3, 5, dtype=torch.int64, device="meta")
    got = al.one_hot(t, C, axis=1)
    assert got.device.type == "meta"
    assert tuple(got.shape) == (3, C, 5)
    assert got.dtype == torch.get_default_dtype()
    got = al.smooth_labels(t, 0.1, num_classes=C, dtype=torch.float64)
    assert got.device.type == "meta"
    assert tuple(got.shape) == (3, 5, C)
    assert got.dtype == torch.float64
