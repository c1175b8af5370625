"""``python -m arraylosses``: check every installed array library against NumPy.

Thin on purpose: the work is in ``testing._selfcheck``, which needs NumPy for its
float64 reference and imports the other libraries only if they are installed.
"""

from __future__ import annotations

import sys


def _run() -> int:
    try:
        from .testing._selfcheck import main
    except ImportError as exc:
        if getattr(exc, "name", None) != "numpy":
            raise
        print(
            "the arraylosses self-check compares every backend with a NumPy float64 "
            "reference, and NumPy is not installed: pip install numpy",
            file=sys.stderr,
        )
        return 2
    return main()


if __name__ == "__main__":
    sys.exit(_run())
