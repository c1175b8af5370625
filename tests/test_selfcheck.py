"""``python -m arraylosses``: the self-check passes here, and fails when it should."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import arraylosses
from arraylosses.testing import BACKENDS, _selfcheck
from arraylosses.testing import reference as ref

HEADER_WORDS = ("backend", "device", "version", "dtype", "max deviation", "time/call", "ok")


def _run_module(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "arraylosses"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def _selected_backends() -> str:
    # The nox sessions name their backend; the self-check then also runs NumPy and
    # array-api-strict, which every session has.
    chosen = os.environ.get("ARRAYLOSSES_BACKENDS", "").strip()
    if not chosen:
        return ",".join(BACKENDS)
    names = {"numpy", "array_api_strict", *(b.strip() for b in chosen.split(","))}
    return ",".join(b for b in BACKENDS if b in names)


def test_python_m_arraylosses_passes_and_prints_the_table() -> None:
    proc = _run_module("--backends", _selected_backends(), "--repeat", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.startswith("backend"))
    assert header.split() == [w for h in HEADER_WORDS for w in h.split()]
    assert any(line.startswith("reference:") and line.endswith("✓") for line in lines)
    numpy_rows = [line for line in lines if line.startswith("numpy ")]
    assert [row.split()[3] for row in numpy_rows] == ["float32", "float64"]
    assert all(row.endswith("✓") for row in numpy_rows)
    assert lines[-1].startswith("✓ all")


def test_importing_arraylosses_imports_no_array_library() -> None:
    code = (
        "import sys, arraylosses\n"
        "libs = ('numpy', 'torch', 'jax', 'cupy', 'dask', 'array_api_strict')\n"
        "print(sorted(m for m in libs if m in sys.modules))"
    )
    proc = _run_module(code=code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_without_numpy_it_says_why_and_exits_2() -> None:
    code = (
        "import sys, runpy\n"
        "sys.modules['numpy'] = None  # makes `import numpy` raise ImportError\n"
        "runpy.run_module('arraylosses', run_name='__main__')"
    )
    proc = _run_module(code=code)
    assert proc.returncode == 2
    assert "NumPy is not installed" in proc.stderr


class _Utf8Output(io.StringIO):
    encoding = "utf-8"  # so the report uses ✓ and ✗, as on a UTF-8 terminal


def _run_in_process(backends: list[str]) -> tuple[int, str]:
    out = _Utf8Output()
    code = _selfcheck.run_selfcheck(backends, repeat=1, stream=out)
    return code, out.getvalue()


def test_exits_nonzero_when_one_backend_disagrees(monkeypatch: pytest.MonkeyPatch) -> None:
    real = arraylosses.cross_entropy

    def off_on_strict(logits: Any, targets: Any, /, **options: Any) -> Any:
        result = real(logits, targets, **options)
        if type(logits).__module__.startswith("array_api_strict"):
            return result + 1e-3  # wrong on array-api-strict only
        return result

    monkeypatch.setattr(arraylosses, "cross_entropy", off_on_strict)
    code, text = _run_in_process(["numpy", "array_api_strict"])
    assert code == 1
    table = [
        line.split()
        for line in text.splitlines()
        if line.startswith(("numpy ", "array_api_strict "))
    ]
    rows = {(cells[0], cells[3]): cells[-1] for cells in table}
    assert rows == {
        ("numpy", "float32"): "✓",
        ("numpy", "float64"): "✓",
        ("array_api_strict", "float32"): "✗",
        ("array_api_strict", "float64"): "✗",
    }
    assert "✗ array_api_strict CPU_DEVICE float64 cross_entropy(" in text
    assert text.rstrip().endswith("self-check FAILED")


def test_reference_is_checked_against_independent_formulas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Wrong everywhere, NumPy included: every backend agrees with the (wrong) NumPy
    # reference, and only the independent formulas can notice.
    real = arraylosses.sigmoid_focal_loss
    monkeypatch.setattr(arraylosses, "sigmoid_focal_loss", lambda *a, **k: real(*a, **k) * 1.01)
    code, text = _run_in_process(["numpy"])
    assert code == 1
    reference_line = next(line for line in text.splitlines() if line.startswith("reference:"))
    assert reference_line.endswith("✗")
    assert "sigmoid_focal_loss(" in text


def test_a_backend_that_raises_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(arraylosses, "one_hot", broken)
    code, text = _run_in_process(["numpy"])
    assert code == 1
    assert "raised RuntimeError: boom" in text


# The independent formulas (arraylosses.testing.reference), against values worked out
# by hand.


def test_formula_sigmoid_focal_loss_by_hand() -> None:
    # x = 0: p = 1/2, p_t = 1/2, alpha_t = 1/4 -> 1/4 * 1/4 * log 2
    got = ref.sigmoid_focal_loss(np.array([0.0]), np.array([1.0]))
    assert float(got) == pytest.approx(math.log(2) / 16, rel=1e-15)
    # gamma = 0, alpha = None is binary cross-entropy: log(1 + e^-2) for x = 2, y = 1
    got = ref.sigmoid_focal_loss(np.array([2.0]), np.array([1.0]), alpha=None, gamma=0.0)
    assert float(got) == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-15)


def test_formula_cross_entropy_and_softmax_focal_by_hand() -> None:
    x = np.array([[2.0, 0.0, 0.0]])
    log_p0 = 2.0 - math.log(math.exp(2.0) + 2.0)
    ce = ref.cross_entropy(x, np.array([0]))
    assert float(ce) == pytest.approx(-log_p0, rel=1e-15)
    p0 = math.exp(log_p0)
    focal = ref.softmax_focal_loss(x, np.array([0]), gamma=2.0)
    assert float(focal) == pytest.approx(-((1 - p0) ** 2) * log_p0, rel=1e-14)
    # uniform logits: log K, whatever the smoothing
    flat = np.zeros((1, 4))
    for smoothing in ("uniform", "others"):
        got = ref.cross_entropy(flat, np.array([1]), label_smoothing=0.3, smoothing=smoothing)
        assert float(got) == pytest.approx(math.log(4), rel=1e-15)


def test_formula_smoothing_conventions_by_hand() -> None:
    uniform = ref.smooth_labels(np.array([1]), 0.3, num_classes=3)
    np.testing.assert_allclose(uniform, [[0.1, 0.8, 0.1]], rtol=1e-15)
    others = ref.smooth_labels(np.array([1]), 0.3, num_classes=3, smoothing="others")
    np.testing.assert_allclose(others, [[0.15, 0.7, 0.15]], rtol=1e-15)


def test_deviation_is_relative_above_one_absolute_below() -> None:
    assert _selfcheck.deviation(np.array([200.0]), np.array([100.0])) == 1.0
    assert _selfcheck.deviation(np.array([0.5]), np.array([0.25])) == 0.25
    assert _selfcheck.deviation(np.array([1.0, 2.0]), np.array([1.0])) == math.inf
    assert _selfcheck.deviation(np.array([math.nan]), np.array([1.0])) == math.inf
