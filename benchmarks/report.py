"""The results table (terminal and markdown), the charts and the README section."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from ._harness import Row, fmt_time
from .scaling import Series

HEADER = ("Case", "Backend", "Measure", "Peer", "arraylosses", "Peer time", "Ratio", "Target")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    threads = ""
    if "torch" in sys.modules:
        threads = f", torch {sys.modules['torch'].get_num_threads()} threads"
    libs = ", ".join(
        f"{name} {_version(name)}" for name in ("numpy", "torch", "jax", "optax", "arraylosses")
    )
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores{memory}{threads}, no GPU",
        "software": f"{platform.system()} {platform.release()}, Python {platform.python_version()}; {libs}",
    }


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.2g}×"


def cells(row: Row) -> tuple[str, ...]:
    return (
        row.case,
        row.backend,
        row.measure,
        row.peer,
        row.show(row.ours),
        row.show(row.theirs),
        fmt_ratio(row.ratio),
        f"{row.target_text} {row.verdict}".strip(),
    )


def terminal_table(rows: list[Row]) -> str:
    table = [HEADER, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def scaling_table(series: list[Series]) -> str:
    """One table per loss: the ratio and our time at every N for each backend and
    measure, the worst ratio, and the fitted slopes (ours, peer)."""
    if not series:
        return ""
    out = []
    for loss in dict.fromkeys(s.loss for s in series):
        group = [s for s in series if s.loss == loss]
        measures = sorted({s.measure for s in group})
        out += [f"### {loss}, {' and '.join(measures)}, N × 80 logits", ""]
        head = " | ".join(f"{s.backend} {s.measure} vs {s.peer}" for s in group)
        lines = [f"| N (× 80) | {head} |", "|" + "---|" * (1 + len(group))]
        for i, n in enumerate(group[0].sizes):
            cells = [f"{fmt_ratio(s.ratios()[i])} ({fmt_time(s.ours[i])})" for s in group]
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
        worst = " | ".join(
            f"{fmt_ratio(max(s.ratios()))} at {s.sizes[s.ratios().index(max(s.ratios()))]:,}"
            for s in group
        )
        lines.append(f"| worst ratio | {worst} |")
        slopes = " | ".join(f"{s.slope('ours'):.2f} / {s.slope('theirs'):.2f}" for s in group)
        lines.append(f"| slope, top two decades (ours / peer) | {slopes} |")
        every = sum(max(s.ratios()) <= 1.0 for s in group)
        out += [*lines, "", f"Ratio at most 1 at every N: {every} of {len(group)} series.", ""]
    return "\n".join(out).rstrip()


def ratio_chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.case}\n{r.backend}, {r.measure} vs {r.peer}" for r in rows]
    values = [r.ratio for r in rows]
    colors = ["#999999" if r.met is None else ("#2a9d3a" if r.met else "#c0392b") for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.5))
    ys = range(len(rows))[::-1]
    left = min(values) / 2
    ax.barh(list(ys), [v - left for v in values], left=left, color=colors)
    bounds = [r.target if r.target_on == "ratio" else r.target / r.theirs
              for r in rows if r.target is not None]  # fmt: skip
    ax.set_xlim(left=left, right=1.4 * max(values + bounds))
    for y, r in zip(ys, rows, strict=True):
        # the ratio inside its bar, at the left, where no target tick can cover it
        # (a bar too short to hold it gets it just past its end)
        if r.ratio > 12 * left:
            ax.text(left * 1.12, y, fmt_ratio(r.ratio), va="center", fontsize=8, color="white",
                    fontweight="bold")  # fmt: skip
        else:
            ax.text(r.ratio * 1.05, y, fmt_ratio(r.ratio), va="center", fontsize=8)
        if r.target is not None:
            # a bound on ours alone (memory) is a bound of target / theirs on the ratio
            bound = r.target if r.target_on == "ratio" else r.target / r.theirs
            ax.plot([bound, bound], [y - 0.4, y + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="black", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("arraylosses / peer (time; memory for case e) — lower is better; | = target")
    ax.set_title("arraylosses against its peers on CPU (green: target met, grey: no target)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scaling_chart(series: list[Series], path: Path) -> None:
    """Left: arraylosses / peer against N for every series (1 = parity); right: the
    seconds per call of the forward passes, ours and the peers'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    colors = {"numpy": "#1f77b4", "torch": "#d62728", "jax.jit": "#2ca02c"}
    for s in series:
        c = colors.get(s.backend, "black")
        style = "-" if s.loss == series[0].loss else "--"
        marker = "o" if s.measure == "forward" else "^"
        label = f"{s.loss}, {s.backend} {s.measure} vs {s.peer}"
        left.semilogx(s.sizes, s.ratios(), marker + style, color=c, label=label, markersize=4)
        if s.measure == "forward":
            right.loglog(s.sizes, s.ours, marker + style, color=c, markersize=4,
                         label=f"arraylosses, {s.loss}, {s.backend}")  # fmt: skip
            right.loglog(s.sizes, s.theirs, marker + style, color=c, alpha=0.35,
                         markersize=3, label=f"{s.peer}, {s.loss}, {s.backend}")  # fmt: skip
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_xlabel("N (rows of 80 logits)")
    left.set_ylabel("arraylosses / peer (time; below 1 is faster)")
    left.set_title("Ratio against batch size")
    left.legend(fontsize=6)
    left.grid(True, which="both", alpha=0.3)
    right.set_xlabel("N (rows of 80 logits)")
    right.set_ylabel("seconds per call (forward, mean)")
    right.set_title("Time against batch size (faint: peers)")
    right.legend(fontsize=5, ncol=2)
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(
    rows: list[Row],
    series: list[Series],
    out: Path,
    info: dict[str, str],
    method: str,
    command: str,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    scaling = scaling_table(series)
    met = [r for r in rows if r.met is not None]
    summary = f"{sum(bool(r.met) for r in met)} of {len(met)} targets met."
    body = [
        "# arraylosses against its peers on CPU",
        "",
        f"Machine: {info['cpu']}.  ",
        f"Software: {info['software']}.  ",
        f"Command: `{command}`.  ",
        f"Method: {method}",
        "",
        table,
        "",
        summary,
        "",
        "![ratios](cpu.png)",
    ]
    if scaling:
        body += [
            "",
            "## Scaling: N × 80 logits, N from 100 to 10⁶",
            "",
            scaling,
            "",
            "![scaling](scaling.png)",
        ]
    (out / "cpu.md").write_text("\n".join(body) + "\n")
    raw = {
        "machine": info,
        "method": method,
        "command": command,
        "rows": [dataclasses.asdict(r) | {"ratio": r.ratio, "met": r.met} for r in rows],
        "scaling": [dataclasses.asdict(s) for s in series],
    }
    (out / "cpu.json").write_text(json.dumps(raw, indent=1, ensure_ascii=False) + "\n")
    if rows:
        ratio_chart(rows, out / "cpu.png")
    if series:
        scaling_chart(series, out / "scaling.png")
    section = [
        "## Performance",
        "",
        "arraylosses is timed against what each library's users would otherwise call or",
        "write, on the same inputs in one process, interleaved, keeping the minimum over",
        "repeats after a warm-up. Ratio = arraylosses / peer: below 1 is faster.",
        "",
        f"Machine: {info['cpu']}.  ",
        f"Software: {info['software']}.  ",
        "Command: `nox -s bench` (or `python -m benchmarks` with numpy, torch, jax, optax",
        "and matplotlib installed); it rewrites `benchmarks/results/`.",
        "",
        table,
        "",
        "(a) sigmoid focal loss on RetinaNet-sized logits, (120000, 80) float32, 1%",
        "positives, alpha 0.25, gamma 2, mean; peers: torchvision's `sigmoid_focal_loss`",
        "computation, its direct NumPy transcription, `optax.losses.sigmoid_focal_loss`",
        "(both sides under `jax.jit`). (b) cross-entropy with label smoothing 0.1 on",
        "(4096, 1000) logits and integer labels; peers: `F.cross_entropy`, optax's",
        "`softmax_cross_entropy` of smoothed one-hot labels; with probability targets, the",
        "cross-entropy against `F.cross_entropy` and the softmax focal loss against its",
        "direct composition, forward+backward. (c) softmax focal loss, same",
        "shape, gamma 2, against the formula composed directly in each library. (d) one",
        "call on an (8, 10) batch: the price of validation and dispatch. (e) peak memory",
        "a NumPy call allocates, as a multiple of the logits' bytes (tracemalloc). (f) the",
        "asymmetric loss against timm's formula, the binary cross-entropy against",
        "`F.binary_cross_entropy_with_logits` (same inputs) and Poly-1 against optax. (g) segmentation",
        "shapes: the softmax focal loss (gamma 2, class indices; plain, smoothed 0.1, per-class",
        "alpha) against `F.log_softmax` -> `gather` -> the focal term (and `F.log_softmax`",
        "alone, the floor of any eager forward pass, and `torch.compile` of the direct",
        "composition, what a fused kernel gains), and the cross-entropy against",
        "`F.cross_entropy` and the direct composition (the targets of the issue",
        '"Performance round 2"). The scaling chart at the end of this section times both',
        "losses at every batch size from 100 to 10⁶ rows.",
        "",
        "Where the speed comes from: each loss is defined once (`arraylosses/_elementwise.py`),",
        "and a backend (`arraylosses/_backends/`) leaves the definition only where this",
        "table shows it pays, tested against it (`tests/test_backends.py`):",
        "",
        "- reduced losses on eager CPU arrays are evaluated in cache-sized blocks, so no",
        "  full-size temporary is allocated (page faults dominate eager CPU time); the",
        "  binary cross-entropy is the sigmoid focal loss's kernel at gamma 0;",
        "- on PyTorch, one autograd function evaluates the definition and its analytic",
        "  gradient on blocks in the same pass, with the terms (BCE, sigmoid, `lerp`) from",
        "  PyTorch's fused kernels; the backward pass only scales that gradient (double",
        "  backward rebuilds it as a differentiable graph);",
        "- on NumPy, a block kernel re-arranges the definition with one `exp`, one `log1p`,",
        "  no `where` and no cancellation, into buffers reused across blocks;",
        "- every softmax loss is row-wise, so one that takes the definition (smoothing,",
        "  `ignore_index`, Poly-1, distributions) is evaluated by blocks of rows on NumPy",
        "  and eager PyTorch; on PyTorch with a gradient wanted, autograd runs on one block",
        "  at a time and one full-size gradient buffer is kept; an elementwise loss is",
        "  row-wise with rows of one element, so the asymmetric loss, and the binary",
        "  cross-entropy and sigmoid focal loss where they take the definition, run the same way;",
        "  the softmax focal loss of smoothed class indices or of a distribution takes each",
        "  block's gradient from its analytic form (`p_j sum_c m_c S_c - m_j S_j`), not autograd;",
        "- the cross-entropy of a distribution is `F.cross_entropy` unless its result holds",
        "  a NaN (a masked class, logit -inf: the definition's 0 log 0 is 0);",
        "- the softmax focal loss and the cross-entropy of class indices on PyTorch (no",
        "  smoothing, at least 2^20 logits, a gradient wanted) are one autograd function",
        "  that keeps one full-size buffer, the probabilities, and overwrites it with the",
        "  analytic gradient `w (onehot - p)`: one exponential per logit where",
        "  `F.cross_entropy`'s backward takes a second; otherwise cross-entropy calls",
        "  `F.cross_entropy` on the validated inputs;",
        "- the label's log-probability is computed alone, without materialising the",
        "  others' (under `jax.jit` a gather from them would); on JAX a class axis that",
        "  is not last is moved last first, unless autodiff traces the logits;",
        "- integer gamma is repeated multiplication, labels are gathered rather than",
        "  one-hot encoded, and the array namespace is looked up once per array type.",
        "",
        "Under `torch.compile`, `torch.func` and `jax.jit` the definitions run, fused",
        "by the compiler; on array-api-strict they run unchanged.",
        "",
        "![arraylosses / peer ratios](benchmarks/results/cpu.png)",
        "",
        "Ratio and time against the batch (sigmoid focal loss and cross-entropy, N × 80",
        "logits, N from 100 to 10⁶; the tables of ratios, times and fitted slopes are in",
        "`benchmarks/results/cpu.md`):",
        "",
        "![time against batch size](benchmarks/results/scaling.png)",
    ]
    (out / "README-section.md").write_text("\n".join(section) + "\n")


def redraw(out: Path) -> None:
    """Write the table, the charts and the README section again from the run recorded
    in ``out/cpu.json`` (``python -m benchmarks.report``): a change to the report
    without a new run."""
    raw = json.loads((out / "cpu.json").read_text())
    fields = {f.name for f in dataclasses.fields(Row)}
    rows = [Row(**{k: v for k, v in row.items() if k in fields}) for row in raw["rows"]]
    series = [Series(**s) for s in raw.get("scaling", [])]
    write(rows, series, out, raw["machine"], raw["method"], raw["command"])


if __name__ == "__main__":
    redraw(Path(__file__).resolve().parent / "results")
