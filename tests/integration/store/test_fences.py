"""GPU health fencing and cordons on SQLite, PostgreSQL and MariaDB: what the health monitor reports becomes a
recorded state with its cause, told to the workloads on the GPU and audited; the scheduler's view keeps
fenced and cordoned GPUs out and names them; admins cordon and uncordon."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.auth.principal import Principal
from astrago.config import Settings
from astrago.domain.enums import WorkloadStatus
from astrago.domain.gpu_health import GpuHealthState, HealthSignals
from astrago.services.context import ServiceContext
from astrago.services.errors import Forbidden, InvalidInput, NotFound
from astrago.services.fences import FenceService
from astrago.services.snapshot import nodes_view
from astrago.store.models import Device, Replica, Workload
from astrago.store.repositories import (
    AuditRepository,
    EventRepository,
    FenceRepository,
    NodeRepository,
    WorkspaceRepository,
)

NODE = "node-a"
ADMIN = Principal(user_id="admin", username="admin", is_admin=True)
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
XID_79 = "XID 79 (GPU fallen off the bus)"


@pytest.fixture
async def ctx(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> ServiceContext:
    ctx = ServiceContext(sessions=sessions, settings=Settings(data_dir=tmp_path))
    async with ctx.write() as session:
        space = await WorkspaceRepository(session).add("ml-a", "")
        session.add(
            Workload(
                id="wl-on-gpu-2",
                workspace_id=space.id,
                name="train",
                kind="job",
                status=WorkloadStatus.RUNNING.value,
                replicas=1,
                spec={"command": ["true"], "resources": {"cpu_milli": 100, "memory_mib": 64, "gpus": 1}},
            )
        )
        await session.flush()
        session.add(
            Replica(
                workload_id="wl-on-gpu-2",
                index=0,
                node=NODE,
                cpu_milli=100,
                memory_mib=64,
                gpu_indices=[2],
                gpu_milli=1000,
            )
        )
        await NodeRepository(session).upsert(
            name=NODE,
            backend="local",
            cpu_milli=8000,
            memory_mib=65536,
            schedulable=True,
            simulated=True,
            labels={},
            seen_at=T0,
            devices=[Device(index=i, model="A100-80GB", memory_mib=81920, simulated=True) for i in range(4)],
            gpus_held_by_others=1,
        )
    return ctx


async def test_an_xid_fences_the_gpu_tells_its_workloads_and_stays_until_cleared(ctx: ServiceContext) -> None:
    fences = FenceService(ctx)
    (change,) = await fences.observe(NODE, {2: HealthSignals()}, {2: [13, 79]}, at=T0)
    assert change.after.state is GpuHealthState.UNHEALTHY
    assert change.workloads == ("wl-on-gpu-2",)
    async with ctx.read() as session:
        record = await FenceRepository(session).health(NODE, 2)
        assert record is not None
        assert (record.state, record.cause, record.sticky, record.since) == ("unhealthy", XID_79, True, T0)
        (told,) = [
            e for e in await EventRepository(session).for_workload("wl-on-gpu-2") if e.type == "GpuUnhealthy"
        ]
        assert XID_79 in told.reason
        (audit,) = [a for a in await AuditRepository(session).recent(10) if a.action == "gpu.health"]
        assert (audit.actor, audit.target, audit.detail) == (None, f"{NODE}/gpu2", f"unhealthy: {XID_79}")
        view = {g.index: g for g in (await nodes_view(session))[0].gpus}
    assert view[2].fenced == f"GPU 2 on node {NODE} is fenced: {XID_79}"
    assert view[3].held_by_others  # counted on the highest free GPU that is neither in use nor fenced
    assert not view[0].fenced

    assert await fences.observe(NODE, {2: HealthSignals()}, {}) == []  # a clean reading: still fenced
    assert await fences.uncordon(ADMIN, NODE, 2) is True  # an admin clears it
    async with ctx.read() as session:
        assert await FenceRepository(session).health(NODE, 2) is None
        assert (await nodes_view(session))[0].gpus[2].fenced is None


async def test_conditions_fence_while_reported_and_slowdowns_only_degrade(ctx: ServiceContext) -> None:
    fences = FenceService(ctx)
    await fences.observe(
        NODE, {0: HealthSignals(ecc_uncorrectable=2), 1: HealthSignals(slowdowns=("hw_thermal",))}, {}
    )
    async with ctx.read() as session:
        gpus = (await nodes_view(session))[0].gpus
    assert (
        gpus[0].fenced
        == f"GPU 0 on node {NODE} is fenced: 2 uncorrectable ECC errors since the driver loaded"
    )
    assert gpus[1].fenced is None  # degraded: still takes work
    (cleared,) = await fences.observe(
        NODE, {0: HealthSignals(ecc_uncorrectable=0), 1: HealthSignals(slowdowns=("hw_thermal",))}, {}
    )
    assert cleared.after.state is GpuHealthState.HEALTHY
    async with ctx.read() as session:
        states = {r.gpu_index: r.state for r in await FenceRepository(session).health_records()}
    assert states == {1: "degraded"}


async def test_cordons_by_admins_only_on_known_nodes_and_gpus(ctx: ServiceContext) -> None:
    fences = FenceService(ctx)
    cordon = await fences.cordon(ADMIN, NODE, 1, "  fan noise ")
    assert (cordon.reason, cordon.cordoned_by) == ("fan noise", "admin")
    await fences.cordon(ADMIN, NODE, None, None)
    async with ctx.read() as session:
        (node,) = await nodes_view(session)
        capacity_only = (await nodes_view(session, with_fences=False))[0]
    assert node.cordoned == f"node {NODE} is cordoned by admin"
    assert not node.schedulable
    assert node.gpus[1].fenced == f"GPU 1 on node {NODE} is cordoned by admin: fan noise"
    assert capacity_only.schedulable  # submissions are not refused for a cordon: they wait, told why
    with pytest.raises(NotFound, match="no node named 'nope'"):
        await fences.cordon(ADMIN, "nope", None, None)
    with pytest.raises(InvalidInput, match=f"node {NODE} has no GPU 9"):
        await fences.cordon(ADMIN, NODE, 9, None)
    with pytest.raises(Forbidden):
        await fences.cordon(Principal(user_id="u", username="alice", is_admin=False), NODE, None, None)
    assert await fences.uncordon(ADMIN, NODE, None) is True
    assert await fences.uncordon(ADMIN, NODE, None) is False
    async with ctx.read() as session:
        actions = [(a.action, a.target, a.result) for a in await AuditRepository(session).recent(20)]
    assert ("node.cordon", f"{NODE}/gpu1", "ok") in actions
    refused = [r for a, t, r in actions if (a, t) == ("node.cordon", "nope")]
    assert refused
    assert refused[0] != "ok"  # refusals are on record too
