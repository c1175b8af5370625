"""arraylosses: focal loss, label smoothing and cross-entropy for every array library.

One implementation written against the Python array API standard and dispatched
through array-api-compat, so the same pure functions run on NumPy, CuPy, PyTorch,
JAX, Dask and array-api-strict, returning arrays of the caller's library on the
caller's device.
"""

from ._binary import binary_cross_entropy, sigmoid_focal_loss
from ._categorical import cross_entropy, softmax_focal_loss
from ._smoothing import one_hot, smooth_labels

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "binary_cross_entropy",
    "cross_entropy",
    "one_hot",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_focal_loss",
]
