"""Run each peer-oracle module only in the session of its peer's backend.

A parity module sets ``PEER_BACKEND = "torch"`` (or ``"jax"``); its tests take the
``xp`` fixture and are deselected for every other backend, and the module is not even
collected when its backend is not selected (its peer is not installed in the other nox
sessions). Modules without ``PEER_BACKEND`` run on every backend. At the end of the
run the largest deviation seen per peer is printed (and written as JSON to
``$ARRAYLOSSES_PARITY_REPORT`` when set).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ALL_BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")

# module file name prefix -> the backend whose nox session installs that peer
MODULE_BACKEND = {"test_torch_": "torch", "test_optax_": "jax", "test_keras_": "jax"}


def _selected(config: pytest.Config) -> set[str]:
    chosen = list(config.getoption("--backend"))
    if not chosen:
        env = os.environ.get("ARRAYLOSSES_BACKENDS", "").strip()
        chosen = [b.strip() for b in env.split(",") if b.strip()] if env else list(ALL_BACKENDS)
    return set(chosen)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    for prefix, backend in MODULE_BACKEND.items():
        if collection_path.name.startswith(prefix) and backend not in _selected(config):
            return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        module = getattr(item, "module", None)
        wanted = getattr(module, "PEER_BACKEND", None)
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        if wanted is not None and backend is not None and backend != wanted:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    try:
        from parity_helpers import DEVIATIONS
    except ImportError:  # no parity module was collected
        return
    if not DEVIATIONS:
        return
    terminalreporter.section("parity: largest deviation from each peer")
    rows = []
    for (peer, function, dtype), e in sorted(DEVIATIONS.items()):
        terminalreporter.write_line(
            f"{function} vs {peer} [{dtype}]: configs={e['configs']} values={e['values']} "
            f"max|diff|={e['max_abs']:.3g} max rel={e['max_rel']:.3g} "
            f"tolerance used={e['tol_used']:.2f} (rtol {e['rtol']:.0e})"
        )
        rows.append({"peer": peer, "function": function, "dtype": dtype, **e})
    path = os.environ.get("ARRAYLOSSES_PARITY_REPORT")
    if path:
        Path(path).write_text(json.dumps(rows, indent=1))
