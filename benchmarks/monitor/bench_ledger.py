"""Usage ledger benchmark: how long a usage report takes over 90 days of 100 users' allocations.

Setup (a temporary SQLite database in WAL mode, migrated to head, as a single-machine install has): 10
workspaces of 10 users each; every user starts `--jobs-per-day` jobs a day for 90 days, each 1 to 12 hours
long (so many cross midnight) with 1, 2, 4 or 8 GPUs of one of three models, 1 to 3 replicas; the last
day's jobs are still running (open intervals, counted up to now). With `--samples`, every replica run also
has its telemetry: one 5-minute rolled-up row per replica for its whole run, written as the sampler writes
rows (so the ledger adds up their used time per interval and hour on the way in; raw 10 s rows only exist
for the last day and are left out).

Measured: `UsageService.report` as the API calls it (reading the intervals, splitting them at midnight,
adding up, and with samples reading the ledger's used time per interval and day), for an admin over all
workspaces by workspace, user, model and day, and for a member of one workspace by day: p50 and p99 of
`--repeats` runs each, of wall time and of CPU time (this process, all threads; on a loaded machine wall
time mostly waits for a core).

    .venv/bin/python -m benchmarks.monitor.bench_ledger
    .venv/bin/python -m benchmarks.monitor.bench_ledger --samples
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from astrago.auth.principal import Principal
from astrago.config import Settings
from astrago.domain.enums import WorkspaceRole
from astrago.domain.usage import UsageGroupBy
from astrago.services.context import ServiceContext
from astrago.services.usage import UsageQuery, UsageService
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head
from astrago.store.models import AllocationInterval, Workload, Workspace
from astrago.store.repositories.gpu_samples import GpuSampleRepository, WorkloadSampleValues

DAYS = 90
WORKSPACES = 10
USERS_PER_WORKSPACE = 10
MODELS = ("A100-80GB", "H100-80GB", "L40S")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ROLLUP_S = 300


def build_rows(jobs_per_day: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(workspaces, intervals) as plain rows."""
    rng = random.Random(seed)
    workspaces = [{"id": f"ws{w:02d}", "name": f"team-{w:02d}", "description": ""} for w in range(WORKSPACES)]
    intervals: list[dict[str, Any]] = []
    first_day = NOW - timedelta(days=DAYS)
    for w in range(WORKSPACES):
        for u in range(USERS_PER_WORKSPACE):
            for day in range(DAYS):
                for job in range(jobs_per_day):
                    start = first_day + timedelta(days=day, seconds=rng.randint(0, 86_399))
                    end: datetime | None = start + timedelta(seconds=rng.randint(3600, 12 * 3600))
                    if end is not None and end > NOW - timedelta(hours=1):
                        end = None  # still running
                    gpus = rng.choice((1, 2, 4, 8))
                    workload = f"w{w:02d}u{u:02d}d{day:02d}j{job}"
                    for replica in range(rng.randint(1, 3)):
                        intervals.append(
                            {
                                "workload_id": workload,
                                "workload_name": workload,
                                "replica_index": replica,
                                "workspace_id": f"ws{w:02d}",
                                "workspace": f"team-{w:02d}",
                                "user_id": None,
                                "username": f"user-{w:02d}-{u:02d}",
                                "node": f"node-{rng.randint(0, 31)}",
                                "gpu_model": rng.choice(MODELS),
                                "gpu_count": gpus,
                                "gpu_milli": gpus * 1000,
                                "mig_profile": None,
                                "cpu_milli": gpus * 8000,
                                "memory_mib": gpus * 65536,
                                "started_at": start,
                                "ended_at": end,
                            }
                        )
    return workspaces, intervals


def sample_rows(intervals: list[dict[str, Any]], seed: int) -> list[WorkloadSampleValues]:
    rng = random.Random(seed)
    rows: list[WorkloadSampleValues] = []
    for interval in intervals:
        at = interval["started_at"]
        end = interval["ended_at"] or NOW
        while at < end:
            rows.append(
                WorkloadSampleValues(
                    workload_id=interval["workload_id"],
                    replica_index=interval["replica_index"],
                    node=interval["node"],
                    gpu_index=0,
                    at=at,
                    resolution_s=ROLLUP_S,
                    sampled_s=ROLLUP_S,
                    gpu_util_percent=rng.uniform(0, 100),
                    memory_used_bytes=1 << 30,
                    source="scripted",
                )
            )
            at += timedelta(seconds=ROLLUP_S)
    return rows


async def fill(ctx: ServiceContext, workspaces: list[dict[str, Any]], intervals: list[dict[str, Any]],
               samples: list[WorkloadSampleValues]) -> None:  # fmt: skip
    async with ctx.write() as session:
        await session.execute(insert(Workspace), workspaces)
        for start in range(0, len(intervals), 5000):
            await session.execute(insert(AllocationInterval), intervals[start : start + 5000])
    # samples belong to workload rows (they go with their workload)
    workloads = sorted({(i["workload_id"], i["workspace_id"]) for i in intervals})
    if samples:
        async with ctx.write() as session:
            rows = [
                {"id": w, "workspace_id": ws, "name": w, "kind": "batch", "status": "SUCCEEDED", "spec": {}}
                for w, ws in workloads
            ]
            for start in range(0, len(rows), 5000):
                await session.execute(insert(Workload), rows[start : start + 5000])
    # written as the sampler writes them, so the ledger adds up their used GPU time on the way in
    for start in range(0, len(samples), 20_000):
        async with ctx.write() as session:
            await GpuSampleRepository(session).insert_samples(samples[start : start + 20_000], [])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    service: UsageService, principal: Principal, query: UsageQuery, repeats: int
) -> tuple[list[float], list[float]]:
    """Wall times and CPU times (this process, all threads: SQLite runs in aiosqlite's thread)."""
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        report = await service.report(principal, query, now=NOW)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    assert report.total.gpu_hours > 0
    return walls, cpus


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await upgrade_to_head(engine)
        ctx = ServiceContext(
            create_session_factory(engine),
            Settings(data_dir=Path(tmp), admin_password="x" * 12),
            serialize_writes=True,
        )
        workspaces, intervals = build_rows(args.jobs_per_day, args.seed)
        samples = sample_rows(intervals, args.seed) if args.samples else []
        started = time.perf_counter()
        await fill(ctx, workspaces, intervals, samples)
        print(
            f"{len(intervals):,} allocation intervals, {len(samples):,} sample rows "
            f"(filled in {time.perf_counter() - started:.1f} s); load average {os.getloadavg()[0]:.1f}"
        )
        service = UsageService(ctx)
        admin = Principal("admin", "admin", True)
        member = Principal("u", "user-00-00", False, {"ws00": WorkspaceRole.MEMBER})
        first, last = (NOW - timedelta(days=DAYS)).date(), date(2026, 12, 2)
        cases = [
            (f"admin, all workspaces, by {by.value}", admin, UsageQuery(start=first, end=last, by=by))
            for by in UsageGroupBy
        ]
        cases.append(
            (
                "member, one workspace, by day",
                member,
                UsageQuery(workspace="team-00", start=first, end=last, by=UsageGroupBy.DAY),
            )
        )
        print("| report (90 days) | wall p50 | wall p99 | CPU p50 | CPU p99 |")
        print("|---|---|---|---|---|")
        for name, principal, query in cases:
            await measure(service, principal, query, 1)  # warm: caches, first connection
            walls, cpus = await measure(service, principal, query, args.repeats)
            figures = [
                percentile(walls, 0.5),
                percentile(walls, 0.99),
                percentile(cpus, 0.5),
                percentile(cpus, 0.99),
            ]
            print(f"| {name} | " + " | ".join(f"{f * 1000:.0f} ms" for f in figures) + " |")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs-per-day", type=int, default=1, help="jobs each user starts a day")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--samples", action="store_true", help="add 5-minute telemetry rows for every run")
    parser.add_argument("--seed", type=int, default=13)
    asyncio.run(main(parser.parse_args()))
