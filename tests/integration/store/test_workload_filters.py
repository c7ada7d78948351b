"""Listing workloads filtered by kind and submitter (the console's workloads table), on SQLite and a real
PostgreSQL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.domain.enums import WorkloadKind, WorkloadStatus
from astrago.store.models import Workload
from astrago.store.repositories import UserRepository, WorkloadRepository, WorkspaceRepository


async def test_pages_filter_by_kind_and_submitter(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        alice = await UserRepository(session).add("alice", "hash", is_admin=False)
        bob = await UserRepository(session).add("bob", "hash", is_admin=False)
        space = await WorkspaceRepository(session).add("ml", "")
        for index, (kind, creator) in enumerate(
            [("job", alice), ("service", alice), ("job", bob), ("distributed", alice), ("job", alice)]
        ):
            session.add(
                Workload(
                    id=f"w{index}",
                    workspace_id=space.id,
                    name=f"w{index}",
                    kind=kind,
                    status=WorkloadStatus.PENDING.value,
                    replicas=1,
                    spec={},
                    created_by=creator.id,
                )
            )
    async with sessions() as session:
        workloads = WorkloadRepository(session)
        jobs_of_alice = await workloads.page(None, None, 2, None, [WorkloadKind.JOB], alice.id)
        assert [w.id for w in jobs_of_alice.items] == ["w4", "w0"]
        assert jobs_of_alice.total == 2
        assert jobs_of_alice.next_cursor is None
        either = await workloads.page(None, None, 10, None, [WorkloadKind.SERVICE, WorkloadKind.DISTRIBUTED])
        assert [w.id for w in either.items] == ["w3", "w1"]
        of_bob = await workloads.page(None, None, 10, None, creator_id=bob.id)
        assert [w.id for w in of_bob.items] == ["w2"]
