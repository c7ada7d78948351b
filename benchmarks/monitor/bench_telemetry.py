"""Telemetry benchmark: what one sampling cycle of the server costs, and how many bytes a GPU-day takes.

Cycle: 8 GPUs × 100 processes (800 GPU process entries, each process of its own workload, 100 workloads per
GPU on shared GPUs) with 1,000 live workloads in the database (the other 200 hold no GPU). The source is
the real NVML source code over the fake NVML of tests/unit/gpu/fakes.py (no GPU here); /proc is a fake tree
in a temporary directory where each GPU process descends from its replica's runner through a sandbox
(runner → bwrap → sandbox init → python), as on the local backend. One cycle is `GpuSampler.sample`:
read the source, load the live allocations, attribute every PID by walking its parents, write the rows
(SQLite, WAL). Medians of N cycles of CPU time (this process, all threads) and wall time.

Storage: one GPU held whole by one replica, a day of 10 s samples (8,640 cycles: one replica row and one
GPU row each), then the same day rolled up into 5-minute rows; bytes from SQLite's dbstat (tables and
indexes), divided per GPU-day.

    .venv/bin/python -m benchmarks.monitor.bench_telemetry --cycles 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.unit.gpu.fakes import FakeGpu, FakeNvml, FakeProcess, FakeSample

from astrago.config import Settings
from astrago.domain.enums import WorkloadStatus
from astrago.gpu.sources.nvml import NvmlSource
from astrago.monitor.attribution import ReplicaRef, Root
from astrago.monitor.rollup import roll_up
from astrago.monitor.sampler import GpuSampler
from astrago.services.context import ServiceContext
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head
from astrago.store.models import AllocationInterval, GpuDeviceSample, Replica, Workload, WorkloadGpuSample
from astrago.store.repositories import WorkloadRepository, WorkspaceRepository

NODE = "bench-node"
GPUS = 8
PER_GPU = 100
WORKLOADS = 1000
START = datetime(2026, 12, 1, tzinfo=UTC)


def write_stat(proc: Path, pid: int, ppid: int, start: int) -> None:
    base = proc / str(pid)
    base.mkdir(parents=True, exist_ok=True)
    fields = ["S", str(ppid), str(pid), str(pid), "0", "-1", "4194560", *["0"] * 12, str(start), "0", "0"]
    (base / "stat").write_text(f"{pid} (python) {' '.join(fields)}\n")


def build_node(proc: Path) -> tuple[FakeNvml, list[Root], list[tuple[str, int | None]]]:
    """The fake NVML, the runners, and (workload id, GPU index or None) for every live workload."""
    gpus: list[FakeGpu] = []
    roots: list[Root] = []
    workloads: list[tuple[str, int | None]] = []
    for gpu in range(GPUS):
        processes, samples = [], []
        for n in range(PER_GPU):
            number = gpu * PER_GPU + n
            runner, bwrap, init, python = (10_000 + number * 4 + step for step in range(4))
            for pid, parent in ((runner, 1), (bwrap, runner), (init, bwrap), (python, init)):
                write_stat(proc, pid, parent, start=5000 + pid)
            roots.append(Root(runner, 5000 + runner, ReplicaRef(f"wl-{number:04d}", 0)))
            workloads.append((f"wl-{number:04d}", gpu))
            processes.append(FakeProcess(python, 512))
            samples.append(FakeSample(python, 1_000 + n, 10 + n % 80, n % 40))
        gpus.append(
            FakeGpu(uuid=f"GPU-{gpu:08d}-0000-0000-0000-000000000000", processes=processes, samples=samples)
        )
    for number in range(GPUS * PER_GPU, WORKLOADS):  # live, CPU only
        workloads.append((f"wl-{number:04d}", None))
    return FakeNvml(gpus), roots, workloads


async def seed(ctx: ServiceContext, workloads: list[tuple[str, int | None]]) -> None:
    async with ctx.write() as session:
        space = await WorkspaceRepository(session).add("bench", "")
        repository = WorkloadRepository(session)
        for workload_id, _gpu in workloads:
            repository.add(
                Workload(
                    id=workload_id,
                    workspace_id=space.id,
                    name=workload_id,
                    kind="job",
                    status=WorkloadStatus.RUNNING.value,
                    replicas=1,
                    spec={
                        "command": ["python"],
                        "resources": {"cpu_milli": 100, "memory_mib": 64, "gpus": 0},
                    },
                )
            )
        await session.flush()
        for workload_id, gpu in workloads:
            session.add(
                Replica(
                    workload_id=workload_id,
                    index=0,
                    node=NODE,
                    cpu_milli=100,
                    memory_mib=64,
                    gpu_indices=[] if gpu is None else [gpu],
                    gpu_milli=0 if gpu is None else 10,
                )
            )
            # the open usage-ledger interval the controller records for a running replica: each
            # cycle adds the replica's measured GPU time to it (in the samples' transaction)
            session.add(
                AllocationInterval(
                    workload_id=workload_id, workload_name=workload_id, replica_index=0,
                    workspace_id=space.id, workspace="bench", node=NODE, gpu_model=None,
                    gpu_count=0 if gpu is None else 1, gpu_milli=0 if gpu is None else 10,
                    cpu_milli=100, memory_mib=64, started_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )  # fmt: skip


async def measure_cycles(root: Path, cycles: int) -> dict[str, float]:
    engine = create_engine(f"sqlite+aiosqlite:///{root / 'cycle.db'}")
    await upgrade_to_head(engine)
    ctx = ServiceContext(create_session_factory(engine), Settings(data_dir=root), serialize_writes=True)
    nvml, roots, workloads = build_node(root / "proc")
    await seed(ctx, workloads)
    sampler = GpuSampler(ctx, NvmlSource(nvml), NODE, lambda: roots, proc_root=str(root / "proc"))
    cpu_times, wall_times = [], []
    first = None
    for cycle in range(cycles + 1):
        cpu, wall = time.process_time(), time.perf_counter()
        result = await sampler.sample(START + timedelta(seconds=10 * cycle))
        cpu_times.append(time.process_time() - cpu)
        wall_times.append(time.perf_counter() - wall)
        assert result is not None
        assert result.unattributed_processes == 0, result
        first = first or result
    await engine.dispose()
    assert first is not None
    return {
        "replica_rows": first.replica_rows,
        "device_rows": first.device_rows,
        "cold_cpu_s": cpu_times[0],
        "cpu_s": statistics.median(cpu_times[1:]),
        "wall_s": statistics.median(wall_times[1:]),
    }


def table_bytes(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        db.execute("VACUUM")
        rows = db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    return {name: size for name, size in rows}


def telemetry_bytes(path: Path) -> int:
    return sum(size for name, size in table_bytes(path).items() if "gpu_" in name and "samples" in name)


async def measure_storage(root: Path) -> dict[str, float]:
    path = root / "storage.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade_to_head(engine)
    ctx = ServiceContext(create_session_factory(engine), Settings(data_dir=root), serialize_writes=True)
    await seed(ctx, [("wl-0000", 0)])
    empty = telemetry_bytes(path)
    per_day = 24 * 3600 // 10
    for chunk in range(0, per_day, 2000):
        async with ctx.write() as session:
            for cycle in range(chunk, min(chunk + 2000, per_day)):
                at = START + timedelta(seconds=10 * cycle)
                util = float(cycle % 100)
                session.add(
                    WorkloadGpuSample(
                        workload_id="wl-0000",
                        replica_index=0,
                        node=NODE,
                        gpu_index=0,
                        at=at,
                        resolution_s=10,
                        sampled_s=10,
                        gpu_util_percent=util,
                        memory_used_bytes=(20 + cycle % 7) << 30,
                        source="nvml",
                    )
                )
                session.add(
                    GpuDeviceSample(
                        node=NODE,
                        gpu_index=0,
                        at=at,
                        resolution_s=10,
                        sampled_s=10,
                        gpu_util_percent=util,
                        memory_used_bytes=(20 + cycle % 7) << 30,
                        memory_total_bytes=80 << 30,
                        temperature_celsius=40.0 + cycle % 30,
                        power_watts=250.0 + cycle % 100,
                        healthy=True,
                        mig_enabled=False,
                        source="nvml",
                    )
                )
    raw = telemetry_bytes(path) - empty
    rollup = await roll_up(ctx, START + timedelta(days=2), timedelta(days=1), timedelta(days=90))
    rolled = telemetry_bytes(path) - empty
    await engine.dispose()
    return {
        "raw_rows": 2 * per_day,
        "raw_bytes": raw,
        "rolled_rows": rollup.written,
        "rolled_bytes": rolled,
        "steady_bytes": raw + 90 * rolled,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--interval", type=float, default=10.0, help="the sampling interval to cost against")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="astrago-bench-monitor-") as tmp:
        cycle = await measure_cycles(Path(tmp), args.cycles)
        storage = await measure_storage(Path(tmp))
    load = os.getloadavg()
    cpu_ms, wall_ms, cold_ms = (cycle[key] * 1000 for key in ("cpu_s", "wall_s", "cold_cpu_s"))
    share = cycle["cpu_s"] / args.interval * 100
    raw_kib, rolled_kib = storage["raw_bytes"] / 1024, storage["rolled_bytes"] / 1024
    steady_mib = storage["steady_bytes"] / 1024 / 1024
    print(f"load average: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    print(
        "| setup | rows per cycle | cycle CPU (median) | cycle wall (median) | first cycle CPU | one core |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {GPUS} GPUs × {PER_GPU} processes, {WORKLOADS:,} live workloads, {args.cycles} cycles "
        f"| {cycle['replica_rows']:.0f} + {cycle['device_rows']:.0f} | {cpu_ms:.1f} ms | {wall_ms:.1f} ms "
        f"| {cold_ms:.1f} ms | {share:.2f} % at {args.interval:g} s |"
    )
    print()
    print("| stored per GPU-day (one replica per GPU) | rows | bytes (SQLite, tables + indexes) |")
    print("|---|---|---|")
    print(f"| 10 s samples (kept 1 day) | {storage['raw_rows']:,.0f} | {raw_kib:,.0f} KiB |")
    print(f"| 5-min rollups (kept 90 days) | {storage['rolled_rows']:,.0f} | {rolled_kib:,.1f} KiB |")
    print(f"| steady state per GPU (1 raw day + 90 rolled-up days) | | {steady_mib:,.2f} MiB |")


if __name__ == "__main__":
    asyncio.run(main())
