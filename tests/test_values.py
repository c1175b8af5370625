"""Values of every public function, every option, against the float64 references.

Each test runs on every backend through the ``xp`` fixture. The six functions are
tagged with ``lazy_xp_function``, so on JAX every call below runs under ``jax.jit``
and on Dask every call runs with computation forbidden (the graph must stay lazy).
``assert_close`` checks namespace, shape, dtype and device before values; the
expected arrays are built on the input's device with the input's dtype.

The reference is computed from the inputs as rounded to the dtype under test, so the
tolerance measures the function's arithmetic, not the rounding of its inputs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from array_api_compat import array_namespace
from array_api_compat import device as get_device
from array_api_extra.testing import assert_close, assert_equal, lazy_xp_function

from arraylosses import (
    binary_cross_entropy,
    cross_entropy,
    one_hot,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_focal_loss,
)
from arraylosses.testing import reference as ref

for _f in (
    binary_cross_entropy,
    cross_entropy,
    one_hot,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_focal_loss,
):
    lazy_xp_function(_f)

REDUCTIONS = ("none", "mean", "sum")
FLOATS = ("float32", "float64")
HALVES = ("float16", "bfloat16")
RTOL = {"float64": 1e-12, "float32": 1e-5, "float16": 1e-2, "bfloat16": 4e-2}
ATOL = {"float64": 1e-13, "float32": 1e-6, "float16": 2e-3, "bfloat16": 2e-2}


# ----------------------------------------------------------------------- helpers


def resolve_dtype(xp: ModuleType, backend: str, name: str) -> Any:
    """The backend's dtype object for ``name``; skip (with the reason) if it has none."""
    dt = getattr(xp, name, None)
    if dt is None and backend == "dask" and name == "float16":
        dt = np.float16  # Dask arrays take NumPy dtypes; compat's namespace omits it
    if dt is None:
        pytest.skip(f"{backend} has no {name} dtype")
    return dt


def round_to(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` rounded to dtype ``name`` and back to float64 (what the backend sees)."""
    np_dtype = ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)
    return np.asarray(a).astype(np_dtype).astype(np.float64)


class Maker:
    """Builds backend arrays from NumPy arrays, and the rounded NumPy twins."""

    def __init__(self, xp: ModuleType, backend: str, device: Any, dtype_name: str) -> None:
        self.xp = xp
        self.backend = backend
        self.device = device
        self.name = dtype_name
        self.dtype = resolve_dtype(xp, backend, dtype_name)

    def array(self, a: Any, dtype: Any = None) -> Any:
        a = np.asarray(a)
        if dtype is None:
            if a.dtype.kind == "f":
                dtype, a = self.dtype, round_to(a, self.name)
            elif a.dtype.kind == "b":
                dtype = self.xp.bool
            else:
                dtype = self.xp.int64
        out = self.xp.asarray(a, dtype=dtype, device=self.device)
        if self.backend == "dask" and a.ndim and a.size:
            # several chunks, so reductions and class-axis ops cross chunk borders
            out = out.rechunk(tuple(max(1, (s + 1) // 2) for s in a.shape))
        return out

    def twin(self, a: Any) -> Any:
        """What the reference sees: float arrays rounded to the tested dtype."""
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return round_to(a, self.name)
        return a

    def convert(self, a: Any) -> Any:
        return self.array(a) if isinstance(a, np.ndarray) else a

    def expected(self, value: np.ndarray, dtype: Any = None) -> Any:
        dtype = self.dtype if dtype is None else dtype
        return self.xp.asarray(np.asarray(value), dtype=dtype, device=self.device)

    def assert_close(self, got: Any, want: np.ndarray, **kwargs: Any) -> None:
        """``assert_close`` against ``want`` in the tested dtype, RTOL by default."""
        kwargs.setdefault("rtol", RTOL[self.name])
        kwargs.setdefault("atol", ATOL[self.name])
        expected = self.expected(want)
        if self.name == "bfloat16":
            # NumPy cannot take a torch bfloat16 tensor (DLPack): check the metadata
            # here, then compare the values exactly widened to float32.
            assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
            assert got.shape == expected.shape, (got.shape, expected.shape)
            assert array_namespace(got) is array_namespace(expected)
            assert get_device(got) == get_device(expected)
            got = self.xp.astype(got, self.xp.float32)
            expected = self.xp.astype(expected, self.xp.float32)
        assert_close(got, expected, **kwargs)


def check_loss(
    fn: Callable[..., Any],
    ref_fn: Callable[..., np.ndarray],
    mk: Maker,
    logits: np.ndarray,
    targets: np.ndarray,
    reductions: tuple[str, ...] = REDUCTIONS,
    **options: Any,
) -> None:
    """Call ``fn`` for each reduction and compare with ``ref_fn`` on the same inputs."""
    x = mk.array(logits)
    t = mk.array(targets)
    opts = {k: mk.convert(v) for k, v in options.items()}
    ref_opts = {k: mk.twin(v) for k, v in options.items()}
    if mk.name == "float32":
        # "sum" differs from "mean" only by the denominator: float64 covers it, and
        # every call here is a fresh jax.jit compilation.
        reductions = tuple(r for r in reductions if r != "sum")
    for reduction in reductions:
        got = fn(x, t, reduction=reduction, **opts)
        want = ref_fn(mk.twin(logits), mk.twin(targets), reduction=reduction, **ref_opts)
        finite = np.abs(want[np.isfinite(want)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        mk.assert_close(got, want, atol=ATOL[mk.name] * scale, err_msg=f"{reduction=}, {options=}")
    # pure: the inputs are untouched
    mk.assert_close(x, mk.twin(logits), rtol=0, atol=0)
    if targets.dtype.kind == "f":
        mk.assert_close(t, mk.twin(targets), rtol=0, atol=0)
    else:
        assert_equal(t, mk.array(targets))


def seeded(name: str) -> np.random.Generator:
    """A fixed generator per case (crc32, since Python's str hash is salted)."""
    return np.random.default_rng(zlib.crc32(name.encode()))


# ------------------------------------------------------------------ binary losses


def binary_inputs(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "soft":
        return rng.uniform(0.0, 1.0, size=shape)
    hard = rng.uniform(size=shape) < 0.4
    if kind == "hard":
        return hard.astype(np.float64)
    if kind == "bool":
        return hard
    if kind == "int":
        return hard.astype(np.int64)
    raise AssertionError(kind)


def probabilities(rng: np.random.Generator, shape: tuple[int, ...], saturate: bool) -> np.ndarray:
    p = 1.0 / (1.0 + np.exp(-3.0 * rng.normal(size=shape)))
    if saturate:
        flat = p.reshape(-1)
        flat[:4] = [0.0, 1.0, 0.0, 1.0]
    return p


# (shape, targets kind, targets shape or None, from_logits, saturate, options)
BCE_CASES: dict[str, dict[str, Any]] = {
    "soft_2d": {},
    "hard_1d": {"shape": (300,), "targets": "hard"},
    "bool_targets": {"targets": "bool"},
    "int_targets": {"targets": "int"},
    "soft_3d": {"shape": (4, 5, 6)},
    "broadcast_targets": {"targets_shape": (1, 7)},
    "weight_row": {"weight": (7,)},
    "weight_full": {"weight": (40, 7)},
    "pos_weight": {"pos_weight": (7,)},
    "weight_and_pos_weight": {"weight": (40, 1), "pos_weight": (7,), "targets": "hard"},
    "smooth_uniform": {"label_smoothing": 0.2, "targets": "hard"},
    "smooth_others": {"label_smoothing": 0.3, "smoothing": "others", "targets": "hard"},
    "smooth_others_soft_pos_weight": {
        "label_smoothing": 0.1,
        "smoothing": "others",
        "pos_weight": (7,),
    },
    "smooth_full": {"label_smoothing": 1.0, "targets": "hard"},
    "probs": {"from_logits": False},
    "probs_saturated": {"from_logits": False, "saturate": True, "targets": "hard"},
    "probs_smooth_weight": {
        "from_logits": False,
        "label_smoothing": 0.2,
        "weight": (7,),
        "pos_weight": (7,),
    },
}


def build_binary_case(name: str, case: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    case = dict(case)
    rng = seeded(name)
    shape = case.pop("shape", (40, 7))
    kind = case.pop("targets", "soft")
    tshape = case.pop("targets_shape", shape)
    from_logits = case.pop("from_logits", True)
    saturate = case.pop("saturate", False)
    if from_logits:
        logits = 3.0 * rng.normal(size=shape)
    else:
        logits = probabilities(rng, shape, saturate)
    targets = binary_inputs(rng, tshape, kind)
    options: dict[str, Any] = {"from_logits": from_logits}
    for key in ("weight", "pos_weight", "alpha_array"):
        if key in case:
            options[key] = rng.uniform(0.2, 3.0, size=case.pop(key))
    options.update(case)
    return logits, targets, options


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(BCE_CASES))
def test_binary_cross_entropy(xp, backend, device, dtype, name):
    logits, targets, options = build_binary_case(name, BCE_CASES[name])
    mk = Maker(xp, backend, device, dtype)
    check_loss(binary_cross_entropy, ref.binary_cross_entropy, mk, logits, targets, **options)


SFL_CASES: dict[str, dict[str, Any]] = {
    "default_soft": {},
    "default_hard_1d": {"shape": (300,), "targets": "hard"},
    "bool_targets": {"targets": "bool"},
    "int_targets_3d": {"targets": "int", "shape": (4, 5, 6)},
    "broadcast_targets": {"targets_shape": (1, 7), "targets": "hard"},
    "alpha_none": {"alpha": None},
    "alpha_0.75": {"alpha": 0.75, "targets": "hard"},
    "alpha_0": {"alpha": 0.0},
    "alpha_1": {"alpha": 1.0, "targets": "hard"},
    "gamma_0": {"gamma": 0.0, "alpha": None},
    "gamma_0.5": {"gamma": 0.5},
    "gamma_1": {"gamma": 1.0, "targets": "hard"},
    "gamma_3.5": {"gamma": 3.5},
    "gamma_per_sample": {"gamma_array": (40, 1)},
    "gamma_per_element": {"gamma_array": (40, 7), "targets": "hard"},
    "gamma_per_class_pos_weight": {"gamma_array": (7,), "pos_weight": (7,)},
    "gamma_per_class": {"gamma_array": (1, 7), "alpha": None},
    "smooth_uniform": {"label_smoothing": 0.2, "targets": "hard"},
    "smooth_others": {"label_smoothing": 0.2, "smoothing": "others", "targets": "hard"},
    "smooth_others_alpha_none": {
        "label_smoothing": 0.4,
        "smoothing": "others",
        "alpha": None,
    },
    "probs": {"from_logits": False},
    "probs_saturated": {"from_logits": False, "saturate": True, "targets": "hard"},
    "probs_smooth_gamma_array": {
        "from_logits": False,
        "label_smoothing": 0.1,
        "gamma_array": (40, 1),
    },
}


def build_focal_case(name: str, case: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    case = dict(case)
    rng = seeded(name)
    gamma_shape = case.pop("gamma_array", None)
    logits, targets, options = build_binary_case(name, case)
    if gamma_shape is not None:
        options["gamma"] = rng.uniform(0.0, 4.0, size=gamma_shape)
    return logits, targets, options


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(SFL_CASES))
def test_sigmoid_focal_loss(xp, backend, device, dtype, name):
    logits, targets, options = build_focal_case(name, SFL_CASES[name])
    mk = Maker(xp, backend, device, dtype)
    check_loss(sigmoid_focal_loss, ref.sigmoid_focal_loss, mk, logits, targets, **options)


# ----------------------------------------------------------------- softmax losses

# shape, axis, targets ("int" | "onehot" | "soft"), ignore (value or None),
# ignore_frac, from_logits, saturate, weight / alpha ("array" | "list" | float)
CE_CASES: dict[str, dict[str, Any]] = {
    "int_2d": {},
    "int_1d_logits": {"shape": (9,), "axis": -1},
    "int_nchw_axis1": {"shape": (3, 5, 4, 6), "axis": 1},
    "int_axis0": {"shape": (6, 30), "axis": 0},
    "int_3d_axis_minus2": {"shape": (5, 6, 8), "axis": -2},
    "onehot": {"targets": "onehot"},
    "soft": {"targets": "soft"},
    "soft_nchw_axis1": {"targets": "soft", "shape": (3, 5, 4, 6), "axis": 1},
    "weight": {"weight": "array"},
    "weight_list": {"weight": "list"},
    "weight_nchw_axis1": {"weight": "array", "shape": (3, 5, 4, 6), "axis": 1},
    "weight_soft": {"weight": "array", "targets": "soft"},
    "ignore_index_-100": {"ignore": -100},
    "ignore_index_class_0": {"ignore": 0},
    "ignore_weight_nchw": {"ignore": 255, "weight": "array", "shape": (3, 5, 4, 6), "axis": 1},
    "smooth_uniform": {"label_smoothing": 0.2},
    "smooth_others": {"label_smoothing": 0.2, "smoothing": "others"},
    "smooth_uniform_weight_ignore": {"label_smoothing": 0.3, "weight": "array", "ignore": -100},
    "smooth_others_weight_ignore_nchw": {
        "label_smoothing": 0.15,
        "smoothing": "others",
        "weight": "array",
        "ignore": -1,
        "shape": (3, 5, 4, 6),
        "axis": 1,
    },
    "smooth_soft_weight": {"label_smoothing": 0.25, "targets": "soft", "weight": "array"},
    "smooth_others_soft": {"label_smoothing": 0.25, "smoothing": "others", "targets": "soft"},
    "smooth_full": {"label_smoothing": 1.0},
    "probs": {"from_logits": False},
    "probs_saturated_soft": {"from_logits": False, "saturate": True, "targets": "soft"},
    "probs_weight_ignore_smooth": {
        "from_logits": False,
        "saturate": True,
        "weight": "array",
        "ignore": -100,
        "label_smoothing": 0.1,
    },
    "all_ignored": {"ignore": -100, "ignore_frac": 1.0},
}

SFOCAL_CASES: dict[str, dict[str, Any]] = {
    "int_2d": {},
    "int_1d_logits": {"shape": (9,)},
    "int_nchw_axis1": {"shape": (3, 5, 4, 6), "axis": 1},
    "int_axis0": {"shape": (6, 30), "axis": 0},
    "onehot": {"targets": "onehot"},
    "soft": {"targets": "soft"},
    "soft_nchw_axis1": {"targets": "soft", "shape": (3, 5, 4, 6), "axis": 1},
    "alpha_float": {"alpha": 0.25},
    "alpha_per_class": {"alpha": "array"},
    "alpha_list": {"alpha": "list"},
    "alpha_per_class_nchw_ignore": {
        "alpha": "array",
        "ignore": 255,
        "shape": (3, 5, 4, 6),
        "axis": 1,
    },
    "gamma_0": {"gamma": 0.0},
    "gamma_0.5": {"gamma": 0.5},
    "gamma_1_alpha": {"gamma": 1.0, "alpha": 0.6},
    "gamma_4": {"gamma": 4.0},
    "gamma_per_sample": {"gamma_array": (40, 1)},
    "gamma_per_sample_nchw": {"gamma_array": (3, 1, 1, 1), "shape": (3, 5, 4, 6), "axis": 1},
    "ignore_index_-100": {"ignore": -100},
    "ignore_index_class_0_alpha": {"ignore": 0, "alpha": "array"},
    "smooth_uniform": {"label_smoothing": 0.2},
    "smooth_others_alpha": {"label_smoothing": 0.2, "smoothing": "others", "alpha": "array"},
    "smooth_soft": {"label_smoothing": 0.3, "targets": "soft"},
    "smooth_others_ignore_nchw": {
        "label_smoothing": 0.1,
        "smoothing": "others",
        "ignore": -1,
        "shape": (3, 5, 4, 6),
        "axis": 1,
    },
    "probs": {"from_logits": False},
    "probs_saturated_soft_alpha": {
        "from_logits": False,
        "saturate": True,
        "targets": "soft",
        "alpha": "array",
    },
    "probs_ignore_smooth": {"from_logits": False, "ignore": -100, "label_smoothing": 0.2},
    "all_ignored": {"ignore": -100, "ignore_frac": 1.0},
}


def build_softmax_case(
    name: str, case: dict[str, Any], per_class: str
) -> tuple[Any, Any, dict[str, Any]]:
    """``per_class`` is the option name of the per-class vector: weight or alpha."""
    case = dict(case)
    rng = seeded(name)
    shape = case.pop("shape", (40, 7))
    axis = case.pop("axis", -1)
    kind = case.pop("targets", "int")
    ignore = case.pop("ignore", None)
    ignore_frac = case.pop("ignore_frac", 0.2)
    from_logits = case.pop("from_logits", True)
    saturate = case.pop("saturate", False)
    gamma_shape = case.pop("gamma_array", None)
    k = shape[axis]
    label_shape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    x = 3.0 * rng.normal(size=shape)
    if from_logits:
        logits = x
    else:
        logits = ref.softmax(x, axis=axis)
        if saturate:
            # one element gets an exactly one-hot distribution: log(0) is clamped
            idx = [0] * len(shape)
            logits = np.moveaxis(logits, axis, -1).copy()
            logits[tuple(idx[:-1])] = 0.0
            logits[(*idx[:-1], 1)] = 1.0
            logits = np.moveaxis(logits, -1, axis)
    labels = rng.integers(0, k, size=label_shape)
    if ignore is not None:
        drop = rng.uniform(size=label_shape) < ignore_frac
        labels = np.where(drop, ignore, labels)
    if kind == "int":
        targets = labels
    elif kind == "onehot":
        targets = np.moveaxis(np.eye(k)[labels], -1, axis)
    else:
        targets = np.moveaxis(rng.dirichlet(np.ones(k), size=label_shape), -1, axis)
    options: dict[str, Any] = {"axis": axis, "from_logits": from_logits}
    if ignore is not None:
        options["ignore_index"] = ignore
    vec = case.pop(per_class, None)
    if vec == "array":
        options[per_class] = rng.uniform(0.1, 1.0, size=k)
    elif vec == "list":
        options[per_class] = [float(v) for v in rng.uniform(0.1, 1.0, size=k)]
    elif vec is not None:
        options[per_class] = vec
    if gamma_shape is not None:
        options["gamma"] = rng.uniform(0.0, 4.0, size=gamma_shape)
    options.update(case)
    return logits, targets, options


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(CE_CASES))
def test_cross_entropy(xp, backend, device, dtype, name):
    logits, targets, options = build_softmax_case(name, CE_CASES[name], "weight")
    mk = Maker(xp, backend, device, dtype)
    check_loss(cross_entropy, ref.cross_entropy, mk, logits, targets, **options)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(SFOCAL_CASES))
def test_softmax_focal_loss(xp, backend, device, dtype, name):
    logits, targets, options = build_softmax_case(name, SFOCAL_CASES[name], "alpha")
    mk = Maker(xp, backend, device, dtype)
    check_loss(softmax_focal_loss, ref.softmax_focal_loss, mk, logits, targets, **options)


ROW_BLOCK_CASES = [("ce", name) for name in CE_CASES] + [("focal", name) for name in SFOCAL_CASES]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("loss", "name"), ROW_BLOCK_CASES)
def test_softmax_losses_by_row_blocks(xp, backend, device, dtype, loss, name, small_row_blocks):
    """The blockwise evaluation of the definitions against the float64 references."""
    cases, per_class = (CE_CASES, "weight") if loss == "ce" else (SFOCAL_CASES, "alpha")
    fn, ref_fn = (
        (cross_entropy, ref.cross_entropy)
        if loss == "ce"
        else (softmax_focal_loss, ref.softmax_focal_loss)
    )
    logits, targets, options = build_softmax_case(name, cases[name], per_class)
    mk = Maker(xp, backend, device, dtype)
    check_loss(fn, ref_fn, mk, logits, targets, **options)


BINARY_ROW_BLOCK_CASES = [("bce", name) for name in BCE_CASES] + [
    ("focal", name) for name in SFL_CASES
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("loss", "name"), BINARY_ROW_BLOCK_CASES)
def test_binary_losses_by_row_blocks(xp, backend, device, dtype, loss, name, small_row_blocks):
    """The blockwise evaluation of the elementwise definitions (rows of one element)
    against the float64 references."""
    if loss == "bce":
        logits, targets, options = build_binary_case(name, BCE_CASES[name])
        fn, ref_fn = binary_cross_entropy, ref.binary_cross_entropy
    else:
        logits, targets, options = build_focal_case(name, SFL_CASES[name])
        fn, ref_fn = sigmoid_focal_loss, ref.sigmoid_focal_loss
    mk = Maker(xp, backend, device, dtype)
    check_loss(fn, ref_fn, mk, logits, targets, **options)


def test_all_ignored_cross_entropy_is_nan_mean_zero_sum(xp, backend, device):
    """PyTorch's rule: every target ignored → mean NaN (0/0), sum 0, none all zeros."""
    mk = Maker(xp, backend, device, "float64")
    x = mk.array(np.zeros((3, 4)))
    t = mk.array(np.full(3, -100))
    for fn in (cross_entropy, softmax_focal_loss):
        assert_equal(fn(x, t, ignore_index=-100, reduction="none"), mk.expected(np.zeros(3)))
        assert_equal(fn(x, t, ignore_index=-100, reduction="sum"), mk.expected(0.0))
        assert_equal(fn(x, t, ignore_index=-100, reduction="mean"), mk.expected(np.nan))


def test_hand_checked_values(xp, backend, device):
    """A few numbers worked out by hand, independent of the reference module."""
    mk = Maker(xp, backend, device, "float64")
    log2, log3 = np.log(2.0), np.log(3.0)
    zero = mk.array(np.zeros(1))
    # sigmoid(0) = 1/2: BCE = log 2 whatever the target
    assert_close(binary_cross_entropy(zero, mk.array(np.ones(1))), mk.expected(log2))
    # focal at x = 0, y = 1: alpha * (1/2)**2 * log 2
    assert_close(sigmoid_focal_loss(zero, mk.array(np.ones(1))), mk.expected(0.25 * 0.25 * log2))
    # pos_weight 3 at x = 0, y = 1: 3 log 2
    assert_close(
        binary_cross_entropy(zero, mk.array(np.ones(1)), pos_weight=mk.array(np.array([3.0]))),
        mk.expected(3 * log2),
    )
    # uniform logits over 3 classes: CE = log 3, focal(gamma=2) = (2/3)**2 log 3
    x3 = mk.array(np.zeros((1, 3)))
    y = mk.array(np.array([1]))
    assert_close(cross_entropy(x3, y), mk.expected(log3))
    assert_close(softmax_focal_loss(x3, y), mk.expected(4.0 / 9.0 * log3))
    # weights [1, 2, 4], labels [1, 2] at uniform logits: mean = (2 + 4) log 3 / (2 + 4)
    x23 = mk.array(np.zeros((2, 3)))
    y2 = mk.array(np.array([1, 2]))
    w = mk.array(np.array([1.0, 2.0, 4.0]))
    assert_close(cross_entropy(x23, y2, weight=w), mk.expected(log3))
    assert_close(cross_entropy(x23, y2, weight=w, reduction="sum"), mk.expected(6 * log3))
    # per-class alpha never changes the denominator: mean = (0.5 + 1)/2 * (2/3)^2 log 3
    a = mk.array(np.array([0.25, 0.5, 1.0]))
    assert_close(softmax_focal_loss(x23, y2, alpha=a), mk.expected(0.75 * 4.0 / 9.0 * log3))
    # probabilities: p = 1/4 for the true class → log 4; p = 0 → clamped at 100
    p = mk.array(np.array([[0.25, 0.75], [0.0, 1.0]]))
    assert_close(
        cross_entropy(p, mk.array(np.array([0, 0])), from_logits=False, reduction="none"),
        mk.expected(np.array([np.log(4.0), 100.0])),
    )
    assert_close(
        binary_cross_entropy(
            mk.array(np.array([0.0, 1.0])),
            mk.array(np.array([1.0, 0.0])),
            from_logits=False,
            reduction="none",
        ),
        mk.expected(np.array([100.0, 100.0])),
    )
    # smoothing: "others" keeps exactly 1 - eps on the true class
    assert_close(
        smooth_labels(mk.array(np.array([1])), 0.3, num_classes=3, smoothing="others"),
        mk.expected(np.array([[0.15, 0.7, 0.15]]), xp_default_float(xp, device)),
    )
    assert_close(
        smooth_labels(mk.array(np.array([1])), 0.3, num_classes=3),
        mk.expected(np.array([[0.1, 0.8, 0.1]]), xp_default_float(xp, device)),
        rtol=1e-6 if backend == "torch" else 1e-12,
    )


# ------------------------------------------------------------------- empty inputs

EMPTY_CALLS = {
    "binary_cross_entropy": (binary_cross_entropy, ref.binary_cross_entropy, "binary"),
    "sigmoid_focal_loss": (sigmoid_focal_loss, ref.sigmoid_focal_loss, "binary"),
    "cross_entropy": (cross_entropy, ref.cross_entropy, "int"),
    "cross_entropy_soft": (cross_entropy, ref.cross_entropy, "soft"),
    "softmax_focal_loss": (softmax_focal_loss, ref.softmax_focal_loss, "int"),
    "softmax_focal_loss_soft": (softmax_focal_loss, ref.softmax_focal_loss, "soft"),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(EMPTY_CALLS))
def test_empty_input(xp, backend, device, dtype, name):
    """Empty input: "none" is empty, "mean" is NaN, "sum" is 0."""
    fn, ref_fn, kind = EMPTY_CALLS[name]
    mk = Maker(xp, backend, device, dtype)
    if kind == "binary":
        logits, targets = np.zeros((0, 5)), np.zeros((0, 5))
    elif kind == "int":
        logits, targets = np.zeros((0, 5)), np.zeros((0,), dtype=np.int64)
    else:
        logits, targets = np.zeros((0, 5)), np.zeros((0, 5))
    x, t = mk.array(logits), mk.array(targets)
    assert_equal(fn(x, t, reduction="sum"), mk.expected(0.0))
    assert_equal(fn(x, t, reduction="mean"), mk.expected(np.nan))
    none = fn(x, t, reduction="none")
    assert_equal(none, mk.expected(ref_fn(logits, targets, reduction="none")))


# ----------------------------------------------------------------- half precision

HALF_CALLS: dict[str, tuple[Callable[..., Any], Callable[..., np.ndarray], str, dict]] = {
    "bce": (binary_cross_entropy, ref.binary_cross_entropy, "binary", {}),
    "bce_pos_weight_smooth": (
        binary_cross_entropy,
        ref.binary_cross_entropy,
        "binary",
        {"label_smoothing": 0.1, "pos_weight": "vec"},
    ),
    "sigmoid_focal": (sigmoid_focal_loss, ref.sigmoid_focal_loss, "binary", {}),
    "sigmoid_focal_gamma_0.5": (
        sigmoid_focal_loss,
        ref.sigmoid_focal_loss,
        "binary",
        {"gamma": 0.5, "alpha": None},
    ),
    "ce": (cross_entropy, ref.cross_entropy, "int", {}),
    "ce_weight_ignore_smooth": (
        cross_entropy,
        ref.cross_entropy,
        "int",
        {"weight": "vec", "ignore_index": -100, "label_smoothing": 0.1},
    ),
    "ce_soft": (cross_entropy, ref.cross_entropy, "soft", {}),
    "softmax_focal": (softmax_focal_loss, ref.softmax_focal_loss, "int", {"alpha": 0.25}),
    "softmax_focal_alpha_vec": (
        softmax_focal_loss,
        ref.softmax_focal_loss,
        "int",
        {"alpha": "vec", "ignore_index": -100},
    ),
}


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", list(HALF_CALLS))
def test_half_precision(xp, backend, device, dtype, name):
    fn, ref_fn, kind, raw = HALF_CALLS[name]
    mk = Maker(xp, backend, device, dtype)
    rng = seeded(name)
    logits = 3.0 * rng.normal(size=(32, 6))
    if kind == "binary":
        targets = (rng.uniform(size=(32, 6)) < 0.5).astype(np.float64)
    elif kind == "int":
        targets = rng.integers(0, 6, size=32)
        if "ignore_index" in raw:
            targets[::5] = -100
    else:
        targets = rng.dirichlet(np.ones(6), size=32)
    hi = {"alpha": 1.0}  # alpha is a balance in [0, 1]; weights may exceed 1
    options = {
        k: (rng.uniform(0.1, hi.get(k, 2.0), size=6) if v == "vec" else v) for k, v in raw.items()
    }
    check_loss(fn, ref_fn, mk, logits, targets, **options)


# --------------------------------------------------------- one_hot / smooth_labels


def xp_default_float(xp: ModuleType, device: Any) -> Any:
    return xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((50,), -1), ((50,), 0), ((6, 7), -1), ((6, 7), 1), ((6, 7), 0), ((3, 4, 5), -2), ((), -1)],
)
def test_one_hot(xp, backend, device, shape, axis):
    rng = seeded(f"one_hot{shape}{axis}")
    labels = rng.integers(0, 5, size=shape)
    mk = Maker(xp, backend, device, "float64")
    got = one_hot(mk.array(labels), 5, axis=axis)
    assert_equal(got, mk.expected(ref.one_hot(labels, 5, axis=axis), xp_default_float(xp, device)))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_one_hot_dtype(xp, backend, device, dtype):
    labels = np.array([[0, 3], [2, 1], [3, 3]])
    mk = Maker(xp, backend, device, "float64")
    dt = getattr(xp, dtype)
    got = one_hot(mk.array(labels), 4, dtype=dt)
    want = ref.one_hot(labels, 4)
    assert_equal(got, mk.expected(want.astype(np.dtype(dtype)), dt))


def test_one_hot_empty(xp, backend, device):
    mk = Maker(xp, backend, device, "float64")
    got = one_hot(mk.array(np.zeros((0, 3), dtype=np.int64)), 4, axis=1)
    assert_equal(got, mk.expected(np.zeros((0, 4, 3)), xp_default_float(xp, device)))


SMOOTH_INT_CASES = [
    ((60,), -1, 0.1, "uniform"),
    ((60,), -1, 0.1, "others"),
    ((6, 7), 1, 0.25, "uniform"),
    ((6, 7), 1, 0.25, "others"),
    ((6, 7), 0, 0.5, "others"),
    ((3, 4, 5), -1, 1.0, "uniform"),
    ((3, 4, 5), -1, 1.0, "others"),
    ((10,), -1, 0.0, "others"),
]


@pytest.mark.parametrize(("shape", "axis", "eps", "smoothing"), SMOOTH_INT_CASES)
def test_smooth_labels_int(xp, backend, device, shape, axis, eps, smoothing):
    rng = seeded(f"smooth_int{shape}{axis}{eps}{smoothing}")
    labels = rng.integers(0, 6, size=shape)
    mk = Maker(xp, backend, device, "float64")
    got = smooth_labels(mk.array(labels), eps, num_classes=6, axis=axis, smoothing=smoothing)
    want = ref.smooth_labels(labels, eps, num_classes=6, axis=axis, smoothing=smoothing)
    dt = xp_default_float(xp, device)
    rtol = 1e-6 if "float32" in str(dt) else 1e-12
    assert_close(got, mk.expected(want, dt), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("out", [None, "float32", "float64"])
def test_smooth_labels_int_dtype(xp, backend, device, dtype, out):
    labels = np.array([0, 2, 1, 2])
    mk = Maker(xp, backend, device, dtype)
    dt = None if out is None else getattr(xp, out)
    got = smooth_labels(mk.array(labels), 0.2, num_classes=3, dtype=dt)
    want = ref.smooth_labels(labels, 0.2, num_classes=3)
    expected_dt = xp_default_float(xp, device) if dt is None else dt
    assert_close(got, mk.expected(want, expected_dt), rtol=1e-6, atol=1e-7)


SMOOTH_FLOAT_CASES = [
    ((40, 6), -1, 0.1, "uniform"),
    ((40, 6), -1, 0.1, "others"),
    ((3, 6, 4, 5), 1, 0.3, "uniform"),
    ((3, 6, 4, 5), 1, 0.3, "others"),
    ((6, 40), 0, 1.0, "others"),
    ((40, 6), -1, 0.0, "uniform"),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("soft", [False, True], ids=["onehot", "soft"])
@pytest.mark.parametrize(("shape", "axis", "eps", "smoothing"), SMOOTH_FLOAT_CASES)
def test_smooth_labels_float(xp, backend, device, dtype, soft, shape, axis, eps, smoothing):
    rng = seeded(f"smooth_float{shape}{axis}{eps}{smoothing}{soft}")
    k = shape[axis]
    rest = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    if soft:
        q = rng.dirichlet(np.ones(k), size=rest)
    else:
        q = np.eye(k)[rng.integers(0, k, size=rest)]
    q = np.moveaxis(q, -1, axis)
    mk = Maker(xp, backend, device, dtype)
    got = smooth_labels(mk.array(q), eps, axis=axis, smoothing=smoothing)
    want = ref.smooth_labels(mk.twin(q), eps, axis=axis, smoothing=smoothing)
    assert_close(got, mk.expected(want), rtol=RTOL[dtype], atol=ATOL[dtype])
    # the distribution's mass along the class axis is kept
    assert_close(
        xp.sum(got, axis=axis),
        mk.expected(np.sum(mk.twin(q), axis=axis)),
        rtol=RTOL[dtype],
        atol=10 * ATOL[dtype],
    )


@pytest.mark.parametrize("dtype", HALVES)
def test_smooth_labels_half(xp, backend, device, dtype):
    mk = Maker(xp, backend, device, dtype)
    q = np.eye(4)[[0, 3, 1, 2, 2]]
    got = smooth_labels(mk.array(q), 0.2, smoothing="others")
    mk.assert_close(got, ref.smooth_labels(q, 0.2, smoothing="others"))
