"""``arraylosses.keras``: Keras 3 losses, on whichever backend ``KERAS_BACKEND`` names.

``nox -s keras`` runs this file once per Keras backend (JAX, PyTorch, NumPy); the
jax session runs it on JAX too. Values are checked against Keras's own losses where
they coincide, and against the float64 references of ``arraylosses.testing``
through ``compile`` / ``fit`` / ``evaluate`` / save and reload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="keras is installed in the keras and jax sessions")

import arraylosses as al  # noqa: E402
from arraylosses.testing import reference as ref  # noqa: E402

alk = pytest.importorskip("arraylosses.keras")

# Keras 3.15 itself calls NumPy's ``asarray(copy=False)`` on objects whose
# ``__array__`` has no ``copy`` keyword (its Variable in ``model.save``, torch tensors in
# ``convert_to_numpy``): NumPy 2 warns inside Keras, not here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

BACKEND = keras.backend.backend()
TRAINS = BACKEND in ("jax", "torch")  # Keras's NumPy backend has no fit
REDUCTIONS = ["sum_over_batch_size", "sum", None]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _f32(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _value(a: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(a), dtype=np.float64)


# ------------------------------------------------------------ against Keras's own


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("balanced", [False, True])
def test_sigmoid_focal_loss_equals_keras_binary_focal(
    reduction: Any, smoothing: float, balanced: bool
) -> None:
    rng = _rng(1)
    logits, y = _f32(rng.normal(0, 3, (16, 5))), _f32(rng.random((16, 5)) < 0.3)
    weights = _f32(rng.random(16))
    theirs = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=balanced, alpha=0.3, gamma=1.5, from_logits=True,
        label_smoothing=smoothing, reduction=reduction,
    )  # fmt: skip
    ours = alk.SigmoidFocalLoss(
        alpha=0.3 if balanced else None, gamma=1.5, label_smoothing=smoothing, reduction=reduction
    )
    np.testing.assert_allclose(
        _value(ours(y, logits, sample_weight=weights)),
        _value(theirs(y, logits, sample_weight=weights)),
        rtol=2e-5, atol=1e-7,
    )  # fmt: skip


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_binary_cross_entropy_equals_keras(reduction: Any, smoothing: float) -> None:
    rng = _rng(2)
    logits, y = _f32(rng.normal(0, 3, (12, 1))), _f32(rng.random(12) < 0.5)  # [batch] targets
    theirs = keras.losses.BinaryCrossentropy(
        from_logits=True, label_smoothing=smoothing, reduction=reduction
    )
    ours = alk.BinaryCrossEntropy(label_smoothing=smoothing, reduction=reduction)
    np.testing.assert_allclose(
        _value(ours(y, logits)), _value(theirs(y[:, None], logits)), rtol=2e-5, atol=1e-7
    )


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_equals_keras_categorical_and_sparse(
    reduction: Any, smoothing: float
) -> None:
    rng = _rng(3)
    logits = _f32(rng.normal(0, 2, (10, 4)))
    labels = rng.integers(0, 4, 10)
    onehot = _f32(np.eye(4)[labels])
    soft = _f32(rng.dirichlet(np.ones(4), 10))
    weights = _f32(rng.random(10))
    ours = alk.CrossEntropy(label_smoothing=smoothing, reduction=reduction)
    categorical = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=smoothing, reduction=reduction
    )
    for target in (onehot, soft):
        np.testing.assert_allclose(
            _value(ours(target, logits, sample_weight=weights)),
            _value(categorical(target, logits, sample_weight=weights)),
            rtol=2e-5, atol=1e-6,
        )  # fmt: skip
    if smoothing == 0.0:  # Keras's sparse loss has no smoothing
        sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)
        for target in (_f32(labels), _f32(labels[:, None])):
            np.testing.assert_allclose(
                _value(ours(target, logits, sample_weight=weights)),
                _value(sparse(labels, logits, sample_weight=weights)),
                rtol=2e-5, atol=1e-6,
            )  # fmt: skip


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_focal_loss_equals_keras_categorical_focal(smoothing: float) -> None:
    rng = _rng(4)
    logits = _f32(rng.normal(0, 2, (10, 4)))
    labels = rng.integers(0, 4, 10)
    onehot = _f32(np.eye(4)[labels])
    theirs = keras.losses.CategoricalFocalCrossentropy(
        alpha=0.4, gamma=2.5, from_logits=True, label_smoothing=smoothing
    )
    ours = alk.SoftmaxFocalLoss(alpha=0.4, gamma=2.5, label_smoothing=smoothing)
    want = _value(theirs(onehot, logits))
    np.testing.assert_allclose(_value(ours(onehot, logits)), want, rtol=2e-5)
    if smoothing == 0.0:
        np.testing.assert_allclose(_value(ours(_f32(labels), logits)), want, rtol=2e-5)


# ------------------------------------------------------------- in a model


def _binary_model(seed: int = 0) -> Any:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.layers.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )


LOSSES = [
    ("sigmoid_focal_loss", lambda: alk.SigmoidFocalLoss(alpha=0.25, gamma=2.0, pos_weight=[3.0])),
    ("asymmetric_loss", lambda: alk.AsymmetricLoss(gamma_neg=2.0, clip=0.05)),
    ("binary_cross_entropy", lambda: alk.BinaryCrossEntropy(label_smoothing=0.1, poly_epsilon=1.0)),
    ("softmax_focal_loss", lambda: alk.SoftmaxFocalLoss(alpha=[1.0, 2.0, 0.5],
                                                        gamma=al.flsd53_gamma)),
    ("cross_entropy", lambda: alk.CrossEntropy(weight=[1.0, 3.0, 1.0], smoothing=[0.5, 0.25, 0.25],
                                               label_smoothing=0.1)),
]  # fmt: skip


def _data(name: str) -> tuple[np.ndarray, np.ndarray, Any]:
    rng = _rng(5)
    x = _f32(rng.normal(size=(96, 6)))
    if name in ("softmax_focal_loss", "cross_entropy"):
        y = _f32(np.argmax(x[:, :3] + rng.normal(0, 0.5, (96, 3)), axis=1))
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.layers.Input((6,)), keras.layers.Dense(3)])
    else:
        y = _f32((x[:, :1] + rng.normal(0, 0.5, (96, 1))) > 1.0)
        model = _binary_model()
    return x, y, model


def _reference(name: str, loss: Any, outputs: np.ndarray, y: np.ndarray) -> float:
    """The float64 reference mean of the compiled loss (Keras averages per sample)."""
    options = {k: v for k, v in loss.options.items() if k not in ("from_logits",)}
    out = outputs.astype(np.float64)
    if name in ("softmax_focal_loss", "cross_entropy"):
        labels = y.astype(np.int64)
        if name == "cross_entropy":
            per = ref.cross_entropy(out, labels, weight=np.asarray(options["weight"]),
                                    label_smoothing=0.1, smoothing=np.asarray(options["smoothing"]),
                                    reduction="none")  # fmt: skip
        else:
            per = ref.softmax_focal_loss(out, labels, alpha=np.asarray(options["alpha"]),
                                         gamma=ref.flsd53_gamma, reduction="none")  # fmt: skip
        return float(np.mean(per))
    y64 = y.astype(np.float64)
    if name == "sigmoid_focal_loss":
        per = ref.sigmoid_focal_loss(
            out, y64, alpha=0.25, gamma=2.0, pos_weight=np.asarray([3.0]), reduction="none"
        )
    elif name == "asymmetric_loss":
        per = ref.asymmetric_loss(
            out, y64, gamma_pos=0.0, gamma_neg=2.0, clip=0.05, reduction="none"
        )
    else:
        per = ref.binary_cross_entropy(
            out, y64, label_smoothing=0.1, poly_epsilon=1.0, reduction="none"
        )
    return float(np.mean(per))


@pytest.mark.parametrize(("name", "make"), LOSSES, ids=[n for n, _ in LOSSES])
def test_compile_fit_evaluate_save_and_reload(name: str, make: Any, tmp_path: Path) -> None:
    x, y, model = _data(name)
    model.compile(loss=make(), optimizer=keras.optimizers.Adam(0.05))
    if not TRAINS:  # (an optimizer that never stepped has no variables to save)
        model.optimizer.build(model.trainable_variables)
    if TRAINS:
        history = model.fit(x, y, epochs=8, batch_size=32, verbose=0).history["loss"]
        assert history[-1] < history[0]
    evaluated = model.evaluate(x, y, verbose=0, batch_size=96)
    outputs = np.asarray(model.predict(x, verbose=0))
    assert evaluated == pytest.approx(_reference(name, model.loss, outputs, y), rel=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)  # registered: no custom_objects needed
    assert type(reloaded.loss) is type(model.loss)
    assert reloaded.loss.get_config() == model.loss.get_config()
    assert reloaded.evaluate(x, y, verbose=0, batch_size=96) == pytest.approx(evaluated, rel=1e-6)


def test_keras_masks_leave_timesteps_out() -> None:
    rng = _rng(6)
    x = _f32(rng.normal(size=(4, 7, 3)))
    x[:, 5:] = 0.0  # padded timesteps, masked by Masking
    y = _f32(rng.random((4, 7, 1)) < 0.4)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.layers.Input((7, 3)), keras.layers.Masking(0.0), keras.layers.Dense(1)]
    )
    model.compile(loss=alk.SigmoidFocalLoss(gamma=2.0))
    outputs = np.asarray(model.predict(x, verbose=0)).astype(np.float64)
    per = ref.sigmoid_focal_loss(
        outputs, y.astype(np.float64), alpha=0.25, gamma=2.0, reduction="none"
    )
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(per[:, :5].mean()), rel=1e-5)


# ------------------------------------------------------------------ bad input


def test_wrong_target_shapes_are_refused_by_name() -> None:
    logits = _f32(np.zeros((4, 3)))
    with pytest.raises(
        ValueError, match=r"`y_true` must have the shape of `y_pred` \(4, 3\).*\(4, 2\)"
    ):
        alk.SigmoidFocalLoss()(_f32(np.zeros((4, 2))), logits)
    with pytest.raises(
        ValueError, match=r"`y_true` must be class indices of shape \(4,\).*\(4, 2\)"
    ):
        alk.CrossEntropy()(_f32(np.zeros((4, 2))), logits)


def test_options_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="`alpha`"):
        alk.SigmoidFocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match="`gamma`"):
        alk.SoftmaxFocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="`clip`"):
        alk.AsymmetricLoss(clip=1.0)
    with pytest.raises(TypeError, match="`alpha` must be a Python"):
        alk.SigmoidFocalLoss(alpha=[0.25])
    with pytest.raises(ValueError, match="`poly_epsilon`"):
        alk.CrossEntropy(poly_epsilon=float("inf"))
    with pytest.raises(TypeError, match="cannot be saved in a Keras config"):
        alk.SigmoidFocalLoss(gamma=lambda p: 2.0 + 0.0 * p).get_config()


def test_tensorflow_backend_is_refused_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    with pytest.raises(
        RuntimeError, match=r"Keras backends jax, torch, numpy; this Keras uses 'tensorflow'"
    ):
        alk.SoftmaxFocalLoss()
