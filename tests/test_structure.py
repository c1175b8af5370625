"""The architecture, pinned: no import circle, no library named outside the seam and
the delegation layer, no control characters in sources, public signatures kept by
every wrapper, and the same results from several threads as from one."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import arraylosses as al

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "arraylosses"
# libraries a module may fail to import for, in a session that lacks them
LIBRARIES = ("numpy", "torch", "jax", "jaxlib", "cupy", "dask", "array_api_strict", "keras")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _tool(name: str) -> Any:
    """A script of ``tools/``, imported as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports anywhere (function level too)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _tool("code_stats")._executed(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (
                (f"{base}.{node.module}" if node.module else base)
                if node.level
                else (node.module or "")
            )
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _is_module(candidate) else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.split(".")[0] == "arraylosses" and m != module}


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_import_circle() -> None:
    """The static import graph of the package (function-level imports included) has no
    cycle: a module never imports, even lazily, one that imports it back."""
    graph = {_module_name(p): _imports(p) for p in _sources()}
    # a package's __init__ runs before its children: a child importing its package is
    # an edge to it like any other
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt in graph and nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert graph["arraylosses._elementwise"] <= {
        "arraylosses._primitives",
        "arraylosses._typing",
    }, "the definitions must stay a leaf module"


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    """Each module imports on its own (no order dependence hidden by the package's
    own import order); library modules whose library is missing are skipped."""
    names = [_module_name(p) for p in _sources() if p.name != "__main__.py"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        if exc.name.split('.')[0] not in "
        f"{sorted(LIBRARIES)!r}: raise\n"
        "    for m in [m for m in sys.modules if m.startswith('arraylosses')]:\n"
        "        del sys.modules[m]\n"
    )
    # (Keras imports TensorFlow unless told otherwise: the integration runs on JAX)
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_no_library_named_outside_the_seam_and_the_backends() -> None:
    stats = _tool("code_stats")
    outside = [
        f"{p.relative_to(ROOT)}:{line}: {name}"
        for p in _sources()
        if not p.relative_to(PACKAGE).as_posix().startswith(stats.LAYER)
        for line, name in stats.naming_sites(p)
    ]
    assert outside == []
    # and the rule does see a library where one is named
    assert stats.naming_sites(ROOT / "arraylosses" / "_backends" / "_torch.py")


def test_sources_have_no_control_characters(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "check_sources", ROOT / "tools" / "check_sources.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.problems(ROOT) == []
    # and it catches what it is for: a math docstring that is not raw, whose ``\frac``
    # evaluates to a form feed, and a BEL written into a file
    backslash = chr(92)
    (tmp_path / "bad.py").write_text(f'"""{backslash}frac12"""' + chr(10) + "# " + chr(7) + chr(10))
    found = module.problems(tmp_path)
    assert len(found) == 2, found
    assert "'\\x0c'" in found[1] or "'\\x0c'" in found[0]


LOSSES = ("sigmoid_focal_loss", "softmax_focal_loss", "binary_cross_entropy", "cross_entropy")


@pytest.mark.parametrize("name", [*LOSSES, "smooth_labels", "one_hot"])
def test_keyword_use_of_positional_arrays_names_the_public_parameter(name: str) -> None:
    f = getattr(al, name)
    first, second = list(inspect.signature(f).parameters)[:2]
    with pytest.raises(TypeError) as error:
        f(**{first: np.zeros(3), second: np.zeros(3)})
    message = str(error.value)
    assert first in message
    assert name in message
    assert "'first'" not in message


def _calls() -> list[tuple[str, tuple[object, ...], dict[str, object]]]:
    rng = np.random.default_rng(3)
    calls = []
    for i in range(12):
        n = 50 + 700 * i  # small and blockwise-sized, ragged
        x_bin, y_bin = rng.normal(0, 4, (n, 3)), (rng.random((n, 3)) < 0.2).astype(float)
        x_cls, lab = rng.normal(0, 2, (n, 5)), rng.integers(0, 5, n)
        calls += [
            ("sigmoid_focal_loss", (x_bin, y_bin), {"gamma": [2.0, 0.5, 1.0][i % 3]}),
            ("binary_cross_entropy", (x_bin, y_bin), {"label_smoothing": 0.1}),
            ("cross_entropy", (x_cls, lab), {"label_smoothing": 0.1 * (i % 2)}),
            ("softmax_focal_loss", (x_cls, lab), {"alpha": [0.5] * 5}),
        ]
    return calls


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_threads_give_the_results_of_one_thread(library: str) -> None:
    """Native paths hold no shared state: eight threads at once, the serial results."""
    if library == "torch":
        torch = pytest.importorskip("torch")

        def convert(a: object) -> object:
            return torch.asarray(a)
    else:

        def convert(a: object) -> object:
            return a

    calls = [(n, tuple(convert(a) for a in args), kw) for n, args, kw in _calls()]
    serial = [float(getattr(al, n)(*args, **kw)) for n, args, kw in calls]
    results: dict[int, float] = {}
    barrier = threading.Barrier(8)

    def worker(offset: int) -> None:
        barrier.wait()
        for i in range(offset, len(calls), 8):
            name, args, kw = calls[i]
            results[i] = float(getattr(al, name)(*args, **kw))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(calls))] == serial
