"""Count the package's code lines and the places that name an array library.

    python tools/code_stats.py [PACKAGE_DIR]

Code lines are lines holding a Python token other than comments, docstrings and
blank lines. A naming site is an import of an array library (or of array-api-compat
/ -extra), a use of ``np`` / ``jnp`` / ``torch`` / ... as a name, a ``sys.modules``
lookup or a compat ``is_*_namespace`` helper. ``tests/test_structure.py`` asserts
that every naming site is in ``_compat.py``, ``_backends/``, ``testing/`` or an
integration (``torch.py``, ``keras.py``).
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

LIBRARIES = {
    "numpy", "torch", "jax", "jaxlib", "cupy", "dask", "array_api_strict",
    "array_api_compat", "array_api_extra", "ml_dtypes", "np", "jnp", "keras",
}  # fmt: skip
# the seam, the backends, the test helpers and the framework integrations
LAYER = ("_compat.py", "_backends/", "testing/", "torch.py", "keras.py")


def _executed(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (never executed)."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def naming_sites(path: Path) -> list[tuple[int, str]]:
    """``(line, name)`` of every place in ``path`` that names an array library."""
    sites = []
    for node in _executed(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.modules":
            names = ["sys.modules"]
        for name in names:
            library = name.split(".")[0] in LIBRARIES
            helper = name.startswith("is_") and name.endswith("_namespace")
            if library or helper or name == "sys.modules":
                sites.append((node.lineno, name))
    return sorted(set(sites))


def code_lines(path: Path) -> int:
    """Lines with code: not blank, not only a comment, not part of a docstring."""
    source = path.read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip and tok.type != tokenize.ENDMARKER:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docstrings)


def main(argv: list[str]) -> int:
    package = Path(
        argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent / "arraylosses"
    )
    total = outside = 0
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        n = code_lines(path)
        sites = naming_sites(path)
        in_layer = rel.startswith(LAYER)
        total += n
        outside += 0 if in_layer else len(sites)
        where = "" if in_layer or not sites else f"  naming sites outside the layer: {sites}"
        print(f"{n:5d}  {rel}{where}")
    print(
        f"{total:5d}  code lines in all; {outside} library-naming sites outside {', '.join(LAYER)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
