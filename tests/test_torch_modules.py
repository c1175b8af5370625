"""``arraylosses.torch``: each module equals its function; buffers follow the module
(``.to``, ``.half()``, ``state_dict``); ``extra_repr``; ``torch.compile``; bad options
at construction."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import arraylosses as al  # noqa: E402
from arraylosses import torch as modules  # noqa: E402
from arraylosses.testing import reference as ref  # noqa: E402

K = 5
W = [1.0, 2.0, 0.5, 1.5, 3.0]

CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("BCEWithLogitsLoss", "binary_cross_entropy", "binary", {}),
    ("BCEWithLogitsLoss", "binary_cross_entropy", "binary",
     {"pos_weight": [2.0] * K, "label_smoothing": 0.1, "poly_epsilon": 1.0}),
    ("SigmoidFocalLoss", "sigmoid_focal_loss", "binary", {}),
    ("SigmoidFocalLoss", "sigmoid_focal_loss", "binary",
     {"alpha": None, "gamma": 0.5, "weight": W, "reduction": "sum"}),
    ("SigmoidFocalLoss", "sigmoid_focal_loss", "binary", {"gamma": al.flsd53_gamma}),
    ("AsymmetricLoss", "asymmetric_loss", "binary", {"gamma_neg": 2.0, "clip": 0.1}),
    ("CrossEntropyLoss", "cross_entropy", "labels", {"weight": W, "ignore_index": 2}),
    ("CrossEntropyLoss", "cross_entropy", "labels",
     {"label_smoothing": 0.2, "smoothing": [0.375, 0.25, 0.125, 0.125, 0.125]}),
    ("SoftmaxFocalLoss", "softmax_focal_loss", "labels", {"alpha": W, "gamma": 1.0}),
    ("SoftmaxFocalLoss", "softmax_focal_loss", "soft", {"reduction": "none"}),
]  # fmt: skip


def _data(kind: str) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = torch.asarray(rng.normal(0, 3, (12, K)))
    if kind == "binary":
        return x, torch.asarray((rng.random((12, K)) < 0.3).astype(np.float64))
    if kind == "labels":
        return x, torch.asarray(rng.integers(0, K, 12))
    soft = rng.random((12, K))
    return x, torch.asarray(soft / soft.sum(1, keepdims=True))


def _functional(options: dict[str, Any]) -> dict[str, Any]:
    return {k: (torch.asarray(v) if isinstance(v, list) else v) for k, v in options.items()}


@pytest.mark.parametrize(("cls", "fn", "kind", "options"), CASES)
def test_module_equals_its_function_and_the_reference(
    cls: str, fn: str, kind: str, options: dict[str, Any]
) -> None:
    x, t = _data(kind)
    got = getattr(modules, cls)(**options)(x, t)
    torch.testing.assert_close(got, getattr(al, fn)(x, t, **_functional(options)))
    theirs = {k: (ref.flsd53_gamma if v is al.flsd53_gamma else v) for k, v in options.items()}
    np.testing.assert_allclose(got.numpy(), getattr(ref, fn)(x.numpy(), t.numpy(), **theirs),
                               rtol=1e-12, atol=1e-14)  # fmt: skip


@pytest.mark.parametrize(("cls", "fn", "kind", "options"), CASES)
def test_buffers_follow_the_module(cls: str, fn: str, kind: str, options: dict[str, Any]) -> None:
    module = getattr(modules, cls)(**options)
    arrays = [k for k, v in options.items() if isinstance(v, list)]
    assert sorted(name for name, _ in module.named_buffers()) == sorted(arrays)
    state = module.state_dict()
    fresh = getattr(modules, cls)(**options)
    for name in arrays:
        getattr(fresh, name).zero_()
    fresh.load_state_dict(state)
    x, t = _data(kind)
    torch.testing.assert_close(fresh(x, t), module(x, t))
    half = getattr(modules, cls)(**options).to(torch.float32)
    for name in arrays:
        assert getattr(half, name).dtype == torch.float32
    got = half(x.float(), t.float() if t.is_floating_point() else t)
    torch.testing.assert_close(got, module(x, t).float(), rtol=1e-5, atol=1e-6)
    assert half.half() is half  # (.half() converts the buffers too)
    for name in arrays:
        assert getattr(half, name).dtype == torch.float16
    meta = getattr(modules, cls)(**options).to("meta")
    for name in arrays:
        assert getattr(meta, name).device.type == "meta"


def test_forward_takes_the_per_batch_mask_and_normalizer() -> None:
    x, t = _data("binary")
    mask = torch.arange(12 * K).reshape(12, K) % 3 != 0
    criterion = modules.SigmoidFocalLoss()
    torch.testing.assert_close(
        criterion(x, t, where=mask, normalizer=4.0),
        al.sigmoid_focal_loss(x, t, where=mask, normalizer=4.0),
    )


def test_extra_repr_shows_the_options() -> None:
    text = repr(modules.SoftmaxFocalLoss(alpha=W, gamma=al.flsd53_gamma, label_smoothing=0.1))
    assert text == (
        "SoftmaxFocalLoss(gamma=flsd53_gamma, label_smoothing=0.1, alpha=<buffer (5,)>)"
    )
    assert repr(modules.CrossEntropyLoss()) == "CrossEntropyLoss()"


@pytest.mark.filterwarnings(
    "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
)
@pytest.mark.parametrize(("cls", "fn", "kind", "options"), CASES[::2])
def test_modules_compile_without_graph_breaks(
    cls: str, fn: str, kind: str, options: dict[str, Any]
) -> None:
    torch._dynamo.reset()
    module = getattr(modules, cls)(**options)
    x, t = _data(kind)
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, t), module(x, t))


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: modules.SigmoidFocalLoss(alpha=1.5), ValueError, r"`alpha` must be in \[0, 1\]"),
        (lambda: modules.SigmoidFocalLoss(gamma=-1.0), ValueError, "`gamma` must be a finite"),
        (lambda: modules.SigmoidFocalLoss(alpha=[0.25]), TypeError, "`alpha` must be a Python"),
        (lambda: modules.SoftmaxFocalLoss(alpha=1.5), ValueError, r"`alpha` must be in \[0, 1\]"),
        (lambda: modules.SoftmaxFocalLoss(alpha=True), TypeError, "`alpha` must be a Python"),
        (lambda: modules.SoftmaxFocalLoss(smoothing="left"), ValueError, "`smoothing`"),
        (lambda: modules.CrossEntropyLoss(reduction="avg"), ValueError, "`reduction` must be one"),
        (lambda: modules.CrossEntropyLoss(weight="w"), TypeError, "`weight`"),
        (lambda: modules.AsymmetricLoss(clip=1.0), ValueError, r"`clip` must be in \[0, 1\)"),
        (
            lambda: modules.BCEWithLogitsLoss(poly_epsilon=float("nan")),
            ValueError,
            "`poly_epsilon`",
        ),
    ],
)
def test_bad_options_fail_at_construction(make: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make()


def test_per_class_alpha_is_checked_when_called() -> None:
    """A per-class alpha is an array option of the softmax focal loss: construction
    takes it, and the call checks its values as the function does."""
    module = modules.SoftmaxFocalLoss(alpha=[0.5, 2.0, -1.0])
    assert module.alpha.shape == (3,)
    with pytest.raises(ValueError, match="`alpha`"):
        module(torch.zeros(4, 3), torch.tensor([0, 1, 2, 0]))


def test_only_this_module_imports_torch() -> None:
    code = "import sys, arraylosses; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    code = "import sys, arraylosses.torch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
