"""The usage ledger's intervals and reports on SQLite, PostgreSQL and MariaDB: hand-computed GPU-hours
across midnight, open intervals up to now, microseconds kept, who sees which workspaces, and a report
that matches the sum of its intervals. (Windows, time zones and CSV are pure: tests/unit/domain and
tests/unit/services.)"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from astrago.auth.principal import Principal
from astrago.config import Settings
from astrago.domain.enums import WorkspaceRole
from astrago.domain.usage import UsageGroupBy
from astrago.services.context import ServiceContext
from astrago.services.errors import NotFound
from astrago.services.registry import Services
from astrago.services.schemas import WorkspaceCreate
from astrago.services.usage import UsageQuery
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import alembic_config, upgrade_to_head
from astrago.store.models import AllocationInterval, Base
from astrago.store.repositories import AllocationRepository, UserRepository, WorkspaceRepository

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
ADMIN = Principal(user_id="admin", username="admin", is_admin=True)


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    ctx = ServiceContext(create_session_factory(engine), Settings(data_dir=tmp_path, admin_password="x" * 12))
    registry = Services.build(ctx)
    await registry.auth.ensure_admin()
    async with ctx.read() as session:
        admin = await UserRepository(session).by_username("admin")
    assert admin is not None
    for name in ("ml-a", "ml-b"):
        await registry.workspaces.create(Principal(admin.id, "admin", True), WorkspaceCreate(name=name))
    yield registry
    await engine.dispose()


async def _workspace_id(services: Services, name: str) -> str:
    async with services.ctx.read() as session:
        workspace = await WorkspaceRepository(session).by_name(name)
    assert workspace is not None
    return workspace.id


async def _record(services: Services, *intervals: AllocationInterval) -> None:
    async with services.ctx.write() as session:
        for interval in intervals:
            AllocationRepository(session).add(interval)


def interval(
    workspace_id: str,
    started: datetime,
    ended: datetime | None,
    *,
    workload: str = "w1",
    replica: int = 0,
    workspace: str = "ml-a",
    user: str | None = "kim",
    model: str | None = "A100-80GB",
    gpus: int = 1,
    gpu_milli: int = 1000,
    cpu_milli: int = 4000,
    memory_mib: int = 16384,
) -> AllocationInterval:
    return AllocationInterval(
        workload_id=workload,
        workload_name=f"name-{workload}",
        replica_index=replica,
        workspace_id=workspace_id,
        workspace=workspace,
        user_id=None,
        username=user,
        node="node-1",
        gpu_model=model,
        gpu_count=gpus,
        gpu_milli=gpu_milli,
        cpu_milli=cpu_milli,
        memory_mib=memory_mib,
        started_at=started,
        ended_at=ended,
    )


def at(day: int, hour: int, minute: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, 0, micro, tzinfo=UTC)


async def test_gpu_hours_across_midnight_and_up_to_now_by_day_user_and_model(services: Services) -> None:
    a = await _workspace_id(services, "ml-a")
    await _record(
        services,
        # 2 GPUs from 22:30 to 01:15: 3 GPU-hours on the 30th... of November, 2.5 on Dec 1st
        interval(a, at(1, 22, 30) - timedelta(days=1), at(1, 1, 15), gpus=2, gpu_milli=2000),
        # a half share still running since 04:00: 1 GPU-hour up to NOW (06:00)
        interval(a, at(2, 4), None, workload="w2", user="lee", gpu_milli=500, model="L40S"),
        # CPU only, 1 hour
        interval(a, at(1, 12), at(1, 13), workload="w3", model=None, gpus=0, gpu_milli=0, cpu_milli=8000),
    )
    query = UsageQuery(start=date(2026, 11, 30), end=date(2026, 12, 2), by=UsageGroupBy.DAY)
    report = await services.usage.report(ADMIN, query, now=NOW)
    by_day = {row.key: row.gpu_hours for row in report.rows}
    assert by_day == {"2026-11-30": 3.0, "2026-12-01": 2.5, "2026-12-02": 1.0}
    assert report.total.gpu_hours == 6.5
    assert report.total.cpu_core_hours == 4 * 2.75 + 4 * 2 + 8 * 1
    assert report.total.memory_gib_hours == 16 * (2.75 + 2 + 1)
    assert report.total.gpu_hours_used is None
    users = await services.usage.report(ADMIN, UsageQuery(by=UsageGroupBy.USER), now=NOW)
    assert {r.key: r.gpu_hours for r in users.rows} == {"kim": 5.5, "lee": 1.0}
    models = await services.usage.report(ADMIN, UsageQuery(by=UsageGroupBy.MODEL), now=NOW)
    assert {r.key: r.gpu_hours for r in models.rows} == {"A100-80GB": 5.5, "L40S": 1.0, "none": 0.0}


async def test_microseconds_survive_the_database(services: Services) -> None:
    a = await _workspace_id(services, "ml-a")
    await _record(services, interval(a, at(1, 10, 0, 250_000), at(1, 10, 0, 750_000)))
    report = await services.usage.report(ADMIN, UsageQuery(start=date(2026, 12, 1)), now=NOW)
    assert report.total.gpu_hours * 3600 == pytest.approx(0.5, rel=1e-9)


async def test_the_report_matches_the_sum_of_its_intervals(services: Services) -> None:
    """Hundreds of random intervals across days, both workspaces, open and closed: the report's total
    equals each interval's overlap with the window, computed here without any splitting."""
    a, b = await _workspace_id(services, "ml-a"), await _workspace_id(services, "ml-b")
    rng = random.Random(13)
    rows = []
    for k in range(300):
        start = NOW - timedelta(seconds=rng.randint(0, 20 * 86_400))
        length = timedelta(seconds=rng.randint(1, 5 * 86_400), microseconds=rng.randint(0, 999_999))
        end = start + length if rng.random() < 0.8 and start + length < NOW else None
        space = rng.choice([(a, "ml-a"), (b, "ml-b")])
        gpu_milli = rng.choice([0, 125, 500, 1000, 4000])
        rows.append(interval(space[0], start, end, workspace=space[1], workload=f"w{k}", gpu_milli=gpu_milli))
    await _record(services, *rows)
    window_start, window_end = NOW - timedelta(days=10), NOW - timedelta(hours=7)
    expected = sum(
        r.gpu_milli
        / 1000
        * max((min(r.ended_at or NOW, window_end) - max(r.started_at, window_start)), timedelta())
        / timedelta(hours=1)
        for r in rows
    )
    for by in UsageGroupBy:
        report = await services.usage.report(
            ADMIN, UsageQuery(start=window_start, end=window_end, by=by), now=NOW
        )
        assert report.total.gpu_hours == pytest.approx(expected, rel=1e-3)
        assert sum(r.gpu_hours for r in report.rows) == pytest.approx(report.total.gpu_hours, rel=1e-9)


async def test_members_see_their_workspaces_and_no_others(services: Services) -> None:
    a, b = await _workspace_id(services, "ml-a"), await _workspace_id(services, "ml-b")
    await _record(
        services,
        interval(a, at(1, 1), at(1, 2), workspace="ml-a"),
        interval(b, at(1, 1), at(1, 3), workspace="ml-b", workload="w2"),
    )
    member = Principal("u1", "kim", False, {a: WorkspaceRole.VIEWER})
    mine = await services.usage.report(member, UsageQuery(start=date(2026, 12, 1)), now=NOW)
    assert [(r.key, r.gpu_hours) for r in mine.rows] == [("ml-a", 1.0)]
    everyone = await services.usage.report(ADMIN, UsageQuery(start=date(2026, 12, 1)), now=NOW)
    assert [(r.key, r.gpu_hours) for r in everyone.rows] == [("ml-a", 1.0), ("ml-b", 2.0)]
    with pytest.raises(NotFound, match="does not exist or you are not a member"):
        await services.usage.report(member, UsageQuery(workspace="ml-b"), now=NOW)
    only_b = await services.usage.report(
        ADMIN, UsageQuery(workspace="ml-b", start=date(2026, 12, 1)), now=NOW
    )
    assert only_b.total.gpu_hours == 2.0


async def test_the_ledger_migration_records_replicas_already_running_or_ended(database_url: str) -> None:
    """Installed in the middle of jobs: a running replica's interval opens at its recorded start, an ended
    one's closes at its recorded end, and a replica that never started holds nothing."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "telemetry_1"))
            await _seed_a_running_gang(connection)
        await upgrade_to_head(engine)
        async with create_session_factory(engine)() as session:
            intervals = await AllocationRepository(session).for_workload("w-running")
    finally:
        await engine.dispose()
    assert [(i.replica_index, i.started_at, i.ended_at) for i in intervals] == [
        (0, at(1, 9), None),
        (1, at(1, 9, 1), at(1, 10)),
    ]
    assert (intervals[0].gpu_model, intervals[0].gpu_count, intervals[0].gpu_milli) == ("A100-80GB", 2, 2000)
    assert (intervals[0].workspace, intervals[0].username, intervals[0].workload_name) == (
        "ml-a",
        "kim",
        "train",
    )


async def _seed_a_running_gang(connection: AsyncConnection) -> None:
    tables = Base.metadata.tables
    await connection.execute(insert(tables["users"]), [{"id": "u1", "username": "kim", "is_admin": False}])
    await connection.execute(insert(tables["workspaces"]), [{"id": "s1", "name": "ml-a", "description": ""}])
    await connection.execute(
        insert(tables["nodes"]),
        [{"name": "node-1", "backend": "local", "cpu_milli": 8000, "memory_mib": 65536, "labels": {}}],
    )
    await connection.execute(
        insert(tables["devices"]),
        [{"node_name": "node-1", "index": i, "model": "A100-80GB", "memory_mib": 81920} for i in range(4)],
    )
    workload = {"id": "w-running", "workspace_id": "s1", "name": "train", "kind": "batch", "spec": {}}
    await connection.execute(
        insert(tables["workloads"]),
        [{**workload, "status": "RUNNING", "replicas": 3, "created_by": "u1", "launched": True}],
    )
    replica = {"workload_id": "w-running", "node": "node-1", "cpu_milli": 1000, "memory_mib": 1024}
    never = {"started_at": None, "finished_at": None}
    await connection.execute(
        insert(tables["replicas"]),
        [
            {**replica, **never, "index": 0, "gpu_indices": [0, 1], "gpu_milli": 1000, "state": "RUNNING",
             "started_at": at(1, 9)},
            {**replica, "index": 1, "gpu_indices": [2, 3], "gpu_milli": 1000, "state": "SUCCEEDED",
             "started_at": at(1, 9, 1), "finished_at": at(1, 10)},
            {**replica, **never, "index": 2, "gpu_indices": [], "gpu_milli": 0, "state": "STARTING"},
        ],
    )  # fmt: skip
