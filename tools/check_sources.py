"""Fail on control characters in the repository's text sources.

Two kinds: a control character written into a file (a stray BEL or form feed), and
one that a Python string literal *evaluates* to -- ``"\\frac"`` in a docstring that is
not raw is a form feed followed by ``rac``, and ``"\\alpha"`` a BEL followed by
``lpha``, which is how math docstrings get lost. Tabs, newlines and carriage returns
in files are allowed; in string values newlines, tabs and carriage returns (progress lines) are.

    python tools/check_sources.py [ROOT]

Prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

TEXT_SUFFIXES = {".py", ".md", ".rst", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".json"}
FILE_ALLOWED = {"\t", "\n", "\r"}
STRING_ALLOWED = {"\t", "\n", "\r"}


def _bad(text: str, allowed: set[str]) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 or ord(c) == 0x7F) and c not in allowed]


def tracked_files(root: Path) -> list[Path]:
    """Files git tracks (or, outside a checkout, every file) with a text suffix."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        files = [root / name for name in out]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in root.rglob("*") if p.is_file()]
    return sorted(p for p in files if p.suffix in TEXT_SUFFIXES and p.is_file())


def problems(root: Path) -> list[str]:
    found = []
    for path in tracked_files(root):
        name = path.relative_to(root)
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(keepends=True), 1):
            for c in _bad(line, FILE_ALLOWED):
                found.append(f"{name}:{number}: control character {c!r} in the file")
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(text, filename=str(name))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for c in sorted(set(_bad(node.value, STRING_ALLOWED))):
                    found.append(
                        f"{name}:{node.lineno}: a string literal evaluates to control "
                        f"character {c!r} (a backslash escape: make it a raw string?)"
                    )
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent)
    found = problems(root.resolve())
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
