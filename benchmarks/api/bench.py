"""API benchmark: AstraGo vs dstack, the same load in one run, driven from this process over loopback.

For each system: start the server (timed until it answers), submit workloads that stay queued from several
concurrent clients, and at each checkpoint (store size) measure its idle CPU, the latency of a first page,
a deep page and a get, list throughput, and a walk through the whole store. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
import measure
from api_system import ApiSystem
from astrago_system import AstraGoSystem
from dstack_system import DstackSystem, ensure_venv, timed_install
from report import render, revision
from results import Checkpoint, Options, SystemRun

REPO_ROOT = Path(__file__).resolve().parents[2]
DEEP_FRACTION = 0.9  # the deep page starts after 90 % of the store


async def run_system(
    system: ApiSystem, sizes: list[int], options: Options, install_s: float | None
) -> SystemRun:
    name = system.info.name
    print(f"[{name}] starting", flush=True)
    ready_s = system.start()
    print(f"[{name}] answered after {ready_s:.1f} s", flush=True)
    run = SystemRun(info=system.info, ready_s=ready_s, install_s=install_s)
    limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
    try:
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            await system.prepare(client)
            ids: list[str] = []
            indices = itertools.count()
            deadline = time.perf_counter() + options.submit_budget_s
            for size in sizes:
                submit, new_ids = await measure.submit_load(
                    system, client, indices, size - len(ids), options.concurrency, deadline
                )
                ids += new_ids
                refused = f", {submit.failures} refused" if submit.failures else ""
                print(f"[{name}] {len(ids)} submitted: {submit.per_second:.1f}/s{refused}", flush=True)
                checkpoint = await measure_checkpoint(system, client, len(ids), submit, ids, options)
                run.checkpoints.append(checkpoint)
                if len(ids) < size:
                    print(f"[{name}] the submit budget ran out before {size}", flush=True)
                    run.budget_ran_out_before = size
                    break
    finally:
        system.stop()
    return run


async def measure_checkpoint(
    system: ApiSystem,
    client: httpx.AsyncClient,
    size: int,
    submit: measure.SubmitResult,
    ids: list[str],
    options: Options,
) -> Checkpoint:
    name = system.info.name
    load_average = os.getloadavg()
    idle = await measure.idle_cpu(system, client, options.idle_s)
    deep_cursor = await measure.cursor_at(system, client, int(size * DEEP_FRACTION))
    latencies = await measure.request_latencies(
        system, client, options.rounds, options.page, deep_cursor, ids
    )
    list_per_second = await measure.list_throughput(
        system, client, options.page, options.concurrency, options.throughput_s
    )
    walked = await measure.walk(system, client)
    if walked.items != size:
        raise RuntimeError(f"{name} lists {walked.items} workloads, but {size} were submitted")
    summary = ", ".join(f"{k} p50 {v.p50_ms:.1f} p99 {v.p99_ms:.1f} ms" for k, v in latencies.items())
    print(f"[{name}] at {size}: idle CPU {idle.cpu_percent:.0f} %, {summary}", flush=True)
    return Checkpoint(size, submit, idle, latencies, list_per_second, walked, load_average)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--workloads", type=int, default=10_000, help="AstraGo's final store size")
    parser.add_argument("--dstack-runs", type=int, default=1_000, help="dstack's final store size (0: skip)")
    parser.add_argument(
        "--checkpoint", type=int, default=1_000, help="an extra store size measured on both, for ratios"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients for submits and lists")
    parser.add_argument("--rounds", type=int, default=300, help="sequential samples per request kind")
    parser.add_argument("--page", type=int, default=50, help="page size of the measured lists")
    parser.add_argument("--throughput-seconds", type=float, default=10.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument(
        "--submit-budget-seconds",
        type=float,
        default=1200.0,
        help="per system: stop submitting after this long and measure the store as it is",
    )
    parser.add_argument(
        "--measure-install", action="store_true", help="time fresh installs of both into .work/ venvs"
    )
    parser.add_argument("--work-dir", type=Path, default=Path(__file__).resolve().parent / ".work")
    args = parser.parse_args(argv)
    if args.checkpoint > args.workloads or (args.dstack_runs and args.checkpoint > args.dstack_runs):
        parser.error("--checkpoint must not exceed --workloads or --dstack-runs")
    return args


async def main_async(args: argparse.Namespace) -> list[SystemRun]:
    work: Path = args.work_dir.resolve()
    started_at = revision()  # the server runs the working tree as it is now
    run_dir = work / datetime.now(UTC).strftime("run-%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True)
    options = Options(
        args.concurrency,
        args.rounds,
        args.page,
        args.throughput_seconds,
        args.idle_seconds,
        args.submit_budget_seconds,
    )
    astrago_install = None
    if args.measure_install:
        # Not editable, from this checkout: what `pip install` of a release would do.
        venv = work / "astrago-install-venv"
        shutil.rmtree(venv, ignore_errors=True)
        astrago_install = timed_install(venv, str(REPO_ROOT), run_dir / "install.log")
    astrago = AstraGoSystem(Path(sys.executable).parent / "astrago", run_dir, _astrago_version())
    runs = [await run_system(astrago, sorted({args.checkpoint, args.workloads}), options, astrago_install)]
    if args.dstack_runs:
        venv = work / "dstack-venv"
        if args.measure_install:
            shutil.rmtree(venv, ignore_errors=True)
        dstack_install = ensure_venv(venv, run_dir / "install.log")
        dstack = DstackSystem(venv, run_dir)
        runs.append(
            await run_system(dstack, sorted({args.checkpoint, args.dstack_runs}), options, dstack_install)
        )
    (run_dir / "results.json").write_text(json.dumps([asdict(r) for r in runs], indent=2))
    markdown = render(runs, args, started_at)
    (run_dir / "results.md").write_text(markdown)
    print(markdown)
    print(f"results in {run_dir}")
    return runs


def _astrago_version() -> str:
    from importlib.metadata import version

    return version("astrago")


def main(argv: list[str] | None = None) -> None:
    asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    main()
