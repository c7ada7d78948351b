r"""Paired comparison of two policies from fill_reproduction.py result files, seed by seed.

    .venv/bin/python benchmarks/scheduler/compare_fill.py --ours astra --theirs fgd \
        benchmarks/scheduler/results/*.json

For every trace where both policies ran, only the seeds both ran are compared (same seed = same arrival
order and tie order), so the difference is not blurred by which seeds each run happened to use."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean
from typing import Any


def load(paths: list[Path]) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
    runs: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for path in paths:
        for row in json.loads(path.read_text()):
            seeds = runs.setdefault((row["trace"], row["policy"]), {})
            for seed in row["per_seed"]:
                seeds[seed["seed"]] = seed | {"gpus": row["gpus"]}
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ours", default="astra")
    parser.add_argument("--theirs", default="fgd")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    runs = load(args.files)
    print(
        f"| trace | seeds | {args.theirs} @100% | {args.ours} @100% | Δ @100% | {args.theirs} @130% "
        f"| {args.ours} @130% | Δ @130% | Δ unallocated GPUs @130% | seeds better / equal / worse @130% |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for trace in sorted({trace for trace, _ in runs}):
        ours, theirs = runs.get((trace, args.ours)), runs.get((trace, args.theirs))
        if not ours or not theirs:
            continue
        seeds = sorted(set(ours) & set(theirs))
        if not seeds:
            continue
        gpus = ours[seeds[0]]["gpus"]
        a100, b100 = (mean(r[s]["alloc_ratio_at_100"] for s in seeds) for r in (theirs, ours))
        a130, b130 = (mean(r[s]["alloc_ratio_at_130"] for s in seeds) for r in (theirs, ours))
        differences = [ours[s]["alloc_ratio_at_130"] - theirs[s]["alloc_ratio_at_130"] for s in seeds]
        better = sum(d > 0 for d in differences)
        worse = sum(d < 0 for d in differences)
        equal = len(seeds) - better - worse
        unallocated = -(b130 - a130) * gpus / 100
        print(
            f"| {trace} | {seeds[0]}–{seeds[-1]} ({len(seeds)}) | {a100:.2f} | {b100:.2f} "
            f"| {b100 - a100:+.2f} | {a130:.2f} | {b130:.2f} | {b130 - a130:+.2f} | {unallocated:+.1f} "
            f"| {better} / {equal} / {worse} |"
        )


if __name__ == "__main__":
    main()
