"""Deleting a workspace cascades its finished workloads; cursors at the API's bounds (0 to 2^63 - 1) read
the same on SQLite and on a real PostgreSQL, whose integer columns are narrower."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.domain.enums import WorkloadStatus
from astrago.services.bounds import INT64_MAX
from astrago.store.models import Event, Membership, QuotaEntry, Replica, Workload
from astrago.store.repositories import (
    AuditRepository,
    EventRepository,
    QuotaRepository,
    UserRepository,
    WorkloadRepository,
    WorkspaceRepository,
)


def _workload(workload_id: str, workspace_id: str, status: WorkloadStatus) -> Workload:
    return Workload(
        id=workload_id,
        workspace_id=workspace_id,
        name=workload_id,
        kind="job",
        status=status.value,
        replicas=1,
        spec={"command": ["true"], "resources": {"cpu_milli": 100, "memory_mib": 64, "gpus": 0}},
    )


async def _count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_deleting_a_workspace_takes_its_history_with_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        user = await UserRepository(session).add("alice", "hash", is_admin=False)
        spaces = WorkspaceRepository(session)
        gone, kept = await spaces.add("ml-gone", ""), await spaces.add("ml-kept", "")
        await spaces.set_member(gone.id, user.id, "member")
        await QuotaRepository(session).set(gone.id, "gpu", 1000, 2000)
        for workload_id, space in (("w-done", gone), ("w-failed", gone), ("w-other", kept)):
            WorkloadRepository(session).add(_workload(workload_id, space.id, WorkloadStatus.SUCCEEDED))
        await session.flush()
        session.add(Replica(workload_id="w-done", index=0, node="n", cpu_milli=100, memory_mib=64))
        for workload_id in ("w-done", "w-other"):
            EventRepository(session).add(workload_id, "Submitted", "by alice")
    async with sessions.begin() as session:
        workspace = await WorkspaceRepository(session).by_name("ml-gone")
        assert workspace is not None
        assert await WorkspaceRepository(session).delete(workspace) == 2
    async with sessions() as session:
        assert await WorkspaceRepository(session).by_name("ml-gone") is None
        assert set((await WorkloadRepository(session).by_ids(["w-done", "w-failed", "w-other"])).keys()) == {
            "w-other"
        }
        assert await _count(session, Event) == 1
        assert await _count(session, Replica) == 0
        assert await _count(session, Membership) == 0
        assert await _count(session, QuotaEntry) == 0


async def test_cursors_at_the_bounds(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        space = await WorkspaceRepository(session).add("ml-a", "")
        WorkloadRepository(session).add(_workload("w1", space.id, WorkloadStatus.PENDING))
        AuditRepository(session).add("alice", "workload.submit", "w1", "ok", None)
    async with sessions() as session:
        for cursor, expected in ((INT64_MAX, ["w1"]), (0, [])):
            page = await WorkloadRepository(session).page([space.id], None, 10, cursor)
            assert [w.id for w in page.items] == expected
        assert len(await AuditRepository(session).recent(10, INT64_MAX)) == 1
        assert await AuditRepository(session).recent(10, 0) == []
