"""The examples run (reduced in size) and write their figures.

Each runs in a fresh temporary directory with ``ARRAYLOSSES_EXAMPLES_QUICK=1`` and
must exit 0 and leave its PNG there. An example whose library is missing is skipped
with the reason, so each one runs in the sessions that have its library.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _needs(*modules: str) -> None:
    for module in modules:
        pytest.importorskip(module, reason=f"this example needs {module}, not installed here")


def _run(name: str, cwd: Path) -> str:
    env = {**os.environ, "ARRAYLOSSES_EXAMPLES_QUICK": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _assert_png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), f"{path.name} is not a PNG"
    assert len(data) > 10_000, f"{path.name} is suspiciously small: {len(data)} bytes"


def test_focal_curves(tmp_path: Path) -> None:
    _needs("matplotlib")
    out = _run("focal_curves", tmp_path)
    _assert_png(tmp_path / "focal_curves.png")
    # At p_t = 0.8 the focal loss is (1 - 0.8)^gamma times the cross-entropy.
    ratios = {float(g): float(r) for g, r in re.findall(r"gamma=(\S+)\s.*\(([\d.]+) x CE\)", out)}
    assert ratios.keys() == {0.0, 0.5, 1.0, 2.0, 5.0}
    for gamma, ratio in ratios.items():
        assert ratio == pytest.approx(0.2**gamma, abs=6e-5)


def _metrics(out: str) -> dict[str, tuple[float, float]]:
    found = re.findall(
        r"(cross-entropy|focal loss): recall .* = ([\d.]+), average precision = ([\d.]+)", out
    )
    return {name: (float(recall), float(ap)) for name, recall, ap in found}


@pytest.mark.parametrize(
    ("name", "libraries"),
    [("imbalanced_torch", ["torch"]), ("imbalanced_jax", ["jax", "optax"]),
     ("imbalanced_keras", ["keras", "jax"])],
)  # fmt: skip
def test_imbalanced(tmp_path: Path, name: str, libraries: list[str]) -> None:
    _needs("matplotlib", *libraries)
    out = _run(name, tmp_path)
    _assert_png(tmp_path / f"{name}_pr.png")
    metrics = _metrics(out)
    assert metrics.keys() == {"cross-entropy", "focal loss"}
    for recall, ap in metrics.values():
        assert 0.0 <= recall <= 1.0
        # far above the 1 % a random ranking gets, even after the short quick run
        assert 0.1 < ap <= 1.0


def test_calibration(tmp_path: Path) -> None:
    _needs("matplotlib", "torch")
    out = _run("calibration", tmp_path)
    _assert_png(tmp_path / "calibration.png")
    rows = re.findall(r"test accuracy ([\d.]+), mean confidence ([\d.]+), ECE ([\d.]+)", out)
    assert len(rows) == 3
    for accuracy, confidence, ece in (map(float, row) for row in rows):
        assert 0.5 < accuracy <= 1.0  # 5 classes, chance is 0.2
        # ECE >= |accuracy - mean confidence| (triangle inequality over the bins);
        # the printed values are rounded to 3 decimals
        assert abs(confidence - accuracy) <= ece + 2e-3
        assert ece < 0.5


def test_dask_out_of_core(tmp_path: Path) -> None:
    _needs("matplotlib", "dask")
    out = _run("dask_out_of_core", tmp_path)
    _assert_png(tmp_path / "dask_out_of_core.png")
    (dask_mean,) = re.findall(r"Dask:  mean focal loss ([\d.]+)", out)
    (numpy_mean,) = re.findall(r"NumPy: mean focal loss ([\d.]+)", out)
    assert float(dask_mean) == pytest.approx(float(numpy_mean), rel=1e-6)
    assert 0.0 < float(dask_mean) < 1.0


def test_long_tailed(tmp_path: Path) -> None:
    _needs("matplotlib", "torch")
    out = _run("long_tailed", tmp_path)
    _assert_png(tmp_path / "long_tailed.png")
    found = re.findall(r"^(.+): balanced accuracy = ([\d.]+), .* ECE = ([\d.]+)$", out, re.M)
    assert [name for name, _, _ in found] == [
        "cross-entropy",
        "class-balanced focal",
        "Poly-1 (eps = 1)",
    ]
    for _, accuracy, ece in found:
        assert 0.1 < float(accuracy) <= 1.0  # above chance (0.1) on ten classes
        assert 0.0 <= float(ece) <= 1.0


def test_fraud_boosting(tmp_path: Path) -> None:
    _needs("matplotlib", "xgboost", "sklearn")
    out = _run("fraud_boosting", tmp_path)
    _assert_png(tmp_path / "fraud_boosting_pr.png")
    (gap,) = re.findall(r"after 10 rounds: largest probability difference (\S+)", out)
    assert float(gap) < 1e-6  # the custom BCE objective grows binary:logistic's trees
    start, end = map(float, re.findall(r"validation set: ([\d.]+) -> ([\d.]+)", out)[0])
    assert end < start
    aps = dict(
        re.findall(r"^(binary:logistic|focal objective): average precision = ([\d.]+)$", out, re.M)
    )
    assert aps.keys() == {"binary:logistic", "focal objective"}
    for ap in aps.values():
        assert 0.05 < float(ap) <= 1.0  # far above the 0.6 % of a random ranking


def test_dask_cluster(tmp_path: Path) -> None:
    _needs("matplotlib", "distributed")
    out = _run("dask_cluster", tmp_path)
    _assert_png(tmp_path / "dask_cluster.png")
    (cluster, stream) = re.findall(r"mean focal loss: cluster ([\d.]+), one process ([\d.]+)", out)[
        0
    ]
    assert float(cluster) == pytest.approx(float(stream), rel=1e-5)
    peaks = re.findall(
        r"(\d+) MB", out.split("peak resident memory per worker:")[1].splitlines()[0]
    )
    assert len(peaks) == 2  # one per worker process
    assert re.search(r"speed-up of the cluster: [\d.]+x", out)
