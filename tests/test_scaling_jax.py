"""Every loss under JAX SPMD: a batch sharded over 8 devices.

With ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (set by the
``distributed`` nox session before JAX starts) the CPU shows 8 devices. Logits and
targets are sharded over the batch axis of a one-axis mesh (``NamedSharding``), and
``jax.jit`` of each loss and of its gradient must give the unsharded values, keep the
gradient sharded like the logits, and compile to a program with no all-gather (the
reduced losses need one all-reduce of partial sums, nothing more). Under
``jax.shard_map`` each device computes its shard's sum and the user reduces with
``psum``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is installed in the jax and distributed sessions")
if jax.device_count() < 8:
    pytest.skip(
        "needs 8 JAX devices: XLA_FLAGS=--xla_force_host_platform_device_count=8 before JAX "
        "starts (nox -s distributed sets it)",
        allow_module_level=True,
    )

import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import arraylosses as al  # noqa: E402
from arraylosses.testing import reference as ref  # noqa: E402

N, K = 64, 6
MESH = Mesh(np.array(jax.devices()[:8]), ("batch",))
ROWS = NamedSharding(MESH, P("batch"))

CASES = [
    ("binary_cross_entropy", {"pos_weight": [2.0] * K}),
    ("sigmoid_focal_loss", {"alpha": 0.25, "gamma": 2.0}),
    ("sigmoid_focal_loss", {"gamma": 0.5, "label_smoothing": 0.1, "poly_epsilon": 1.0}),
    ("asymmetric_loss", {"gamma_neg": 4.0, "clip": 0.05}),
    ("cross_entropy", {"label_smoothing": 0.1, "weight": [1.0, 2.0, 1.0, 0.5, 1.0, 3.0]}),
    ("softmax_focal_loss", {"gamma": 2.0, "alpha": [1.0, 2.0, 1.0, 0.5, 1.0, 3.0]}),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]


def _data(name: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (N, K)).astype(dtype)
    if name in ("cross_entropy", "softmax_focal_loss"):
        return x, rng.integers(0, K, N).astype(np.int32)
    return x, (rng.random((N, K)) < 0.3).astype(dtype)


def _sharded(a: np.ndarray) -> Any:
    return jax.device_put(jnp.asarray(a), ROWS)


def _options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: (jnp.asarray(v) if isinstance(v, list) else v) for k, v in options.items()}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_sharded_jit_equals_the_unsharded_loss_without_gathering(
    name: str, options: dict[str, Any], reduction: str
) -> None:
    x, y = _data(name, "float32")
    xs, ys = _sharded(x), _sharded(y)
    function = getattr(al, name)
    opts = _options(options)

    def loss(a: Any, b: Any) -> Any:
        return function(a, b, reduction=reduction, **opts)

    jitted = jax.jit(loss)
    got = jitted(xs, ys)
    want = getattr(ref, name)(x.astype(np.float64), y, reduction=reduction, **options)
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got), np.asarray(jax.jit(loss)(x, y)), rtol=1e-5)
    hlo = jitted.lower(xs, ys).compile().as_text()
    assert "all-gather" not in hlo
    if reduction == "none":  # per-element losses stay where their rows are
        assert got.sharding.is_equivalent_to(NamedSharding(MESH, P("batch")), got.ndim)
        assert "all-reduce" not in hlo
    else:  # one all-reduce of the partial sums (and of the weights' sum, if any)
        assert "all-reduce" in hlo


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_sharded_gradient_keeps_the_logits_sharding(name: str, options: dict[str, Any]) -> None:
    x, y = _data(name, "float64")
    xs, ys = _sharded(x), _sharded(y)
    function = getattr(al, name)
    opts = _options(options)
    grad = jax.jit(jax.grad(lambda a, b: function(a, b, **opts)))
    got = grad(xs, ys)
    assert got.sharding.is_equivalent_to(xs.sharding, got.ndim)
    np.testing.assert_allclose(
        np.asarray(got),
        np.asarray(jax.grad(lambda a: function(a, jnp.asarray(y), **opts))(jnp.asarray(x))),
        rtol=1e-12,
    )
    assert "all-gather" not in grad.lower(xs, ys).compile().as_text()


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_shard_map_with_the_users_psum(name: str, options: dict[str, Any]) -> None:
    x, y = _data(name, "float64")
    function = getattr(al, name)
    opts = _options(options)

    def per_device(a: Any, b: Any) -> Any:
        return jax.lax.psum(function(a, b, reduction="sum", **opts), "batch")

    total = jax.jit(
        jax.shard_map(per_device, mesh=MESH, in_specs=(P("batch"), P("batch")), out_specs=P())
    )(_sharded(x), _sharded(y))
    want = getattr(ref, name)(x, y, reduction="sum", **options)
    np.testing.assert_allclose(float(total), float(want), rtol=1e-12)
