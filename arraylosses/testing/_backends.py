"""The one list of backends, and how to load each one for a test or the self-check.

``BACKENDS`` is a literal tuple so that the noxfile can read it without importing
the package (``ast.literal_eval`` of this assignment).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._backends import array_namespace
from .._typing import Array, Namespace

BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask", "cupy")


class Unavailable(Exception):
    """A backend that cannot run here; the message says why."""


def load(backend: str) -> Namespace:
    """Import ``backend`` and return its array-API namespace (compat-wrapped where
    needed), or raise :class:`Unavailable` with the reason."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    module = {"dask": "dask.array"}.get(backend, backend)
    try:
        library = importlib.import_module(module)
    except ImportError as exc:
        hint = " (it needs an NVIDIA GPU and CUDA)" if backend == "cupy" else ""
        raise Unavailable(f"{backend} is not installed{hint}: {exc}") from None
    if backend == "cupy":
        try:
            count = library.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDARuntimeError when there is no driver
            raise Unavailable(f"cupy is installed but CUDA is not usable: {exc}") from None
        if count == 0:
            raise Unavailable("cupy is installed but no CUDA device is present")
    if backend == "jax":
        return importlib.import_module("jax.numpy")
    if backend == "array_api_strict":
        return library
    # Through the package's own seam, never array_api_compat by name: a vendored copy
    # tests itself with its vendored array-api-compat.
    return array_namespace(library.empty(0))


def torch_device() -> str:
    """The device PyTorch tests run on: ``$ARRAYLOSSES_TORCH_DEVICE`` (default cpu)."""
    return os.environ.get("ARRAYLOSSES_TORCH_DEVICE", "cpu")


def _no_context(dtype: str) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


def _call(f: Callable[..., Array], args: tuple[Any, ...], options: dict[str, Any]) -> Any:
    return lambda: f(*args, **options)


@dataclass
class Target:
    """One library on one device, as the self-check drives it: how to put a NumPy
    array there, bring a result back, bind a call (compiled for jit, lazy for Dask),
    and wait for it."""

    backend: str
    device: str
    version: str
    dtypes: tuple[str, ...]
    namespace: Namespace
    put: Callable[[Any], Array]
    bind: Callable[[Callable[..., Array], tuple[Any, ...], dict[str, Any]], Any] = _call
    finish: Callable[[Array], Array] = field(default=lambda result: result)
    context: Callable[[str], contextlib.AbstractContextManager[None]] = _no_context
    lazy_type: type | None = None


def to_numpy(a: Array) -> Any:
    """A result of any backend as a NumPy array."""
    import numpy as np

    if hasattr(a, "compute"):  # Dask
        a = a.compute()
    if hasattr(a, "detach"):  # torch (NumPy has no bfloat16: widened to float32)
        a = a.detach().cpu()
        return (a.float() if "bfloat16" in str(a.dtype) else a).numpy()
    if type(a).__module__.startswith("cupy"):
        return a.get()
    if type(a).__module__.startswith("array_api_strict"):
        return np.from_dlpack(a)
    return np.asarray(a)


def targets(backend: str) -> list[Target]:
    """Every device of ``backend`` the self-check runs on (:class:`Unavailable` if
    none)."""
    xp = load(backend)
    version = str(getattr(importlib.import_module(backend.split(".")[0]), "__version__", "?"))
    both = ("float32", "float64")
    if backend == "torch":
        import torch

        names = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        mps = getattr(torch.backends, "mps", None)
        names += ["mps"] if mps is not None and mps.is_available() else []

        def sync(result: Array) -> Array:
            if result.device.type == "cuda":
                torch.cuda.synchronize(result.device)
            return result

        def putter(name: str) -> Callable[[Any], Array]:
            return lambda a: torch.asarray(a, device=name)

        dtypes = {n: ("float32",) if n == "mps" else both for n in names}
        return [Target("torch", n, version, dtypes[n], xp, putter(n), finish=sync) for n in names]
    if backend == "jax":
        return _jax_targets(xp, version)
    if backend == "dask":
        import dask
        import dask.array as da

        def forbid(*args: object, **kwargs: object) -> None:
            raise RuntimeError("arraylosses computed a Dask graph: it must stay lazy")

        def lazily(f: Callable[..., Array], args: tuple[Any, ...], options: dict[str, Any]) -> Any:
            def call() -> Array:
                with dask.config.set(scheduler=forbid):
                    return f(*args, **options)

            return call

        from_array: Callable[..., Array] = da.from_array

        def chunked(a: Any) -> Array:  # two chunks along the first axis
            chunks = tuple(max(1, (n + 1) // 2) if i == 0 else n for i, n in enumerate(a.shape))
            return from_array(a, chunks=chunks or ())

        return [Target("dask", "cpu", version, both, xp, chunked, bind=lazily, lazy_type=da.Array)]
    if backend == "cupy":
        import cupy

        def wait(result: Array) -> Array:
            cupy.cuda.get_current_stream().synchronize()
            return result

        return [
            Target(
                "cupy",
                f"cuda:{cupy.cuda.Device().id}",
                version,
                both,
                xp,
                cupy.asarray,
                finish=wait,
            )
        ]
    device = "CPU_DEVICE" if backend == "array_api_strict" else "cpu"
    return [Target(backend, device, version, both, xp, xp.asarray)]


def _jax_targets(xp: Namespace, version: str) -> list[Target]:
    import jax

    def context(dtype: str) -> contextlib.AbstractContextManager[None]:
        # float64 rows switch JAX's 64-bit mode on for their own duration only.
        enable_x64 = getattr(jax, "enable_x64", None)
        if dtype == "float64" and enable_x64 is not None:
            return enable_x64(True)  # type: ignore[no-any-return]
        return contextlib.nullcontext()

    def jitted(f: Callable[..., Array], args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        # Array arguments are traced; Python values and arrays among the options are
        # static (closed over as constants).
        dynamic = [i for i, a in enumerate(args) if isinstance(a, jax.Array)]

        def call(*arrays: Array) -> Array:
            full = list(args)
            for i, a in zip(dynamic, arrays, strict=True):
                full[i] = a
            return f(*full, **options)

        compiled = jax.jit(call)
        return lambda: compiled(*(args[i] for i in dynamic))

    devices = [jax.devices("cpu")[0]]
    for platform in ("gpu", "tpu"):
        with contextlib.suppress(RuntimeError):
            devices.append(jax.devices(platform)[0])

    def putter(dev: Any) -> Callable[[Any], Array]:
        return lambda a: jax.device_put(xp.asarray(a), dev)

    def wait(result: Array) -> Array:
        return result.block_until_ready()

    both = ("float32", "float64")
    return [
        Target(name, f"{d.platform}:{d.id}", version, both, xp, putter(d), bind, wait, context)
        for d in devices
        for name, bind in (("jax", _call), ("jax (jit)", jitted))
    ]
