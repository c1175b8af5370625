"""The test matrix: one session per array backend, plus lint and typecheck.

``nox`` runs every CPU backend, the CuPy session (which skips in seconds without an
NVIDIA GPU), the Keras integration on each Keras backend, the distributed engines
(Dask cluster, JAX SPMD, torch.distributed), ruff, mypy, the doctests, the Sphinx
build and the vendoring check.
``nox -s tests-torch`` runs one backend; ``nox -s bench`` and ``nox -s examples`` are
run on demand.

PyTorch is pinned to 2.13.0 here: on the project's CPU machines that version installs
a local CPU build in seconds, while any other requirement pulls several GB of CUDA
packages. The package metadata itself stays permissive (``torch>=2.4``).
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

import nox


def _backends() -> tuple[str, ...]:
    """The one list of backends, read from ``arraylosses/testing/_backends.py``
    without importing the package (nox runs outside its environments)."""
    source = Path(__file__).resolve().parent / "arraylosses" / "testing" / "_backends.py"
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "BACKENDS":
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError(f"no BACKENDS in {source}")


BACKENDS = _backends()

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False
nox.options.sessions = [
    *(f"tests-{backend}" for backend in BACKENDS),
    "keras",
    "distributed",
    "lint",
    "typecheck",
    "doctest",
    "docs",
    "vendoring",
]

TORCH = os.environ.get("ARRAYLOSSES_TORCH_REQUIREMENT", "torch==2.13.0")
TEST_DEPS = [
    "pytest>=8",
    "hypothesis>=6.100",
    "numpy>=1.26",
    "array-api-strict>=2.3",
    "ml-dtypes>=0.4",  # bfloat16 rounding of the float64 references
    "mpmath>=1.3",  # the high-precision reference of arraylosses.boosting's derivatives
]

# What each backend's session installs next to the test dependencies; the peers
# that the parity tests compare against are installed in their backend's session.
# matplotlib and tqdm let tests/test_examples.py run each example (reduced) in the
# session of its library.
EXAMPLE_DEPS = ["matplotlib", "tqdm"]
# the boosting libraries (CPU builds) and scikit-learn's data sets, for the proof of
# arraylosses.boosting against the built-in objectives (NumPy arrays, so: numpy's)
BOOSTING_DEPS = ["xgboost-cpu", "lightgbm", "scikit-learn"]
BACKEND_DEPS: dict[str, list[str]] = {
    "numpy": [*BOOSTING_DEPS, *EXAMPLE_DEPS],
    "array_api_strict": [],
    "torch": [TORCH, "torchmetrics", *EXAMPLE_DEPS],  # torchmetrics: calibration parity
    "jax": ["jax", "optax", "keras", *EXAMPLE_DEPS],
    "dask": ["dask[array]", *EXAMPLE_DEPS],
    "cupy": ["cupy-cuda12x"],
}
if set(BACKEND_DEPS) != set(BACKENDS):
    raise RuntimeError(f"noxfile: BACKEND_DEPS {sorted(BACKEND_DEPS)} != BACKENDS {BACKENDS}")


def _has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and Path("/dev/nvidia0").exists()


@nox.session(python=False, name="tests-cupy")
def tests_cupy_guard(session: nox.Session) -> None:
    """CuPy needs an NVIDIA GPU: skip in seconds (without downloading CuPy) if none."""
    if not _has_nvidia_gpu():
        session.skip(
            "no NVIDIA GPU on this machine (no nvidia-smi or /dev/nvidia0): CuPy not tested"
        )
    session.notify("tests-cupy-gpu")


def _run_tests(session: nox.Session, backend: str) -> None:
    session.install("-e", ".", *TEST_DEPS, *BACKEND_DEPS[backend])
    env = {"ARRAYLOSSES_BACKENDS": backend}
    if backend == "jax":
        env["KERAS_BACKEND"] = "jax"
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs, env=env)


def _make_test_session(backend: str) -> None:
    def session_func(session: nox.Session) -> None:
        _run_tests(session, backend)

    session_func.__doc__ = f"Run the whole test suite on {backend}."
    name = "tests-cupy-gpu" if backend == "cupy" else f"tests-{backend}"
    nox.session(name=name)(session_func)


for _backend in BACKENDS:
    _make_test_session(_backend)


KERAS_BACKENDS = {
    "jax": "jax",
    "torch": TORCH,
    "numpy": "jax",
}  # (Keras's NumPy backend imports jax)


@nox.session
@nox.parametrize("keras_backend", list(KERAS_BACKENDS))
def keras(session: nox.Session, keras_backend: str) -> None:
    """arraylosses.keras on one Keras backend (``nox -s keras`` runs all three)."""
    session.install("-e", ".", *TEST_DEPS, "keras>=3", KERAS_BACKENDS[keras_backend])
    env = {"KERAS_BACKEND": keras_backend, "ARRAYLOSSES_BACKENDS": "numpy"}
    session.run(
        "pytest", "-p", "no:cacheprovider", "tests/test_keras.py", *session.posargs, env=env
    )


# 8 CPU devices for JAX, set before JAX starts
SPMD_FLAGS = "--xla_force_host_platform_device_count=8"


@nox.session
def distributed(session: nox.Session) -> None:
    """The engines beyond one process: a dask.distributed LocalCluster with worker
    processes, JAX SPMD on 8 host devices, a two-process torch.distributed (gloo) DDP
    step; and the cluster example, reduced."""
    session.install("-e", ".", *TEST_DEPS, "dask[array,distributed]", "jax", TORCH, *EXAMPLE_DEPS)
    env = {"XLA_FLAGS": SPMD_FLAGS, "ARRAYLOSSES_BACKENDS": "numpy"}
    session.run(
        "pytest", "-p", "no:cacheprovider", "tests/test_scaling_dask.py",
        "tests/test_scaling_jax.py", "tests/test_scaling_torch.py", "tests/test_examples.py",
        "-k", "scaling or cluster", *session.posargs, env=env,
    )  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and formatting check) and the control-character check of every source."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "tools/check_sources.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict on the package."""
    # numpy, array-api-strict and torch give the optional imports (self-check, the
    # torch autograd function) their types, as in a development environment.
    session.install("mypy>=1.10", "-e", ".", "numpy>=1.26", "array-api-strict>=2.3", TORCH)
    session.run("mypy")


# numpy: the API page documents arraylosses.testing, whose references are NumPy code
DOCS_DEPS = ["sphinx>=7", "numpydoc>=1.6", "myst-parser>=2", "numpy>=1.26"]


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML documentation with Sphinx, every warning an error (torch and
    keras: the API page documents ``arraylosses.torch`` and ``arraylosses.keras``)."""
    session.install("-e", ".", *DOCS_DEPS, TORCH, "keras>=3", "jax")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html",
        env={"KERAS_BACKEND": "jax"},
    )  # fmt: skip


@nox.session
def doctest(session: nox.Session) -> None:
    """Run the docstring examples and the ``>>>`` examples of the docs pages."""
    session.install("-e", ".", *TEST_DEPS, TORCH, "jax", "dask[array]", "keras>=3")
    session.run(
        "pytest", "-p", "no:cacheprovider", "--doctest-modules", "--doctest-glob=*.md",
        "arraylosses", "docs", *session.posargs, env={"KERAS_BACKEND": "jax"},
    )  # fmt: skip


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example, reduced (ARRAYLOSSES_EXAMPLES_QUICK=1), and check its figure."""
    session.install(
        "-e", ".[examples]", *TEST_DEPS, TORCH, "jax", "dask[array,distributed]", "matplotlib",
        "tqdm", *BOOSTING_DEPS,
    )  # fmt: skip
    session.run(
        "pytest", "-p", "no:cacheprovider", "tests/test_examples.py", *session.posargs,
        env={"KERAS_BACKEND": "jax"},
    )  # fmt: skip


@nox.session
def vendoring(session: nox.Session) -> None:
    """Vendor arraylosses (with array-api-compat and -extra) into a throwaway package
    and test the copy where none of the three is installed."""
    import tomllib

    root = Path(__file__).resolve().parent
    target = root / "tmp"
    package = target / "vendored_pkg"
    # The test dependencies only: arraylosses, array-api-compat and array-api-extra
    # must not be importable from this environment.
    session.install("pytest>=8", "numpy>=1.26", "array-api-strict>=2.3")
    session.run("pip", "uninstall", "-y", "arraylosses", "array-api-compat", "array-api-extra")
    # Fetch the two dependencies as plain source trees, outside the environment.
    requirements = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    sources = Path(session.create_tmp()) / "vendor-src"
    shutil.rmtree(sources, ignore_errors=True)
    session.run("pip", "install", "--no-deps", "--target", str(sources), *requirements)
    shutil.rmtree(package, ignore_errors=True)
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A throwaway package vendoring arraylosses."""\n')
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "tests")
    shutil.copytree(root / "arraylosses", package / "_losses", ignore=skip)
    shutil.copytree(sources / "array_api_compat", package / "_array_api_compat_vendor", ignore=skip)
    shutil.copytree(sources / "array_api_extra", package / "_array_api_extra_vendor", ignore=skip)
    session.log(f"vendored into {package}")
    env = {"ARRAYLOSSES_MODULE": "vendored_pkg._losses", "PYTHONPATH": str(target)}
    # From inside tmp/, so the repository root (holding arraylosses/) is not on sys.path;
    # --noconftest because the shared conftest imports array-api-extra.
    session.chdir(target)
    session.run(
        "pytest", "-p", "no:cacheprovider", "--noconftest", "-v",
        str(root / "tests" / "test_vendored.py"), *session.posargs, env=env,
    )  # fmt: skip


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers (torchvision's formula, NumPy, optax) on this CPU:
    ``python -m benchmarks`` rewrites benchmarks/results/ (table, charts, README
    section). ``nox -s bench -- --quick`` is a smoke run."""
    session.install("-e", ".", "numpy", TORCH, "jax", "optax", "matplotlib")
    session.run("python", "-m", "benchmarks", *session.posargs)
