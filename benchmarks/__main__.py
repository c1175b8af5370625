"""``python -m benchmarks``: run every case, print the table, write benchmarks/results/."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import (
    additions,
    cross_entropy,
    memory,
    report,
    scaling,
    segmentation,
    sigmoid_focal,
    softmax_focal,
)
from ._harness import REPEATS, WARMUP, Row, Settings

CASES = {
    "sigmoid_focal": sigmoid_focal.run,
    "cross_entropy": cross_entropy.run,
    "softmax_focal": softmax_focal.run,
    "memory": memory.run,
    "additions": additions.run,
    "segmentation": segmentation.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small inputs, a smoke test of the suite (results are not representative)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[*CASES, "scaling"],
        help="run these cases only (repeatable); default: all",
    )
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed repeats (>= 5)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "results",
        help="where to write cpu.md, cpu.json, cpu.png, scaling.png and README-section.md",
    )
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")
    settings = Settings(quick=args.quick, repeats=args.repeats)
    chosen = args.only or [*CASES, "scaling"]

    import torch  # noqa: F401  (so the machine description can read its thread count)

    info = report.machine()
    print(f"machine: {info['cpu']}\nsoftware: {info['software']}")
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows: list[Row] = []
    for name, run in CASES.items():
        if name in chosen:
            print(f"running {name} ...", flush=True)
            rows += run(settings)
    series = []
    if "scaling" in chosen:
        print("running scaling ...", flush=True)
        series = scaling.run(settings)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    print()
    print(report.terminal_table(rows))
    method = (
        f"each side warmed up {WARMUP}×, then timed in {args.repeats} interleaved repeats, "
        f"the sides taking turns to go first (3× as many repeats for calls under 50 ms, "
        f"each repeat then looping both sides' calls the same number of times, about "
        f"50 ms); the table shows the minimum seconds per call. 1-minute load "
        f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{elapsed:.0f} s in all."
    )
    if args.quick:
        method += " QUICK RUN: small inputs, not representative."
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    if args.repeats != REPEATS:
        command += f" --repeats {args.repeats}"
    for case in args.only or ():
        command += f" --only {case}"
    report.write(rows, series, args.out, info, method, command)
    print(f"\nwrote {args.out}/: cpu.md, cpu.json, cpu.png, scaling.png, README-section.md")
    missed = [r for r in rows if r.met is False]
    for r in missed:
        print(f"target not met: {r.case}, {r.backend} {r.measure}: {r.ratio:.2f}× > {r.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
