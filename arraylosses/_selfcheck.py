"""The self-check behind ``python -m arraylosses``.

It finds every array library (and device) installed next to arraylosses, runs the
six public functions on each with several option combinations, and compares the
results with a float64 NumPy reference. The reference is arraylosses itself on NumPy
float64 inputs, and that reference is first checked against plain-NumPy formulas
written here independently of the package, so a bug shared by every backend cannot
hide behind agreement.

Backends are discovered by trying to import them, here and only here: importing
arraylosses never imports an array library. NumPy is required (it holds the
reference); everything else is optional.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from ._compat import array_namespace, device

NDArray = npt.NDArray[Any]
Array = Any

BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "cupy", "dask")
FUNCTIONS = (
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "binary_cross_entropy",
    "cross_entropy",
    "smooth_labels",
    "one_hot",
)


class _FloatDType:
    """Placeholder in a case's options for "the floating dtype of this row"."""

    def __repr__(self) -> str:
        return "dtype"


ROW_DTYPE = _FloatDType()

# Deviation is |got - want| / max(|want|, 1): relative above 1, absolute below, so a
# loss of 1e-9 is not failed for an error far below the float32 resolution of 1.
TOLERANCE = {"float32": 2e-5, "float64": 1e-10}
# The package's float64 NumPy result against the independent formulas below.
REFERENCE_TOLERANCE = 1e-9


# --------------------------------------------------------------------------------------
# Independent plain-NumPy formulas (float64). Written from the definitions in the
# docstrings and the papers, sharing no code with the package.
# --------------------------------------------------------------------------------------


def _smoothed(q: NDArray, eps: float, k: int, smoothing: str) -> NDArray:
    if eps == 0.0:
        return q
    if smoothing == "uniform":
        return (1.0 - eps) * q + eps / k
    return (1.0 - eps) * q + eps * (1.0 - q) / (k - 1)


def _reduce(loss: NDArray, reduction: str, denominator: float | None = None) -> NDArray:
    if reduction == "none":
        return loss
    total = np.sum(loss)
    if reduction == "sum":
        return np.asarray(total)
    count = loss.size if denominator is None else denominator
    return np.asarray(total / count)


def _binary_logs(x: NDArray, from_logits: bool) -> tuple[NDArray, NDArray]:
    """``log p`` and ``log(1 - p)`` of the probability of class 1."""
    if from_logits:
        return -np.logaddexp(0.0, -x), -np.logaddexp(0.0, x)
    return np.maximum(np.log(x), -100.0), np.maximum(np.log1p(-x), -100.0)


def formula_binary_cross_entropy(
    x: NDArray,
    y: NDArray,
    *,
    weight: NDArray | None = None,
    pos_weight: NDArray | None = None,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> NDArray:
    y = _smoothed(y.astype(np.float64), label_smoothing, 2, smoothing)
    log_p, log_q = _binary_logs(x, from_logits)
    pw = 1.0 if pos_weight is None else pos_weight
    w = 1.0 if weight is None else weight
    return _reduce(-w * (pw * y * log_p + (1.0 - y) * log_q), reduction)


def formula_sigmoid_focal_loss(
    x: NDArray,
    y: NDArray,
    *,
    alpha: float | None = 0.25,
    gamma: float | NDArray = 2.0,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> NDArray:
    y = _smoothed(y.astype(np.float64), label_smoothing, 2, smoothing)
    p = 1.0 / (1.0 + np.exp(-x)) if from_logits else x
    log_p, log_q = _binary_logs(x, from_logits)
    p_t = p * y + (1.0 - p) * (1.0 - y)
    alpha_t = 1.0 if alpha is None else alpha * y + (1.0 - alpha) * (1.0 - y)
    loss = -alpha_t * (1.0 - p_t) ** gamma * (y * log_p + (1.0 - y) * log_q)
    return _reduce(loss, reduction)


def _class_last(
    x: NDArray, t: NDArray, axis: int, from_logits: bool
) -> tuple[NDArray, NDArray, int]:
    """Log-probabilities with the class axis moved last, the targets, and K."""
    x = np.moveaxis(x, axis, -1)
    k = x.shape[-1]
    if from_logits:
        shifted = x - np.max(x, axis=-1, keepdims=True)
        log_p = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    else:
        log_p = np.maximum(np.log(x), -100.0)
    if not np.issubdtype(t.dtype, np.integer):
        t = np.moveaxis(t, axis, -1)
    return log_p, t, k


def _hard_or_soft(
    t: NDArray, k: int, ignore_index: int | None
) -> tuple[NDArray, NDArray | None, NDArray | None]:
    """Target distribution, the ignored mask and the labels (integer targets only)."""
    if not np.issubdtype(t.dtype, np.integer):
        return t.astype(np.float64), None, None
    ignored = np.zeros(t.shape, bool) if ignore_index is None else t == ignore_index
    labels = np.where(ignored, 0, t)
    return np.eye(k)[labels], ignored, labels


def formula_cross_entropy(
    x: NDArray,
    t: NDArray,
    *,
    axis: int = -1,
    weight: NDArray | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> NDArray:
    log_p, t, k = _class_last(x, t, axis, from_logits)
    q, ignored, labels = _hard_or_soft(t, k, ignore_index)
    q = _smoothed(q, label_smoothing, k, smoothing)
    w = np.ones(k) if weight is None else weight
    loss = -np.sum(w * q * log_p, axis=-1)
    if ignored is None or labels is None:
        return _reduce(loss, reduction)
    loss = np.where(ignored, 0.0, loss)
    # PyTorch's rule: the mean divides by the summed weight of the kept labels.
    return _reduce(loss, reduction, float(np.sum(np.where(ignored, 0.0, w[labels]))))


def formula_softmax_focal_loss(
    x: NDArray,
    t: NDArray,
    *,
    alpha: float | NDArray | list[float] | None = None,
    gamma: float = 2.0,
    axis: int = -1,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    smoothing: str = "uniform",
    from_logits: bool = True,
    reduction: str = "mean",
) -> NDArray:
    log_p, t, k = _class_last(x, t, axis, from_logits)
    q, ignored, _ = _hard_or_soft(t, k, ignore_index)
    q = _smoothed(q, label_smoothing, k, smoothing)
    a = 1.0 if alpha is None else np.asarray(alpha, dtype=np.float64)
    p = np.exp(log_p)
    loss = -np.sum(a * q * (1.0 - p) ** gamma * log_p, axis=-1)
    if ignored is None:
        return _reduce(loss, reduction)
    loss = np.where(ignored, 0.0, loss)
    return _reduce(loss, reduction, float(np.sum(~ignored)))


def formula_smooth_labels(
    t: NDArray,
    epsilon: float,
    *,
    num_classes: int | None = None,
    axis: int = -1,
    smoothing: str = "uniform",
) -> NDArray:
    if np.issubdtype(t.dtype, np.integer):
        assert num_classes is not None
        q = np.moveaxis(np.eye(num_classes)[t], -1, axis)
    else:
        q = t.astype(np.float64)
    return _smoothed(q, epsilon, q.shape[axis], smoothing)


def formula_one_hot(labels: NDArray, num_classes: int, *, axis: int = -1) -> NDArray:
    return np.moveaxis(np.eye(num_classes)[labels], -1, axis)


FORMULAS: dict[str, Callable[..., NDArray]] = {
    "sigmoid_focal_loss": formula_sigmoid_focal_loss,
    "softmax_focal_loss": formula_softmax_focal_loss,
    "binary_cross_entropy": formula_binary_cross_entropy,
    "cross_entropy": formula_cross_entropy,
    "smooth_labels": formula_smooth_labels,
    "one_hot": formula_one_hot,
}


# --------------------------------------------------------------------------------------
# The cases: each function with several option combinations on small seeded inputs.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One call: a public function, its positional arguments and its options.

    Floating arrays are float64 holding float32-representable values, so the float32
    rows see exactly the reference's inputs. Arrays inside ``options`` are converted
    to the backend like the positional ones; ``ROW_DTYPE`` becomes the row's dtype.
    """

    function: str
    args: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        parts = []
        for key, value in self.options.items():
            if isinstance(value, np.ndarray):
                value = f"[{','.join(str(n) for n in value.shape)}]"
            elif isinstance(value, list):
                value = f"list[{len(value)}]"
            parts.append(f"{key}={value}")
        return f"{self.function}({', '.join(parts)})"


def _case(function: str, *args: Any, **options: Any) -> Case:
    return Case(function, args, options)


SFL, SMFL, BCE, CE = FUNCTIONS[0], FUNCTIONS[1], FUNCTIONS[2], FUNCTIONS[3]
SMOOTH, ONE_HOT = FUNCTIONS[4], FUNCTIONS[5]


def _f32(a: NDArray) -> NDArray:
    """float64 values exactly representable in float32."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def make_cases(seed: int = 2017) -> list[Case]:
    rng = np.random.default_rng(seed)
    n, c, k = 32, 5, 6
    # Binary problem: logits up to |x| ~ 12, a few saturated ones, 0/1 and soft targets.
    x_bin = _f32(rng.normal(0.0, 3.0, (n, c)))
    x_bin[0, :3] = [20.0, -20.0, 0.0]
    y_bin = (rng.random((n, c)) < 0.3).astype(np.float64)
    y_soft = _f32(rng.random((n, c)))
    p_bin = _f32(1.0 / (1.0 + np.exp(-x_bin[1:])))  # probabilities strictly in (0, 1)
    per_sample_gamma = _f32(rng.uniform(0.0, 3.0, (n, 1)))
    weight_bin = _f32(rng.uniform(0.5, 2.0, (c,)))
    pos_weight = _f32(rng.uniform(1.0, 4.0, (c,)))
    # Multi-class problem: (N, K) rows, an (N, K, d) layout for axis=1, soft targets.
    x_cls = _f32(rng.normal(0.0, 2.0, (n, k)))
    lab = rng.integers(0, k, n)
    lab_ign = lab.copy()
    lab_ign[::5] = -100
    soft = rng.random((n, k))
    q_soft = _f32(soft / soft.sum(axis=1, keepdims=True))
    e = np.exp(x_cls)
    p_cls = _f32(e / e.sum(axis=1, keepdims=True))
    x_nkd = _f32(rng.normal(0.0, 2.0, (4, k, 3)))
    lab_nd = rng.integers(0, k, (4, 3))
    class_weight = _f32(rng.uniform(0.5, 2.0, (k,)))
    alpha_list = [float(v) for v in _f32(rng.uniform(0.1, 1.0, (k,)))]

    return [
        _case(SFL, x_bin, y_bin),
        _case(SFL, x_bin, y_bin, alpha=None, gamma=0.5, reduction="none"),
        _case(SFL, x_bin, y_soft, label_smoothing=0.1, smoothing="others", reduction="sum"),
        _case(SFL, x_bin, y_bin, gamma=per_sample_gamma, reduction="none"),
        _case(SFL, p_bin, y_bin[1:], from_logits=False, label_smoothing=0.05),
        _case(SMFL, x_cls, lab),
        _case(
            SMFL, x_cls, lab_ign, alpha=alpha_list, gamma=1.0, ignore_index=-100, reduction="none"
        ),
        _case(
            SMFL,
            x_cls,
            q_soft,
            alpha=0.25,
            label_smoothing=0.1,
            smoothing="others",
            reduction="sum",
        ),
        _case(SMFL, x_nkd, lab_nd, axis=1, gamma=0.5, label_smoothing=0.05),
        _case(SMFL, p_cls, lab, from_logits=False, gamma=3.0),
        _case(BCE, x_bin, y_bin),
        _case(BCE, x_bin, y_bin, weight=weight_bin, pos_weight=pos_weight, reduction="none"),
        _case(BCE, x_bin, y_soft, label_smoothing=0.2, reduction="sum"),
        _case(BCE, p_bin, y_bin[1:], from_logits=False, label_smoothing=0.1, smoothing="others"),
        _case(CE, x_cls, lab),
        _case(CE, x_cls, lab_ign, weight=class_weight, ignore_index=-100, label_smoothing=0.1),
        _case(CE, x_cls, q_soft, reduction="none"),
        _case(CE, x_nkd, lab_nd, axis=1, label_smoothing=0.2, smoothing="others", reduction="sum"),
        _case(CE, p_cls, lab, from_logits=False, weight=class_weight),
        _case(SMOOTH, lab, 0.1, num_classes=k, dtype=ROW_DTYPE),
        _case(SMOOTH, q_soft, 0.2, smoothing="others"),
        _case(SMOOTH, lab_nd, 0.3, num_classes=k, axis=1, smoothing="others", dtype=ROW_DTYPE),
        _case(ONE_HOT, lab, k, dtype=ROW_DTYPE),
        _case(ONE_HOT, lab_nd, k, axis=1, dtype=ROW_DTYPE),
    ]


# --------------------------------------------------------------------------------------
# Backends and devices.
# --------------------------------------------------------------------------------------


def _no_context() -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


@dataclass
class Target:
    """One library on one device, with what the self-check needs to drive it."""

    backend: str
    device: str
    version: str
    dtypes: tuple[str, ...]
    to_backend: Callable[[NDArray], Array]
    to_numpy: Callable[[Array], NDArray]
    namespace: ModuleType
    # Binds ``f`` to arguments already on this target (compiling it, for jit) and
    # returns the call; ``finish`` turns its result into a computed, synchronised array.
    bind: Callable[[Callable[..., Array], tuple[Any, ...], dict[str, Any]], Callable[[], Array]] = (
        lambda f, args, options: lambda: f(*args, **options)
    )
    finish: Callable[[Array], Array] = lambda result: result
    context: Callable[[str], contextlib.AbstractContextManager[None]] = lambda dtype: _no_context()
    check_lazy: Callable[[Array], str | None] = lambda result: None


@dataclass
class Unavailable:
    backend: str
    reason: str


# Namespaces come through the package's own _compat seam (array_namespace of a small
# array), never from array_api_compat by name, so a vendored copy checks itself with
# its vendored array-api-compat.


def _numpy_target() -> Target:
    xp = array_namespace(np.empty(0))
    return Target(
        "numpy", "cpu", np.__version__, ("float32", "float64"),
        np.asarray, np.asarray, xp,
    )  # fmt: skip


def _strict_targets() -> list[Target]:
    import array_api_strict as xp

    return [
        Target(
            "array_api_strict", "CPU_DEVICE", xp.__version__, ("float32", "float64"),
            xp.asarray, lambda a: np.asarray(np.from_dlpack(a)), xp,
        )
    ]  # fmt: skip


def _torch_targets() -> list[Target]:
    import torch

    xp = array_namespace(torch.empty(0))

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append(f"cuda:{torch.cuda.current_device()}")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    targets = []
    for name in devices:
        dev = torch.device(name)

        def put(a: NDArray, dev: Any = dev) -> Array:
            return torch.asarray(a, device=dev)

        def finish(result: Array, dev: Any = dev) -> Array:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            return result

        targets.append(
            Target(
                "torch", name, torch.__version__,
                ("float32",) if name == "mps" else ("float32", "float64"),
                put, lambda t: t.detach().cpu().numpy(), xp, finish=finish,
            )
        )  # fmt: skip
    return targets


def _jax_targets() -> list[Target]:
    import jax
    import jax.numpy as jnp

    enable_x64 = getattr(jax, "enable_x64", None)

    def context(dtype: str) -> contextlib.AbstractContextManager[None]:
        # float64 rows switch JAX's 64-bit mode on for their own duration only.
        if dtype == "float64" and enable_x64 is not None:
            return enable_x64(True)  # type: ignore[no-any-return]
        return _no_context()

    x64 = enable_x64 is not None or bool(getattr(jax.config, "jax_enable_x64", False))
    dtypes = ("float32", "float64") if x64 else ("float32",)
    devices = [jax.devices("cpu")[0]]
    for platform in ("gpu", "tpu"):
        with contextlib.suppress(RuntimeError):
            devices.append(jax.devices(platform)[0])
    targets = []
    for dev in devices:
        label = f"{dev.platform}:{dev.id}"

        def put(a: NDArray, dev: Any = dev) -> Array:
            return jax.device_put(jnp.asarray(a), dev)

        def finish(result: Array) -> Array:
            return result.block_until_ready()

        def jitted(
            f: Callable[..., Array], args: tuple[Any, ...], options: dict[str, Any]
        ) -> Callable[[], Array]:
            # Array arguments are traced; Python values (options, epsilon, num_classes)
            # are static, and arrays among the options are closed over as constants.
            dynamic = [i for i, a in enumerate(args) if isinstance(a, jax.Array)]

            def call(*arrays: Array) -> Array:
                full = list(args)
                for i, a in zip(dynamic, arrays, strict=True):
                    full[i] = a
                return f(*full, **options)

            compiled = jax.jit(call)
            return lambda: compiled(*(args[i] for i in dynamic))

        eager = Target(
            "jax", label, jax.__version__, dtypes, put, np.asarray, jnp,
            finish=finish, context=context,
        )  # fmt: skip
        targets += [eager, dataclasses.replace(eager, backend="jax (jit)", bind=jitted)]
    return targets


def _cupy_targets() -> list[Target]:
    import cupy

    if cupy.cuda.runtime.getDeviceCount() == 0:
        raise RuntimeError("CuPy is installed but sees no CUDA device")
    xp = array_namespace(cupy.empty(0))

    def finish(result: Array) -> Array:
        cupy.cuda.get_current_stream().synchronize()
        return result

    return [
        Target(
            "cupy", f"cuda:{cupy.cuda.Device().id}", cupy.__version__, ("float32", "float64"),
            cupy.asarray, lambda a: a.get(), xp, finish=finish,
        )
    ]  # fmt: skip


def _dask_targets() -> list[Target]:
    import dask
    import dask.array as da

    xp = array_namespace(da.empty(0))

    def forbid(*args: object, **kwargs: object) -> None:
        raise RuntimeError("arraylosses computed a Dask graph: it must stay lazy")

    def lazily(
        f: Callable[..., Array], args: tuple[Any, ...], options: dict[str, Any]
    ) -> Callable[[], Array]:
        def call() -> Array:
            with dask.config.set(scheduler=forbid):
                return f(*args, **options)

        return call

    from_array: Callable[..., Array] = da.from_array

    def to_dask(a: NDArray) -> Array:
        # two chunks along the first axis, so reductions cross chunk boundaries
        chunks = tuple(max(1, (n + 1) // 2) if i == 0 else n for i, n in enumerate(a.shape))
        return from_array(a, chunks=chunks or ())

    def check_lazy(result: Array) -> str | None:
        return None if isinstance(result, da.Array) else f"returned {type(result).__name__}"

    return [
        Target(
            "dask", "cpu", str(getattr(dask, "__version__", "?")), ("float32", "float64"),
            to_dask, np.asarray, xp, bind=lazily, finish=lambda r: r.compute(),
            check_lazy=check_lazy,
        )
    ]  # fmt: skip


def discover(backends: Sequence[str] = BACKENDS) -> tuple[list[Target], list[Unavailable]]:
    """Every requested backend/device that imports and works here, and why others don't."""
    makers: dict[str, Callable[[], list[Target]]] = {
        "numpy": lambda: [_numpy_target()],
        "array_api_strict": _strict_targets,
        "torch": _torch_targets,
        "jax": _jax_targets,
        "cupy": _cupy_targets,
        "dask": _dask_targets,
    }
    found: list[Target] = []
    missing: list[Unavailable] = []
    for name in backends:
        try:
            found.extend(makers[name]())
        except ImportError as exc:
            missing.append(Unavailable(name, f"not installed ({exc})"))
        except Exception as exc:  # a broken install or driver must not stop the others
            missing.append(Unavailable(name, f"{type(exc).__name__}: {exc}"))
    return found, missing


# --------------------------------------------------------------------------------------
# Running and comparing.
# --------------------------------------------------------------------------------------


def _package() -> ModuleType:
    # Looked up at call time (not imported by name), so the check follows a vendored
    # copy and sees monkeypatched functions.
    return importlib.import_module(__package__ or "arraylosses")


def _public(name: str) -> Callable[..., Array]:
    f: Callable[..., Array] = getattr(_package(), name)
    return f


def deviation(got: NDArray, want: NDArray) -> float:
    """max |got - want| / max(|want|, 1); inf for a shape mismatch or a stray NaN."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return math.inf
    if got.size == 0:
        return 0.0
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    if np.any(nan_got != nan_want):
        return math.inf
    keep = ~nan_want
    diff = np.abs(got[keep] - want[keep]) / np.maximum(np.abs(want[keep]), 1.0)
    return float(np.max(diff)) if diff.size else 0.0


@dataclass
class ReferenceResult:
    values: list[NDArray]
    max_deviation: float
    failures: list[str]


def reference(cases: Sequence[Case]) -> ReferenceResult:
    """arraylosses on NumPy float64, checked against the plain-NumPy formulas."""
    values: list[NDArray] = []
    failures: list[str] = []
    worst = 0.0
    for case in cases:
        options = {k: (np.float64 if v is ROW_DTYPE else v) for k, v in case.options.items()}
        try:
            with np.errstate(all="raise"):
                got = np.asarray(_public(case.function)(*case.args, **options))
        except Exception as exc:
            failures.append(f"{case.label}: raised {type(exc).__name__}: {exc}")
            values.append(np.full((), np.nan))
            worst = math.inf
            continue
        formula_options = {k: v for k, v in case.options.items() if k != "dtype"}
        want = FORMULAS[case.function](*case.args, **formula_options)
        dev = deviation(got, want)
        worst = max(worst, dev)
        if not dev <= REFERENCE_TOLERANCE:
            failures.append(
                f"{case.label}: NumPy float64 gives {_brief(got)}, the formula gives "
                f"{_brief(want)} (deviation {dev:.1e} > {REFERENCE_TOLERANCE:.0e})"
            )
        values.append(got)
    return ReferenceResult(values, worst, failures)


def _brief(a: NDArray) -> str:
    a = np.asarray(a)
    if a.ndim == 0:
        return f"{float(a):.10g}"
    return f"an array of shape {a.shape}"


@dataclass
class RowResult:
    target: Target
    dtype: str
    max_deviation: float
    seconds_per_call: float
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures


def _convert(value: Any, target: Target, dtype: str) -> Any:
    if value is ROW_DTYPE:
        return getattr(target.namespace, dtype)
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.floating):
            value = value.astype(dtype)
        return target.to_backend(value)
    return value


def run_row(
    target: Target, dtype: str, cases: Sequence[Case], expected: Sequence[NDArray], repeat: int
) -> RowResult:
    """All cases on one target in one dtype: check each result, then time it."""
    tolerance = TOLERANCE[dtype]
    failures: list[str] = []
    worst = 0.0
    elapsed = 0.0
    calls = 0
    where = f"{target.backend} {target.device} {dtype}"
    with target.context(dtype):
        for case, want in zip(cases, expected, strict=True):
            try:
                args = tuple(_convert(a, target, dtype) for a in case.args)
                options = {k: _convert(v, target, dtype) for k, v in case.options.items()}
                call = target.bind(_public(case.function), args, options)
                raw = call()
                problems = _contract_problems(raw, args[0], target, dtype)
                lazy_problem = target.check_lazy(raw)
                if lazy_problem:
                    problems.append(f"not lazy: {lazy_problem}")
                got = target.to_numpy(target.finish(raw))
            except Exception as exc:
                failures.append(f"{where} {case.label}: raised {type(exc).__name__}: {exc}")
                worst = math.inf
                continue
            dev = deviation(got, want)
            worst = max(worst, dev)
            if not dev <= tolerance:
                problems.append(
                    f"gives {_brief(got)}, NumPy float64 gives {_brief(want)} "
                    f"(deviation {dev:.1e} > {tolerance:.0e})"
                )
            failures.extend(f"{where} {case.label}: {p}" for p in problems)
            start = time.perf_counter()
            for _ in range(repeat):
                target.finish(call())
            elapsed += time.perf_counter() - start
            calls += repeat
    return RowResult(target, dtype, worst, elapsed / calls if calls else math.nan, failures)


def _contract_problems(result: Array, first_arg: Array, target: Target, dtype: str) -> list[str]:
    """Same library, same device, the row's dtype: the contract's "Results" clause."""
    problems = []
    if array_namespace(result) is not array_namespace(first_arg):
        problems.append(f"returned {type(result).__module__}.{type(result).__name__}")
    elif result.dtype != getattr(target.namespace, dtype):
        problems.append(f"returned dtype {result.dtype}, expected {dtype}")
    if str(device(result)) != str(device(first_arg)):
        problems.append(f"returned an array on {device(result)}, input on {device(first_arg)}")
    return problems


# --------------------------------------------------------------------------------------
# The report.
# --------------------------------------------------------------------------------------


def _symbols(stream: Any) -> tuple[str, str, str]:
    """(pass, fail, micro) marks, falling back to ASCII on a narrow console."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "✓✗µ".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "ok", "FAIL", "u"
    return "✓", "✗", "µ"


def _format_time(seconds: float, micro: str) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} {micro}s"


HEADER = ("backend", "device", "version", "dtype", "max deviation", "time/call", "ok")
# Fixed widths, so rows can be printed as soon as they are measured.
WIDTHS = (16, 10, 11, 7, 13, 9, 2)


def _line(cells: Sequence[str]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=True)).rstrip()


def format_header() -> str:
    return _line(HEADER) + "\n" + "  ".join("-" * w for w in WIDTHS)


def format_row(row: RowResult, stream: Any = None) -> str:
    good, bad, micro = _symbols(stream if stream is not None else sys.stdout)
    return _line(
        (
            row.target.backend,
            row.target.device,
            row.target.version,
            row.dtype,
            f"{row.max_deviation:.1e}",
            _format_time(row.seconds_per_call, micro),
            good if row.ok else bad,
        )
    )


def run_selfcheck(backends: Sequence[str] = BACKENDS, repeat: int = 3, stream: Any = None) -> int:
    """Run the self-check and print the report; 0 if everything agrees, 1 otherwise."""
    out = stream if stream is not None else sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    good, bad, _ = _symbols(out)
    package = _package()
    cases = make_cases()
    say(
        f"{package.__name__} {getattr(package, '__version__', '?')} self-check: "
        f"{len(FUNCTIONS)} functions, {len(cases)} cases per backend, device and dtype"
    )
    ref = reference(cases)
    mark = good if not ref.failures else bad
    say(
        f"reference: {package.__name__} on NumPy {np.__version__} float64, checked against "
        f"plain-NumPy formulas: max deviation {ref.max_deviation:.1e} {mark}"
    )
    for failure in ref.failures:
        say(f"  {bad} {failure}")
    say(
        "deviation: max |result - reference| / max(|reference|, 1); tolerance "
        f"{TOLERANCE['float32']:.0e} (float32), {TOLERANCE['float64']:.0e} (float64)"
    )
    say()
    say(format_header())
    rows: list[RowResult] = []
    targets, missing = discover(backends)
    for target in targets:
        for dtype in target.dtypes:
            row = run_row(target, dtype, cases, ref.values, repeat)
            rows.append(row)
            say(format_row(row, out))
    say()
    for item in missing:
        say(f"skipped {item.backend}: {item.reason}")
    failures = [f for row in rows for f in row.failures]
    for failure in failures[:40]:
        say(f"  {bad} {failure}")
    if len(failures) > 40:
        say(f"  ... and {len(failures) - 40} more")
    if ref.failures or failures or not rows:
        say(f"{bad} self-check FAILED")
        return 1
    say(f"{good} all {len(rows)} backend/device/dtype rows agree with the NumPy reference")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m arraylosses",
        description="Check arraylosses on every installed array library and device "
        "against a NumPy float64 reference.",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated subset of {','.join(BACKENDS)} (default: all)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per case (default: 3)")
    args = parser.parse_args(argv)
    chosen = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    return run_selfcheck(chosen, repeat=max(1, args.repeat))
