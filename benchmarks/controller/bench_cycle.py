"""The workload controller's cost with a full store: idle CPU and the time of each step, on SQLite.

Builds a store with `--pending` queued and `--running` running workloads (one GPU each, on exactly as
many GPUs as run, so the queue cannot move), a stand-in backend that reports every running replica as
RUNNING (the cost under test is the controller's, not a backend's), then:
1. times each step alone (`--repeat` times; wall median, and process CPU median and mean): full reconcile,
   stop requests, scheduling, launches, and scheduling after a burst of `--burst` submissions appended to
   the queue (the common case: new work behind a full cluster, whose reasons and positions are written);
2. runs the controller's own loop for `--idle-seconds` with nothing changing and reports the process's
   CPU time over that window (% of one core) and how many loop cycles ran.

Usage: .venv/bin/python benchmarks/controller/bench_cycle.py [--pending 10000] [--running 1000]
Run it against another checkout's code with PYTHONPATH=<checkout>/src (the before/after in README.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

import astrago
from astrago.backends.base import (
    BackendCapabilities,
    DeviceInventory,
    LaunchSpec,
    NodeInventory,
    ReplicaObservation,
)
from astrago.config import Settings
from astrago.controllers.workloads import WorkloadController
from astrago.domain.enums import ReplicaState
from astrago.services.context import ServiceContext
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head
from astrago.store.models import Replica, Workload, Workspace

GPUS_PER_NODE = 8
SPEC = {"command": ["sleep", "3600"], "resources": {"cpu_milli": 100, "memory_mib": 64, "gpus": 1}}


class StandInBackend:
    """Runs nothing; reports the running workloads' replicas as RUNNING, as a healthy cluster would."""

    name = "bench"
    capabilities = BackendCapabilities(backend="bench", supported=frozenset())  # nothing optional

    def __init__(self, nodes: int, running: list[tuple[str, int]]) -> None:
        self.nodes = nodes
        self.running = running
        self.started = 0

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def inventory(self) -> list[NodeInventory]:
        devices = tuple(
            DeviceInventory(index=i, model="A100-80GB", memory_mib=81920) for i in range(GPUS_PER_NODE)
        )
        return [
            NodeInventory(name=f"node-{n:04d}", cpu_milli=128000, memory_mib=1024 * 1024, devices=devices)
            for n in range(self.nodes)
        ]

    async def start(self, spec: LaunchSpec) -> None:
        self.started += 1

    async def stop(self, workload_id: str, grace_s: float, reason: str) -> None: ...

    async def observe(self) -> list[ReplicaObservation]:
        return [ReplicaObservation(w, i, ReplicaState.RUNNING) for w, i in self.running]

    async def watch(self) -> AsyncIterator[ReplicaObservation]:
        await asyncio.Event().wait()
        yield ReplicaObservation("", 0, ReplicaState.RUNNING)  # never reached

    async def logs(self, workload_id: str, replica_index: int, follow: bool) -> AsyncIterator[bytes]:
        yield b""

    async def forget(self, workload_id: str) -> None: ...


async def fill(
    ctx: ServiceContext, pending: int, running: int, workspaces: int = 1
) -> tuple[list[str], list[tuple[str, int]]]:
    """The store with `running` running workloads (all in the first workspace) and `pending` queued ones
    (dealt round-robin over `workspaces`); the workspaces' ids and the running replicas."""
    now = datetime.now(UTC)
    workspace_ids = [uuid.uuid4().hex for _ in range(workspaces)]
    placed: list[tuple[str, int]] = []
    workloads: list[dict[str, Any]] = []
    replicas: list[dict[str, Any]] = []
    for n in range(running + pending):
        workload_id = uuid.uuid4().hex
        is_running = n < running
        row = {
            "id": workload_id, "kind": "job", "name": f"w{n}",
            "workspace_id": workspace_ids[0 if is_running else n % workspaces],
            "status": "RUNNING" if is_running else "PENDING", "priority": 0, "preemptible": True,
            "replicas": 1, "spec": SPEC, "created_at": now, "updated_at": now, "launched": is_running,
            "admitted_seq": n + 1 if is_running else None, "admitted_at": now if is_running else None,
            "started_at": now if is_running else None,
        }  # fmt: skip
        workloads.append(row)
        if is_running:
            node, gpu = divmod(n, GPUS_PER_NODE)
            replicas.append(
                {
                    "workload_id": workload_id,
                    "index": 0,
                    "node": f"node-{node:04d}",
                    "cpu_milli": 100,
                    "memory_mib": 64,
                    "gpu_indices": [gpu],
                    "gpu_uuids": [],
                    "gpu_milli": 1000,
                    "state": "RUNNING",
                    "started_at": now,
                }
            )
            placed.append((workload_id, 0))
    async with ctx.write() as session:
        for index, workspace_id in enumerate(workspace_ids):
            session.add(Workspace(id=workspace_id, name=f"bench-{index}", description=""))
        await session.flush()
        await session.execute(insert(Workload), workloads)
        await session.execute(insert(Replica), replicas)
    return workspace_ids, placed


async def submit_burst(ctx: ServiceContext, workspace_id: str, count: int) -> None:
    """`count` more queued workloads at the end of the queue, as a burst of submissions leaves them."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4().hex,
            "workspace_id": workspace_id,
            "name": "burst",
            "kind": "job",
            "status": "PENDING",
            "priority": 0,
            "preemptible": True,
            "replicas": 1,
            "spec": SPEC,
            "created_at": now,
            "updated_at": now,
            "launched": False,
        }
        for _ in range(count)
    ]
    async with ctx.write() as session:
        await session.execute(insert(Workload), rows)


class GcClock:
    """CPU seconds spent in garbage collection (of the thread that triggered each collection)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: dict[int, float] = {}
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, info: dict[str, int]) -> None:
        thread = threading.get_ident()
        if phase == "start":
            self._started[thread] = time.thread_time()
        elif thread in self._started:
            self.seconds += time.thread_time() - self._started.pop(thread)


GC_CLOCK = GcClock()


async def timed(
    step: Callable[[], Awaitable[None]],
    repeat: int,
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[float], list[float], list[float]]:
    """Wall, CPU and garbage-collection seconds of each run (CPU of the whole process: the engine's
    thread, the database driver's thread). `prepare` runs before each, untimed."""
    walls, cpus, gcs = [], [], []
    for _ in range(repeat):
        if prepare is not None:
            await prepare()
        started, cpu, collecting = time.perf_counter(), time.process_time(), GC_CLOCK.seconds
        await step()
        gcs.append(GC_CLOCK.seconds - collecting)
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - started)
    return walls, cpus, gcs


async def main(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="astrago-bench-controller-"))
    settings = Settings(data_dir=home, scheduling_interval_s=args.interval)
    engine = create_engine(settings.effective_database_url)
    await upgrade_to_head(engine)
    ctx = ServiceContext(create_session_factory(engine), settings, serialize_writes=True)
    nodes = -(-args.running // GPUS_PER_NODE)
    started = time.perf_counter()
    workspace_ids, placed = await fill(ctx, args.pending, args.running, args.workspaces)
    backend = StandInBackend(nodes, placed)
    filled_s = time.perf_counter() - started
    controller = WorkloadController(ctx, backend)
    await controller.sync_inventory()
    await controller.cycle()  # the first cycle writes every queued workload's reason once
    if args.gc_freeze:  # what a server that froze its start-up heap would see (see README.md)
        gc.collect()
        gc.freeze()
    steps = {
        "full_reconcile": controller.full_reconcile,
        "handle_stop_requests": controller.handle_stop_requests,
        "schedule_once": controller.schedule_once,
        "launch_admitted": controller.launch_admitted,
    }
    step_ms: dict[str, float] = {}
    step_cpu: dict[str, dict[str, float]] = {}

    async def measure(name: str, step: Callable[[], Awaitable[None]], prepare: Any = None) -> None:
        walls, cpus, gcs = await timed(step, args.repeat, prepare)
        step_ms[name] = statistics.median(walls) * 1000
        # means as well: a full garbage collection lands in some runs only
        step_cpu[name] = {
            "median": statistics.median(cpus) * 1000,
            "mean": statistics.fmean(cpus) * 1000,
            "gc_mean": statistics.fmean(gcs) * 1000,
        }

    for name, step in steps.items():
        await measure(name, step)
    # the common case: a burst of submissions appended to the queue of a full cluster, then a cycle
    await measure(
        "schedule_after_burst",
        controller.schedule_once,
        lambda: submit_burst(ctx, workspace_ids[-1], args.burst),
    )
    cycles: list[float] = []
    original = controller.cycle

    warmed = asyncio.Event()

    async def counted() -> None:
        began = time.perf_counter()
        await original()
        cycles.append(time.perf_counter() - began)
        if len(cycles) >= 2:
            warmed.set()

    controller.cycle = counted  # type: ignore[method-assign]
    loop = asyncio.create_task(controller.run())
    await warmed.wait()  # the loop's first cycle schedules (start-up signals a change): let it pass
    cycles.clear()
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    await asyncio.sleep(args.idle_seconds)
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    await engine.dispose()
    return {
        "astrago": str(Path(astrago.__file__).parent),
        "pending": args.pending,
        "running": args.running,
        "fill_s": round(filled_s, 2),
        "burst": args.burst,
        "workspaces": args.workspaces,
        "gc_freeze": args.gc_freeze,
        "step_median_ms": {k: round(v, 1) for k, v in step_ms.items()},
        "step_cpu_ms": {k: {m: round(x, 1) for m, x in v.items()} for k, v in step_cpu.items()},
        "idle_cpu_percent": round(100 * cpu / wall, 1),
        "idle_seconds": round(wall, 1),
        "idle_cycles": len(cycles),
        "idle_cycle_median_ms": round(statistics.median(cycles) * 1000, 1) if cycles else None,
        "launches": backend.started,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--running", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=9, help="times each step is timed alone")
    parser.add_argument(
        "--burst", type=int, default=100, help="submissions appended before each timed scheduling cycle"
    )
    parser.add_argument(
        "--workspaces",
        type=int,
        default=1,
        help="queued work dealt over this many workspaces; what runs is the first one's and bursts go to "
        "the last, whose lane comes first under fair share (each burst moves the others' positions)",
    )
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the store is filled: full collections then skip the start-up heap",
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, help="the loop's wake interval (server default)"
    )
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
