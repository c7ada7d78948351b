"""The usage ledger's used GPU time, accumulated as the telemetry writes its samples, on SQLite,
PostgreSQL and MariaDB: each day's used hours from that day's own samples, unknown (MIG, no telemetry)
stays null, a failed write counts nothing and a rewrite counts once, the ledger outlives the samples'
rollup and retention, and the migration adds up the samples stored before it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, insert

from astrago.auth.principal import Principal
from astrago.config import Settings
from astrago.domain.usage import AllocationClosed, UsageGroupBy
from astrago.monitor.rollup import roll_up
from astrago.services.context import ServiceContext
from astrago.services.registry import Services
from astrago.services.schemas import WorkspaceCreate
from astrago.services.usage import UsageQuery, UsageService
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import alembic_config, upgrade_to_head
from astrago.store.models import AllocationInterval, Base, Workload
from astrago.store.repositories import AllocationRepository, UserRepository, WorkspaceRepository
from astrago.store.repositories.gpu_samples import GpuSampleRepository, WorkloadSampleValues

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
ADMIN = Principal(user_id="admin", username="admin", is_admin=True)
STEP = 300  # one sample row per 5 minutes keeps the tests small (the sums weigh rows by their seconds)


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
    await registry.workspaces.create(Principal(admin.id, "admin", True), WorkspaceCreate(name="ml-a"))
    yield registry
    await engine.dispose()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


async def _job(
    services: Services, workload: str, started: datetime, ended: datetime | None, gpus: int
) -> None:
    """A workload row (samples belong to one) and its replica 0's allocation interval."""
    async with services.ctx.write() as session:
        workspace = await WorkspaceRepository(session).by_name("ml-a")
        assert workspace is not None
        await session.execute(
            insert(Base.metadata.tables["workloads"]),
            [{"id": workload, "workspace_id": workspace.id, "name": workload, "kind": "batch",
              "status": "RUNNING", "spec": {}}],
        )  # fmt: skip
        AllocationRepository(session).add(
            AllocationInterval(
                workload_id=workload, workload_name=workload, replica_index=0, workspace_id=workspace.id,
                workspace="ml-a", user_id=None, username="kim", node="node-1", gpu_model="A100-80GB",
                gpu_count=gpus, gpu_milli=1000 * gpus, cpu_milli=1000, memory_mib=1024,
                started_at=started, ended_at=ended,
            )
        )  # fmt: skip


def _samples(
    workload: str, start: datetime, end: datetime, util: float | None, gpus: int = 1
) -> list[WorkloadSampleValues]:
    rows: list[WorkloadSampleValues] = []
    moment = start
    while moment < end:
        for gpu in range(gpus):
            rows.append(
                WorkloadSampleValues(
                    workload_id=workload, replica_index=0, node="node-1", gpu_index=gpu, at=moment,
                    resolution_s=STEP, sampled_s=STEP, gpu_util_percent=util, memory_used_bytes=1 << 30,
                    source="scripted",
                )
            )  # fmt: skip
        moment += timedelta(seconds=STEP)
    return rows


async def _write(services: Services, rows: list[WorkloadSampleValues]) -> None:
    async with services.ctx.write() as session:
        await GpuSampleRepository(session).insert_samples(rows, [])


async def _used_by_day(usage: UsageService, time_zone: str | None = None) -> dict[str, float | None]:
    query = UsageQuery(
        start=date(2026, 12, 1), end=date(2026, 12, 3), by=UsageGroupBy.DAY, time_zone=time_zone
    )
    report = await usage.report(ADMIN, query, now=NOW)
    return {row.key: row.gpu_hours_used for row in report.rows}


async def test_each_days_used_hours_come_from_that_days_own_samples(services: Services) -> None:
    # 2 GPUs from 22:00 to 02:00: 80 % busy before midnight, 20 % after
    await _job(services, "w1", at(1, 22), at(2, 2), gpus=2)
    await _write(services, _samples("w1", at(1, 22), at(2, 0), 80.0, gpus=2))
    await _write(services, _samples("w1", at(2, 0), at(2, 2), 20.0, gpus=2))
    used = await _used_by_day(services.usage)
    assert used == {
        "2026-12-01": pytest.approx(2 * 2 * 0.8),
        "2026-12-02": pytest.approx(2 * 2 * 0.2),
        "2026-12-03": None,
    }
    # every grouping gives the same total (no window-wide mean smeared over the days)
    whole = await services.usage.report(
        ADMIN, UsageQuery(start=date(2026, 12, 1), end=date(2026, 12, 3)), now=NOW
    )
    assert whole.total.gpu_hours_used == pytest.approx(4.0)
    assert whole.total.gpu_hours_measured == whole.total.gpu_hours == 8.0
    # in Seoul (UTC+9) both days' samples fall on Dec 2nd
    seoul = await _used_by_day(services.usage, time_zone="Asia/Seoul")
    assert seoul["2026-12-02"] == pytest.approx(4.0)
    assert seoul["2026-12-01"] is None


async def test_unknown_utilisation_stays_unknown_never_zero(services: Services) -> None:
    await _job(services, "w-mig", at(2, 1), at(2, 3), gpus=1)  # MIG: rows without a utilisation
    await _job(services, "w-none", at(2, 1), at(2, 3), gpus=1)  # no telemetry at all
    await _job(services, "w-idle", at(2, 1), at(2, 3), gpus=1)  # measured: a true 0 %
    await _write(services, _samples("w-mig", at(2, 1), at(2, 3), None))
    await _write(services, _samples("w-idle", at(2, 1), at(2, 3), 0.0))
    report = await services.usage.report(
        ADMIN, UsageQuery(start=date(2026, 12, 2), by=UsageGroupBy.USER), now=NOW
    )
    assert report.total.gpu_hours == 6.0
    assert report.total.gpu_hours_measured == 2.0  # only the idle job's hours are known
    assert report.total.gpu_hours_used == 0.0
    await _job(services, "w-mig-2", at(2, 4), at(2, 5), gpus=1)
    await _write(services, _samples("w-mig-2", at(2, 4), at(2, 5), None))
    only_unknown = await services.usage.report(
        ADMIN, UsageQuery(start=at(2, 4), end=at(2, 5), by=UsageGroupBy.DAY), now=NOW
    )
    assert only_unknown.total.gpu_hours == 1.0
    assert only_unknown.total.gpu_hours_used is None
    assert [row.gpu_hours_used for row in only_unknown.rows] == [None]


async def test_a_failed_write_counts_nothing_and_a_rewrite_counts_once(services: Services) -> None:
    """A crash between writing the samples and committing (here: an error inside the transaction) loses
    the samples and their ledger time together; writing the period again counts it exactly once."""
    await _job(services, "w1", at(2, 1), at(2, 3), gpus=1)
    rows = _samples("w1", at(2, 1), at(2, 2), 50.0)
    with pytest.raises(RuntimeError, match="died"):
        await _write_then_die(services, rows)
    assert await _used_by_day(services.usage) == {"2026-12-01": None, "2026-12-02": None, "2026-12-03": None}
    await _write(services, rows)
    # the day's mean so far (50 %) over the 2 hours held
    assert (await _used_by_day(services.usage))["2026-12-02"] == pytest.approx(2 * 0.5)
    await _write(services, _samples("w1", at(2, 2), at(2, 3), 100.0))
    assert (await _used_by_day(services.usage))["2026-12-02"] == pytest.approx(0.5 + 1.0)
    async with services.ctx.read() as session:
        assert await GpuSampleRepository(session).count() == 24


async def _write_then_die(services: Services, rows: list[WorkloadSampleValues]) -> None:
    async with services.ctx.write() as session:
        await GpuSampleRepository(session).insert_samples(rows, [])
        raise RuntimeError("the server died before the commit")


async def test_samples_past_a_runs_recorded_end_are_taken_back_when_it_closes(services: Services) -> None:
    """A job that ended while the server was down is sampled as held (a measured 0 %) from the restart
    until the controller closes its interval at the recorded end: those samples no longer count."""
    await _job(services, "w1", at(2, 1), None, gpus=1)
    await _write(services, _samples("w1", at(2, 1), at(2, 2), 60.0))
    await _write(services, _samples("w1", at(2, 2, 30), at(2, 2, 40), 0.0))  # after the restart
    async with services.ctx.write() as session:
        await AllocationRepository(session).record([(Workload(id="w1"), AllocationClosed(0, at(2, 2)))])
    assert (await _used_by_day(services.usage))["2026-12-02"] == pytest.approx(0.6)
    report = await services.usage.report(ADMIN, UsageQuery(start=date(2026, 12, 2)), now=NOW)
    assert report.total.gpu_hours == report.total.gpu_hours_measured == 1.0


async def test_the_ledger_outlives_the_samples_rollup_and_retention(services: Services) -> None:
    await _job(services, "w1", at(1, 10), at(1, 12), gpus=1)
    rows = [
        {**row, "resolution_s": 10, "sampled_s": 10} for row in _samples("w1", at(1, 10), at(1, 12), 30.0)
    ]
    for row in rows:
        row["at"] = row["at"]  # 10 s rows every 5 minutes would leave gaps: fill each 5-minute slot
    dense = [
        WorkloadSampleValues(**{**row, "at": row["at"] + timedelta(seconds=10 * k)})  # type: ignore[typeddict-item]
        for row in rows
        for k in range(STEP // 10)
    ]
    await _write(services, dense)
    before = await _used_by_day(services.usage)
    assert before["2026-12-01"] == pytest.approx(2 * 0.3)
    result = await roll_up(services.ctx, NOW, timedelta(hours=1), timedelta(days=90))
    assert result.rolled_up == len(dense)
    assert await _used_by_day(services.usage) == before
    await roll_up(services.ctx, NOW, timedelta(hours=1), timedelta(hours=2))  # every sample expires
    async with services.ctx.read() as session:
        assert await GpuSampleRepository(session).count() == 0
    assert await _used_by_day(services.usage) == before


async def test_the_migration_adds_up_the_samples_stored_before_it(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "identity_2"))
            tables = Base.metadata.tables
            await connection.execute(
                insert(tables["workspaces"]), [{"id": "s1", "name": "ml-a", "description": ""}]
            )
            await connection.execute(
                insert(tables["workloads"]),
                [
                    {
                        "id": "w1",
                        "workspace_id": "s1",
                        "name": "w1",
                        "kind": "batch",
                        "status": "RUNNING",
                        "spec": {},
                    }
                ],
            )
            await connection.execute(
                insert(tables["allocation_intervals"]),
                [{"workload_id": "w1", "workload_name": "w1", "replica_index": 0, "workspace_id": "s1",
                  "workspace": "ml-a", "node": "node-1", "gpu_model": "A100-80GB", "gpu_count": 1,
                  "gpu_milli": 1000, "cpu_milli": 1000, "memory_mib": 1024, "started_at": at(1, 23),
                  "ended_at": at(2, 1)}],
            )  # fmt: skip
            await connection.execute(
                insert(tables["workload_gpu_samples"]),
                [*_samples("w1", at(1, 23), at(2, 0), 60.0), *_samples("w1", at(2, 0), at(2, 1), 40.0),
                 *_samples("w1", at(2, 1), at(2, 2), 90.0)],  # the last hour is after the run: not counted
            )  # fmt: skip
        await upgrade_to_head(engine)
        ctx = ServiceContext(
            create_session_factory(engine), Settings(data_dir=tmp_path, admin_password="x" * 12)
        )
        used = await _used_by_day(UsageService(ctx))
    finally:
        await engine.dispose()
    assert used == {"2026-12-01": pytest.approx(0.6), "2026-12-02": pytest.approx(0.4), "2026-12-03": None}


async def test_the_usage_hours_table_matches_the_model(database_url: str) -> None:
    """The migration creates what the model declares (columns, key, the covering index, the foreign key)."""

    def differences(connection: Connection) -> list[object]:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        return [d for d in diff if "allocation_usage_hours" in repr(d)]

    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
