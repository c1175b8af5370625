"""arraylosses: focal loss, label smoothing and cross-entropy for every array library.

One implementation written against the Python array API standard and dispatched
through array-api-compat, so the same pure functions run on NumPy, CuPy, PyTorch,
JAX, Dask and array-api-strict, returning arrays of the caller's library on the
caller's device.
"""

from ._binary import asymmetric_loss, binary_cross_entropy, sigmoid_focal_loss
from ._calibration import calibration_error
from ._categorical import cross_entropy, softmax_focal_loss
from ._smoothing import one_hot, smooth_labels
from ._weighting import class_balanced_weights, flsd53_gamma

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "asymmetric_loss",
    "binary_cross_entropy",
    "calibration_error",
    "class_balanced_weights",
    "cross_entropy",
    "flsd53_gamma",
    "one_hot",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_focal_loss",
]
