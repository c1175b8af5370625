"""Backends and the ``xp`` fixture shared by every test.

Each test that takes ``xp`` runs once per backend in ``BACKENDS``. The set is chosen
with ``--backend NAME`` (repeatable) or ``ARRAYLOSSES_BACKENDS=numpy,torch``; the
default is every backend. A backend that is not installed, or a CUDA backend with no
GPU, is skipped at fixture time with the reason. Functions tagged with
``array_api_extra.testing.lazy_xp_function`` in a test module run under ``jax.jit`` on
JAX and with computation forbidden on Dask.

Markers:
- ``@pytest.mark.skip_xp_backend("dask", reason=...)``: skip one backend.
- ``@pytest.mark.xfail_xp_backend("jax", reason=...)``: expected failure on one backend.

Devices: PyTorch runs on ``ARRAYLOSSES_TORCH_DEVICE`` (default ``cpu``; ``cuda`` on a GPU
machine). JAX uses its default device. CuPy always runs on the current CUDA device.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from array_api_extra.testing import patch_lazy_xp_functions

from arraylosses.testing import BACKENDS, Unavailable, load, torch_device


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        default=[],
        choices=BACKENDS,
        help="run the xp-parametrized tests on this backend only (repeatable); "
        "default: $ARRAYLOSSES_BACKENDS or all",
    )


def selected_backends(config: pytest.Config) -> tuple[str, ...]:
    chosen = list(config.getoption("--backend"))
    if not chosen:
        env = os.environ.get("ARRAYLOSSES_BACKENDS", "").strip()
        chosen = [b.strip() for b in env.split(",") if b.strip()] if env else list(BACKENDS)
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown:
        raise pytest.UsageError(f"unknown backend(s) {unknown}; choose from {BACKENDS}")
    return tuple(b for b in BACKENDS if b in chosen)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        names = selected_backends(metafunc.config)
        metafunc.parametrize("backend", names, ids=names, scope="session")


def pytest_configure(config: pytest.Config) -> None:
    # float64 must be float64 on JAX too.
    os.environ.setdefault("JAX_ENABLE_X64", "1")


def _load(backend: str) -> ModuleType:
    """Import the backend and return its array-API (compat) namespace, or skip."""
    try:
        xp = load(backend)
    except Unavailable as exc:
        pytest.skip(str(exc))
    if backend == "torch":
        import torch

        if torch_device().startswith("cuda") and not torch.cuda.is_available():
            pytest.skip("ARRAYLOSSES_TORCH_DEVICE asks for CUDA but torch sees no GPU")
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    return xp


@pytest.fixture
def xp(backend: str, request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The array namespace under test (compat-wrapped where needed)."""
    for marker in request.node.iter_markers("skip_xp_backend"):
        if marker.args[0] == backend:
            pytest.skip(marker.kwargs.get("reason", f"not run on {backend}"))
    for marker in request.node.iter_markers("xfail_xp_backend"):
        if marker.args[0] == backend:
            request.applymarker(
                pytest.mark.xfail(reason=marker.kwargs.get("reason", ""), strict=True)
            )
    namespace = _load(backend)
    with patch_lazy_xp_functions(request, xp=namespace):
        yield namespace


@pytest.fixture
def device(backend: str, xp: ModuleType) -> Any:
    """The device arrays of this backend are created on."""
    if backend == "torch":
        import torch

        return torch.device(torch_device())
    return None


@pytest.fixture
def asarray(xp: ModuleType, device: Any) -> Any:
    """``asarray(numpy_array_or_list, dtype=None)`` on the backend under test.

    ``dtype`` may be a string ("float32", "int64", "bool", ...), resolved in ``xp``.
    """

    def convert(value: Any, dtype: str | None = None) -> Any:
        arr = np.asarray(value)
        if dtype is None:
            dtype = str(arr.dtype)
        target = getattr(xp, dtype)
        if device is not None:
            return xp.asarray(arr, dtype=target, device=device)
        return xp.asarray(arr, dtype=target)

    return convert


@pytest.fixture
def small_row_blocks(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row blocks of 16 values on the backends that evaluate row-wise losses (the
    softmax losses, the asymmetric loss) block by block (``Backend.rowwise``), so
    that every case is cut into many blocks."""
    if backend not in ("numpy", "torch"):
        pytest.skip(f"{backend} evaluates row-wise losses as one block")
    from arraylosses._backends import _numpy

    monkeypatch.setattr(_numpy, "ROW_BLOCK", 16)
    if backend == "torch":
        from arraylosses._backends import _torch

        monkeypatch.setattr(_torch, "ROW_BLOCK", 16)
