"""The import-time and signature contract: no framework is imported, the public names
are exactly the six functions plus ``__version__``, and every signature is the one in
docs/contract.md (array arguments positional-only, options keyword-only, the given defaults)."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import subprocess
import sys

import pytest

import arraylosses

P = inspect.Parameter
POS, KW = P.POSITIONAL_ONLY, P.KEYWORD_ONLY

# Copied by hand from docs/contract.md: (positional-only names, keyword-only name -> default).
# the keywords 0.2 adds to every loss of 0.1
NEW_02 = {"poly_epsilon": 0.0, "where": None, "normalizer": None}

CONTRACT: dict[str, tuple[tuple[str, ...], dict[str, object]]] = {
    "sigmoid_focal_loss": (
        ("logits", "targets"),
        {
            "alpha": 0.25,
            "gamma": 2.0,
            "label_smoothing": 0.0,
            "smoothing": "uniform",
            "from_logits": True,
            "reduction": "mean",
            "weight": None,
            "pos_weight": None,
            **NEW_02,
        },
    ),
    "softmax_focal_loss": (
        ("logits", "targets"),
        {
            "alpha": None,
            "gamma": 2.0,
            "axis": -1,
            "ignore_index": None,
            "label_smoothing": 0.0,
            "smoothing": "uniform",
            "from_logits": True,
            "reduction": "mean",
            **NEW_02,
        },
    ),
    "binary_cross_entropy": (
        ("logits", "targets"),
        {
            "weight": None,
            "pos_weight": None,
            "label_smoothing": 0.0,
            "smoothing": "uniform",
            "from_logits": True,
            "reduction": "mean",
            **NEW_02,
        },
    ),
    "cross_entropy": (
        ("logits", "targets"),
        {
            "axis": -1,
            "weight": None,
            "ignore_index": None,
            "label_smoothing": 0.0,
            "smoothing": "uniform",
            "from_logits": True,
            "reduction": "mean",
            **NEW_02,
        },
    ),
    "asymmetric_loss": (
        ("logits", "targets"),
        {
            "gamma_pos": 0.0,
            "gamma_neg": 4.0,
            "clip": 0.05,
            "label_smoothing": 0.0,
            "smoothing": "uniform",
            "from_logits": True,
            "reduction": "mean",
            "where": None,
            "normalizer": None,
        },
    ),
    "class_balanced_weights": (("counts",), {"beta": 0.999, "dtype": None}),
    "flsd53_gamma": (("p",), {}),
    "calibration_error": (
        ("logits", "targets"),
        {"n_bins": 15, "norm": "l1", "task": "multiclass", "axis": -1, "from_logits": True},
    ),
    "smooth_labels": (
        ("targets", "epsilon"),
        {"num_classes": None, "axis": -1, "smoothing": "uniform", "dtype": None},
    ),
    "one_hot": (("labels", "num_classes"), {"axis": -1, "dtype": None}),
}

FRAMEWORKS = (
    "numpy", "torch", "jax", "jaxlib", "dask", "cupy", "array_api_strict", "keras", "xgboost",
    "lightgbm", "sklearn",
)  # fmt: skip


@pytest.mark.parametrize("module", ["arraylosses", "arraylosses.boosting"])
def test_import_pulls_in_no_framework(module):
    """``import arraylosses`` (and the boosting adapters, which recognise the boosters'
    data sets by duck typing) in a fresh interpreter imports none of the array or
    training libraries."""
    code = (
        f"import sys, json, {module}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == []


def test_all_is_exactly_the_public_api():
    assert sorted(arraylosses.__all__) == sorted([*CONTRACT, "__version__"])
    assert len(arraylosses.__all__) == len(set(arraylosses.__all__))
    for name in arraylosses.__all__:
        assert hasattr(arraylosses, name), name


def test_public_names_in_dir():
    """Nothing else public leaks from the top-level namespace (private modules aside,
    and the documented public submodules ``arraylosses.testing``, ``.torch``, ``.keras``
    and ``.boosting`` once imported)."""
    public = {n for n in dir(arraylosses) if not n.startswith("_")}
    assert public - {"testing", "torch", "keras", "boosting"} == set(CONTRACT)


def test_version():
    assert isinstance(arraylosses.__version__, str)
    assert arraylosses.__version__ == importlib.metadata.version("arraylosses")


@pytest.mark.parametrize("name", list(CONTRACT))
def test_signature(name):
    positional, keywords = CONTRACT[name]
    params = list(inspect.signature(getattr(arraylosses, name)).parameters.values())
    got_pos = [p for p in params if p.kind is POS]
    got_kw = [p for p in params if p.kind is KW]
    assert len(got_pos) + len(got_kw) == len(params), f"{name}: *args, **kwargs or plain params"
    assert tuple(p.name for p in got_pos) == positional
    assert all(p.default is P.empty for p in got_pos), f"{name}: arrays have no default"
    assert [p.name for p in got_kw] == list(keywords)
    for p in got_kw:
        want = keywords[p.name]
        assert p.default == want, f"{name}({p.name}=...): default {p.default!r} != {want!r}"
        assert type(p.default) is type(want), f"{name}({p.name}): {type(p.default)}"
