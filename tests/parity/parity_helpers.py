"""Shared pieces of the peer-oracle (parity) tests.

Every parity test draws one configuration from its seed (``rng_for(seed, name)``),
computes the loss with arraylosses and with a peer (a library, or a published formula
written out in the test), and compares them with :func:`assert_matches_peer`, which
also records the largest deviation seen per (peer, function, dtype). The parity
``conftest.py`` prints those maxima at the end of the run (and writes them as JSON to
``$ARRAYLOSSES_PARITY_REPORT`` when that is set).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

N_CONFIGS = 200
SEEDS = range(N_CONFIGS)

# (peer, function, dtype) -> {"configs", "values", "max_abs", "max_rel", "tol_used", "rtol"}
DEVIATIONS: dict[tuple[str, str, str], dict[str, Any]] = {}


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A generator that depends on the seed and on the test's name (not on the order)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def to_numpy(x: Any) -> np.ndarray:
    """Any backend's array (or a Python number) as a float64 (or bool/int) NumPy array."""
    if hasattr(x, "compute") and type(x).__module__.startswith("dask"):
        x = x.compute()
    module = type(x).__module__
    if module.startswith("torch"):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.double()
        return x.numpy()
    if module.startswith("array_api_strict"):
        out = np.from_dlpack(x)
    else:
        out = np.asarray(x)
    if out.dtype.kind == "f" or "float" in str(out.dtype):
        return out.astype(np.float64)
    return out


def dtype_name(x: Any) -> str:
    """``"float32"``, ``"bfloat16"``, ... for an array of any backend."""
    return str(x.dtype).rsplit(".", 1)[-1].replace("dtype('", "").replace("')", "")


def draw_reduction(rng: np.random.Generator) -> str:
    return str(rng.choice(["none", "mean", "sum"]))


def draw_epsilon(rng: np.random.Generator) -> float:
    """Label smoothing: 0 in 40 % of the configurations, else 0.1, 1.0 or uniform."""
    u = rng.random()
    if u < 0.4:
        return 0.0
    if u < 0.55:
        return 0.1
    if u < 0.6:
        return 1.0
    return float(rng.uniform(0.0, 1.0))


def draw_dtype(rng: np.random.Generator) -> str:
    return "float32" if rng.random() < 0.5 else "float64"


def broadcastable_shape(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape``: some leading dims dropped, some set to 1."""
    drop = int(rng.integers(0, len(shape) + 1))
    kept = shape[drop:]
    return tuple(1 if rng.random() < 0.4 else n for n in kept)


def assert_matches_peer(
    got: Any,
    expected: Any,
    *,
    peer: str,
    function: str,
    dtype: str,
    config: dict[str, Any],
    rtol: float,
    atol: float,
) -> None:
    """``|got - expected| <= atol + rtol * |expected|`` elementwise, NaNs in the same places.

    Records, under ``(peer, function, dtype)``, the largest absolute deviation, the
    largest relative deviation among values ``>= 1e-3`` and the largest fraction of
    the tolerance used.
    """
    g = to_numpy(got)
    e = np.asarray(to_numpy(expected), dtype=np.float64)
    where = f"{function} vs {peer} ({dtype}), configuration {config}"
    assert g.shape == e.shape, f"{where}: shape {g.shape}, peer gives {e.shape}"
    nan_g, nan_e = np.isnan(g), np.isnan(e)
    assert np.array_equal(nan_g, nan_e), (
        f"{where}: NaN at {np.argwhere(nan_g).tolist()[:5]}, peer NaN at "
        f"{np.argwhere(nan_e).tolist()[:5]}"
    )
    finite = ~nan_e
    diff = np.abs(g[finite] - e[finite])
    ref = np.abs(e[finite])
    allowed = atol + rtol * ref
    big = ref >= 1e-3  # relative deviation only where the value is not tiny
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float((diff[big] / ref[big]).max()) if big.any() else 0.0
    used = float((diff / allowed).max()) if diff.size else 0.0
    entry = DEVIATIONS.setdefault(
        (peer, function, dtype),
        {"configs": 0, "values": 0, "max_abs": 0.0, "max_rel": 0.0, "tol_used": 0.0},
    )
    entry["configs"] += 1
    entry["values"] += int(diff.size)
    entry["max_abs"] = max(entry["max_abs"], max_abs)
    entry["max_rel"] = max(entry["max_rel"], max_rel)
    entry["tol_used"] = max(entry["tol_used"], used)
    entry.setdefault("rtol", rtol)
    bad = diff > allowed
    if bad.any():
        k = int(np.argmax(diff - (atol + rtol * ref)))
        raise AssertionError(
            f"{where}: {int(bad.sum())} of {diff.size} value(s) differ; worst: got "
            f"{g[finite][k]!r}, peer {e[finite][k]!r} (|diff| {diff[k]:.3g} > atol {atol:.3g}"
            f" + rtol {rtol:.3g} * |peer|); max |diff| {max_abs:.3g}"
        )


def assert_result_dtype(got: Any, logits: Any, where: str) -> None:
    assert dtype_name(got) == dtype_name(logits), (
        f"{where}: result dtype {got.dtype}, logits dtype {logits.dtype}"
    )
