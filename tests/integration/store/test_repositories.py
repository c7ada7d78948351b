"""Repositories and migrations on SQLite and on a real PostgreSQL and MariaDB."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.controllers.lease import LeaderLease
from astrago.domain.enums import WorkloadStatus
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head
from astrago.store.models import Device, Replica, Workload
from astrago.store.repositories import (
    NodeRepository,
    QuotaRepository,
    UserRepository,
    WorkloadRepository,
    WorkspaceRepository,
)
from tests.support.mariadb import MariaDBServer


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    await upgrade_to_head(engine)  # idempotent: a restart re-applies nothing
    yield create_session_factory(engine)
    await engine.dispose()


def _workload(
    workload_id: str, workspace_id: str, status: WorkloadStatus = WorkloadStatus.PENDING
) -> Workload:
    return Workload(
        id=workload_id,
        workspace_id=workspace_id,
        name=workload_id,
        kind="job",
        status=status.value,
        replicas=1,
        spec={"command": ["true"], "resources": {"cpu_milli": 100, "memory_mib": 64, "gpus": 0}},
    )


async def test_users_workspaces_memberships_and_quotas(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        user = await UserRepository(session).add("alice", "hash", is_admin=False)
        workspaces = WorkspaceRepository(session)
        space = await workspaces.add("ml-a", "vision team")
        await workspaces.set_member(space.id, user.id, "member")
        await workspaces.set_member(space.id, user.id, "manager")  # a second call changes the role
        await QuotaRepository(session).set(space.id, "gpu", 2000, 4000)
        await QuotaRepository(session).set(space.id, "gpu", 1000, None)
    async with sessions() as session:
        members = await WorkspaceRepository(session).members(space.id)
        assert [(m.user.username, m.role) for m in members] == [("alice", "manager")]
        quota = await QuotaRepository(session).for_workspace(space.id)
        assert [(q.resource, q.guaranteed, q.limit) for q in quota] == [("gpu", 1000, None)]
        assert (await UserRepository(session).by_username("alice")) is not None
        assert await UserRepository(session).count() == 1


async def test_workload_pages_are_newest_first_and_stable(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        space = await WorkspaceRepository(session).add("ml-a", "")
        for i in range(7):
            status = WorkloadStatus.RUNNING if i % 2 else WorkloadStatus.PENDING
            WorkloadRepository(session).add(_workload(f"w{i}", space.id, status))
    async with sessions() as session:
        repo = WorkloadRepository(session)
        first = await repo.page([space.id], None, 3, None)
        assert [w.id for w in first.items] == ["w6", "w5", "w4"]
        assert first.total == 7
        second = await repo.page([space.id], None, 3, first.next_cursor)
        assert [w.id for w in second.items] == ["w3", "w2", "w1"]
        last = await repo.page([space.id], None, 3, second.next_cursor)
        assert [w.id for w in last.items] == ["w0"]
        assert last.next_cursor is None
        running = await repo.page(None, [WorkloadStatus.RUNNING], 10, None)
        assert {w.id for w in running.items} == {"w1", "w3", "w5"}
        assert (await repo.page([], None, 10, None)).total == 0


async def test_node_upsert_adds_updates_and_removes_devices(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    def devices(count: int, model: str) -> list[Device]:
        return [
            Device(
                node_name="n1",
                index=i,
                uuid=f"GPU-{i}",
                model=model,
                memory_mib=81920,
                simulated=False,
                healthy=True,
                mig_enabled=False,
            )
            for i in range(count)
        ]

    async def upsert(count: int, model: str) -> None:
        async with sessions.begin() as session:
            await NodeRepository(session).upsert(
                name="n1",
                backend="local",
                cpu_milli=8000,
                memory_mib=65536,
                schedulable=True,
                simulated=False,
                labels={"zone": "a"},
                devices=devices(count, model),
                seen_at=datetime.now(UTC),
            )

    await upsert(4, "A100-80GB")
    await upsert(2, "H100-80GB")
    async with sessions() as session:
        (node,) = await NodeRepository(session).list()
        assert [(d.index, d.model) for d in node.devices] == [(0, "H100-80GB"), (1, "H100-80GB")]
        assert node.last_seen_at.tzinfo is not None


async def test_timestamps_keep_microseconds_and_come_back_in_utc(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # MariaDB's DATETIME drops fractions unless the column has a precision; ordering by time needs them
    moment = datetime(2026, 12, 1, 22, 40, 5, 123456, tzinfo=UTC)
    async with sessions.begin() as session:
        space = await WorkspaceRepository(session).add("ml-a", "")
        workload = _workload("w1", space.id)
        workload.created_at = moment
        workload.admitted_at = moment.astimezone(timezone(timedelta(hours=9)))  # Seoul time, same instant
        WorkloadRepository(session).add(workload)
    async with sessions() as session:
        stored = await WorkloadRepository(session).get("w1")
        assert stored is not None
        assert stored.created_at == moment
        assert stored.admitted_at == moment
        assert stored.created_at.tzinfo is not None


async def test_json_columns_and_text_keep_every_character(sessions: async_sessionmaker[AsyncSession]) -> None:
    spec = {"command": ["python", "학습.py", "--note", "🚀"], "env": {"LANG": "ko_KR.UTF-8"}, "n": [1, 2.5]}
    async with sessions.begin() as session:
        space = await WorkspaceRepository(session).add("비전-팀", "한국어 설명")
        workload = _workload("w1", space.id)
        workload.spec = spec
        workload.reason = "대기 중: GPU 부족 " + "x" * 5000  # Text holds more than a VARCHAR
        WorkloadRepository(session).add(workload)
    async with sessions() as session:
        stored = await WorkloadRepository(session).get("w1")
        assert stored is not None
        assert stored.spec == spec
        assert stored.reason is not None
        assert stored.reason.startswith("대기 중")
        assert len(stored.reason) == len("대기 중: GPU 부족 ") + 5000
        assert stored.workspace.name == "비전-팀"


async def test_allocations_are_the_replicas_of_the_asked_statuses(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        space = await WorkspaceRepository(session).add("ml-a", "")
        for workload_id, status in (("run", WorkloadStatus.RUNNING), ("done", WorkloadStatus.SUCCEEDED)):
            workload = _workload(workload_id, space.id, status)
            workload.replica_rows.append(
                Replica(index=0, node="n1", cpu_milli=500, memory_mib=64, gpu_indices=[0, 1], gpu_milli=1000)
            )
            WorkloadRepository(session).add(workload)
    async with sessions() as session:
        allocations = await WorkloadRepository(session).allocations([WorkloadStatus.RUNNING])
        assert [(a.node, a.cpu_milli, a.gpu_indices, a.gpu_milli) for a in allocations] == [
            ("n1", 500, [0, 1], 1000)
        ]


async def test_the_leader_lease_has_one_holder(sessions: async_sessionmaker[AsyncSession]) -> None:
    first = LeaderLease(sessions, "controllers", ttl_s=30)
    second = LeaderLease(sessions, "controllers", ttl_s=30)
    assert await first.try_acquire()
    assert await first.try_acquire()  # renewing within the same second still counts as held
    assert not await second.try_acquire()
    await first.release()
    assert await second.try_acquire()


@pytest.mark.mariadb
async def test_every_timestamp_keeps_microseconds_on_mariadb(mariadb_server: MariaDBServer) -> None:
    """Guards later migrations too: a timestamp column they create on MariaDB needs
    `sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")` (PostgreSQL and
    SQLite keep microseconds in every timestamp)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(mariadb_server.create_database(name))
    try:
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            columns = await connection.execute(
                text(
                    "SELECT table_name, column_name, datetime_precision FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND data_type IN ('datetime', 'timestamp')"
                )
            )
            found = list(columns)
    finally:
        await engine.dispose()
        mariadb_server.drop_database(name)
    assert len(found) >= 17
    assert [(table, column) for table, column, precision in found if precision != 6] == []
