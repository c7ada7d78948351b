"""The results as Markdown tables: one per store size, systems side by side, with their ratio."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from results import Checkpoint, SystemRun

# (label, value of a checkpoint, higher is better)
Row = tuple[str, Callable[[Checkpoint], float], bool]


def _rows(page: int, concurrency: int) -> list[Row]:
    return [
        (f"submit throughput, {concurrency} clients (workloads/s)", lambda c: c.submit.per_second, True),
        ("submissions refused (errors)", lambda c: float(sum(c.submit.failures.values())), False),
        ("submit latency p50 (ms)", lambda c: c.submit.latency.p50_ms, False),
        ("submit latency p99 (ms)", lambda c: c.submit.latency.p99_ms, False),
        (f"list first page of {page}, p50 (ms)", lambda c: c.latencies["list_first"].p50_ms, False),
        (f"list first page of {page}, p99 (ms)", lambda c: c.latencies["list_first"].p99_ms, False),
        ("list deep page (cursor at 90 %), p50 (ms)", lambda c: c.latencies["list_deep"].p50_ms, False),
        ("list deep page (cursor at 90 %), p99 (ms)", lambda c: c.latencies["list_deep"].p99_ms, False),
        ("get one, p50 (ms)", lambda c: c.latencies["get"].p50_ms, False),
        ("get one, p99 (ms)", lambda c: c.latencies["get"].p99_ms, False),
        (f"list throughput, {concurrency} clients (req/s)", lambda c: c.list_per_second, True),
        ("walk the whole store in pages of 50 (s)", lambda c: c.walk.seconds, False),
        ("server CPU while idle (% of a core)", lambda c: c.idle.cpu_percent, False),
    ]


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _advantage(values: list[float], higher_is_better: bool) -> str:
    first, second = values
    if first <= 0 or second <= 0:
        return "n/a"
    ratio = first / second if higher_is_better else second / first
    return f"{ratio:.1f}×"


def _checkpoint_table(size: int, runs: list[SystemRun], page: int, concurrency: int) -> list[str]:
    at_size = [(run, next(c for c in run.checkpoints if c.store_size == size)) for run in runs]
    names = [run.info.name for run, _ in at_size]
    header = ["measure", *names]
    if len(at_size) == 2:
        header.append(f"{names[0]} advantage")
    lines = [
        f"### {size:,} workloads in the store",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for label, value_of, higher_is_better in _rows(page, concurrency):
        values = [value_of(checkpoint) for _, checkpoint in at_size]
        cells = [label, *(_fmt(v) for v in values)]
        if len(values) == 2:
            cells.append(_advantage(values, higher_is_better))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for run, checkpoint in at_size:
        gauges = _scheduler_note(checkpoint)
        load = ", ".join(f"{v:.2f}" for v in checkpoint.load_average)
        lines.append(
            f"- {run.info.name}: machine load average before this checkpoint {load}; "
            f"submits measured over {checkpoint.submit.count:,} workloads; {gauges}"
        )
        for answer, times in checkpoint.submit.failures.items():
            lines.append(f"  - {run.info.name} refused {times} submissions with {answer}")
    lines.append("")
    return lines


def _scheduler_note(checkpoint: Checkpoint) -> str:
    before, after = checkpoint.idle.gauges_before, checkpoint.idle.gauges_after
    count_key, sum_key = "astrago_scheduling_cycle_seconds_count", "astrago_scheduling_cycle_seconds_sum"
    if count_key not in after:
        return "no scheduler figures exported"
    cycles = after[count_key] - before.get(count_key, 0.0)
    seconds = after[sum_key] - before.get(sum_key, 0.0)
    mean = f"{1000 * seconds / cycles:.0f} ms" if cycles else "n/a"
    return (
        f"while idle: {cycles:.0f} scheduling cycles in {checkpoint.idle.seconds:.0f} s, mean cycle {mean}, "
        f"queue length {after.get('astrago_queue_length', float('nan')):,.0f}"
    )


def _start_table(runs: list[SystemRun]) -> list[str]:
    names = [run.info.name for run in runs]
    header = ["measure", *names] + ([f"{names[0]} advantage"] if len(runs) == 2 else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, values in (
        ("answers after start (s)", [run.ready_s for run in runs]),
        ("install into a fresh venv (s)", [run.install_s for run in runs]),
    ):
        cells = [label, *(_fmt(v) if v is not None else "not measured" for v in values)]
        if len(runs) == 2:
            known = [v for v in values if v is not None]
            cells.append(_advantage(known, False) if len(known) == 2 else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def revision() -> str:
    """The checkout's commit, marked when src/ has uncommitted changes (the server runs the working tree)."""
    root = Path(__file__).resolve().parents[2]
    git = ["git", "-C", str(root)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True).stdout
    return head.strip() + (" with uncommitted changes in src/" if dirty.strip() else "")


def render(runs: list[SystemRun], args: argparse.Namespace, revision: str) -> str:
    sizes = sorted({c.store_size for run in runs for c in run.checkpoints})
    lines = [
        f"## Results of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{' '.join(['benchmarks/api/run.sh', *sys.argv[1:]])}` at AstraGo commit {revision}",
        f"Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; "
        f"{args.rounds} sequential samples per latency, medians and p99 over them.",
        "",
        *(f"- {run.info.name} {run.info.version}: {'; '.join(run.info.notes)}" for run in runs),
        *(
            f"- {run.info.name}: the submit budget of {args.submit_budget_seconds:.0f} s ran out before "
            f"{run.budget_ran_out_before:,} workloads; measured at {run.checkpoints[-1].store_size:,}"
            for run in runs
            if run.budget_ran_out_before is not None
        ),
        "",
        *_start_table(runs),
        "",
    ]
    for size in sizes:
        lines += _checkpoint_table(
            size,
            [r for r in runs if any(c.store_size == size for c in r.checkpoints)],
            args.page,
            args.concurrency,
        )
    return "\n".join(lines)
