"""The package under another name: what ``nox -s vendoring`` runs against a copy.

``ARRAYLOSSES_MODULE`` names the package to test (default ``arraylosses``). The
vendoring session copies ``arraylosses/`` to ``vendored_pkg/_losses/`` (and, beside
it, array-api-compat and array-api-extra as ``_array_api_compat_vendor`` and
``_array_api_extra_vendor``) in an environment where none of the three is installed,
and runs this file with ``ARRAYLOSSES_MODULE=vendored_pkg._losses``. Run without
the variable, it checks the installed package the same way.

Run with ``--noconftest`` in that session: the shared conftest imports array-api-extra.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import subprocess
import sys
from types import ModuleType

import numpy as np
import pytest

MODULE = os.environ.get("ARRAYLOSSES_MODULE", "arraylosses")
VENDORED = MODULE != "arraylosses"
PARENT = MODULE.rpartition(".")[0]


@pytest.fixture(scope="module")
def losses() -> ModuleType:
    return importlib.import_module(MODULE)


@pytest.fixture(params=["numpy", "array_api_strict"])
def xp(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "numpy":
        return np
    return pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")


def test_the_copy_is_complete(losses: ModuleType) -> None:
    names = {
        "binary_cross_entropy",
        "cross_entropy",
        "one_hot",
        "sigmoid_focal_loss",
        "smooth_labels",
        "softmax_focal_loss",
    }
    assert names <= set(losses.__all__)
    assert isinstance(losses.__version__, str)


def test_values_by_hand(losses: ModuleType, xp: ModuleType) -> None:
    # sigmoid focal loss at x = 0, y = 1: alpha_t (1 - p_t)^2 log 2 = 1/4 * 1/4 * log 2
    focal = losses.sigmoid_focal_loss(xp.asarray([0.0]), xp.asarray([1.0]))
    assert float(focal) == pytest.approx(math.log(2) / 16, rel=1e-12)
    # cross-entropy of [2, 0, 0] with label 0: log(e^2 + 2) - 2
    logits = xp.asarray([[2.0, 0.0, 0.0]])
    ce = losses.cross_entropy(logits, xp.asarray([0]))
    assert float(ce) == pytest.approx(math.log(math.exp(2.0) + 2.0) - 2.0, rel=1e-12)
    # binary cross-entropy of logit 1, target 1, smoothed "others" to 0.9:
    # 0.9 * log(1 + e^-1) + 0.1 * log(1 + e)
    bce = losses.binary_cross_entropy(
        xp.asarray([1.0]), xp.asarray([1.0]), label_smoothing=0.1, smoothing="others"
    )
    want = 0.9 * math.log1p(math.exp(-1.0)) + 0.1 * math.log1p(math.e)
    assert float(bce) == pytest.approx(want, rel=1e-12)
    smoothed = losses.smooth_labels(xp.asarray([1]), 0.3, num_classes=3, smoothing="others")
    assert [float(smoothed[0, c]) for c in range(3)] == pytest.approx([0.15, 0.7, 0.15], rel=1e-12)
    encoded = losses.one_hot(xp.asarray([2, 0]), 3)
    assert [[float(encoded[i, c]) for c in range(3)] for i in range(2)] == [[0, 0, 1], [1, 0, 0]]


def test_results_stay_in_the_callers_library(losses: ModuleType, xp: ModuleType) -> None:
    logits = xp.asarray([[0.5, -0.5], [1.0, 2.0]], dtype=xp.float32)
    out = losses.softmax_focal_loss(logits, xp.asarray([1, 0]), reduction="none")
    assert type(out) is type(logits)
    assert out.dtype == xp.float32
    assert out.shape == (2,)


@pytest.mark.skipif(not VENDORED, reason="ARRAYLOSSES_MODULE is not set: nothing is vendored")
def test_the_installed_package_is_never_imported(losses: ModuleType) -> None:
    assert "arraylosses" not in sys.modules
    assert importlib.util.find_spec("arraylosses") is None, "arraylosses is importable here"


@pytest.mark.skipif(not VENDORED, reason="ARRAYLOSSES_MODULE is not set: nothing is vendored")
def test_vendored_array_api_compat_is_used(losses: ModuleType) -> None:
    if importlib.util.find_spec(f"{PARENT}._array_api_compat_vendor") is None:
        pytest.skip(f"{PARENT} vendors arraylosses only, not array-api-compat")
    losses.cross_entropy(np.zeros((1, 2)), np.asarray([1]))  # exercise the namespace lookup
    assert losses._compat.array_namespace.__module__.startswith(
        f"{PARENT}._array_api_compat_vendor."
    )
    for name in ("array_api_compat", "array_api_extra"):
        assert name not in sys.modules, f"the installed {name} was imported"


def test_the_copy_checks_itself() -> None:
    # `python -m <package>`: the self-check under the copy's own name, on the backends
    # every environment of the test suite has.
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, "--backends", "numpy,array_api_strict", "--repeat", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"{MODULE} ")
    assert "✓ all 4 backend/device/dtype rows agree" in proc.stdout
