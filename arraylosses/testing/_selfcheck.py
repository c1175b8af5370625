"""The self-check behind ``python -m arraylosses``: discover, run, print, exit code.

Every installed backend (and device) runs the six public functions with several
option combinations, and the results are compared with arraylosses on NumPy
float64, which is itself first compared with the independent float64 formulas of
``arraylosses.testing`` -- so a bug shared by every backend cannot hide behind
agreement.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import reference as _reference
from ._backends import BACKENDS, Target, Unavailable, targets, to_numpy

FUNCTIONS = (
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "binary_cross_entropy",
    "cross_entropy",
    "smooth_labels",
    "one_hot",
    "asymmetric_loss",
    "class_balanced_weights",
    "calibration_error",
)
#: Placeholder in a case's options for "the floating dtype of this row".
ROW_DTYPE = "<row dtype>"
# Deviation is |got - want| / max(|want|, 1): relative above 1, absolute below.
TOLERANCE = {"float32": 2e-5, "float64": 1e-10}
REFERENCE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Case:
    """One call: a public function, its positional arguments and its options.
    Floating arrays hold float32-representable values, so float32 rows see exactly
    the reference's inputs."""

    function: str
    args: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        def show(v: Any) -> str:
            if isinstance(v, np.ndarray):
                return f"[{','.join(str(n) for n in v.shape)}]"
            return f"list[{len(v)}]" if isinstance(v, list) else str(v)

        return f"{self.function}({', '.join(f'{k}={show(v)}' for k, v in self.options.items())})"


def al_flsd53(p: Any) -> Any:
    """FLSD-53 (the package's, on any backend; the reference's for NumPy float64
    inputs of the reference, which calls it with NumPy arrays)."""
    if isinstance(p, np.ndarray):
        return _reference.flsd53_gamma(p)
    return _package().flsd53_gamma(p)


def make_cases(seed: int = 2017) -> list[Case]:
    rng = np.random.default_rng(seed)

    def f32(a: Any) -> Any:
        return np.asarray(a, dtype=np.float32).astype(np.float64)

    n, c, k = 32, 5, 6
    x_bin = f32(rng.normal(0.0, 3.0, (n, c)))
    x_bin[0, :3] = [20.0, -20.0, 0.0]
    y_bin = (rng.random((n, c)) < 0.3).astype(np.float64)
    y_soft = f32(rng.random((n, c)))
    p_bin = f32(1.0 / (1.0 + np.exp(-x_bin[1:])))
    gamma_n1 = f32(rng.uniform(0.0, 3.0, (n, 1)))
    w_bin, pos_w = f32(rng.uniform(0.5, 2.0, (c,))), f32(rng.uniform(1.0, 4.0, (c,)))
    x_cls = f32(rng.normal(0.0, 2.0, (n, k)))
    lab = rng.integers(0, k, n)
    lab_ign = lab.copy()
    lab_ign[::5] = -100
    soft = rng.random((n, k))
    q_soft = f32(soft / soft.sum(axis=1, keepdims=True))
    e = np.exp(x_cls)
    p_cls = f32(e / e.sum(axis=1, keepdims=True))
    x_nkd, lab_nd = f32(rng.normal(0.0, 2.0, (4, k, 3))), rng.integers(0, k, (4, 3))
    w_cls = f32(rng.uniform(0.5, 2.0, (k,)))
    alpha_list = [float(v) for v in f32(rng.uniform(0.1, 1.0, (k,)))]
    SFL, SMFL, BCE, CE, SMOOTH, ONE_HOT, ASL, CBW, CAL = FUNCTIONS
    mask_bin = rng.random((n, c)) < 0.7
    mask_cls = rng.random(n) < 0.7
    prior = [float(v) for v in (np.arange(1, k + 1) / (k * (k + 1) / 2))]
    counts = np.asarray([500, 120, 30, 7, 1, 0])
    return [
        Case(ASL, (x_bin, y_bin)),
        Case(ASL, (x_bin, y_soft), dict(gamma_pos=0.5, gamma_neg=2.5, clip=0.1, reduction="none")),
        Case(SFL, (x_bin, y_bin), dict(weight=w_bin, pos_weight=pos_w, poly_epsilon=1.0)),
        Case(SFL, (x_bin, y_bin), dict(where=mask_bin, normalizer=7.0, gamma=al_flsd53)),
        Case(SMFL, (x_cls, lab), dict(gamma=al_flsd53, poly_epsilon=-1.0, where=mask_cls)),
        Case(CE, (x_cls, lab), dict(poly_epsilon=2.0, label_smoothing=0.1, smoothing=prior)),
        Case(BCE, (x_bin, y_bin), dict(where=mask_bin, reduction="sum", poly_epsilon=0.5)),
        Case(CBW, (counts,), dict(beta=0.99, dtype=ROW_DTYPE)),
        Case(CAL, (x_cls, lab), dict(n_bins=10)),
        Case(CAL, (x_bin, y_bin), dict(task="binary", norm="max")),
        Case(SFL, (x_bin, y_bin)),
        Case(SFL, (x_bin, y_bin), dict(alpha=None, gamma=0.5, reduction="none")),
        Case(SFL, (x_bin, y_soft), dict(label_smoothing=0.1, smoothing="others", reduction="sum")),
        Case(SFL, (x_bin, y_bin), dict(gamma=gamma_n1, reduction="none")),
        Case(SFL, (p_bin, y_bin[1:]), dict(from_logits=False, label_smoothing=0.05)),
        Case(SMFL, (x_cls, lab)),
        Case(
            SMFL,
            (x_cls, lab_ign),
            dict(alpha=alpha_list, gamma=1.0, ignore_index=-100, reduction="none"),
        ),
        Case(
            SMFL,
            (x_cls, q_soft),
            dict(alpha=0.25, label_smoothing=0.1, smoothing="others", reduction="sum"),
        ),
        Case(SMFL, (x_nkd, lab_nd), dict(axis=1, gamma=0.5, label_smoothing=0.05)),
        Case(SMFL, (p_cls, lab), dict(from_logits=False, gamma=3.0)),
        Case(BCE, (x_bin, y_bin)),
        Case(BCE, (x_bin, y_bin), dict(weight=w_bin, pos_weight=pos_w, reduction="none")),
        Case(BCE, (x_bin, y_soft), dict(label_smoothing=0.2, reduction="sum")),
        Case(
            BCE,
            (p_bin, y_bin[1:]),
            dict(from_logits=False, label_smoothing=0.1, smoothing="others"),
        ),
        Case(CE, (x_cls, lab)),
        Case(CE, (x_cls, lab_ign), dict(weight=w_cls, ignore_index=-100, label_smoothing=0.1)),
        Case(CE, (x_cls, q_soft), dict(reduction="none")),
        Case(
            CE,
            (x_nkd, lab_nd),
            dict(axis=1, label_smoothing=0.2, smoothing="others", reduction="sum"),
        ),
        Case(CE, (p_cls, lab), dict(from_logits=False, weight=w_cls)),
        Case(SMOOTH, (lab, 0.1), dict(num_classes=k, dtype=ROW_DTYPE)),
        Case(SMOOTH, (q_soft, 0.2), dict(smoothing="others")),
        Case(
            SMOOTH, (lab_nd, 0.3), dict(num_classes=k, axis=1, smoothing="others", dtype=ROW_DTYPE)
        ),
        Case(ONE_HOT, (lab, k), dict(dtype=ROW_DTYPE)),
        Case(ONE_HOT, (lab_nd, k), dict(axis=1, dtype=ROW_DTYPE)),
    ]


def _package() -> Any:
    # Looked up at call time, so the check follows a vendored copy and sees
    # monkeypatched functions.
    return importlib.import_module((__package__ or "arraylosses.testing").rpartition(".")[0])


def deviation(got: Any, want: Any) -> float:
    """max |got - want| / max(|want|, 1); inf for a shape mismatch or a stray NaN."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape or np.any(np.isnan(got) != np.isnan(want)):
        return math.inf
    keep = ~np.isnan(want)
    diff = np.abs(got[keep] - want[keep]) / np.maximum(np.abs(want[keep]), 1.0)
    return float(np.max(diff)) if diff.size else 0.0


def _brief(a: Any) -> str:
    a = np.asarray(a)
    return f"{float(a):.10g}" if a.ndim == 0 else f"an array of shape {a.shape}"


def reference(cases: Sequence[Case]) -> tuple[list[Any], float, list[str]]:
    """arraylosses on NumPy float64, checked against the independent formulas:
    ``(values, max deviation, failures)``."""
    values, failures, worst = [], [], 0.0
    for case in cases:
        options = {k: (np.float64 if v is ROW_DTYPE else v) for k, v in case.options.items()}
        want = getattr(_reference, case.function)(*case.args, **options)
        try:
            with np.errstate(all="raise"):
                got = np.asarray(getattr(_package(), case.function)(*case.args, **options))
        except Exception as exc:
            failures.append(f"{case.label}: raised {type(exc).__name__}: {exc}")
            values.append(np.full((), np.nan))
            worst = math.inf
            continue
        dev = deviation(got, want)
        worst = max(worst, dev)
        if not dev <= REFERENCE_TOLERANCE:
            failures.append(
                f"{case.label}: NumPy float64 gives {_brief(got)}, the formula gives "
                f"{_brief(want)} (deviation {dev:.1e} > {REFERENCE_TOLERANCE:.0e})"
            )
        values.append(got)
    return values, worst, failures


def _convert(value: Any, target: Target, dtype: str) -> Any:
    if value is ROW_DTYPE:
        return getattr(target.namespace, dtype)
    if isinstance(value, np.ndarray):
        return target.put(value.astype(dtype) if value.dtype.kind == "f" else value)
    return value


def run_row(
    target: Target, dtype: str, cases: Sequence[Case], expected: Sequence[Any], repeat: int
) -> tuple[float, float, list[str]]:
    """All cases on one target in one dtype: ``(max deviation, seconds per call,
    failures)``; every result must also have the input's library, device and dtype."""
    failures, worst, elapsed, calls = [], 0.0, 0.0, 0
    where = f"{target.backend} {target.device} {dtype}"
    ns = _package()._backends
    with target.context(dtype):
        for case, want in zip(cases, expected, strict=True):
            try:
                args = tuple(_convert(a, target, dtype) for a in case.args)
                options = {k: _convert(v, target, dtype) for k, v in case.options.items()}
                call = target.bind(getattr(_package(), case.function), args, options)
                raw = call()
                problems = []
                if ns.array_namespace(raw) is not ns.array_namespace(args[0]):
                    problems.append(f"returned {type(raw).__module__}.{type(raw).__name__}")
                elif raw.dtype != getattr(target.namespace, dtype):
                    problems.append(f"returned dtype {raw.dtype}, expected {dtype}")
                if str(ns.device(raw)) != str(ns.device(args[0])):
                    problems.append(
                        f"returned an array on {ns.device(raw)}, input on {ns.device(args[0])}"
                    )
                if target.lazy_type is not None and not isinstance(raw, target.lazy_type):
                    problems.append(f"not lazy: returned {type(raw).__name__}")
                got = to_numpy(target.finish(raw))
            except Exception as exc:
                failures.append(f"{where} {case.label}: raised {type(exc).__name__}: {exc}")
                worst = math.inf
                continue
            dev = deviation(got, want)
            worst = max(worst, dev)
            if not dev <= TOLERANCE[dtype]:
                problems.append(
                    f"gives {_brief(got)}, NumPy float64 gives {_brief(want)} "
                    f"(deviation {dev:.1e} > {TOLERANCE[dtype]:.0e})"
                )
            failures.extend(f"{where} {case.label}: {p}" for p in problems)
            start = time.perf_counter()
            for _ in range(repeat):
                target.finish(call())
            elapsed, calls = elapsed + time.perf_counter() - start, calls + repeat
    return worst, elapsed / calls if calls else math.nan, failures


def _symbols(stream: Any) -> tuple[str, str, str]:
    """(pass, fail, micro) marks, falling back to ASCII on a narrow console."""
    try:
        "✓✗µ".encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "ok", "FAIL", "u"
    return "✓", "✗", "µ"


def _time(seconds: float, micro: str) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds >= 1e-3:
        return f"{seconds:.2f} s" if seconds >= 1.0 else f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} {micro}s"


HEADER = ("backend", "device", "version", "dtype", "max deviation", "time/call", "ok")
WIDTHS = (16, 10, 11, 7, 13, 9, 2)  # fixed, so rows print as soon as they are measured


def _line(cells: Sequence[str]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=True)).rstrip()


def run_selfcheck(backends: Sequence[str] = BACKENDS, repeat: int = 3, stream: Any = None) -> int:
    """Run the self-check and print the report; 0 if everything agrees, 1 otherwise."""
    out = stream if stream is not None else sys.stdout
    good, bad, micro = _symbols(out)

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    package, cases = _package(), make_cases()
    say(
        f"{package.__name__} {getattr(package, '__version__', '?')} self-check: "
        f"{len(FUNCTIONS)} functions, {len(cases)} cases per backend, device and dtype"
    )
    expected, worst, ref_failures = reference(cases)
    say(
        f"reference: {package.__name__} on NumPy {np.__version__} float64, checked against "
        f"plain-NumPy formulas: max deviation {worst:.1e} {bad if ref_failures else good}"
    )
    for failure in ref_failures:
        say(f"  {bad} {failure}")
    say(
        "deviation: max |result - reference| / max(|reference|, 1); tolerance "
        f"{TOLERANCE['float32']:.0e} (float32), {TOLERANCE['float64']:.0e} (float64)\n"
    )
    say(_line(HEADER) + "\n" + "  ".join("-" * w for w in WIDTHS))
    failures, rows, skipped = [], 0, []
    for backend in backends:
        try:
            found = targets(backend)
        except Unavailable as exc:
            skipped.append(f"skipped {backend}: {exc}")
            continue
        except Exception as exc:  # a broken install or driver must not stop the others
            skipped.append(f"skipped {backend}: {type(exc).__name__}: {exc}")
            continue
        for target in found:
            for dtype in target.dtypes:
                dev, seconds, row_failures = run_row(target, dtype, cases, expected, repeat)
                rows += 1
                failures += row_failures
                cells = (target.backend, target.device, target.version, dtype, f"{dev:.1e}")
                say(_line((*cells, _time(seconds, micro), bad if row_failures else good)))
    say()
    for line in skipped:
        say(line)
    for failure in failures[:40]:
        say(f"  {bad} {failure}")
    if len(failures) > 40:
        say(f"  ... and {len(failures) - 40} more")
    if ref_failures or failures or not rows:
        say(f"{bad} self-check FAILED")
        return 1
    say(f"{good} all {rows} backend/device/dtype rows agree with the NumPy reference")
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
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1; got {args.repeat}")
    return run_selfcheck(chosen, repeat=args.repeat)
