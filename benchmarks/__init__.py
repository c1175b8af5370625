"""Benchmarks of arraylosses against its peers, on CPU, in one process.

``python -m benchmarks`` (or ``nox -s bench``) times arraylosses and each peer on the
same inputs, interleaved (ours, peer, ours, peer, ...) so that load on a shared machine
hits both sides alike, and keeps the minimum over at least five repeats after a
warm-up. It prints a table of times and ratios (arraylosses / peer) and writes it to
``benchmarks/results/``: ``cpu.md`` (the table), ``cpu.json`` (the same numbers, raw),
``cpu.png`` (the ratios against their targets), ``scaling.png`` (ratio and time
against batch size) and ``README-section.md``.

Cases (one module each):

- ``sigmoid_focal``: RetinaNet-scale sigmoid focal loss against torchvision's
  computation (PyTorch), its NumPy transcription, and optax (JAX);
- ``cross_entropy``: label-smoothed cross-entropy against ``F.cross_entropy`` and optax,
  the cross-entropy and the softmax focal loss of probability targets, and the call
  overhead on a tiny batch;
- ``softmax_focal``: softmax focal loss against the formula composed directly in each
  library;
- ``additions``: the asymmetric loss against timm's formula (PyTorch) and Poly-1
  cross-entropy against optax (JAX);
- ``memory``: peak extra memory of the NumPy sigmoid focal loss (tracemalloc);
- ``segmentation``: the softmax focal loss (forward and forward+backward, plain,
  smoothed, per-class alpha) and the cross-entropy at segmentation shapes;
- ``scaling``: the sigmoid focal loss and the cross-entropy against batch size over
  four decades, every backend, the ratio at every N.
"""
