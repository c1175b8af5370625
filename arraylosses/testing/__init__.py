"""Testing utilities: the float64 reference formulas and the one list of backends.

- :mod:`arraylosses.testing.reference`: plain-NumPy float64 implementations of the
  six public functions, written from ``docs/contract.md`` and independent of the
  implementation (they never call the package's own code), to compare against.
- :data:`BACKENDS` and :func:`load`: the array libraries arraylosses is tested on,
  and how to import one (its array-API namespace) or learn why it cannot run here.
  The test suite, ``python -m arraylosses`` and the noxfile all use this one list.

Needs NumPy (the references are NumPy code); importing :mod:`arraylosses` itself
does not import this subpackage.
"""

from . import reference
from ._backends import BACKENDS, Unavailable, load, to_numpy, torch_device

__all__ = [
    "BACKENDS",
    "Unavailable",
    "load",
    "reference",
    "to_numpy",
    "torch_device",
]
