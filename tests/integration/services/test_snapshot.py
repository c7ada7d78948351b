"""The scheduler's snapshot read from the store on SQLite, PostgreSQL and MariaDB: requests come from the
`resources` member of each spec as the database extracts it, and equal the requests the whole spec gives;
the snapshot reader reuses last cycle's objects only for rows that did not change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.config import Settings
from astrago.domain.enums import WorkloadStatus
from astrago.scheduler.types import ReplicaPlacement
from astrago.services.context import ServiceContext
from astrago.services.snapshot import PendingState, SnapshotReader, build_snapshot
from astrago.services.specs import resource_request
from astrago.store.models import Replica, Workload
from astrago.store.repositories import WorkspaceRepository


def _spec(resources: dict[str, Any]) -> dict[str, Any]:
    """A spec as submission stores it: the resources beside a command, environment and the rest, which
    the snapshot never reads."""
    return {
        "command": ["python", "train.py", "--lr", "3e-4"],
        "image": None,
        "env": {"GREETING": "안녕하세요", "QUOTE": 'say "hi"'},
        "ports": [],
        "resources": resources,
    }


def _stored(cpu_milli: int, memory_mib: int, **gpu: Any) -> dict[str, Any]:
    """`resources` as submission stores them: every optional key present, null when unused."""
    optional = {"gpus": 0, "gpu_model": None, "gpu_share_milli": None, "mig_profile": None}
    return {"cpu_milli": cpu_milli, "memory_mib": memory_mib, **optional, **gpu}


SPECS = {
    "whole": _spec(_stored(2000, 8192, gpus=2)),
    "model": _spec(_stored(1000, 4096, gpus=1, gpu_model="H100|A100")),
    "share": _spec(_stored(500, 1024, gpu_share_milli=250)),
    "mig": _spec(_stored(500, 1024, mig_profile="1g.10gb")),
    "older": _spec({"cpu_milli": 4000, "memory_mib": 2048}),  # written before optional keys were stored
}


@pytest.fixture
async def ctx(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> ServiceContext:
    ctx = ServiceContext(sessions=sessions, settings=Settings(data_dir=tmp_path))
    async with ctx.write() as session:
        team = await WorkspaceRepository(session).add("ml-a", "")
        for seq, (name, spec) in enumerate(SPECS.items()):
            session.add(
                Workload(
                    id=f"q-{name}",
                    workspace_id=team.id,
                    name=name,
                    kind="job",
                    status=WorkloadStatus.PENDING.value,
                    priority=seq % 2,
                    preemptible=seq != 1,
                    replicas=1 + seq % 3,
                    spec=spec,
                    reason="waiting" if name == "share" else None,
                    pending_code="no_capacity" if name == "share" else None,
                    queue_position=3 if name == "share" else None,
                )
            )
        session.add(
            Workload(
                id="r-running",
                workspace_id=team.id,
                name="running",
                kind="job",
                status=WorkloadStatus.RUNNING.value,
                replicas=2,
                spec=SPECS["whole"],
                admitted_seq=7,
                stop_requested="preempt",
            )
        )
        await session.flush()
        for index, gpus in enumerate(([0, 1], [2, 3])):
            session.add(
                Replica(
                    workload_id="r-running",
                    index=index,
                    node="node-a",
                    cpu_milli=2000,
                    memory_mib=8192,
                    gpu_indices=gpus,
                    gpu_milli=1000,
                )
            )
    return ctx


async def test_requests_from_the_extracted_resources_equal_those_of_the_whole_spec(
    ctx: ServiceContext,
) -> None:
    async with ctx.read() as session:
        snapshot, shown = await build_snapshot(session)

    assert [w.id for w in snapshot.pending] == [f"q-{name}" for name in SPECS]
    for seq, (name, spec) in enumerate(SPECS.items()):
        request = snapshot.pending[seq]
        assert request.resources == resource_request(spec), name
        assert (request.workspace, request.priority, request.preemptible, request.replicas) == (
            "ml-a",
            seq % 2,
            seq != 1,
            1 + seq % 3,
        )
    assert shown["q-share"] == PendingState("no_capacity", "waiting", 3)
    assert shown["q-whole"] == PendingState(None, None, None)
    (running,) = snapshot.running
    assert running.request.resources == resource_request(SPECS["whole"])
    assert (running.started_seq, running.terminating) == (7, True)
    assert running.placements == (
        ReplicaPlacement("node-a", 2000, 8192, (0, 1), 1000),
        ReplicaPlacement("node-a", 2000, 8192, (2, 3), 1000),
    )


async def test_the_reader_reuses_objects_only_for_rows_that_did_not_change(ctx: ServiceContext) -> None:
    reader = SnapshotReader()
    async with ctx.read() as session:
        first, first_shown = await reader.read(session)
    async with ctx.write() as session:
        await session.execute(update(Workload).where(Workload.id == "q-model").values(priority=5))
        await session.execute(
            update(Workload).where(Workload.id == "q-share").values(reason="moved", queue_position=1)
        )
    async with ctx.read() as session:
        second, second_shown = await reader.read(session)

    before = {w.id: w for w in first.pending}
    after = {w.id: w for w in second.pending}
    assert after["q-whole"] is before["q-whole"]
    assert after["q-model"] is not before["q-model"]
    assert after["q-model"].priority == 5
    assert second.running[0] is first.running[0]
    assert second_shown["q-whole"] is first_shown["q-whole"]
    assert second_shown["q-share"] == PendingState("no_capacity", "moved", 1)
    # what a restarted server reads (a fresh reader) is the same snapshot
    async with ctx.read() as session:
        assert await build_snapshot(session) == (second, second_shown)

    async with ctx.write() as session:
        await session.execute(update(Workload).where(Workload.id == "r-running").values(stop_requested=None))
        await session.execute(update(Replica).where(Replica.index == 1).values(gpu_indices=[4, 5]))
    async with ctx.read() as session:
        third, _ = await reader.read(session)
    (running,) = third.running
    assert running is not second.running[0]
    assert running.request is second.running[0].request
    assert not running.terminating
    assert [p.gpu_indices for p in running.placements] == [(0, 1), (4, 5)]
