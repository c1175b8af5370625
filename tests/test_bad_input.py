"""Bad input: one test per row of the "Bad input" section of docs/contract.md, on every backend.

Each row is checked for the exception type and, with ``match=``, for a message that
names the argument and what was given. Out-of-range integer labels raise ValueError
only on eager host arrays (NumPy, array-api-strict, eager CPU PyTorch); under JAX
(eager and ``jax.jit``), ``torch.compile``, ``torch.func.vmap`` and Dask the affected
elements' loss -- or one-hot row -- is NaN and every other element is unchanged, which
is checked against the float64 reference (whose out-of-range rows are NaN too).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import arraylosses as al
from arraylosses.testing import reference as ref

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")
EAGER_HOST = ("numpy", "array_api_strict", "torch")  # torch: eager CPU (the test device)
BINARY = ("binary_cross_entropy", "sigmoid_focal_loss")
SOFTMAX = ("cross_entropy", "softmax_focal_loss")
LOSSES = BINARY + SOFTMAX
N, C = 3, 4

DYNAMO_LRU_WARNING = (
    "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
)


def only(*backends: str) -> Any:
    """Run on ``backends`` only; every other backend skips with the reason."""
    reason = f"runs on {'/'.join(backends)} only (the behaviour differs by backend)"

    def decorate(fn: Any) -> Any:
        for b in ALL_BACKENDS:
            if b not in backends:
                fn = pytest.mark.skip_xp_backend(b, reason=reason)(fn)
        return fn

    return decorate


def host_policy(backend: str, device: Any, expect: str) -> None:
    """Skip (with the reason) where the other half of the out-of-range policy applies.

    ``expect="raise"``: eager host arrays; ``expect="nan"``: everything else (JAX,
    Dask, CuPy, PyTorch on a GPU).
    """
    eager_host = backend in ("numpy", "array_api_strict") or (
        backend == "torch" and getattr(device, "type", "cpu") == "cpu"
    )
    if expect == "raise" and not eager_host:
        pytest.skip(f"{backend} on {device}: values are not read there, NaN instead (tested)")
    if expect == "nan" and eager_host:
        pytest.skip(f"{backend} on {device} is an eager host array: it raises (tested)")


def to_numpy(x: Any) -> np.ndarray:
    if type(x).__module__.startswith("dask"):
        x = x.compute()
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        return (x.double() if x.is_floating_point() else x).numpy()
    if type(x).__module__.startswith("array_api_strict"):
        return np.from_dlpack(x)
    return np.asarray(x)


def assert_nan_where_expected(got: Any, expected: np.ndarray, what: str) -> None:
    """Same NaN positions as ``expected`` (NaN rows for bad labels), equal elsewhere."""
    g = to_numpy(got)
    assert g.shape == expected.shape, f"{what}: shape {g.shape}, expected {expected.shape}"
    assert np.array_equal(np.isnan(g), np.isnan(expected)), (
        f"{what}: NaN at {np.argwhere(np.isnan(g)).tolist()}, expected at "
        f"{np.argwhere(np.isnan(expected)).tolist()}"
    )
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-7, equal_nan=True, err_msg=what)


def logits_np() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, C))


def targets_np(name: str) -> np.ndarray:
    if name in BINARY:
        return (np.random.default_rng(1).random((N, C)) < 0.5).astype(np.float64)
    return np.array([0, 3, 1])


def make(name: str, asarray: Any) -> tuple[Any, Any]:
    x = asarray(logits_np(), "float64")
    t = targets_np(name)
    return x, asarray(t, "float64" if name in BINARY else "int64")


def other_library_array(backend: str, value: np.ndarray) -> Any:
    """The same values as an array of a library other than ``backend``'s."""
    if backend == "numpy":
        import array_api_strict

        return array_api_strict.asarray(value)
    return np.asarray(value)


# ------------------------------------------------------------------ TypeError rows


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
@pytest.mark.parametrize("name", LOSSES)
def test_non_floating_logits(xp, asarray, name, dtype):
    """Non-floating ``logits`` -> TypeError naming ``logits`` and the dtype given."""
    _, t = make(name, asarray)
    x = asarray(logits_np() > 0 if dtype == "bool" else np.arange(N * C).reshape(N, C), dtype)
    with pytest.raises(TypeError, match=rf"`logits`.*floating.*{dtype}"):
        getattr(al, name)(x, t)


def test_one_hot_non_integer_labels(xp, asarray):
    """``one_hot`` takes integer labels: float labels -> TypeError naming the dtype."""
    with pytest.raises(TypeError, match=r"`labels`.*integer.*float64"):
        al.one_hot(asarray([0.0, 1.0], "float64"), 3)


@pytest.mark.parametrize("argument", ["logits", "targets"])
@pytest.mark.parametrize("name", LOSSES)
def test_arrays_from_two_libraries(xp, backend, asarray, name, argument):
    """``logits`` and ``targets`` from different libraries -> TypeError naming both."""
    x, t = make(name, asarray)
    if argument == "logits":
        x = other_library_array(backend, logits_np())
    else:
        t = other_library_array(backend, targets_np(name))
    with pytest.raises(
        TypeError, match=r"`targets` is an array of .* but `logits` is an array of .*one library"
    ):
        getattr(al, name)(x, t)


@pytest.mark.parametrize(
    ("name", "parameter", "value"),
    [
        ("binary_cross_entropy", "weight", np.ones(C)),
        ("binary_cross_entropy", "pos_weight", np.ones(C)),
        ("cross_entropy", "weight", np.ones(C)),
        ("softmax_focal_loss", "alpha", np.full(C, 0.5)),
        ("sigmoid_focal_loss", "gamma", np.full(C, 2.0)),
    ],
)
def test_parameter_array_from_another_library(xp, backend, asarray, name, parameter, value):
    """A weight / alpha / gamma array of another library -> TypeError naming it."""
    x, t = make(name, asarray)
    with pytest.raises(TypeError, match=rf"`{parameter}` is an array of .*`logits`"):
        getattr(al, name)(x, t, **{parameter: other_library_array(backend, value)})


@pytest.mark.parametrize(
    ("argument", "value", "shown"),
    [
        ("logits", "list", "list"),
        ("logits", 0.5, "float 0.5"),
        ("targets", "list", "list"),
        ("targets", 1, "int 1"),
        ("targets", 1.0, "float 1.0"),
    ],
)
@pytest.mark.parametrize("name", LOSSES)
def test_python_lists_or_scalars_instead_of_arrays(xp, asarray, name, argument, value, shown):
    """A Python list or scalar for ``logits`` / ``targets`` -> TypeError naming it."""
    x, t = make(name, asarray)
    if value == "list":
        value = (logits_np() if argument == "logits" else targets_np(name)).tolist()
    args = (value, t) if argument == "logits" else (x, value)
    with pytest.raises(TypeError, match=rf"`{argument}` must be an array.*got {shown}"):
        getattr(al, name)(*args)


@pytest.mark.parametrize("value", [[0, 2], 1])
def test_python_list_or_scalar_labels(xp, value):
    """``one_hot`` / ``smooth_labels`` given a list or an int -> TypeError naming it."""
    kind = type(value).__name__
    with pytest.raises(TypeError, match=rf"`labels` must be an array.*got {kind}"):
        al.one_hot(value, 3)
    with pytest.raises(TypeError, match=rf"`targets` must be an array.*got {kind}"):
        al.smooth_labels(value, 0.1, num_classes=3)


# ------------------------------------------------------------ shape mismatch rows


def shape_text(shape: tuple[int, ...]) -> str:
    return re.escape(str(tuple(shape)))


@pytest.mark.parametrize("name", BINARY)
def test_binary_targets_shape_mismatch(xp, asarray, name):
    """Targets that do not broadcast to ``logits`` -> ValueError with both shapes."""
    x, _ = make(name, asarray)
    t = asarray(np.zeros((C, N)), "float64")
    with pytest.raises(ValueError, match=rf"`targets`.*{shape_text((C, N))}.*{shape_text((N, C))}"):
        getattr(al, name)(x, t)


@pytest.mark.parametrize(
    ("name", "parameter"),
    [
        ("binary_cross_entropy", "weight"),
        ("binary_cross_entropy", "pos_weight"),
        ("sigmoid_focal_loss", "gamma"),
        ("softmax_focal_loss", "gamma"),
    ],
)
def test_broadcast_parameter_shape_mismatch(xp, asarray, name, parameter):
    """weight / pos_weight / gamma arrays that do not broadcast -> ValueError, shapes."""
    x, t = make(name, asarray)
    bad = asarray(np.ones(C + 1), "float64")
    with pytest.raises(
        ValueError, match=rf"`{parameter}`.*{shape_text((C + 1,))}.*{shape_text((N, C))}"
    ):
        getattr(al, name)(x, t, **{parameter: bad})


@pytest.mark.parametrize("name", SOFTMAX)
def test_softmax_integer_targets_shape_mismatch(xp, asarray, name):
    """Class indices not shaped like ``logits`` without ``axis`` -> ValueError, shapes."""
    x, _ = make(name, asarray)
    t = asarray(np.array([0, 1]), "int64")
    with pytest.raises(ValueError, match=rf"`targets`.*{shape_text((N,))}.*{shape_text((2,))}"):
        getattr(al, name)(x, t)


@pytest.mark.parametrize("name", SOFTMAX)
def test_softmax_distribution_targets_shape_mismatch(xp, asarray, name):
    """A distribution not shaped like ``logits`` -> ValueError with both shapes."""
    x, _ = make(name, asarray)
    t = asarray(np.full((N, C + 1), 1.0 / (C + 1)), "float64")
    with pytest.raises(
        ValueError, match=rf"`targets`.*{shape_text((N, C))}.*{shape_text((N, C + 1))}"
    ):
        getattr(al, name)(x, t)


@pytest.mark.parametrize("as_list", [False, True], ids=["array", "list"])
@pytest.mark.parametrize(
    ("name", "parameter", "length"),
    [
        ("cross_entropy", "weight", C + 1),
        ("cross_entropy", "weight", C - 1),
        ("softmax_focal_loss", "alpha", C + 1),
        ("softmax_focal_loss", "alpha", C - 1),
    ],
)
def test_per_class_parameter_length_mismatch(xp, asarray, name, parameter, length, as_list):
    """Per-class weight / alpha of the wrong length -> ValueError naming both shapes."""
    x, t = make(name, asarray)
    values = np.full(length, 0.5)
    value = values.tolist() if as_list else asarray(values, "float64")
    with pytest.raises(
        ValueError, match=rf"`{parameter}`.*{shape_text((C,))}.*{shape_text((length,))}"
    ):
        getattr(al, name)(x, t, **{parameter: value})


# ------------------------------------------------------------- option value rows


OPTION_CASES = [
    *[(n, {"reduction": "avg"}, r"`reduction`.*'none'.*'avg'") for n in LOSSES],
    *[(n, {"reduction": "MEAN"}, r"`reduction`.*'MEAN'") for n in LOSSES],
    *[(n, {"smoothing": "label"}, r"`smoothing`.*'uniform'.*'label'") for n in LOSSES],
    *[(n, {"gamma": -1.0}, r"`gamma`.*>= 0.*-1\.0") for n in ("sigmoid_focal_loss",
                                                              "softmax_focal_loss")],
    *[(n, {"gamma": -0.25}, r"`gamma`.*-0\.25") for n in ("sigmoid_focal_loss",
                                                          "softmax_focal_loss")],
    *[(n, {"alpha": 1.5}, r"`alpha`.*\[0, 1\].*1\.5") for n in ("sigmoid_focal_loss",
                                                                "softmax_focal_loss")],
    *[(n, {"alpha": -0.1}, r"`alpha`.*-0\.1") for n in ("sigmoid_focal_loss",
                                                        "softmax_focal_loss")],
    *[(n, {"label_smoothing": 1.5}, r"`label_smoothing`.*\[0, 1\].*1\.5") for n in LOSSES],
    *[(n, {"label_smoothing": -0.1}, r"`label_smoothing`.*-0\.1") for n in LOSSES],
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "options", "match"),
    OPTION_CASES,
    ids=[f"{n}-{next(iter(o))}={next(iter(o.values()))}" for n, o, _ in OPTION_CASES],
)
def test_bad_option_values(xp, asarray, name, options, match):
    """Unknown reduction / smoothing, gamma < 0, alpha or label_smoothing outside [0, 1]
    -> ValueError naming the option and the value given."""
    x, t = make(name, asarray)
    with pytest.raises(ValueError, match=match):
        getattr(al, name)(x, t, **options)


@pytest.mark.parametrize("epsilon", [-0.1, 1.5])
def test_smooth_labels_bad_epsilon_and_smoothing(xp, asarray, epsilon):
    labels = asarray([0, 2], "int64")
    with pytest.raises(ValueError, match=rf"`epsilon`.*\[0, 1\].*{re.escape(str(epsilon))}"):
        al.smooth_labels(labels, epsilon, num_classes=3)
    with pytest.raises(ValueError, match=r"`smoothing`.*'label'"):
        al.smooth_labels(labels, 0.1, num_classes=3, smoothing="label")


@pytest.mark.parametrize("targets", ["int", "distribution"])
@pytest.mark.parametrize("name", SOFTMAX)
def test_others_smoothing_with_one_class(xp, asarray, name, targets):
    """``smoothing="others"`` with K = 1 and label_smoothing > 0 -> ValueError."""
    x = asarray(np.zeros((N, 1)), "float64")
    t = asarray(np.zeros(N), "int64") if targets == "int" else asarray(np.ones((N, 1)), "float64")
    with pytest.raises(ValueError, match=r'"others".*2 classes.*got 1 class.*0\.3'):
        getattr(al, name)(x, t, label_smoothing=0.3, smoothing="others")


def test_smooth_labels_others_with_one_class(xp, asarray):
    with pytest.raises(ValueError, match=r'"others".*2 classes.*got 1 class'):
        al.smooth_labels(asarray([0, 0], "int64"), 0.1, num_classes=1, smoothing="others")
    with pytest.raises(ValueError, match=r'"others".*2 classes.*got 1 class'):
        al.smooth_labels(asarray(np.ones((2, 1)), "float64"), 0.1, smoothing="others")


def test_smooth_labels_missing_num_classes(xp, asarray):
    """Integer labels without ``num_classes`` -> ValueError naming it."""
    with pytest.raises(ValueError, match=r"`num_classes` is required.*integer.*got None"):
        al.smooth_labels(asarray([0, 2], "int64"), 0.1)


@pytest.mark.parametrize("ignore_index", [3, -100])
@pytest.mark.parametrize("name", SOFTMAX)
def test_ignore_index_with_float_targets(xp, asarray, name, ignore_index):
    """``ignore_index`` with a float distribution -> ValueError naming both."""
    x, _ = make(name, asarray)
    t = asarray(np.full((N, C), 1.0 / C), "float64")
    with pytest.raises(ValueError, match=rf"`ignore_index`={ignore_index}.*integer.*float64"):
        getattr(al, name)(x, t, ignore_index=ignore_index)


# Value checks inside arrays follow the out-of-range-label policy: ValueError where
# reading values is free, NaN for the affected elements elsewhere.


@only("numpy", "array_api_strict", "torch")
@pytest.mark.parametrize("name", ["sigmoid_focal_loss", "softmax_focal_loss"])
def test_gamma_array_negative_raises_on_host(xp, backend, device, asarray, name):
    host_policy(backend, device, "raise")
    x, t = make(name, asarray)
    gamma = asarray(np.array([[2.0], [-1.0], [0.5]]), "float64")
    with pytest.raises(ValueError, match=r"`gamma`.*>= 0.*-1"):
        getattr(al, name)(x, t, gamma=gamma)


@only("jax", "dask", "torch", "cupy")
@pytest.mark.parametrize("name", ["sigmoid_focal_loss", "softmax_focal_loss"])
def test_gamma_array_negative_is_nan_on_lazy(xp, backend, device, asarray, name):
    host_policy(backend, device, "nan")
    x, t = make(name, asarray)
    g = np.array([[2.0], [-1.0], [0.5]])
    got = getattr(al, name)(x, t, gamma=asarray(g, "float64"), reduction="none")
    expected = getattr(ref, name)(
        logits_np(), targets_np(name), gamma=np.where(g < 0, np.nan, g), reduction="none"
    )
    assert_nan_where_expected(got, expected, f"{name} with a negative gamma entry")


@only("numpy", "array_api_strict", "torch")
def test_per_class_alpha_out_of_range_raises_on_host(xp, backend, device, asarray):
    host_policy(backend, device, "raise")
    x, t = make("softmax_focal_loss", asarray)
    alpha = asarray(np.array([0.1, 0.2, -1.5, 0.1]), "float64")
    with pytest.raises(ValueError, match=r"`alpha`.*finite and >= 0.*-1\.5"):
        al.softmax_focal_loss(x, t, alpha=alpha)


@only("jax", "dask", "torch", "cupy")
def test_per_class_alpha_out_of_range_is_nan_on_lazy(xp, backend, device, asarray):
    """A negative alpha entry makes the loss of the elements of that class NaN."""
    host_policy(backend, device, "nan")
    x, t = make("softmax_focal_loss", asarray)
    a = np.array([0.1, 0.2, 0.3, -1.5])  # class 3 is the label of the second element
    got = al.softmax_focal_loss(x, t, alpha=asarray(a, "float64"), reduction="none")
    expected = ref.softmax_focal_loss(logits_np(), targets_np("softmax_focal_loss"),
                                      alpha=a, reduction="none")  # fmt: skip
    expected[targets_np("softmax_focal_loss") == 3] = np.nan
    assert_nan_where_expected(got, expected, "softmax_focal_loss with alpha[3] = -1.5")


# ------------------------------------------------------------- out-of-range labels

BAD_LABELS = [C, C + 5, -1, -100]


@only(*EAGER_HOST)
@pytest.mark.parametrize("ignore_index", [None, 2, -7])
@pytest.mark.parametrize("bad", BAD_LABELS)
@pytest.mark.parametrize("name", SOFTMAX)
def test_out_of_range_labels_raise_on_eager_host(
    xp, backend, device, asarray, name, bad, ignore_index
):
    """A label outside [0, K) that is not ignore_index -> ValueError naming it."""
    host_policy(backend, device, "raise")
    x, _ = make(name, asarray)
    t = asarray(np.array([0, bad, 2]), "int64")
    suffix = "" if ignore_index is None else rf" that are not ignore_index={ignore_index}"
    with pytest.raises(ValueError, match=rf"`targets`.*\[0, {C}\){suffix}: {bad}\."):
        getattr(al, name)(x, t, ignore_index=ignore_index)


@only(*EAGER_HOST)
@pytest.mark.parametrize("bad", BAD_LABELS)
def test_out_of_range_labels_raise_in_one_hot_and_smooth_labels(xp, backend, device, asarray, bad):
    host_policy(backend, device, "raise")
    t = asarray(np.array([0, bad, 2]), "int64")
    with pytest.raises(ValueError, match=rf"`labels`.*\[0, {C}\).*{bad}"):
        al.one_hot(t, C)
    with pytest.raises(ValueError, match=rf"`targets`.*\[0, {C}\).*{bad}"):
        al.smooth_labels(t, 0.1, num_classes=C)


@pytest.mark.parametrize("name", SOFTMAX)
def test_ignore_index_outside_range_is_not_an_error(xp, asarray, name):
    """A label equal to ignore_index is fine even outside [0, K): loss 0, excluded."""
    x, _ = make(name, asarray)
    labels = np.array([0, -100, 2])
    got = getattr(al, name)(x, asarray(labels, "int64"), ignore_index=-100, reduction="none")
    expected = getattr(ref, name)(logits_np(), labels, ignore_index=-100, reduction="none")
    assert_nan_where_expected(got, expected, f"{name} with ignore_index=-100")


def lazy_label_checks(call: Any, asarray: Any, what: str) -> None:
    """``call(fn_name, x, t, **options)`` gives NaN for out-of-range labels only."""
    x_np = logits_np()
    for bad in BAD_LABELS:
        labels = np.array([0, bad, 2])
        x, t = asarray(x_np, "float64"), asarray(labels, "int64")
        for name in SOFTMAX:
            for ignore in (None, -7):
                got = call(name, x, t, ignore_index=ignore, reduction="none")
                expected = getattr(ref, name)(x_np, labels, ignore_index=ignore, reduction="none")
                assert np.isnan(expected[1])
                assert not np.isnan(expected[[0, 2]]).any()
                assert_nan_where_expected(got, expected, f"{what}: {name}, label {bad}")
            for reduction in ("mean", "sum"):
                got = to_numpy(call(name, x, t, reduction=reduction))
                assert np.isnan(got), f"{what}: {name} {reduction} with label {bad}: {got}"
        got = call("one_hot", t, C)
        assert_nan_where_expected(got, ref.one_hot(labels, C), f"{what}: one_hot, label {bad}")
        got = call("smooth_labels", t, 0.1, num_classes=C)
        expected = ref.smooth_labels(labels, 0.1, num_classes=C)
        assert_nan_where_expected(got, expected, f"{what}: smooth_labels, label {bad}")


@only("jax", "dask", "torch", "cupy")
def test_out_of_range_labels_nan_on_jax_eager_and_dask(xp, backend, device, asarray):
    """JAX eager, Dask, CuPy, PyTorch on a GPU: no ValueError; the affected element /
    row is NaN."""
    host_policy(backend, device, "nan")

    def call(name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(al, name)(*args, **kwargs)

    lazy_label_checks(call, asarray, "eager")


@only("jax")
def test_out_of_range_labels_nan_under_jax_jit(xp, asarray):
    import jax

    def call(name: str, *args: Any, **kwargs: Any) -> Any:
        if name in ("one_hot", "smooth_labels"):
            static = args[1:]
            return jax.jit(lambda t: getattr(al, name)(t, *static, **kwargs))(args[0])
        return jax.jit(lambda x, t: getattr(al, name)(x, t, **kwargs))(*args)

    lazy_label_checks(call, asarray, "jax.jit")


@only("torch")
def test_out_of_range_labels_nan_under_torch_func_vmap(xp, asarray):
    """torch.func.vmap: values cannot be read, so out-of-range labels give NaN."""
    import torch

    def call(name: str, *args: Any, **kwargs: Any) -> Any:
        if name in ("one_hot", "smooth_labels"):
            static = args[1:]
            fn = torch.func.vmap(lambda t: getattr(al, name)(t, *static, **kwargs))
            return fn(args[0][None])[0]
        fn = torch.func.vmap(lambda x, t: getattr(al, name)(x, t, **kwargs))
        return fn(args[0][None], args[1][None])[0]

    lazy_label_checks(call, asarray, "torch.func.vmap")


@only("torch")
@pytest.mark.slow
@pytest.mark.filterwarnings(DYNAMO_LRU_WARNING)
def test_out_of_range_labels_nan_under_torch_compile(xp, asarray):
    """torch.compile (backend="eager", fullgraph): out-of-range labels give NaN."""
    import torch

    torch._dynamo.reset()
    x_np = logits_np()
    labels = np.array([0, C + 1, 2])
    x, t = asarray(x_np, "float64"), asarray(labels, "int64")
    for name in SOFTMAX:
        fn = torch.compile(
            lambda a, b, name=name: getattr(al, name)(a, b, reduction="none"),
            backend="eager",
            fullgraph=True,
        )
        expected = getattr(ref, name)(x_np, labels, reduction="none")
        assert_nan_where_expected(fn(x, t), expected, f"torch.compile {name}")
    fn = torch.compile(lambda b: al.one_hot(b, C), backend="eager", fullgraph=True)
    assert_nan_where_expected(fn(t), ref.one_hot(labels, C), "torch.compile one_hot")
    fn = torch.compile(
        lambda b: al.smooth_labels(b, 0.1, num_classes=C), backend="eager", fullgraph=True
    )
    expected = ref.smooth_labels(labels, 0.1, num_classes=C)
    assert_nan_where_expected(fn(t), expected, "torch.compile smooth_labels")


# ---------------------------------------------------------------------- NaN logits


@pytest.mark.parametrize("name", LOSSES)
def test_nan_logits_propagate(xp, asarray, name):
    """A NaN logit makes its element (binary) or its row (softmax) NaN, and the mean NaN;
    every other element is unchanged."""
    x_np = logits_np()
    x_np[1, 2] = np.nan
    t_np = targets_np(name)
    t = asarray(t_np, "float64" if name in BINARY else "int64")
    x = asarray(x_np, "float64")
    fn, ref_fn = getattr(al, name), getattr(ref, name)
    with np.errstate(invalid="ignore"):  # NumPy's logaddexp warns on NaN input
        expected = ref_fn(x_np, t_np, reduction="none")
    assert np.isnan(expected).sum() == 1  # the reference does propagate it
    assert_nan_where_expected(fn(x, t, reduction="none"), expected, f"{name} NaN logit")
    for reduction in ("mean", "sum"):
        assert np.isnan(to_numpy(fn(x, t, reduction=reduction))), f"{name} {reduction}"


@pytest.mark.parametrize("gamma", [2.0, 0.5])
@pytest.mark.parametrize("name", LOSSES)
def test_nan_probabilities_propagate(xp, asarray, name, gamma):
    """from_logits=False: a NaN probability is NaN in the loss, never the -100 clamp."""
    rng = np.random.default_rng(2)
    if name in BINARY:
        p = rng.uniform(0.05, 0.95, size=(N, C))
        p[1, 3] = np.nan
        t_np = targets_np(name)
        t_np[1, 3] = 1.0  # the NaN sits in the term the target selects
    else:
        p = rng.dirichlet(np.ones(C), size=N)
        t_np = targets_np(name)
        p[1, t_np[1]] = np.nan  # the label's own probability
    t = asarray(t_np, "float64" if name in BINARY else "int64")
    options = {"gamma": gamma} if "focal" in name else {}
    got = getattr(al, name)(asarray(p, "float64"), t, from_logits=False, reduction="none",
                            **options)  # fmt: skip
    g = to_numpy(got)
    assert np.isnan(g[1, 3] if name in BINARY else g[1]), f"{name}: NaN probability gave {g}"
    assert np.isnan(g).sum() == 1, f"{name}: {g}"
